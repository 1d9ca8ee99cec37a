//! `task.toml`: every key optional, unknown keys tolerated so Harbor task folders load as is.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::TaskError;

/// The verifier time limit when `task.toml` sets none (Harbor's default too).
pub const DEFAULT_VERIFIER_TIMEOUT_SEC: f64 = 600.0;

/// Keys nlah reads at the top level; the rest go to [`TaskConfig::extra`].
const KNOWN_KEYS: [&str; 7] = [
    "id", "split", "agent", "verifier", "budgets", "metadata", "env",
];

/// The time limit of one request to an environment when `[env]` sets none.
pub const DEFAULT_ENV_TIMEOUT_SEC: f64 = 30.0;

/// The contents of `task.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskConfig {
    /// The task id; the folder name when absent.
    pub id: Option<String>,
    /// Which split the task belongs to ("train", "validation", "test", …).
    pub split: Option<String>,
    pub agent: AgentConfig,
    pub verifier: VerifierConfig,
    /// Overrides of the harness's budgets for this task.
    pub budgets: TaskBudgets,
    /// `[metadata]`, free form (Harbor puts author, difficulty, category, tags here).
    pub metadata: toml::Table,
    /// `[env]`: the environment the task's episode runs in (see docs/ENVIRONMENTS.md).
    pub env: Option<EnvConfig>,
    /// Top-level keys nlah does not read (Harbor's `version`, `[environment]`, …), kept verbatim.
    pub extra: toml::Table,
}

/// `[agent]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentConfig {
    /// Wall-clock limit for the agent's whole run, in seconds.
    pub timeout_sec: Option<f64>,
}

/// `[verifier]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifierConfig {
    /// Wall-clock limit for the verifier, in seconds (default 600).
    pub timeout_sec: f64,
    /// A `bash -c` command; the default is `bash "$NLAH_TESTS_DIR/test.sh"` when `tests/test.sh`
    /// exists. It runs in the repository folder and reaches the hidden tests via `$NLAH_TESTS_DIR`.
    pub command: Option<String>,
    /// Judge the run by the environment's final reward instead of hidden tests: it passes when
    /// the episode's reward is at least this.
    pub reward_at_least: Option<f64>,
}

/// `[env]`: an MCP stdio server whose tools are the child's actions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvConfig {
    /// The name its tools are exposed under (`<name>__<tool>`); default `env`.
    pub name: String,
    /// A `bash -c` command line; `{task_dir}` stands for the task folder (shell-quoted).
    pub command: String,
    /// Handed to the server as `env/reset`'s `config` (game, seed, variant, …).
    pub config: toml::Table,
    /// Time limit of one request to the server, in seconds.
    pub timeout_sec: f64,
    /// Actions after which the runtime ends the episode (none: the environment decides).
    pub max_steps: Option<u64>,
}

impl EnvConfig {
    pub fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.timeout_sec)
            .unwrap_or(Duration::from_secs(DEFAULT_ENV_TIMEOUT_SEC as u64))
    }
}

/// `[budgets]`: each key present overrides the harness's budget of the same name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskBudgets {
    pub tokens: Option<u64>,
    pub tool_calls: Option<u64>,
    pub llm_calls: Option<u64>,
    pub wall_time_sec: Option<f64>,
    pub cost_usd: Option<f64>,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            timeout_sec: DEFAULT_VERIFIER_TIMEOUT_SEC,
            command: None,
            reward_at_least: None,
        }
    }
}

impl AgentConfig {
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_sec
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }
}

impl VerifierConfig {
    pub fn timeout(&self) -> Duration {
        // Parsing rejects values try_from_secs_f64 refuses, so the fallback is never taken.
        Duration::try_from_secs_f64(self.timeout_sec)
            .unwrap_or(Duration::from_secs(DEFAULT_VERIFIER_TIMEOUT_SEC as u64))
    }
}

impl TaskBudgets {
    pub fn wall_time(&self) -> Option<Duration> {
        self.wall_time_sec
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }

    /// True when the task overrides no budget.
    pub fn is_empty(&self) -> bool {
        *self == TaskBudgets::default()
    }
}

#[derive(Deserialize)]
struct Raw {
    id: Option<Spanned<String>>,
    split: Option<String>,
    #[serde(default)]
    agent: RawAgent,
    #[serde(default)]
    verifier: RawVerifier,
    #[serde(default)]
    budgets: RawBudgets,
    #[serde(default)]
    metadata: toml::Table,
    env: Option<Spanned<RawEnv>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    name: Option<Spanned<String>>,
    command: Spanned<String>,
    #[serde(default)]
    config: toml::Table,
    timeout_sec: Option<Spanned<f64>>,
    max_steps: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
struct RawAgent {
    timeout_sec: Option<Spanned<f64>>,
}

#[derive(Deserialize, Default)]
struct RawVerifier {
    timeout_sec: Option<Spanned<f64>>,
    command: Option<Spanned<String>>,
    reward_at_least: Option<Spanned<f64>>,
}

#[derive(Deserialize, Default)]
struct RawBudgets {
    tokens: Option<u64>,
    tool_calls: Option<u64>,
    llm_calls: Option<u64>,
    wall_time_sec: Option<Spanned<f64>>,
    cost_usd: Option<Spanned<f64>>,
}

impl TaskConfig {
    /// Parses the text of `task.toml`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<TaskConfig, TaskError> {
        let at = |span: Option<Range<usize>>, message: String| {
            let (line, col) = line_col(text, span.map_or(0, |s| s.start));
            TaskError::Config {
                path: path.to_path_buf(),
                line,
                col,
                message,
            }
        };
        let toml_err = |e: toml::de::Error| at(e.span(), plain_message(e.message()));

        // The table keeps the keys nlah does not read; the typed pass gives typed errors with spans.
        let table: toml::Table = toml::from_str(text).map_err(toml_err)?;
        let raw: Raw = toml::from_str(text).map_err(toml_err)?;

        let positive = |v: Option<Spanned<f64>>, key: &str| -> Result<Option<f64>, TaskError> {
            match v {
                Some(s)
                    if !(*s.get_ref() > 0.0
                        && Duration::try_from_secs_f64(*s.get_ref()).is_ok()) =>
                {
                    Err(at(
                        Some(s.span()),
                        format!("{key} must be a positive number of seconds"),
                    ))
                }
                v => Ok(v.map(Spanned::into_inner)),
            }
        };

        if let Some(id) = &raw.id
            && let Err(reason) = super::check_id(id.get_ref())
        {
            return Err(at(
                Some(id.span()),
                format!("invalid id {:?}: {reason}", id.get_ref()),
            ));
        }
        let command = match raw.verifier.command {
            Some(c) if c.get_ref().trim().is_empty() => {
                return Err(at(Some(c.span()), "verifier.command is empty".to_string()));
            }
            c => c.map(Spanned::into_inner),
        };
        let cost_usd = match raw.budgets.cost_usd {
            Some(c) if !(c.get_ref().is_finite() && *c.get_ref() >= 0.0) => {
                return Err(at(
                    Some(c.span()),
                    "budgets.cost_usd must be a non-negative number".to_string(),
                ));
            }
            c => c.map(Spanned::into_inner),
        };

        let reward_at_least = match raw.verifier.reward_at_least {
            Some(r) if !r.get_ref().is_finite() => {
                return Err(at(
                    Some(r.span()),
                    "verifier.reward_at_least must be a finite number".to_string(),
                ));
            }
            Some(r) if raw.env.is_none() => {
                return Err(at(
                    Some(r.span()),
                    "verifier.reward_at_least judges an environment's reward, but the task has no [env]".to_string(),
                ));
            }
            r => r.map(Spanned::into_inner),
        };
        let env = match raw.env {
            None => None,
            Some(e) => {
                let e = e.into_inner();
                if e.command.get_ref().trim().is_empty() {
                    return Err(at(
                        Some(e.command.span()),
                        "env.command is empty".to_string(),
                    ));
                }
                let name = match e.name {
                    Some(n)
                        if n.get_ref().is_empty()
                            || n.get_ref().len() > 32
                            || !n
                                .get_ref()
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
                    {
                        return Err(at(
                            Some(n.span()),
                            format!(
                                "env.name {:?} must be 1-32 ASCII letters, digits and '-'",
                                n.get_ref()
                            ),
                        ));
                    }
                    Some(n) => n.into_inner(),
                    None => "env".to_string(),
                };
                let max_steps = match e.max_steps {
                    Some(m) if *m.get_ref() == 0 => {
                        return Err(at(
                            Some(m.span()),
                            "env.max_steps must be at least 1".to_string(),
                        ));
                    }
                    m => m.map(Spanned::into_inner),
                };
                Some(EnvConfig {
                    name,
                    command: e.command.into_inner(),
                    config: e.config,
                    timeout_sec: positive(e.timeout_sec, "env.timeout_sec")?
                        .unwrap_or(DEFAULT_ENV_TIMEOUT_SEC),
                    max_steps,
                })
            }
        };

        Ok(TaskConfig {
            id: raw.id.map(Spanned::into_inner),
            split: raw.split,
            agent: AgentConfig {
                timeout_sec: positive(raw.agent.timeout_sec, "agent.timeout_sec")?,
            },
            verifier: VerifierConfig {
                timeout_sec: positive(raw.verifier.timeout_sec, "verifier.timeout_sec")?
                    .unwrap_or(DEFAULT_VERIFIER_TIMEOUT_SEC),
                command,
                reward_at_least,
            },
            budgets: TaskBudgets {
                tokens: raw.budgets.tokens,
                tool_calls: raw.budgets.tool_calls,
                llm_calls: raw.budgets.llm_calls,
                wall_time_sec: positive(raw.budgets.wall_time_sec, "budgets.wall_time_sec")?,
                cost_usd,
            },
            metadata: raw.metadata,
            env,
            extra: table
                .into_iter()
                .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
                .collect(),
        })
    }
}

/// serde's type names mean little to someone editing a TOML file.
fn plain_message(message: &str) -> String {
    message
        .trim()
        .replace("expected f64", "expected a number")
        .replace("expected u64", "expected a non-negative integer")
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

//! Environments: a task's MCP stdio server whose tools are the child's actions, run as one
//! episode per run (docs/ENVIRONMENTS.md).
//!
//! The server starts once per run, before the first stage, and lives until the run ends: the
//! episode spans every child. A server that declares the `nlah/env` capability is reset with the
//! task's configuration and reports observation, reward, done and invalid actions; a plain MCP
//! server works too (its tools are actions, an error result counts as an invalid action). A
//! server that dies, never answers or answers garbage is a fault: recorded, reported to the
//! model, and the run ends with an infrastructure error.

pub mod state;

use std::path::Path;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::agent::mcp::{McpClient, McpError, McpOptions};
use crate::agent::tools::ToolOutput;
use crate::model::ToolSpec;
use crate::record::{EpisodeEnd, EpisodeRecord, EventKind};
use crate::sandbox::Confinement;
use crate::task::EnvConfig;
pub use state::EnvState;

/// Added to `[env] timeout_sec` for starting and resetting the server (an interpreter that
/// imports a game library on a loaded machine can take seconds).
pub const STARTUP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Bytes of the observation quoted in a child's brief.
const OBSERVATION_CAP: usize = 4000;

/// Why an environment could not start.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("environment `{name}` did not start: {source}")]
    Start { name: String, source: McpError },
    #[error("environment `{name}`: env/reset answered {detail}")]
    Reset { name: String, detail: String },
}

/// The episode's counters and last state.
#[derive(Debug, Default)]
struct Progress {
    steps: u64,
    invalid: u64,
    /// Invalid actions in a row, the last one included.
    invalid_run: u64,
    state: EnvState,
    end: Option<EpisodeEnd>,
    fault: Option<String>,
    /// Events for the run's history, taken by the engine after each tool call.
    pending: Vec<EventKind>,
}

/// A running environment and its episode.
pub struct Episode {
    config: EnvConfig,
    client: McpClient,
    convention: bool,
    /// End the episode at the first action the environment refuses (`--stop-at-invalid`).
    stop_at_invalid: bool,
    progress: Mutex<Progress>,
}

impl std::fmt::Debug for Episode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Episode")
            .field("environment", &self.config.name)
            .field("convention", &self.convention)
            .finish_non_exhaustive()
    }
}

/// The folders an environment's command needs to read besides the system's: the task folder
/// and the folder of every file the command names (absolute, or through `{task_dir}`), as named
/// and with links resolved; for a program in a `bin/` folder, the installation around it (a
/// Python venv's `pyvenv.cfg` and `lib/`, the interpreter's standard library). So a sandbox that
/// confines reading can let the server read its own code and nothing else.
pub fn read_paths(config: &EnvConfig, task_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![task_dir.to_path_buf()];
    let mut add = |dir: Option<&Path>| {
        let Some(dir) = dir else { return };
        let prefix = (dir.file_name().is_some_and(|n| n == "bin"))
            .then(|| dir.parent())
            .flatten();
        let keep = prefix.unwrap_or(dir).to_path_buf();
        if !out.iter().any(|o| keep.starts_with(o)) {
            out.push(keep);
        }
    };
    let expanded = config
        .command
        .replace("{task_dir}", &task_dir.to_string_lossy());
    for word in expanded.split_whitespace() {
        let w = word.trim_matches(['\'', '"']);
        let p = Path::new(w);
        if p.is_absolute() && p.is_file() {
            add(p.parent());
            add(p.canonicalize().ok().as_deref().and_then(Path::parent));
        }
    }
    out
}

/// `s` quoted for `bash -c`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Episode {
    /// Starts the server in `cwd` (the run's workspace) under `confinement`, and resets it with
    /// the task's configuration and `seed` when it follows the convention.
    pub async fn start(
        config: &EnvConfig,
        task_dir: &Path,
        cwd: &Path,
        confinement: &Confinement,
        seed: u64,
    ) -> Result<Episode, EnvError> {
        let command = config
            .command
            .replace("{task_dir}", &shell_quote(&task_dir.to_string_lossy()));
        let options = McpOptions {
            request_timeout: config.timeout() + STARTUP_GRACE,
            ..McpOptions::default()
        };
        let mut client = McpClient::spawn_with(&config.name, &command, cwd, confinement, options)
            .await
            .map_err(|source| EnvError::Start {
                name: config.name.clone(),
                source,
            })?;
        let convention = client
            .capabilities()
            .get("experimental")
            .and_then(|e| e.get(state::KEY))
            .is_some();
        let mut progress = Progress::default();
        if convention {
            let params = json!({"config": toml_to_json(&config.config), "seed": seed});
            let reset = client
                .request_value("env/reset", params)
                .await
                .map_err(|e| EnvError::Reset {
                    name: config.name.clone(),
                    detail: e.to_string(),
                })?;
            progress.state = EnvState::from_value(&reset).ok_or_else(|| EnvError::Reset {
                name: config.name.clone(),
                detail: format!("a result that is not a state object: {reset}"),
            })?;
        }
        client.set_request_timeout(config.timeout());
        progress.pending.push(EventKind::EnvironmentStarted {
            environment: config.name.clone(),
            tools: client.tools().iter().map(|t| t.exposed.clone()).collect(),
            convention,
        });
        Ok(Episode {
            config: config.clone(),
            client,
            convention,
            stop_at_invalid: false,
            progress: Mutex::new(progress),
        })
    }

    /// Ends the episode at the first invalid action (recorded as `end: invalid`): a rollout
    /// that learns from failures stops at its first one.
    pub fn stop_at_invalid(mut self, on: bool) -> Episode {
        self.stop_at_invalid = on;
        self
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The actions as the model sees them.
    pub fn tool_specs(&self) -> Vec<ToolSpec> {
        self.client.tool_specs()
    }

    /// Whether `tool` (as exposed to the model) is one of the environment's actions.
    pub fn has_tool(&self, tool: &str) -> bool {
        self.client.tools().iter().any(|t| t.exposed == tool)
    }

    /// The last state the environment reported.
    pub fn state(&self) -> EnvState {
        self.progress().state.clone()
    }

    /// Invalid actions in a row so far.
    pub fn invalid_run(&self) -> u64 {
        self.progress().invalid_run
    }

    /// The fault that ended the episode, if one did.
    pub fn fault(&self) -> Option<String> {
        self.progress().fault.clone()
    }

    /// Whether no further action will be taken (done, steps spent, or a fault).
    pub fn over(&self) -> bool {
        self.progress().end.is_some()
    }

    /// The events recorded since the last call, for the run's history.
    pub fn take_events(&self) -> Vec<EventKind> {
        std::mem::take(&mut self.progress().pending)
    }

    /// What a child is told about the environment at its start: its tools and the current
    /// observation and legal actions.
    pub fn brief_note(&self) -> String {
        let p = self.progress();
        let mut s = format!(
            "## Environment\n\nYou act in the environment `{}` only through its tools ({}). Each call is one action of the episode.",
            self.config.name,
            self.client
                .tools()
                .iter()
                .map(|t| format!("`{}`", t.exposed))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(end) = p.end {
            s.push_str(&format!(
                " The episode is over ({}); take no more actions.",
                end_words(end)
            ));
        }
        if let Some(o) = p.state.observation.as_deref().filter(|o| !o.is_empty()) {
            s.push_str(&format!(
                "\n\nThe current observation:\n\n```\n{}\n```",
                cap(o, OBSERVATION_CAP)
            ));
        }
        if let Some(l) = &p.state.legal_actions {
            s.push_str(&format!("\n\nLegal actions now: {}", l.join(", ")));
        }
        s.push('\n');
        s
    }

    /// Takes one action: `tool` (as exposed) with its JSON `arguments`. Never fails: problems come
    /// back as error outputs, a fault also ends the episode.
    pub async fn act(&self, child: &str, tool: &str, arguments: &str) -> ToolOutput {
        {
            let mut p = self.progress();
            if let Some(end) = p.end {
                let msg = format!(
                    "the episode is over ({}); no action is taken. Report and stop.",
                    end_words(end)
                );
                if end == EpisodeEnd::Fault {
                    return ToolOutput::error(format!(
                        "{msg} The environment failed: {}",
                        p.fault.clone().unwrap_or_default()
                    ));
                }
                return ToolOutput::error(msg);
            }
            if self.config.max_steps.is_some_and(|m| p.steps >= m) {
                self.end(&mut p, EpisodeEnd::MaxSteps, None);
                return ToolOutput::error(format!(
                    "the episode's {} actions are spent; no action is taken. Report and stop.",
                    p.steps
                ));
            }
        }
        let args: Value = match serde_json::from_str(if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        }) {
            Ok(v) => v,
            Err(e) => {
                let reason = format!(
                    "the arguments of `{tool}` are not JSON ({e}); send a JSON object matching the tool's schema"
                );
                let seen = self.progress().state.observation.clone();
                self.count(child, tool, None, Some(reason.clone()), (arguments, seen));
                return ToolOutput::error(reason);
            }
        };
        // The observation the action is taken in, kept for the record of a refused one.
        let seen = self.progress().state.observation.clone();
        let (mut out, result) = match self.client.call_with_result(tool, args).await {
            Ok(r) => r,
            Err(e) => return self.faulted(&e.to_string()),
        };
        let reported = match EnvState::in_result(&result) {
            Some(s) => Some(s),
            None if self.convention && !result.is_null() => {
                match self.client.request_value("env/state", json!({})).await {
                    Ok(v) => match EnvState::from_value(&v) {
                        Some(s) => Some(s),
                        None => {
                            return self.faulted(&format!(
                                "env/state answered a result that is not a state object: {v}"
                            ));
                        }
                    },
                    Err(e) => return self.faulted(&e.to_string()),
                }
            }
            None => None,
        };
        let invalid_reason = match &reported {
            Some(s) if s.invalid => Some(
                s.invalid_reason
                    .clone()
                    .unwrap_or_else(|| "the environment refused the action".into()),
            ),
            Some(_) => None,
            None if out.is_error => Some(cap(&out.content, 300)),
            None => None,
        };
        let done = self.count(child, tool, reported, invalid_reason, (arguments, seen));
        if let Some(r) = done {
            out.content.push_str(&format!(
                "\n[the episode is over: reward {}; take no more actions]",
                r.map_or("none".to_string(), |r| r.to_string())
            ));
        }
        out
    }

    /// Counts one action and records its step (an invalid one with its arguments and the
    /// observation before it); returns `Some(reward)` when it ended the episode.
    fn count(
        &self,
        child: &str,
        tool: &str,
        reported: Option<EnvState>,
        invalid_reason: Option<String>,
        (arguments, seen): (&str, Option<String>),
    ) -> Option<Option<f64>> {
        let mut p = self.progress();
        p.steps += 1;
        let invalid = invalid_reason.is_some();
        if invalid {
            p.invalid += 1;
            p.invalid_run += 1;
        } else {
            p.invalid_run = 0;
        }
        if let Some(s) = reported {
            p.state = s;
        }
        p.state.invalid = invalid;
        p.state.invalid_reason = invalid_reason.clone();
        let step = p.steps;
        let (reward, done) = (p.state.reward, p.state.done);
        p.pending.push(EventKind::EnvironmentStep {
            child: child.to_string(),
            step,
            tool: tool.to_string(),
            reward,
            done,
            invalid,
            reason: invalid_reason,
            action: invalid.then(|| cap(&format!("{tool} {}", arguments.trim()), 600)),
            observation: if invalid {
                seen.map(|o| cap(&o, OBSERVATION_CAP))
            } else {
                None
            },
        });
        if done {
            self.end(&mut p, EpisodeEnd::Done, None);
            return Some(reward);
        }
        if invalid && self.stop_at_invalid {
            self.end(&mut p, EpisodeEnd::Invalid, None);
            return Some(reward);
        }
        if self.config.max_steps.is_some_and(|m| step >= m) {
            self.end(&mut p, EpisodeEnd::MaxSteps, None);
            return Some(reward);
        }
        None
    }

    fn faulted(&self, message: &str) -> ToolOutput {
        let mut p = self.progress();
        let msg = format!("environment `{}` failed: {message}", self.config.name);
        p.pending.push(EventKind::Error {
            class: "environment".into(),
            message: msg.clone(),
        });
        self.end(&mut p, EpisodeEnd::Fault, Some(msg.clone()));
        ToolOutput::error(format!("{msg}\nThe episode cannot go on; report and stop."))
    }

    fn end(&self, p: &mut Progress, end: EpisodeEnd, fault: Option<String>) {
        if p.end.is_some() {
            return;
        }
        p.end = Some(end);
        p.fault = fault.clone();
        p.pending.push(EventKind::EnvironmentEnded {
            end,
            steps: p.steps,
            invalid_actions: p.invalid,
            reward: p.state.reward,
            fault,
        });
    }

    /// Closes the episode (one still going is recorded as open) and returns its record with the
    /// last events.
    pub fn close(&self) -> (EpisodeRecord, Vec<EventKind>) {
        let mut p = self.progress();
        self.end(&mut p, EpisodeEnd::Open, None);
        let record = EpisodeRecord {
            environment: self.config.name.clone(),
            config: toml_to_json(&self.config.config),
            convention: self.convention,
            steps: p.steps,
            invalid_actions: p.invalid,
            reward: p.state.reward,
            done: p.state.done,
            end: p.end.unwrap_or(EpisodeEnd::Open),
            fault: p.fault.clone(),
        };
        (record, std::mem::take(&mut p.pending))
    }

    /// Stops the server (dropping the episode kills it too, without the grace period).
    pub async fn shutdown(self) {
        self.client.shutdown().await;
    }
}

fn end_words(end: EpisodeEnd) -> &'static str {
    match end {
        EpisodeEnd::Done => "the environment says done",
        EpisodeEnd::MaxSteps => "its steps are spent",
        EpisodeEnd::Fault => "the environment failed",
        EpisodeEnd::Open => "the run ended",
        EpisodeEnd::Invalid => "an action was refused and the run stops at the first",
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// `[env] config` as the JSON handed to the server.
pub fn toml_to_json(t: &toml::Table) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_s_own_files_are_readable() {
        let dir = tempfile::tempdir().unwrap();
        let task = dir.path().join("tasks/t1");
        let envs = dir.path().join("environments");
        std::fs::create_dir_all(&task).unwrap();
        std::fs::create_dir_all(&envs).unwrap();
        std::fs::write(envs.join("game.py"), "").unwrap();
        let config = EnvConfig {
            name: "env".into(),
            command: "exec python3 {task_dir}/../../environments/game.py --fast".into(),
            config: toml::Table::new(),
            timeout_sec: 30.0,
            max_steps: None,
        };
        let paths = read_paths(&config, &task);
        assert_eq!(paths, [task.clone(), envs.canonicalize().unwrap()]);
    }
}

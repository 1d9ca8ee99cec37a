//! `run.json`: the source of truth of a finished (or interrupted) run.

use serde::{Deserialize, Serialize};

use super::Usage;

pub const SCHEMA: &str = "nlah.run/1";

/// How a run ended. `Passed`/`Failed` are results; `Error` is the infrastructure's fault (a
/// provider down, retries spent) and is worth running again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    Passed,
    Failed,
    Unverified,
    Error,
    Running,
    /// Stopped from outside because a budget shared with other runs was spent (an ablation's
    /// `--max-cost`): neither a result nor a failure of the harness; resuming runs it again.
    Budget,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Passed => "passed",
            RunOutcome::Failed => "failed",
            RunOutcome::Unverified => "unverified",
            RunOutcome::Error => "error",
            RunOutcome::Running => "running",
            RunOutcome::Budget => "budget",
        }
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HarnessRef {
    pub name: String,
    /// SHA-256 of the composed SKILL.md.
    pub version: String,
    pub modules: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRef {
    pub id: String,
    pub hash: String,
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifierRecord {
    pub passed: bool,
    pub reward: Option<f64>,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageMetrics {
    pub stage: String,
    pub attempts: u32,
    pub passed: bool,
    pub usage: Usage,
    pub tool_calls: u64,
}

/// Usage split the way the NLAH paper reports it: the runtime's own model calls (orchestrator,
/// candidate ranking) versus the delegated children doing the stages' work.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Metrics {
    pub wall_ms: u64,
    pub total: Usage,
    pub parent: Usage,
    pub children: Usage,
    pub tool_calls: u64,
    pub parent_tool_calls: u64,
    pub child_count: u64,
    pub stages: Vec<StageMetrics>,
    /// Answers with no text and no tool call that the loop nudged rather than ending the child.
    #[serde(default)]
    pub empty_answers: u64,
    /// Tool calls the loop repaired (text tool calls, raw control characters, HTML entities).
    #[serde(default)]
    pub repairs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: String,
    pub run_id: String,
    pub harness: HarnessRef,
    pub task: TaskRef,
    pub model: String,
    pub seed: u64,
    pub started: String,
    pub finished: Option<String>,
    pub outcome: RunOutcome,
    /// Why the run ended as it did, in a sentence.
    pub reason: String,
    pub verifier: Option<VerifierRecord>,
    /// For `Error` outcomes: the failure class (`auth`, `unreachable`, `rate-limited`, …); for
    /// results that a configuration failure ended (`context-overflow`: a request the model's
    /// context cannot hold), that class: running the cell again would fail the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    pub metrics: Metrics,
    /// What the sandbox enforced on this machine.
    pub sandbox: String,
    /// The bounds every model request of the run was sent with.
    #[serde(default)]
    pub requests: RequestBounds,
    /// The episode, for a task that runs in an environment (docs/ENVIRONMENTS.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<EpisodeRecord>,
    /// What the interface layers did, for a harness that declares them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<InterfaceMetrics>,
}

/// The bounds of each model request: completion tokens (`None`: none sent) and the model's
/// context window the runtime checked requests against (`None`: not checked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBounds {
    pub max_tokens: Option<u32>,
    pub context_window: Option<u64>,
}

/// The interface layers' counts over a run (docs/FORMAT.md, Interface layers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceMetrics {
    /// Tool calls the model proposed (text written as a call included).
    pub actions: u64,
    /// Valid as proposed: not repaired, not blocked, not refused by the environment.
    pub legal_first_try: u64,
    /// Valid in the end: not blocked, not refused by the environment (repairs included).
    pub legal_final: u64,
    pub repaired: u64,
    pub blocked: u64,
    /// Actions a code verifier rejected and sent back to the model.
    #[serde(default)]
    pub reprompts: u64,
    /// Actions a code verifier's declared fallback chose after the re-prompts were spent.
    #[serde(default)]
    pub fallbacks: u64,
    /// Messages of trajectory regulation, by rule.
    #[serde(default)]
    pub regulation: std::collections::BTreeMap<String, u64>,
    pub skills_retrieved: u64,
    /// Every intervention (repairs, blocks, regulation messages, notes, skills).
    pub interventions: u64,
}

impl InterfaceMetrics {
    pub fn add(&mut self, o: &InterfaceMetrics) {
        self.actions += o.actions;
        self.legal_first_try += o.legal_first_try;
        self.legal_final += o.legal_final;
        self.repaired += o.repaired;
        self.blocked += o.blocked;
        self.reprompts += o.reprompts;
        self.fallbacks += o.fallbacks;
        for (k, v) in &o.regulation {
            *self.regulation.entry(k.clone()).or_default() += v;
        }
        self.skills_retrieved += o.skills_retrieved;
        self.interventions += o.interventions;
    }
}

/// How an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EpisodeEnd {
    /// The environment said `done`.
    Done,
    /// The task's `max_steps` actions were spent.
    MaxSteps,
    /// The environment died, never answered or answered garbage.
    Fault,
    /// The run ended while the episode was still going.
    Open,
    /// The environment refused an action and the run asked to stop there
    /// (`--stop-at-invalid`, what `nlah synthesize`'s rollouts run with).
    Invalid,
}

/// An episode in an environment: what `run.json` keeps of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// The environment's name (`[env] name`, its tools' prefix).
    pub environment: String,
    /// `[env] config`, as handed to `env/reset`.
    pub config: serde_json::Value,
    /// Whether the server follows the convention (reports state, reward and done).
    pub convention: bool,
    /// Actions sent to the environment.
    pub steps: u64,
    /// Actions the environment (or the runtime) refused as invalid.
    pub invalid_actions: u64,
    /// The last reward the environment reported.
    pub reward: Option<f64>,
    pub done: bool,
    pub end: EpisodeEnd,
    /// What went wrong, for `Fault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

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
}

/// The bounds of each model request: completion tokens (`None`: none sent) and the model's
/// context window the runtime checked requests against (`None`: not checked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBounds {
    pub max_tokens: Option<u32>,
    pub context_window: Option<u64>,
}

//! The events of `history/events.jsonl`: everything that happened in a run, in order.

use serde::{Deserialize, Serialize};

use super::{RunOutcome, Usage};

/// One thing that happened, with when and (for model work) what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log, from 1.
    pub seq: u64,
    /// RFC 3339 time, millisecond precision.
    pub t: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// How a child ended: the `status:` of its RESPONSE.md (the charter's `done`, `failed`,
/// `blocked`), or what the runtime saw instead. Recorded as the word itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ChildStatus {
    Done,
    Failed,
    Blocked,
    /// The child wrote no RESPONSE.md.
    NoResponse,
    /// RESPONSE.md has no `status:` line.
    Unknown,
    /// A status outside the charter's words, kept as the child wrote it.
    Other(String),
}

impl ChildStatus {
    pub fn as_str(&self) -> &str {
        match self {
            ChildStatus::Done => "done",
            ChildStatus::Failed => "failed",
            ChildStatus::Blocked => "blocked",
            ChildStatus::NoResponse => "no-response",
            ChildStatus::Unknown => "unknown",
            ChildStatus::Other(s) => s,
        }
    }
}

impl From<String> for ChildStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "done" => ChildStatus::Done,
            "failed" => ChildStatus::Failed,
            "blocked" => ChildStatus::Blocked,
            "no-response" => ChildStatus::NoResponse,
            "unknown" => ChildStatus::Unknown,
            _ => ChildStatus::Other(s),
        }
    }
}

impl From<ChildStatus> for String {
    fn from(s: ChildStatus) -> String {
        match s {
            ChildStatus::Other(s) => s,
            other => other.as_str().to_string(),
        }
    }
}

impl std::fmt::Display for ChildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    RunStarted {
        run_id: String,
        harness: String,
        version: String,
        modules: Vec<String>,
        model: String,
        seed: u64,
        task: String,
        sandbox: String,
    },
    StageStarted {
        stage: String,
        attempt: u32,
    },
    StageFinished {
        stage: String,
        attempt: u32,
        passed: bool,
        reason: String,
        usage: Usage,
    },
    ChildStarted {
        child: String,
        stage: String,
        role: String,
        model: String,
    },
    ChildFinished {
        child: String,
        status: ChildStatus,
        reason: String,
        usage: Usage,
        tool_calls: u64,
    },
    ModelCall {
        child: String,
        finish_reason: String,
        tool_calls: u32,
        usage: Usage,
    },
    ToolCall {
        child: String,
        tool: String,
        ok: bool,
        exit_code: Option<i32>,
        duration_ms: u64,
        summary: String,
    },
    GatePassed {
        stage: String,
        child: String,
        gate: String,
    },
    GateFailed {
        stage: String,
        child: String,
        gate: String,
        reason: String,
    },
    BudgetHit {
        budget: String,
        limit: String,
        used: String,
        /// The estimated prompt tokens of a request refused because it could not fit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<u64>,
    },
    Retry {
        child: String,
        class: String,
        attempt: u32,
        delay_ms: u64,
        error: String,
    },
    Transition {
        from: String,
        to: String,
        reason: String,
    },
    CandidateSelected {
        stage: String,
        child: String,
        reason: String,
    },
    OrchestratorChoice {
        turn: u32,
        choice: String,
        accepted: bool,
        reason: String,
    },
    Reflection {
        stage: String,
        path: String,
        bytes: u64,
    },
    Error {
        class: String,
        message: String,
    },
    /// Older records only: the loop repaired a model's answer or nudged an empty one
    /// (`empty-answer`, `text-tool-call`, `control-characters`, `html-entities`,
    /// `html-entities-kept`). Now written as an `intervention` of layer `loop`; still read.
    Interface {
        child: String,
        kind: String,
        detail: String,
    },
    VerifierFinished {
        passed: bool,
        reward: Option<f64>,
        exit_code: Option<i32>,
        timed_out: bool,
        duration_ms: u64,
    },
    RunFinished {
        outcome: RunOutcome,
        usage: Usage,
    },
    /// The task's environment started (docs/ENVIRONMENTS.md).
    EnvironmentStarted {
        environment: String,
        tools: Vec<String>,
        convention: bool,
    },
    /// One action sent to the environment and what it reported.
    EnvironmentStep {
        child: String,
        step: u64,
        tool: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reward: Option<f64>,
        done: bool,
        invalid: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// On an invalid step: the action as sent (`tool {arguments}`) and the observation it
        /// was taken in, for whoever learns from the failure (`nlah synthesize`'s critic).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        observation: Option<String>,
    },
    /// An interface layer changed, blocked or annotated an action, or the child loop repaired
    /// an answer (layer `loop`) (docs/FORMAT.md).
    Intervention {
        child: String,
        layer: String,
        rule: String,
        /// The action as proposed (`tool {arguments}`), or empty for a note on the brief.
        before: String,
        /// The action as sent after a repair; none when blocked or only annotated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        /// What the model was told.
        message: String,
    },
    /// The episode ended (or the run ended around it).
    EnvironmentEnded {
        end: super::run::EpisodeEnd,
        steps: u64,
        invalid_actions: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reward: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fault: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_status_is_recorded_as_its_word() {
        for (status, word) in [
            (ChildStatus::Done, "done"),
            (ChildStatus::NoResponse, "no-response"),
            (ChildStatus::Unknown, "unknown"),
            (ChildStatus::Other("gave up".into()), "gave up"),
        ] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{word}\""));
            assert_eq!(serde_json::from_str::<ChildStatus>(&json).unwrap(), status);
        }
    }
}

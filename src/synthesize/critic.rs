//! The critic: what a node's rollouts did, read back from each rollout's record. It counts
//! legal and illegal actions and collects failed steps (up to [`MAX_FAILED`]): the observation,
//! the action, why it failed, and what the check said about it. A rejection that the player
//! answered by giving up (the episode ended open right after it) counts as an illegal step of the
//! harness: the check and the player together got no legal action to the game.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::record::{Event, EventKind, RunOutcome, RunRecord};

/// The failed steps a refiner is shown at most (AutoHarness's five).
pub const MAX_FAILED: usize = 5;

/// The failure class a code verifier's fault ends a run with.
const CODE_ERROR: &str = "code-verifier";

/// What the check said about an action the environment refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// It let the action through: the check is wrong too.
    Accepted,
    /// It rejected the action, but the re-prompts were spent and the model's action was sent.
    Rejected,
    /// Its policy chose the action (target `policy`).
    Chose,
    /// The script failed (crashed, hung, answered garbage).
    Crashed,
    /// It rejected the action and the player gave up: the episode ended open with this
    /// rejection its last word, and the game never judged the action. A check that rejects
    /// legal actions ends games this way, so the check is suspect too.
    Abandoned,
}

impl Check {
    pub fn words(self) -> &'static str {
        match self {
            Check::Accepted => "the check accepted it",
            Check::Rejected => {
                "the check rejected it, but the player insisted and the action was sent"
            }
            Check::Chose => "the policy chose it",
            Check::Crashed => "the script failed",
            Check::Abandoned => {
                "the check rejected it and the player gave up; the game never judged it, so the \
                 check may be rejecting legal actions"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedStep {
    /// The rollout (cell id) and the child and environment step, for `nlah inspect`.
    pub cell: String,
    pub task: String,
    pub child: String,
    pub step: u64,
    pub observation: String,
    pub action: String,
    pub why: String,
    pub check: Check,
    /// What the check's messages said, when it said anything.
    #[serde(default)]
    pub check_said: String,
}

/// What one rollout contributes to its node.
#[derive(Debug, Clone, Default)]
pub struct Rollout {
    pub legal: u64,
    pub illegal: u64,
    pub code_error: bool,
    /// Ended in an infrastructure error other than the script's: not counted.
    pub infra_error: bool,
    pub episode_over: bool,
    pub cost_usd: f64,
    pub failures: Vec<FailedStep>,
}

/// What the code verifier said about a child's action since its last one reached the game.
struct Said {
    child: String,
    rule: String,
    message: String,
    /// The action it was about (`tool {arguments}`).
    action: String,
}

/// Counts each child whose last word from the check was a rejection, in an episode that ended
/// open, as one illegal step ([`Check::Abandoned`]).
fn abandoned(r: &mut Rollout, said: &[Said], seen: &[(String, String)], cell: &str, task: &str) {
    let mut children: Vec<&str> = Vec::new();
    for s in said {
        if !children.contains(&s.child.as_str()) {
            children.push(&s.child);
        }
    }
    for child in children {
        let Some(last) = said.iter().rfind(|s| s.child == child) else {
            continue;
        };
        if last.rule != "illegal-action" {
            continue;
        }
        r.illegal += 1;
        r.failures.push(FailedStep {
            cell: cell.into(),
            task: task.into(),
            child: child.into(),
            step: 0,
            observation: seen
                .iter()
                .rfind(|s| s.0 == child)
                .map(|s| s.1.clone())
                .unwrap_or_default(),
            action: last.action.clone(),
            why: "the player stopped after this rejection; the episode ended open".into(),
            check: Check::Abandoned,
            check_said: last.message.clone(),
        });
    }
}

/// Reads the rollout in `dir` (a cell's workspace) of `task`.
pub fn read(dir: &Path, cell: &str, task: &str) -> Option<(RunRecord, Rollout)> {
    let text = std::fs::read_to_string(dir.join("run.json")).ok()?;
    let rec: RunRecord = serde_json::from_str(&text).ok()?;
    let events: Vec<Event> = std::fs::read_to_string(dir.join("history/events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut r = Rollout {
        cost_usd: rec.metrics.total.cost_usd,
        ..Rollout::default()
    };
    let code_error =
        rec.outcome == RunOutcome::Error && rec.error_class.as_deref() == Some(CODE_ERROR);
    r.infra_error = rec.outcome == RunOutcome::Error && !code_error;
    // Since the last action of each child: what the code verifier said.
    let mut said: Vec<Said> = Vec::new();
    // Each child's last observation, for a step that never reached the game.
    let mut seen: Vec<(String, String)> = Vec::new();
    for e in &events {
        match &e.kind {
            EventKind::Intervention {
                child,
                layer,
                rule,
                message,
                before,
                ..
            } if layer == CODE_ERROR => {
                said.push(Said {
                    child: child.clone(),
                    rule: rule.clone(),
                    message: message.clone(),
                    action: before.clone(),
                });
                if rule == "fault" {
                    r.code_error = true;
                    r.failures.push(FailedStep {
                        cell: cell.into(),
                        task: task.into(),
                        child: child.clone(),
                        step: 0,
                        observation: String::new(),
                        action: String::new(),
                        why: message.clone(),
                        check: Check::Crashed,
                        check_said: message.clone(),
                    });
                }
            }
            EventKind::EnvironmentStep {
                child,
                step,
                invalid,
                reason,
                action,
                observation,
                ..
            } => {
                if *invalid {
                    r.illegal += 1;
                    let last = said.iter().rfind(|s| s.child == *child);
                    let (check, check_said) = match last {
                        Some(s) if s.rule == "fallback" => (Check::Rejected, s.message.clone()),
                        Some(s) if s.rule == "policy" => (Check::Chose, s.message.clone()),
                        _ => (Check::Accepted, String::new()),
                    };
                    r.failures.push(FailedStep {
                        cell: cell.into(),
                        task: task.into(),
                        child: child.clone(),
                        step: *step,
                        observation: observation.clone().unwrap_or_default(),
                        action: action.clone().unwrap_or_default(),
                        why: reason.clone().unwrap_or_default(),
                        check,
                        check_said,
                    });
                } else {
                    r.legal += 1;
                }
                said.retain(|s| s.child != *child);
                seen.retain(|s| s.0 != *child);
                if let Some(o) = observation {
                    seen.push((child.clone(), o.clone()));
                }
            }
            EventKind::EnvironmentEnded { end, .. } => {
                r.episode_over = matches!(end, crate::record::EpisodeEnd::Done);
                if !r.episode_over {
                    abandoned(&mut r, &said, &seen, cell, task);
                }
                said.clear();
            }
            _ => {}
        }
    }
    // A fault that left no intervention (the script did not start) is still a code error.
    if code_error && !r.code_error {
        r.code_error = true;
        r.failures.push(FailedStep {
            cell: cell.into(),
            task: task.into(),
            child: String::new(),
            step: 0,
            observation: String::new(),
            action: String::new(),
            why: rec.reason.clone(),
            check: Check::Crashed,
            check_said: String::new(),
        });
    }
    if r.code_error {
        r.illegal += 1;
    }
    Some((rec, r))
}

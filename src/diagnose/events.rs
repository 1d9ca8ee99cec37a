//! Detectors over a run's events: what the environment refused, what the interface layers did,
//! how the episode ended. They place a failure where the transcript alone cannot: an action the
//! environment refused looks like any other tool result there.
//!
//! The one rule for a refused or rejected action (by the environment, the realization layer or a
//! code verifier): the reason is read against [`CONTRACT_WORDS`]. A reason about the action's
//! form or the protocol ("unknown peg", "expected …", "the game is over") is a **contract
//! mismatch**: the action did not speak the environment's language or came when it takes none. A
//! reason that names none of them is about the rules of the state ("disk 3 cannot go on the
//! smaller disk 1", "not among the legal actions"): a well-formed move the state forbids, the
//! model's inference, so **residual reasoning**, placed by a detector rather than by elimination.
//! A call the realization layer could not realize (no such tool, not JSON, a wrong type, a missing
//! argument) is **action realization** whatever its words.

use std::collections::HashMap;

use crate::record::{EpisodeEnd, Event, EventKind};

use super::steps::{Action, Step};
use super::{Category, Finding};

/// Words of a refusal's reason that make it about the action's form or the protocol, matched
/// lower-cased as substrings.
pub const CONTRACT_WORDS: &[&str] = &[
    "unknown",
    "unrecognized",
    "not recognized",
    "format",
    "malformed",
    "parse",
    "syntax",
    "expected",
    "must be one of",
    "not one of",
    "not a valid",
    "invalid argument",
    "missing argument",
    "is over",
    "has ended",
    "no more actions",
    "not your turn",
    "out of turn",
];

/// Where a refused action belongs, by its reason: (category, detector suffix). Text in double
/// quotes (the action itself, quoted back) is not read: a move named "unknown" is still a move.
pub fn refusal(reason: &str) -> (Category, &'static str) {
    let r: String = reason
        .split('"')
        .step_by(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if CONTRACT_WORDS.iter().any(|w| r.contains(w)) {
        (Category::ContractMismatch, "contract")
    } else {
        (Category::ResidualReasoning, "rule")
    }
}

/// One interface event, whichever family wrote it: the layers' `intervention` events, and the
/// `interface` events the child loop wrote before it wrote `intervention` events of layer
/// `loop` (older run records).
#[derive(Debug, Clone, PartialEq)]
pub struct Intervention<'a> {
    pub child: &'a str,
    /// `loop` (the child loop's own repairs), `action-realization`, `code-verifier`,
    /// `trajectory-regulation`, `contract-notes`, `procedural-skills`.
    pub layer: &'a str,
    pub rule: &'a str,
    pub before: &'a str,
    pub after: Option<&'a str>,
    pub message: &'a str,
}

/// The layer name of the child loop's own repairs (`agent::realize`).
pub const LOOP_LAYER: &str = "loop";

/// The event as an intervention, if it is one of either family.
pub fn intervention(kind: &EventKind) -> Option<Intervention<'_>> {
    match kind {
        EventKind::Intervention {
            child,
            layer,
            rule,
            before,
            after,
            message,
        } => Some(Intervention {
            child,
            layer,
            rule,
            before,
            after: after.as_deref(),
            message,
        }),
        EventKind::Interface {
            child,
            kind,
            detail,
        } => Some(Intervention {
            child,
            layer: LOOP_LAYER,
            rule: kind,
            before: "",
            after: None,
            message: detail,
        }),
        _ => None,
    }
}

/// How an intervention places the action it acted on: (category, repaired). `None` for what is
/// no failure: notes on the brief, skills, a flagged action sent anyway (the environment's answer
/// to it is what counts), the verifier's policy choosing.
pub fn placement(iv: &Intervention<'_>) -> Option<(Category, bool)> {
    match (iv.layer, iv.rule) {
        (LOOP_LAYER, "empty-answer") => Some((Category::ActionRealization, false)),
        (LOOP_LAYER, "text-tool-call" | "control-characters" | "html-entities") => {
            Some((Category::ActionRealization, true))
        }
        (LOOP_LAYER, _) => None,
        ("action-realization", rule) if rule.ends_with("-passed") => None,
        ("action-realization", _) if iv.after.is_some() => {
            Some((Category::ActionRealization, true))
        }
        // Blocked: well-formed but not a legal action now, or not realizable at all.
        ("action-realization", "illegal-action") => Some((refusal(iv.message).0, false)),
        ("action-realization", _) => Some((Category::ActionRealization, false)),
        ("code-verifier", "illegal-action") => Some((refusal(iv.message).0, false)),
        ("code-verifier", "fallback") => Some((refusal(iv.message).0, true)),
        ("code-verifier", "fault") => Some((Category::Infrastructure, false)),
        ("code-verifier", _) => None,
        ("trajectory-regulation", _) => Some((Category::TrajectoryDegeneration, false)),
        _ => None,
    }
}

/// What the events say about one child's actions, in order.
#[derive(Debug, Default)]
struct ChildTrack {
    /// (event seq, tool, ok) of each tool call.
    tool_calls: Vec<(u64, String, bool)>,
    /// (event seq, invalid) of each environment step.
    env_steps: Vec<(u64, bool)>,
}

/// An event finding with what decides whether it was put right.
#[derive(Debug, Clone)]
pub struct EventFinding {
    pub finding: Finding,
    /// The layer repaired the action, or the child acted successfully afterwards.
    pub recovered: bool,
}

/// The findings of a run's events. `steps`: each child's transcript steps, to point at the step
/// (an event's tool call is the child's n-th call; the loop's own repairs come just before the
/// call they repaired).
pub fn findings(events: &[Event], steps: &HashMap<String, Vec<Step>>) -> Vec<EventFinding> {
    let mut tracks: HashMap<&str, ChildTrack> = HashMap::new();
    for e in events {
        match &e.kind {
            EventKind::ToolCall {
                child, tool, ok, ..
            } => tracks
                .entry(child)
                .or_default()
                .tool_calls
                .push((e.seq, tool.clone(), *ok)),
            EventKind::EnvironmentStep { child, invalid, .. } => tracks
                .entry(child)
                .or_default()
                .env_steps
                .push((e.seq, *invalid)),
            _ => {}
        }
    }
    // The transcript step of a child's n-th tool call (1-based n).
    let step_of = |child: &str, n: usize| -> Option<usize> {
        if n == 0 {
            return None;
        }
        steps
            .get(child)
            .and_then(|s| {
                s.iter()
                    .filter(|s| matches!(s.action, Action::Call { .. }))
                    .nth(n - 1)
            })
            .map(|s| s.index)
            .or(Some(n))
    };
    // The turn without a call just before the child's n-th call (or its last such turn): where
    // an empty answer was.
    let text_before = |child: &str, n: usize| -> Option<usize> {
        let s = steps.get(child)?;
        let end = s
            .iter()
            .filter(|s| matches!(s.action, Action::Call { .. }))
            .nth(n.saturating_sub(1))
            .map_or(usize::MAX, |s| s.index);
        s.iter()
            .rev()
            .find(|s| s.index < end && matches!(s.action, Action::Text { .. }))
            .map(|s| s.index)
    };
    // Whether the child acted successfully after `seq`: a valid environment step when it acts in
    // an environment, else a call of the same tool that succeeded.
    let later_ok = |child: &str, seq: u64, tool: Option<&str>| -> bool {
        let Some(t) = tracks.get(child) else {
            return false;
        };
        if !t.env_steps.is_empty() {
            return t.env_steps.iter().any(|&(s, invalid)| s > seq && !invalid);
        }
        t.tool_calls
            .iter()
            .any(|(s, name, ok)| *s > seq && *ok && tool.is_none_or(|x| x == name))
    };
    let mut calls: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for e in events {
        let mut push = |category, detector: String, child: &str, step, note: String, rec| {
            out.push(EventFinding {
                finding: Finding {
                    category,
                    detector,
                    child: child.to_string(),
                    step,
                    note: clip(&note),
                },
                recovered: rec,
            });
        };
        if let EventKind::ToolCall { child, .. } = &e.kind {
            *calls.entry(child).or_default() += 1;
            continue;
        }
        if let Some(iv) = intervention(&e.kind) {
            let Some((category, repaired)) = placement(&iv) else {
                continue;
            };
            let n = calls.get(iv.child).copied().unwrap_or(0);
            // The loop's repairs precede the call they repaired; the layers' events follow it.
            let n = if iv.layer == LOOP_LAYER { n + 1 } else { n };
            let tool = iv.before.split_whitespace().next();
            let recovered = repaired
                || if iv.layer == LOOP_LAYER {
                    later_ok(iv.child, e.seq, None)
                } else {
                    later_ok(iv.child, e.seq, tool)
                };
            let note = if iv.message.is_empty() {
                iv.before.to_string()
            } else {
                iv.message.to_string()
            };
            let step = if iv.rule == "empty-answer" {
                text_before(iv.child, n).or_else(|| step_of(iv.child, n))
            } else {
                step_of(iv.child, n)
            };
            push(
                category,
                format!("{}:{}", iv.layer, iv.rule),
                iv.child,
                step,
                note,
                recovered,
            );
            continue;
        }
        match &e.kind {
            EventKind::EnvironmentStep {
                child,
                tool,
                invalid: true,
                reason,
                ..
            } => {
                let reason = reason
                    .as_deref()
                    .unwrap_or("the environment refused the action");
                let (category, what) = refusal(reason);
                let n = calls.get(child.as_str()).copied().unwrap_or(0);
                push(
                    category,
                    format!("env-{what}"),
                    child,
                    step_of(child, n),
                    format!("{tool}: {reason}"),
                    later_ok(child, e.seq, None),
                );
            }
            EventKind::EnvironmentEnded {
                end: EpisodeEnd::MaxSteps,
                steps,
                ..
            } => push(
                Category::TrajectoryDegeneration,
                "episode-max-steps".into(),
                "",
                None,
                format!("the episode's {steps} steps were spent"),
                false,
            ),
            EventKind::EnvironmentEnded {
                end: EpisodeEnd::Fault,
                fault,
                ..
            } => push(
                Category::Infrastructure,
                "env-fault".into(),
                "",
                None,
                fault.clone().unwrap_or_default(),
                false,
            ),
            _ => {}
        }
    }
    out
}

fn clip(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    let mut end = line.len().min(200);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_split_into_contract_and_rules() {
        for (reason, category) in [
            (
                "unknown peg: pegs are A, B and C, not 'D' and 'A'",
                Category::ContractMismatch,
            ),
            (
                "the game is over; a second invalid move in a row ends the game",
                Category::ContractMismatch,
            ),
            (
                "Invalid action format: expected [move X Y]",
                Category::ContractMismatch,
            ),
            (
                "disk 3 cannot go on the smaller disk 1; one more invalid move in a row ends the game",
                Category::ResidualReasoning,
            ),
            ("peg C is empty", Category::ResidualReasoning),
            (
                "\"move unknown A\" is not a legal action now",
                Category::ResidualReasoning,
            ),
            (
                "\"move C A\" is not among the legal actions: move A B, move A C",
                Category::ResidualReasoning,
            ),
        ] {
            assert_eq!(refusal(reason).0, category, "{reason}");
        }
    }

    #[test]
    fn findings_point_at_the_step_and_know_what_was_put_right() {
        let ev = |seq, kind| Event {
            seq,
            t: String::new(),
            kind,
        };
        let call = |seq, ok| {
            ev(
                seq,
                EventKind::ToolCall {
                    child: "c".into(),
                    tool: "write".into(),
                    ok,
                    exit_code: None,
                    duration_ms: 1,
                    summary: String::new(),
                },
            )
        };
        let events = vec![
            // An empty answer (nudged), then a blocked call, then the same tool succeeding.
            ev(
                1,
                EventKind::Intervention {
                    child: "c".into(),
                    layer: LOOP_LAYER.into(),
                    rule: "empty-answer".into(),
                    before: String::new(),
                    after: None,
                    message: "nudged".into(),
                },
            ),
            call(2, false),
            ev(
                3,
                EventKind::Intervention {
                    child: "c".into(),
                    layer: "action-realization".into(),
                    rule: "missing-argument".into(),
                    before: "write {}".into(),
                    after: None,
                    message: "`write` needs path".into(),
                },
            ),
            call(4, true),
        ];
        let text = Step {
            index: 1,
            action: Action::Text {
                text: String::new(),
            },
        };
        let c = |index, is_error| Step {
            index,
            action: Action::Call {
                tool: "write".into(),
                arguments: "{}".into(),
                is_error,
                exit_code: None,
                output: String::new(),
            },
        };
        let steps = HashMap::from([("c".to_string(), vec![text, c(2, true), c(3, false)])]);
        let got: Vec<(String, Option<usize>, bool)> = findings(&events, &steps)
            .into_iter()
            .map(|f| (f.finding.detector, f.finding.step, f.recovered))
            .collect();
        assert_eq!(
            got,
            [
                ("loop:empty-answer".to_string(), Some(1), true),
                (
                    "action-realization:missing-argument".to_string(),
                    Some(2),
                    true
                ),
            ]
        );
    }

    #[test]
    fn every_layer_rule_has_its_place() {
        use Category::*;
        let iv = |layer, rule, after: Option<&'static str>, message| Intervention {
            child: "c",
            layer,
            rule,
            before: "hanoi__act {}",
            after,
            message,
        };
        let legal = "\"move C A\" is not a legal action now; the legal actions are: move A B";
        for (i, want) in [
            (
                iv(LOOP_LAYER, "empty-answer", None, ""),
                Some((ActionRealization, false)),
            ),
            (
                iv(LOOP_LAYER, "html-entities", None, ""),
                Some((ActionRealization, true)),
            ),
            (iv(LOOP_LAYER, "html-entities-kept", None, ""), None),
            (
                iv(
                    "action-realization",
                    "argument-name,type-coercion",
                    Some("x"),
                    "",
                ),
                Some((ActionRealization, true)),
            ),
            (
                iv("action-realization", "illegal-action-passed", None, legal),
                None,
            ),
            (
                iv("action-realization", "illegal-action", None, legal),
                Some((ResidualReasoning, false)),
            ),
            (
                iv("action-realization", "wrong-type", None, "must be a string"),
                Some((ActionRealization, false)),
            ),
            (
                iv(
                    "code-verifier",
                    "illegal-action",
                    None,
                    "[code-verifier] Illegal action: peg C is empty.",
                ),
                Some((ResidualReasoning, false)),
            ),
            (
                iv(
                    "code-verifier",
                    "illegal-action",
                    None,
                    "[code-verifier] Illegal action: unknown action format.",
                ),
                Some((ContractMismatch, false)),
            ),
            (
                iv(
                    "code-verifier",
                    "fallback",
                    Some("x"),
                    "2 re-prompts spent (peg C is empty)",
                ),
                Some((ResidualReasoning, true)),
            ),
            (
                iv("code-verifier", "fault", None, "crashed"),
                Some((Infrastructure, false)),
            ),
            (iv("code-verifier", "policy", Some("x"), ""), None),
            (
                iv("trajectory-regulation", "identical-calls", None, ""),
                Some((TrajectoryDegeneration, false)),
            ),
            (
                iv("trajectory-regulation", "blocked-repeat", None, ""),
                Some((TrajectoryDegeneration, false)),
            ),
            (iv("contract-notes", "note", None, ""), None),
            (iv("procedural-skills", "retrieved", None, ""), None),
        ] {
            assert_eq!(placement(&i), want, "{i:?}");
        }
    }

    #[test]
    fn both_families_of_interface_events_read_alike() {
        let old = EventKind::Interface {
            child: "c".into(),
            kind: "empty-answer".into(),
            detail: "nudged".into(),
        };
        let new = EventKind::Intervention {
            child: "c".into(),
            layer: LOOP_LAYER.into(),
            rule: "empty-answer".into(),
            before: String::new(),
            after: None,
            message: "nudged".into(),
        };
        assert_eq!(intervention(&old), intervention(&new));
        assert_eq!(
            placement(&intervention(&old).unwrap()),
            Some((Category::ActionRealization, false))
        );
    }
}

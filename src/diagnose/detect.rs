//! Deterministic detectors: each places a failed step (or a child's end) in the taxonomy of
//! interface failures, and says which detector did.
//!
//! The messages matched here are nlah's own answers to a bad call (`agent::tools`), so a test
//! in `tests/it/diagnose.rs` makes real bad calls and checks that each is placed: a reworded
//! message fails it.

use super::steps::{Action, Step};
use super::{Category, Finding};

/// What the runtime answers to a call it could not run as asked: the action did not realize.
const REALIZATION: &[(&str, &str)] = &[
    ("the arguments are not valid JSON", "invalid-json"),
    ("the arguments must be a JSON object", "not-an-object"),
    ("unknown argument", "unknown-argument"),
    ("missing required argument", "missing-argument"),
    (" must be a string, got", "wrong-type"),
    (" must be an integer", "wrong-type"),
    ("unknown tool ", "unknown-tool"),
    ("\"command\" is empty", "empty-argument"),
    ("\"path\" is empty", "empty-argument"),
];

/// What the runtime answers to a well-formed call that breaks the workspace's rules or a tool's
/// protocol: the action was valid, the contract was not kept.
const CONTRACT: &[(&str, &str)] = &[
    ("is hidden from children", "hidden-path"),
    ("is outside what this role sees", "unseen-path"),
    ("is outside the workspace", "outside-workspace"),
    ("escapes the workspace", "outside-workspace"),
    ("is a symlink to", "outside-workspace"),
    ("times in `", "ambiguous-edit"),
    ("\"old\" was not found in", "edit-no-match"),
    ("does not exist", "missing-path"),
    ("is a folder;", "not-a-file"),
    ("is not valid utf-8", "not-text"),
];

/// Consecutive failed steps that make a stall.
pub const STALL: usize = 4;

/// The findings of one child's steps, in order.
pub fn child(child: &str, steps: &[Step]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut failed_run = 0usize;
    for (i, s) in steps.iter().enumerate() {
        let finding = |category, detector: &str, note: String| Finding {
            category,
            detector: detector.to_string(),
            child: child.to_string(),
            step: Some(s.index),
            note,
        };
        if let Action::Call {
            tool,
            is_error: true,
            exit_code,
            output,
            ..
        } = &s.action
        {
            let lower = output.to_lowercase();
            if let Some((_, d)) = REALIZATION.iter().find(|(m, _)| output.contains(m)) {
                out.push(finding(Category::ActionRealization, d, first_line(output)));
            } else if let Some((_, d)) = CONTRACT.iter().find(|(m, _)| lower.contains(m)) {
                out.push(finding(Category::ContractMismatch, d, first_line(output)));
            } else if *exit_code == Some(127) || lower.contains("command not found") {
                out.push(finding(
                    Category::ContractMismatch,
                    "tool-not-installed",
                    format!("{tool}: {}", first_line(output)),
                ));
            }
        }
        if let Action::Text { text } = &s.action
            && i + 1 < steps.len()
        {
            // A turn without a call that the child did not end with.
            let detector = if text.trim().is_empty() {
                "empty-answer"
            } else {
                "text-instead-of-call"
            };
            out.push(finding(
                Category::ActionRealization,
                detector,
                first_line(text),
            ));
        }
        // The same call as the one before, answered the same way: going round in a circle.
        if i > 0
            && s.key().is_some()
            && s.key() == steps[i - 1].key()
            && s.failed() == steps[i - 1].failed()
        {
            out.push(finding(
                Category::TrajectoryDegeneration,
                "repeated-call",
                match s.key() {
                    Some((tool, args)) => format!("{tool} {}", first_line(args)),
                    None => String::new(),
                },
            ));
        }
        failed_run = if s.failed() { failed_run + 1 } else { 0 };
        if failed_run == STALL {
            out.push(finding(
                Category::TrajectoryDegeneration,
                "stall",
                format!("{STALL} failed steps in a row"),
            ));
        }
    }
    out
}

/// Whether a finding at `step` was put right later: a later call of the same tool answered
/// without error that acts on the same thing (shares a path-like word of the failed call's
/// arguments, `artifacts/result.txt`), or, when the failed call names nothing, the very next call
/// of that tool. A realization or contract slip the child recovered from did not end the run.
pub fn recovered(f: &Finding, steps: &[Step]) -> bool {
    let Some(at) = f.step else { return false };
    let Some((tool, args)) = steps.get(at - 1).and_then(|s| s.key()) else {
        // A turn without a call: recovered if calls follow.
        return steps.iter().skip(at).any(|s| s.key().is_some());
    };
    let targets: Vec<&str> = args
        .split(|c: char| c.is_whitespace() || "\"'{}[],:=".contains(c))
        .filter(|w| w.contains('/') || (w.contains('.') && w.len() > 2))
        .collect();
    let mut later = steps
        .iter()
        .skip(at)
        .filter(|s| s.key().is_some_and(|(t, _)| t == tool));
    if targets.is_empty() {
        return later.next().is_some_and(|s| !s.failed());
    }
    later.any(|s| {
        !s.failed()
            && s.key()
                .is_some_and(|(_, a)| targets.iter().any(|t| a.contains(t)))
    })
}

fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut end = line.len().min(160);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

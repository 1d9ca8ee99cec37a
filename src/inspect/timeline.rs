//! A run as a readable timeline: stages with their attempts, children, tool calls, gates,
//! budgets, transitions, the verifier and the outcome, then usage per child, stage and run.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{RunDir, describe, short};
use crate::record::{ChildStatus, EventKind, RunOutcome, Usage};

/// How an entry reads at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    Start,
    Pass,
    Fail,
    Warn,
    Info,
}

impl Mark {
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Start => "▶",
            Mark::Pass => "✓",
            Mark::Fail => "✗",
            Mark::Warn => "!",
            Mark::Info => "·",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub seq: u64,
    /// Milliseconds since the run started.
    pub t_ms: i64,
    /// 0 for the run and its stages, 1 for children, gates and budgets, 2 for tool calls.
    pub depth: u8,
    pub mark: Mark,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub run_id: String,
    pub harness: String,
    pub version: String,
    pub modules: Vec<String>,
    pub task: String,
    pub model: String,
    pub seed: u64,
    pub sandbox: String,
    pub started: String,
    pub outcome: String,
    pub reason: String,
    pub wall_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChildUsage {
    pub child: String,
    pub stage: String,
    pub role: String,
    pub model: String,
    pub status: String,
    pub usage: Usage,
    pub tool_calls: u64,
    /// Calls per tool: `(ok, failed)`.
    pub tools: BTreeMap<String, (u64, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageUsage {
    pub stage: String,
    pub attempts: u32,
    pub passed: bool,
    pub usage: Usage,
    pub tool_calls: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UsageSummary {
    pub stages: Vec<StageUsage>,
    pub children: Vec<ChildUsage>,
    /// The runtime's own model calls (orchestrator, candidate ranking).
    pub parent: Usage,
    pub total: Usage,
    pub tool_calls: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub header: Header,
    pub entries: Vec<Entry>,
    pub usage: UsageSummary,
}

/// What to show.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Every tool call on its own line (otherwise only failed ones; the rest are counted on
    /// the child's line).
    pub calls: bool,
}

pub fn build(run: &RunDir, opts: Options) -> Timeline {
    let mut entries = Vec::new();
    let mut tools: BTreeMap<String, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    for e in &run.events {
        let (depth, mark) = match &e.kind {
            EventKind::RunStarted { .. } | EventKind::StageStarted { .. } => (0, Mark::Start),
            EventKind::ChildStarted { .. } => (1, Mark::Start),
            EventKind::ModelCall { .. } => continue,
            EventKind::ToolCall {
                child, tool, ok, ..
            } => {
                let counts = tools
                    .entry(child.clone())
                    .or_default()
                    .entry(tool.clone())
                    .or_default();
                if *ok {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
                if !opts.calls && *ok {
                    continue;
                }
                (2, if *ok { Mark::Info } else { Mark::Fail })
            }
            EventKind::ChildFinished { status, .. } => (
                1,
                if *status == ChildStatus::Done {
                    Mark::Pass
                } else {
                    Mark::Fail
                },
            ),
            EventKind::GatePassed { .. } | EventKind::CandidateSelected { .. } => (1, Mark::Pass),
            EventKind::GateFailed { .. } => (1, Mark::Fail),
            EventKind::BudgetHit { .. } | EventKind::Retry { .. } | EventKind::Interface { .. } => {
                (1, Mark::Warn)
            }
            EventKind::Reflection { .. } => (1, Mark::Info),
            EventKind::OrchestratorChoice { accepted, .. } => {
                (1, if *accepted { Mark::Info } else { Mark::Warn })
            }
            EventKind::StageFinished { passed, .. }
            | EventKind::VerifierFinished { passed, .. } => {
                (0, if *passed { Mark::Pass } else { Mark::Fail })
            }
            EventKind::Transition { .. } => (0, Mark::Info),
            EventKind::EnvironmentStarted { .. } | EventKind::EnvironmentEnded { .. } => {
                (0, Mark::Info)
            }
            // The loop's repairs show as its `interface` events did before them.
            EventKind::Intervention { layer, .. } if layer == "loop" => (1, Mark::Warn),
            EventKind::Intervention { .. } => (2, Mark::Warn),
            EventKind::EnvironmentStep { invalid, .. } => {
                if !opts.calls && !*invalid {
                    continue;
                }
                (2, if *invalid { Mark::Warn } else { Mark::Info })
            }
            EventKind::Error { .. } => (0, Mark::Fail),
            EventKind::RunFinished { outcome, .. } => (
                0,
                if *outcome == RunOutcome::Passed {
                    Mark::Pass
                } else {
                    Mark::Fail
                },
            ),
        };
        let mut text = describe(&e.kind);
        if let EventKind::ChildFinished { child, .. } = &e.kind
            && let Some(t) = tools.get(child)
        {
            text.push_str(&format!(": {}", tool_counts(t)));
        }
        entries.push(Entry {
            seq: e.seq,
            t_ms: run.offset_ms(e),
            depth,
            mark,
            text,
        });
    }
    let children = run
        .children()
        .into_iter()
        .map(|c| ChildUsage {
            tools: tools.get(&c.id).cloned().unwrap_or_default(),
            child: c.id,
            stage: c.stage,
            role: c.role,
            model: c.model,
            status: c.status.unwrap_or_else(|| "unfinished".into()),
            usage: c.usage,
            tool_calls: c.tool_calls,
        })
        .collect();
    Timeline {
        header: header(run),
        entries,
        usage: usage(run, children),
    }
}

/// `write ×2, shell ×1 (1 failed)`.
pub fn tool_counts(t: &BTreeMap<String, (u64, u64)>) -> String {
    t.iter()
        .map(|(name, (ok, failed))| {
            let mut s = format!("{name} ×{}", ok + failed);
            if *failed > 0 {
                s.push_str(&format!(" ({failed} failed)"));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn header(run: &RunDir) -> Header {
    let started = run.events.iter().find_map(|e| match &e.kind {
        EventKind::RunStarted {
            harness,
            version,
            modules,
            model,
            seed,
            task,
            sandbox,
            ..
        } => Some((
            harness.clone(),
            version.clone(),
            modules.clone(),
            model.clone(),
            *seed,
            task.clone(),
            sandbox.clone(),
            e.t.clone(),
        )),
        _ => None,
    });
    let finished = run.events.iter().rev().find_map(|e| match &e.kind {
        EventKind::RunFinished { outcome, .. } => Some(outcome.as_str().to_string()),
        _ => None,
    });
    match (&run.record, started) {
        (Some(r), _) => Header {
            run_id: r.run_id.clone(),
            harness: r.harness.name.clone(),
            version: r.harness.version.clone(),
            modules: r.harness.modules.clone(),
            task: r.task.id.clone(),
            model: r.model.clone(),
            seed: r.seed,
            sandbox: r.sandbox.clone(),
            started: r.started.clone(),
            outcome: r.outcome.as_str().to_string(),
            reason: r.reason.clone(),
            wall_ms: Some(r.metrics.wall_ms),
        },
        (None, Some((harness, version, modules, model, seed, task, sandbox, t))) => Header {
            run_id: run.run_id(),
            harness,
            version,
            modules,
            task,
            model,
            seed,
            sandbox,
            started: t,
            outcome: finished.unwrap_or_else(|| "running".into()),
            reason: "run.json not written (still running, or killed)".into(),
            wall_ms: None,
        },
        (None, None) => Header {
            run_id: run.run_id(),
            harness: String::new(),
            version: String::new(),
            modules: Vec::new(),
            task: String::new(),
            model: String::new(),
            seed: 0,
            sandbox: String::new(),
            started: String::new(),
            outcome: finished.unwrap_or_else(|| "running".into()),
            reason: String::new(),
            wall_ms: None,
        },
    }
}

fn usage(run: &RunDir, children: Vec<ChildUsage>) -> UsageSummary {
    if let Some(r) = &run.record {
        return UsageSummary {
            stages: r
                .metrics
                .stages
                .iter()
                .map(|s| StageUsage {
                    stage: s.stage.clone(),
                    attempts: s.attempts,
                    passed: s.passed,
                    usage: s.usage,
                    tool_calls: s.tool_calls,
                })
                .collect(),
            children,
            parent: r.metrics.parent,
            total: r.metrics.total,
            tool_calls: r.metrics.tool_calls,
        };
    }
    // Without run.json, the history alone: stages from their finish events.
    let mut stages: Vec<StageUsage> = Vec::new();
    for e in &run.events {
        if let EventKind::StageFinished {
            stage,
            passed,
            usage,
            ..
        } = &e.kind
        {
            match stages.iter_mut().find(|s| &s.stage == stage) {
                Some(s) => {
                    s.attempts += 1;
                    s.passed = *passed;
                    s.usage.add(usage);
                }
                None => stages.push(StageUsage {
                    stage: stage.clone(),
                    attempts: 1,
                    passed: *passed,
                    usage: *usage,
                    tool_calls: 0,
                }),
            }
        }
    }
    let mut total = Usage::default();
    let mut tool_calls = 0;
    for c in &children {
        total.add(&c.usage);
        tool_calls += c.tool_calls;
    }
    UsageSummary {
        stages,
        children,
        parent: Usage::default(),
        total,
        tool_calls,
    }
}

/// The header as a line: `run ID · harness NAME VERSION (modules) · task T · MODEL · seed S`.
pub fn header_line(h: &Header) -> String {
    format!(
        "run {} · harness {} {} ({}) · task {} · {} · seed {}",
        h.run_id,
        h.harness,
        short(&h.version),
        super::modules_text(&h.modules),
        h.task,
        h.model,
        h.seed
    )
}

/// `+12.345s`.
pub fn offset(ms: i64) -> String {
    format!("+{}.{:03}s", ms / 1000, (ms % 1000).abs())
}

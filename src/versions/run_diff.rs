//! Two runs side by side: where their histories part, then outcome, usage and artifacts.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use walkdir::WalkDir;

use crate::harness::compose::sha256_hex;
use crate::inspect::{self, InspectError, RunDir};
use crate::record::Usage;
use crate::record::{Event, EventKind};

/// One run, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct RunSide {
    pub path: String,
    pub run_id: String,
    pub harness: String,
    pub version: String,
    pub modules: Vec<String>,
    pub task: String,
    pub model: String,
    pub seed: u64,
    pub outcome: String,
    pub reason: String,
    pub usage: Usage,
    pub tool_calls: u64,
    pub children: u64,
    pub wall_ms: Option<u64>,
    pub events: usize,
}

/// An event as the diff shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub seq: u64,
    pub event: String,
    pub text: String,
    /// What was compared: the event without times, ids and usage numbers.
    pub key: Value,
}

/// The first place the histories part.
#[derive(Debug, Clone, Serialize)]
pub struct Divergence {
    /// Index (from 1) of the first event that differs.
    pub index: usize,
    /// `None` when that side's history ended first.
    pub a: Option<EventView>,
    pub b: Option<EventView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactStatus {
    Same,
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactChange {
    /// Relative to the workspace (`artifacts/result.txt`).
    pub path: String,
    pub status: ArtifactStatus,
    pub a: Option<FileInfo>,
    pub b: Option<FileInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunDiff {
    pub a: RunSide,
    pub b: RunSide,
    /// Events both histories share before they part.
    pub common: usize,
    /// `None` when the histories agree throughout.
    pub divergence: Option<Divergence>,
    pub artifacts: Vec<ArtifactChange>,
}

/// Compares two run workspaces.
pub fn diff(a: &Path, b: &Path) -> Result<RunDiff, InspectError> {
    let ra = RunDir::open(a)?;
    let rb = RunDir::open(b)?;
    let (ka, kb): (Vec<Value>, Vec<Value>) = (
        ra.events.iter().map(|e| key(&e.kind)).collect(),
        rb.events.iter().map(|e| key(&e.kind)).collect(),
    );
    let common = ka.iter().zip(&kb).take_while(|(x, y)| x == y).count();
    let divergence = (common < ka.len() || common < kb.len()).then(|| Divergence {
        index: common + 1,
        a: ra.events.get(common).map(view),
        b: rb.events.get(common).map(view),
    });
    Ok(RunDiff {
        a: side(&ra, a),
        b: side(&rb, b),
        common,
        divergence,
        artifacts: artifacts(a, b),
    })
}

/// The parts of an event that say what happened, not when, under which id, or at what cost.
pub fn key(kind: &EventKind) -> Value {
    let mut v = serde_json::to_value(kind).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        for k in ["usage", "duration_ms", "delay_ms", "latency_ms"] {
            m.remove(k);
        }
        // Which harness, model and task each run used is shown side by side; the history is
        // compared for what the runs did.
        if matches!(kind, EventKind::RunStarted { .. }) {
            m.retain(|k, _| k == "event");
        }
    }
    v
}

fn view(e: &Event) -> EventView {
    EventView {
        seq: e.seq,
        event: inspect::event_name(&e.kind),
        text: inspect::describe(&e.kind),
        key: key(&e.kind),
    }
}

fn side(r: &RunDir, path: &Path) -> RunSide {
    let t = inspect::timeline::build(r, inspect::timeline::Options::default());
    let h = t.header;
    RunSide {
        path: path.display().to_string(),
        run_id: h.run_id,
        harness: h.harness,
        version: h.version,
        modules: h.modules,
        task: h.task,
        model: h.model,
        seed: h.seed,
        outcome: h.outcome,
        reason: h.reason,
        usage: t.usage.total,
        tool_calls: t.usage.tool_calls,
        children: t.usage.children.len() as u64,
        wall_ms: h.wall_ms,
        events: r.events.len(),
    }
}

fn artifacts(a: &Path, b: &Path) -> Vec<ArtifactChange> {
    let fa = files(&a.join("artifacts"));
    let fb = files(&b.join("artifacts"));
    let names: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    names
        .into_iter()
        .map(|n| {
            let (x, y) = (fa.get(n).cloned(), fb.get(n).cloned());
            let status = match (&x, &y) {
                (Some(_), None) => ArtifactStatus::Removed,
                (None, Some(_)) => ArtifactStatus::Added,
                (Some(p), Some(q)) if p == q => ArtifactStatus::Same,
                _ => ArtifactStatus::Changed,
            };
            ArtifactChange {
                path: format!("artifacts/{n}"),
                status,
                a: x,
                b: y,
            }
        })
        .collect()
}

fn files(dir: &Path) -> std::collections::BTreeMap<String, FileInfo> {
    let mut out = std::collections::BTreeMap::new();
    for e in WalkDir::new(dir).sort_by_file_name().into_iter().flatten() {
        if !e.file_type().is_file() {
            continue;
        }
        let Ok(rel) = e.path().strip_prefix(dir) else {
            continue;
        };
        if let Ok(bytes) = std::fs::read(e.path()) {
            out.insert(
                super::files::slash(rel),
                FileInfo {
                    size: bytes.len() as u64,
                    sha256: sha256_hex(&bytes),
                },
            );
        }
    }
    out
}

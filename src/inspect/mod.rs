//! Reading a finished (or interrupted) run back: its record, its history and its children's
//! transcripts, as a timeline for people (`timeline`) or as ATIF trajectories (`atif`).

pub mod atif;
pub mod timeline;

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};

use crate::record::RunRecord;
use crate::record::Usage;
use crate::record::{Event, EventKind};
use crate::workspace::history;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{0}: not a run workspace (no run.json and no history/events.jsonl)")]
    NotARun(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InspectError + '_ {
    move |source| InspectError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A run workspace as read from disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
    /// `run.json`; absent while a run is still going or when it was killed early.
    pub record: Option<RunRecord>,
    pub events: Vec<Event>,
}

impl RunDir {
    pub fn open(root: &Path) -> Result<RunDir, InspectError> {
        let record_path = root.join("run.json");
        let events_path = root.join("history/events.jsonl");
        if !record_path.is_file() && !events_path.is_file() {
            return Err(InspectError::NotARun(root.to_path_buf()));
        }
        let record = if record_path.is_file() {
            let text = std::fs::read_to_string(&record_path).map_err(io(&record_path))?;
            Some(serde_json::from_str(&text).map_err(|e| InspectError::Bad {
                path: record_path.clone(),
                message: e.to_string(),
            })?)
        } else {
            None
        };
        let events = if events_path.is_file() {
            history::read(&events_path).map_err(io(&events_path))?
        } else {
            Vec::new()
        };
        Ok(RunDir {
            root: root.to_path_buf(),
            record,
            events,
        })
    }

    /// The run id: from run.json, else from the first event.
    pub fn run_id(&self) -> String {
        if let Some(r) = &self.record {
            return r.run_id.clone();
        }
        self.events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::RunStarted { run_id, .. } => Some(run_id.clone()),
                _ => None,
            })
            .unwrap_or_else(|| {
                self.root
                    .file_name()
                    .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned())
            })
    }

    /// When the run started: the first event's time.
    pub fn start(&self) -> Option<DateTime<FixedOffset>> {
        self.events.first().and_then(|e| time(&e.t))
    }

    /// Milliseconds from the run's start to an event.
    pub fn offset_ms(&self, e: &Event) -> i64 {
        match (self.start(), time(&e.t)) {
            (Some(s), Some(t)) => (t - s).num_milliseconds(),
            _ => 0,
        }
    }

    /// A file of a child's folder. Children of parallel candidates ran in worktrees that are
    /// gone after selection; their files are still on the candidate's branch.
    pub fn child_file(&self, child: &str, name: &str) -> Option<String> {
        let on_disk = [
            self.root.join("children").join(child).join(name),
            self.root
                .join(".candidates")
                .join(child)
                .join("children")
                .join(child)
                .join(name),
        ];
        if let Some(text) = on_disk.iter().find_map(|p| std::fs::read_to_string(p).ok()) {
            return Some(text);
        }
        let repo = git2::Repository::open(&self.root).ok()?;
        let tree = repo
            .revparse_single(&format!("refs/heads/candidates/{child}"))
            .ok()?
            .peel_to_tree()
            .ok()?;
        let entry = tree
            .get_path(Path::new(&format!("children/{child}/{name}")))
            .ok()?;
        let blob = repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }

    /// The children the run started, in order, with their stage, role and model.
    pub fn children(&self) -> Vec<ChildInfo> {
        let mut out: Vec<ChildInfo> = Vec::new();
        for e in &self.events {
            match &e.kind {
                EventKind::ChildStarted {
                    child,
                    stage,
                    role,
                    model,
                } => out.push(ChildInfo::started(child, stage, role, model, e.seq)),
                EventKind::ChildFinished {
                    child,
                    status,
                    reason,
                    usage,
                    tool_calls,
                } => {
                    if let Some(c) = out
                        .iter_mut()
                        .rev()
                        .find(|c| &c.id == child && c.finished_seq.is_none())
                    {
                        c.finished_seq = Some(e.seq);
                        c.status = Some(status.to_string());
                        c.reason = Some(reason.clone());
                        c.usage = *usage;
                        c.tool_calls = *tool_calls;
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// One child as the history tells it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChildInfo {
    pub id: String,
    pub stage: String,
    pub role: String,
    pub model: String,
    pub started_seq: u64,
    pub finished_seq: Option<u64>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub usage: Usage,
    pub tool_calls: u64,
}

impl ChildInfo {
    /// A child as its start event tells it, before it finished.
    pub fn started(id: &str, stage: &str, role: &str, model: &str, seq: u64) -> ChildInfo {
        ChildInfo {
            id: id.to_string(),
            stage: stage.to_string(),
            role: role.to_string(),
            model: model.to_string(),
            started_seq: seq,
            finished_seq: None,
            status: None,
            reason: None,
            usage: Usage::default(),
            tool_calls: 0,
        }
    }
}

pub fn time(t: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(t).ok()
}

/// The event's name as written in `events.jsonl` (`stage-started`).
pub fn event_name(kind: &EventKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| "event".into())
}

/// One line that says what happened.
pub fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::RunStarted {
            harness,
            version,
            modules,
            model,
            seed,
            task,
            ..
        } => format!(
            "run started: {harness} {} ({}), task {task}, {model}, seed {seed}",
            short(version),
            modules_text(modules)
        ),
        EventKind::StageStarted { stage, attempt } => format!("stage {stage} · attempt {attempt}"),
        EventKind::StageFinished {
            stage,
            attempt,
            passed,
            reason,
            usage,
        } => format!(
            "stage {stage} attempt {attempt} {}: {reason} ({})",
            if *passed { "passed" } else { "failed" },
            tokens_text(usage)
        ),
        EventKind::ChildStarted {
            child, role, model, ..
        } => format!("child {child} · {role} · {model}"),
        EventKind::ChildFinished {
            child,
            status,
            reason,
            usage,
            tool_calls,
        } => format!(
            "child {child} finished: {status} ({reason}); {} model calls, {}, {tool_calls} tool calls",
            usage.calls,
            tokens_text(usage)
        ),
        EventKind::ModelCall {
            child,
            finish_reason,
            tool_calls,
            usage,
        } => format!(
            "model call of {child}: {finish_reason}, {tool_calls} tool calls ({})",
            tokens_text(usage)
        ),
        EventKind::ToolCall {
            tool,
            ok,
            exit_code,
            summary,
            ..
        } => {
            let status = match (ok, exit_code) {
                (_, Some(c)) => format!("exit {c}"),
                (true, None) => "ok".into(),
                (false, None) => "failed".into(),
            };
            format!("{tool} {} ({status})", clip(summary, 80))
        }
        EventKind::Interface {
            child,
            kind,
            detail,
        } => format!("{kind} of {child}: {}", clip(detail, 160)),
        EventKind::GatePassed { gate, .. } => format!("gate {gate}"),
        EventKind::GateFailed { gate, reason, .. } => {
            format!("gate {gate}: {}", clip(reason, 160))
        }
        EventKind::BudgetHit {
            budget,
            limit,
            used,
            request: None,
        } => format!("budget {budget} spent: used {used} of {limit}"),
        EventKind::BudgetHit {
            budget,
            limit,
            used,
            request: Some(n),
        } => format!(
            "budget {budget} cannot fit a request of about {n} tokens: used {used} of {limit}"
        ),
        EventKind::Retry {
            class,
            attempt,
            delay_ms,
            error,
            ..
        } => format!(
            "retry after {class} (attempt {attempt}, waited {delay_ms} ms): {}",
            clip(error, 120)
        ),
        EventKind::Transition { from, to, reason } => format!("{from} → {to}: {reason}"),
        EventKind::CandidateSelected {
            stage,
            child,
            reason,
        } => format!("candidate {child} chosen for {stage}: {reason}"),
        EventKind::OrchestratorChoice {
            turn,
            choice,
            accepted,
            reason,
        } => format!(
            "orchestrator turn {turn}: {choice} ({}): {reason}",
            if *accepted { "accepted" } else { "refused" }
        ),
        EventKind::Reflection { stage, path, bytes } => {
            format!("reflection for {stage}: {path} ({bytes} B)")
        }
        EventKind::Error { class, message } => format!("error ({class}): {}", clip(message, 160)),
        EventKind::Intervention {
            child,
            layer,
            rule,
            message,
            ..
        } if layer == "loop" => format!("{rule} of {child}: {}", clip(message, 160)),
        EventKind::Intervention {
            layer,
            rule,
            before,
            after,
            message,
            ..
        } => format!(
            "{layer} {rule}: {}{}",
            clip(before, 80),
            match after {
                Some(a) => format!(" → {}", clip(a, 80)),
                None => format!(" ({})", clip(message, 120)),
            }
        ),
        EventKind::EnvironmentStarted {
            environment,
            tools,
            convention,
        } => format!(
            "environment {environment} started: {} tools{}",
            tools.len(),
            if *convention {
                ", reports state and reward"
            } else {
                ""
            }
        ),
        EventKind::EnvironmentStep {
            step,
            tool,
            reward,
            done,
            invalid,
            reason,
            ..
        } => format!(
            "step {step} {tool}{}{}{}",
            reward.map(|r| format!(", reward {r}")).unwrap_or_default(),
            if *done { ", done" } else { "" },
            if *invalid {
                format!(", invalid: {}", clip(reason.as_deref().unwrap_or(""), 120))
            } else {
                String::new()
            }
        ),
        EventKind::EnvironmentEnded {
            end,
            steps,
            invalid_actions,
            reward,
            fault,
        } => format!(
            "episode ended ({}) after {steps} steps, {invalid_actions} invalid, reward {}{}",
            serde_json::to_value(end)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            reward.map_or("none".to_string(), |r| r.to_string()),
            fault
                .as_deref()
                .map(|f| format!(": {}", clip(f, 160)))
                .unwrap_or_default()
        ),
        EventKind::VerifierFinished {
            passed,
            reward,
            exit_code,
            timed_out,
            ..
        } => {
            let mut s = format!("verifier {}", if *passed { "passed" } else { "failed" });
            if let Some(r) = reward {
                s.push_str(&format!(", reward {r}"));
            }
            if let Some(c) = exit_code {
                s.push_str(&format!(", exit {c}"));
            }
            if *timed_out {
                s.push_str(", timed out");
            }
            s
        }
        EventKind::RunFinished { outcome, usage } => {
            format!("run finished: {outcome} ({})", tokens_text(usage))
        }
    }
}

pub fn short(version: &str) -> &str {
    &version[..12.min(version.len())]
}

pub fn modules_text(m: &[String]) -> String {
    if m.is_empty() {
        "no modules".into()
    } else {
        m.join(", ")
    }
}

/// `1,234 in / 56 out tokens`.
pub fn tokens_text(u: &Usage) -> String {
    format!(
        "{} in / {} out tokens",
        thousands(u.input_tokens),
        thousands(u.output_tokens)
    )
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Cuts text to `max` characters on one line.
pub fn clip(s: &str, max: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= max {
        return one;
    }
    let cut: String = one.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Pads rows into aligned columns (two spaces apart); the last column is not padded.
pub fn align(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    let pad = width[c] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn align_pads_all_but_the_last_column() {
        let rows = vec![
            vec!["a".to_string(), "bb".to_string(), "c".to_string()],
            vec!["aaa".to_string(), "b".to_string(), "cc".to_string()],
        ];
        assert_eq!(align(&rows), ["a    bb  c", "aaa  b   cc"]);
    }
}

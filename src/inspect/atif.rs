//! A run as ATIF v1.6 trajectories (Harbor's agent trajectory interchange format).
//!
//! The parent trajectory is the runtime's: the task, stage starts, delegations, gates,
//! transitions, the verifier and the outcome. Each child's conversation (its
//! `transcript.jsonl`) becomes its own trajectory file next to the parent's, referenced from the
//! delegation step through `subagent_trajectory_ref`. Usage is counted once: children's tokens
//! sit in their own trajectories; the parent's `final_metrics` are the run's totals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ChildInfo, InspectError, RunDir, describe, io};
use crate::record::EventKind;
use crate::record::Usage;

pub const SCHEMA_VERSION: &str = "ATIF-v1.6";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trajectory {
    pub schema_version: String,
    pub session_id: String,
    pub agent: Agent,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_metrics: Option<FinalMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    System,
    User,
    Agent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub step_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub source: Source,
    pub message: String,
    /// Only on agent steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// Only on agent steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
    /// Only on agent steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolCall {
    pub tool_call_id: String,
    pub function_name: String,
    /// A JSON object (ATIF requires one; arguments that are not an object are kept under
    /// `raw`).
    pub arguments: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Observation {
    pub results: Vec<ObservationResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObservationResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subagent_trajectory_ref: Option<Vec<SubagentRef>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubagentRef {
    pub session_id: String,
    /// The child's trajectory file, relative to the parent's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectory_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Metrics {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cost_usd: f64,
}

impl From<&Usage> for Metrics {
    fn from(u: &Usage) -> Metrics {
        Metrics {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            cached_tokens: u.cached_input_tokens,
            cost_usd: u.cost_usd,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FinalMetrics {
    pub total_prompt_tokens: u64,
    pub total_completion_tokens: u64,
    pub total_cached_tokens: u64,
    pub total_cost_usd: f64,
    pub total_steps: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

impl FinalMetrics {
    fn of(u: &Usage, steps: usize) -> FinalMetrics {
        FinalMetrics {
            total_prompt_tokens: u.input_tokens,
            total_completion_tokens: u.output_tokens,
            total_cached_tokens: u.cached_input_tokens,
            total_cost_usd: u.cost_usd,
            total_steps: steps as u64,
            extra: None,
        }
    }
}

/// The files an export wrote.
#[derive(Debug, Clone)]
pub struct Export {
    pub parent: PathBuf,
    pub children: Vec<PathBuf>,
}

/// The file a child's trajectory goes to, next to the parent's: `trajectory.json` →
/// `trajectory.plan-1.json`.
pub fn child_path(parent: &Path, child: &str) -> PathBuf {
    let stem = parent
        .file_stem()
        .map_or_else(|| "trajectory".into(), |s| s.to_string_lossy().into_owned());
    let ext = parent
        .extension()
        .map_or_else(|| "json".into(), |e| e.to_string_lossy().into_owned());
    parent.with_file_name(format!("{stem}.{child}.{ext}"))
}

/// Writes the run's trajectories: the parent's at `out`, each child's next to it.
pub fn export(run: &RunDir, out: &Path) -> Result<Export, InspectError> {
    let (parent, children) = build(run, out);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut written = Vec::new();
    for (path, t) in &children {
        write_json(path, t)?;
        written.push(path.clone());
    }
    write_json(out, &parent)?;
    Ok(Export {
        parent: out.to_path_buf(),
        children: written,
    })
}

fn write_json(path: &Path, t: &Trajectory) -> Result<(), InspectError> {
    let mut text = serde_json::to_string_pretty(t).map_err(|e| InspectError::Bad {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    text.push('\n');
    crate::atomic::write(path, text.as_bytes()).map_err(io(path))
}

fn agent(model: Option<String>, extra: Option<Value>) -> Agent {
    Agent {
        name: "nlah".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        model_name: model,
        extra,
    }
}

/// The parent trajectory and each child's (with the path it is written to).
pub fn build(run: &RunDir, out: &Path) -> (Trajectory, Vec<(PathBuf, Trajectory)>) {
    let run_id = run.run_id();
    let children = run.children();
    let mut steps: Vec<Step> = Vec::new();
    let mut subs = Vec::new();
    let push = |steps: &mut Vec<Step>, mut s: Step| {
        s.step_id = steps.len() as u64 + 1;
        steps.push(s);
    };
    let first_t = run.events.first().map(|e| e.t.clone());
    if let Ok(task) = std::fs::read_to_string(run.root.join("TASK.md")) {
        push(&mut steps, step(Source::User, task, first_t.clone()));
    }
    for e in &run.events {
        let t = Some(e.t.clone());
        let raw = serde_json::to_value(&e.kind).ok();
        match &e.kind {
            // The children's own calls live in their trajectories.
            EventKind::ModelCall { .. }
            | EventKind::ToolCall { .. }
            | EventKind::ChildFinished { .. } => {}
            EventKind::ChildStarted {
                child,
                stage,
                role,
                model,
            } => {
                let info = children
                    .iter()
                    .find(|c| c.started_seq == e.seq)
                    .cloned()
                    .unwrap_or_else(|| ChildInfo::started(child, stage, role, model, e.seq));
                let path = child_path(out, child);
                let file = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let session = format!("{run_id}/{child}");
                let report = run.child_file(child, "RESPONSE.md").unwrap_or_else(|| {
                    match (&info.status, &info.reason) {
                        (Some(s), Some(r)) => format!("status: {s} ({r})"),
                        _ => "(no report)".into(),
                    }
                });
                let mut s = step(
                    Source::Agent,
                    format!("delegate stage {stage} to role {role} (child {child}, {model})"),
                    t,
                );
                s.tool_calls = Some(vec![ToolCall {
                    tool_call_id: child.clone(),
                    function_name: "delegate".into(),
                    arguments: json!({"child": child, "stage": stage, "role": role, "model": model}),
                }]);
                s.observation = Some(Observation {
                    results: vec![ObservationResult {
                        source_call_id: Some(child.clone()),
                        content: Some(report),
                        subagent_trajectory_ref: Some(vec![SubagentRef {
                            session_id: session.clone(),
                            trajectory_path: Some(file),
                            extra: Some(json!({
                                "status": info.status,
                                "reason": info.reason,
                                "tool_calls": info.tool_calls,
                            })),
                        }]),
                    }],
                });
                s.extra = Some(json!({"child_usage": info.usage}));
                push(&mut steps, s);
                subs.push((path, child_trajectory(run, &info, session)));
            }
            EventKind::OrchestratorChoice { .. } => {
                let mut s = step(Source::Agent, describe(&e.kind), t);
                s.extra = raw;
                push(&mut steps, s);
            }
            _ => {
                let mut s = step(Source::System, describe(&e.kind), t);
                s.extra = raw;
                push(&mut steps, s);
            }
        }
    }
    let total = run.record.as_ref().map_or_else(
        || {
            run.events
                .iter()
                .rev()
                .find_map(|e| match &e.kind {
                    EventKind::RunFinished { usage, .. } => Some(*usage),
                    _ => None,
                })
                .unwrap_or_else(|| {
                    let mut u = Usage::default();
                    for c in &children {
                        u.add(&c.usage);
                    }
                    u
                })
        },
        |r| r.metrics.total,
    );
    let mut fm = FinalMetrics::of(&total, steps.len());
    fm.extra = Some(
        json!({"scope": "the whole run: the runtime's own calls and every subagent trajectory"}),
    );
    let (model, extra) = match &run.record {
        Some(r) => (
            Some(r.model.clone()),
            Some(json!({
                "harness": r.harness,
                "task": r.task,
                "seed": r.seed,
                "outcome": r.outcome,
                "reason": r.reason,
                "verifier": r.verifier,
            })),
        ),
        None => (None, None),
    };
    let parent = Trajectory {
        schema_version: SCHEMA_VERSION.into(),
        session_id: run_id,
        agent: agent(model, Some(json!({"kind": "nlah runtime (parent)"}))),
        steps,
        notes: Some(
            "nlah run: the runtime's steps; each delegated child's conversation is its own trajectory (subagent_trajectory_ref)".into(),
        ),
        final_metrics: Some(fm),
        extra,
    };
    (parent, subs)
}

fn step(source: Source, message: String, timestamp: Option<String>) -> Step {
    Step {
        step_id: 0,
        timestamp,
        source,
        message,
        model_name: None,
        tool_calls: None,
        observation: None,
        metrics: None,
        extra: None,
    }
}

/// One child's conversation from its transcript; a child that left none (an external agent
/// CLI writes its own output there) gets its task and its report.
fn child_trajectory(run: &RunDir, c: &ChildInfo, session: String) -> Trajectory {
    let transcript = run
        .child_file(&c.id, "transcript.jsonl")
        .unwrap_or_default();
    let mut steps: Vec<Step> = Vec::new();
    let mut pending: Option<Usage> = None;
    let mut usage = Usage::default();
    let mut tool_status: BTreeMap<String, Value> = BTreeMap::new();
    let mut end = None;
    let model_name = Some(c.model.clone());
    for line in transcript.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match v["type"].as_str() {
            Some("usage") => {
                if let Ok(u) = serde_json::from_value::<Usage>(v["usage"].clone()) {
                    usage.add(&u);
                    pending = Some(u);
                }
            }
            Some("tool-output") => {
                if let Some(id) = v["call_id"].as_str() {
                    tool_status.insert(
                        id.to_string(),
                        json!({"is_error": v["is_error"], "exit_code": v["exit_code"], "truncated": v["truncated"]}),
                    );
                }
            }
            Some("end") => end = v["reason"].as_str().map(str::to_string),
            Some("message") => {
                let m = &v["message"];
                let content = m["content"].as_str().unwrap_or_default().to_string();
                match m["role"].as_str() {
                    Some("system") => steps.push(step(Source::System, content, None)),
                    Some("user") => steps.push(step(Source::User, content, None)),
                    Some("assistant") => {
                        let mut s = step(Source::Agent, content, None);
                        s.model_name = model_name.clone();
                        s.metrics = pending.take().as_ref().map(Metrics::from);
                        let calls: Vec<ToolCall> = m["tool_calls"]
                            .as_array()
                            .map(|a| a.iter().map(tool_call).collect())
                            .unwrap_or_default();
                        if !calls.is_empty() {
                            s.tool_calls = Some(calls);
                        }
                        steps.push(s);
                    }
                    Some("tool") => {
                        let id = m["tool_call_id"].as_str().unwrap_or_default().to_string();
                        let result = ObservationResult {
                            source_call_id: Some(id.clone()),
                            content: Some(content),
                            subagent_trajectory_ref: None,
                        };
                        // The result joins the agent step that made the call.
                        let owner = steps.iter_mut().rev().find(|s| {
                            s.tool_calls
                                .as_ref()
                                .is_some_and(|cs| cs.iter().any(|c| c.tool_call_id == id))
                        });
                        match owner {
                            Some(s) => {
                                s.observation
                                    .get_or_insert_with(Observation::default)
                                    .results
                                    .push(result);
                                if let Some(st) = tool_status.get(&id) {
                                    let extra = s.extra.get_or_insert_with(|| json!({}));
                                    extra["tool_results"][&id] = st.clone();
                                }
                            }
                            None => {
                                let mut s = step(Source::System, "tool result".into(), None);
                                s.observation = Some(Observation {
                                    results: vec![ObservationResult {
                                        source_call_id: None,
                                        ..result
                                    }],
                                });
                                steps.push(s);
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        if let Some(task) = run.child_file(&c.id, "TASK.md") {
            steps.push(step(Source::User, task, None));
        }
        let mut s = step(
            Source::Agent,
            run.child_file(&c.id, "RESPONSE.md")
                .unwrap_or_else(|| "(no report)".into()),
            None,
        );
        s.model_name = model_name.clone();
        s.metrics = Some(Metrics::from(&c.usage));
        s.extra = Some(
            json!({"note": "no built-in transcript: the child ran on an external agent; its own output is children/<id>/transcript.jsonl"}),
        );
        steps.push(s);
        usage = c.usage;
    }
    for (i, s) in steps.iter_mut().enumerate() {
        s.step_id = i as u64 + 1;
    }
    let n = steps.len();
    Trajectory {
        schema_version: SCHEMA_VERSION.into(),
        session_id: session,
        agent: agent(
            model_name,
            Some(json!({"kind": "nlah child", "child": c.id, "stage": c.stage, "role": c.role})),
        ),
        steps,
        notes: None,
        final_metrics: Some(FinalMetrics::of(&usage, n)),
        extra: Some(json!({"status": c.status, "reason": c.reason, "end": end})),
    }
}

fn tool_call(v: &Value) -> ToolCall {
    let raw = v["arguments"].as_str().unwrap_or_default();
    let arguments = match serde_json::from_str::<Value>(raw) {
        Ok(obj @ Value::Object(_)) => obj,
        Ok(other) => json!({ "raw": other }),
        Err(_) => json!({ "raw": raw }),
    };
    ToolCall {
        tool_call_id: v["id"].as_str().unwrap_or_default().to_string(),
        function_name: v["name"].as_str().unwrap_or_default().to_string(),
        arguments,
    }
}

//! Real runs of a bundled harness whose every model request is kept, for measuring what a child
//! is sent first (`cargo bench --bench briefs`, `tests/it/briefs.rs`).
//!
//! The model is in-process: each child answers its first call by writing what its stage must
//! produce and its RESPONSE.md (`status: failed` for the children `fail` names, so that a stage
//! is attempted again). Everything else — harness, workspace, brief, tools, gates — is nlah's own.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use nlah::charter;
use nlah::diag::Diags;
use nlah::engine::{self, RunOptions};
use nlah::harness::Toggles;
use nlah::model::openai::OpenAiBackend;
use nlah::model::{
    ChatBackend, ChatRequest, ChatResponse, Message, ModelError, ModelSpec, Role, ToolCall,
};
use nlah::record::Usage;
use serde_json::json;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The module that turns the compact brief on, as `harness-skills/basic` ships it.
pub fn compact_module() -> PathBuf {
    root().join("harness-skills/basic/modules/compact-brief.md")
}

/// A copy of a bundled harness with the compact-brief module added (the `swe` harness keeps
/// the paper's six modules, so the module joins a copy of it).
pub fn with_compact_module(harness: &str, into: &Path) -> PathBuf {
    let from = root().join("harness-skills").join(harness);
    let to = into.join(harness);
    for entry in walkdir::WalkDir::new(&from)
        .into_iter()
        .filter_map(Result::ok)
    {
        let rel = entry.path().strip_prefix(&from).expect("under the harness");
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
    let module = to.join("modules/compact-brief.md");
    if !module.exists() {
        std::fs::create_dir_all(to.join("modules")).expect("mkdir");
        std::fs::copy(compact_module(), module).expect("copy");
    }
    to
}

/// Keeps every request; answers as the module doc says.
pub struct Capture {
    pub requests: Mutex<Vec<ChatRequest>>,
    /// Children that report `status: failed`.
    pub fail: Vec<String>,
}

impl Capture {
    pub fn new(fail: &[&str]) -> Arc<Capture> {
        Arc::new(Capture {
            requests: Mutex::new(Vec::new()),
            fail: fail.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// The first request of each child, in the order the children ran.
    pub fn first_requests(&self) -> Vec<(String, ChatRequest)> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|r| {
                let trace = r.trace.as_deref()?;
                let (child, step) = trace.split_once('#')?;
                (step == "1").then(|| (child.to_string(), r.clone()))
            })
            .collect()
    }
}

/// The backticked paths of the brief's "You must produce" line.
fn produces(task: &str) -> Vec<String> {
    task.lines()
        .find_map(|l| l.strip_prefix("- You must produce (each must exist and be non-empty): "))
        .map(|rest| {
            rest.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl ChatBackend for Capture {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(async move {
            self.requests.lock().expect("lock").push(req.clone());
            let child = req
                .trace
                .as_deref()
                .and_then(|t| t.split_once('#'))
                .map_or("", |(c, _)| c)
                .to_string();
            let first = req.messages.iter().all(|m| m.role != Role::Assistant);
            let task = req
                .messages
                .iter()
                .find(|m| m.role == Role::User)
                .map_or("", |m| m.content.as_str());
            let mut calls = Vec::new();
            if first {
                for (i, path) in produces(task).into_iter().enumerate() {
                    calls.push(ToolCall {
                        id: format!("p{i}"),
                        name: "write".into(),
                        arguments: json!({"path": path, "content": "written\n"}).to_string(),
                    });
                }
                let status = if self.fail.contains(&child) {
                    "failed"
                } else {
                    "done"
                };
                calls.push(ToolCall {
                    id: "r".into(),
                    name: "write".into(),
                    arguments: json!({
                        "path": format!("children/{child}/RESPONSE.md"),
                        "content": format!("status: {status}\nverdict: pass\n\nDone.\n"),
                    })
                    .to_string(),
                });
            }
            Ok(ChatResponse {
                finish_reason: if calls.is_empty() {
                    "stop"
                } else {
                    "tool_calls"
                }
                .into(),
                message: Message {
                    role: Role::Assistant,
                    content: String::new(),
                    tool_calls: calls,
                    tool_call_id: None,
                },
                usage: Usage {
                    input_tokens: 100,
                    output_tokens: 10,
                    calls: 1,
                    ..Usage::default()
                },
            })
        })
    }
}

/// Runs `harness` (a folder) with `with` modules on `task`; returns the capture.
pub fn run(harness: &Path, with: &[&str], task: &Path, ws: PathBuf, fail: &[&str]) -> Arc<Capture> {
    let mut diags = Diags::default();
    let charter = charter::load(&root().join("runtime-charter"), &mut diags).expect("charter");
    let mut o = RunOptions::new(
        harness.to_path_buf(),
        task.to_path_buf(),
        ModelSpec::OpenAi {
            model: "brief-probe".into(),
        },
        charter,
    );
    o.toggles = Toggles {
        with: with.iter().map(|s| s.to_string()).collect(),
        without: Vec::new(),
    };
    o.workspace = Some(ws);
    o.settings.max_steps = 4;
    o.shell_timeout = Duration::from_secs(30);
    let capture = Capture::new(fail);
    o.chat_backend = Some(capture.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(engine::run(o)).expect("the run");
    capture
}

/// The request as an OpenAI-compatible server receives it: the JSON body's bytes.
pub fn body_bytes(req: &ChatRequest) -> usize {
    let b = OpenAiBackend::new(
        "http://127.0.0.1:9/v1",
        None,
        req.model.clone(),
        Duration::from_secs(1),
    )
    .expect("backend");
    serde_json::to_vec(&b.request_body(req).expect("body"))
        .expect("json")
        .len()
}

/// Tokens of the request in o200k_base (GPT-4o's tokenizer): each message's text plus the 3
/// tokens OpenAI counts per message and 3 for the reply's start, and the tool schemas as the
/// JSON they are sent as.
pub fn o200k_tokens(req: &ChatRequest) -> usize {
    tokens(tiktoken_rs::o200k_base_singleton(), req)
}

/// The same in cl100k_base (GPT-4's tokenizer), closer to the 150k vocabularies of small
/// open models such as Qwen2.5.
pub fn cl100k_tokens(req: &ChatRequest) -> usize {
    tokens(tiktoken_rs::cl100k_base_singleton(), req)
}

fn tokens(bpe: &tiktoken_rs::CoreBPE, req: &ChatRequest) -> usize {
    let messages: usize = req
        .messages
        .iter()
        .map(|m| 3 + bpe.encode_ordinary(&m.content).len())
        .sum();
    let tools: Vec<serde_json::Value> = req
        .tools
        .iter()
        .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
        .collect();
    let tools = if tools.is_empty() {
        0
    } else {
        bpe.encode_ordinary(&serde_json::to_string(&tools).expect("json"))
            .len()
    };
    messages + 3 + tools
}

/// The first place two texts differ (their common prefix's length, on a char boundary).
pub fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i)
}

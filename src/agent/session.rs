//! The built-in child loop for chat backends: ask the model, run the tools it calls, repeat.
//!
//! Four hook points let the interface layers (`crate::interface`) change the loop without
//! touching it: before each model call, after the model's output, before each tool call (which
//! they may repair or block), and after each tool result.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::budget::{Exhausted, Meter};
use super::mcp::McpClient;
use super::tools::{self, ToolContext, ToolOutput};
use crate::env::Episode;
use crate::model::retry::{self, RetryPolicy};
use crate::model::{
    ChatBackend, ChatRequest, ChatResponse, Message, ModelError, ToolCall, ToolChoice, ToolSpec,
};
use crate::record::Usage;

/// Where modules plug into the loop. Every method defaults to doing nothing.
pub trait Hooks: Send + Sync {
    /// Before each model call: may change the request (inject guidance, trim context).
    fn before_model(&self, _req: &mut ChatRequest) {}
    /// After the model's output, before any tool runs: may correct or veto tool calls.
    fn after_output(&self, _resp: &mut ChatResponse) {}
    /// Before one tool call runs: may repair it, or block it by answering in its place (the
    /// tool then does not run and `after_tool` is not called).
    fn before_tool(&self, _call: &mut ToolCall) -> Option<ToolOutput> {
        None
    }
    /// After each tool result: may annotate the feedback the model sees next.
    fn after_tool(&self, _call: &ToolCall, _out: &mut ToolOutput) {}
    /// Why the child must stop now (a layer's own part failed), if it must.
    fn stopped(&self) -> Option<String> {
        None
    }
}

/// The loop without adaptation layers.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// What the loop reports as it goes (the engine turns these into history events).
pub trait SessionObserver: Send + Sync {
    fn model_call(&self, resp: &ChatResponse);
    fn tool_call(&self, call: &ToolCall, out: &ToolOutput, duration_ms: u64);
    fn retry(&self, note: &retry::RetryNote);
}

/// The tools a child can call: the built-ins, those of MCP servers, and the actions of the
/// task's environment.
pub struct ToolBox {
    pub ctx: ToolContext,
    pub builtin: Vec<ToolSpec>,
    pub mcp: Vec<McpClient>,
    pub env: Option<Arc<Episode>>,
}

impl ToolBox {
    pub fn specs(&self) -> Vec<ToolSpec> {
        let mut v = self.builtin.clone();
        for m in &self.mcp {
            v.extend(m.tool_specs());
        }
        if let Some(e) = &self.env {
            v.extend(e.tool_specs());
        }
        v
    }

    pub async fn call(&self, call: &ToolCall) -> ToolOutput {
        if let Some(e) = self.env.as_ref().filter(|e| e.has_tool(&call.name)) {
            let child = self.ctx.own_dir.rsplit('/').next().unwrap_or_default();
            return e.act(child, &call.name, &call.arguments).await;
        }
        if self.builtin.iter().any(|t| t.name == call.name) || !call.name.contains("__") {
            return tools::call(&self.ctx, &call.name, &call.arguments).await;
        }
        for m in &self.mcp {
            if m.tool_specs().iter().any(|t| t.name == call.name) {
                let args = match serde_json::from_str(&call.arguments) {
                    Ok(v) => v,
                    Err(e) => {
                        return ToolOutput {
                            content: format!(
                                "the arguments of `{}` are not JSON ({e}); send a JSON object matching the tool's schema",
                                call.name
                            ),
                            is_error: true,
                            exit_code: None,
                            truncated: false,
                        };
                    }
                };
                return match m.call(&call.name, args).await {
                    Ok(out) => out,
                    Err(e) => ToolOutput {
                        content: format!("MCP tool `{}` failed: {e}", call.name),
                        is_error: true,
                        exit_code: None,
                        truncated: false,
                    },
                };
            }
        }
        tools::call(&self.ctx, &call.name, &call.arguments).await
    }
}

/// What one child session is asked to do.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub id: String,
    pub model: String,
    pub system: String,
    pub task: String,
    pub tool_choice: ToolChoice,
    pub max_steps: u32,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub seed: Option<u64>,
    pub retry: RetryPolicy,
}

/// Why a session ended.
#[derive(Debug)]
pub enum End {
    /// The model answered without calling a tool (its last text), or left its RESPONSE.md.
    Finished(String),
    Budget(Exhausted),
    Model(ModelError),
    MaxSteps,
}

/// One line of a child's transcript.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Line<'a> {
    Message {
        message: &'a Message,
    },
    Usage {
        usage: &'a Usage,
        finish_reason: &'a str,
    },
    ToolOutput {
        call_id: &'a str,
        is_error: bool,
        exit_code: Option<i32>,
        truncated: bool,
    },
    End {
        reason: String,
    },
}

pub struct SessionResult {
    pub end: End,
    pub usage: Usage,
    pub tool_calls: u64,
}

/// Everything one session runs with.
pub struct Session<'a> {
    pub backend: &'a dyn ChatBackend,
    pub spec: &'a SessionSpec,
    pub tools: &'a ToolBox,
    pub hooks: &'a dyn Hooks,
    pub observer: &'a dyn SessionObserver,
    pub meter: &'a Meter,
    /// Where the transcript is written, line by line.
    pub transcript: &'a Path,
    /// The child's RESPONSE.md: once it exists after a tool step, the child has reported and the
    /// loop stops (models forced to call tools never stop by themselves).
    pub response_file: &'a Path,
}

/// Runs a child to its end.
pub async fn run(s: Session<'_>) -> SessionResult {
    let Session {
        backend,
        spec,
        tools,
        hooks,
        observer: obs,
        meter,
        transcript,
        response_file,
    } = s;
    let mut log = Transcript::open(transcript);
    let mut messages = vec![Message::system(&spec.system), Message::user(&spec.task)];
    for m in &messages {
        log.write(&Line::Message { message: m });
    }
    let specs = tools.specs();
    let mut usage = Usage::default();
    let mut tool_calls = 0u64;
    let end = 'outer: {
        for step in 0..spec.max_steps {
            let mut req = ChatRequest {
                model: spec.model.clone(),
                messages: messages.clone(),
                tools: specs.clone(),
                tool_choice: spec.tool_choice.clone(),
                max_tokens: spec.max_tokens,
                temperature: spec.temperature,
                seed: spec.seed,
                trace: Some(format!("{}#{}", spec.id, step + 1)),
            };
            hooks.before_model(&mut req);
            // Counted before it is sent (parallel children see it), settled with the real usage.
            let reservation = match meter.reserve_model_call(req.estimated_prompt_tokens()) {
                Ok(r) => r,
                Err(e) => break 'outer End::Budget(e),
            };
            let result = retry::with_retries(
                spec.retry.clone(),
                |note| obs.retry(note),
                || backend.complete(&req),
            )
            .await;
            let mut resp = match result {
                Ok(r) => r,
                Err(e) => break 'outer End::Model(e),
            };
            usage.add(&resp.usage);
            reservation.settle(&resp.usage);
            obs.model_call(&resp);
            log.write(&Line::Usage {
                usage: &resp.usage,
                finish_reason: &resp.finish_reason,
            });
            hooks.after_output(&mut resp);
            log.write(&Line::Message {
                message: &resp.message,
            });
            let calls = resp.message.tool_calls.clone();
            messages.push(resp.message.clone());
            if calls.is_empty() {
                break 'outer End::Finished(resp.message.content);
            }
            for call in &calls {
                if let Err(e) = meter.check_tool_call() {
                    break 'outer End::Budget(e);
                }
                let started = Instant::now();
                let mut call = call.clone();
                let out = match hooks.before_tool(&mut call) {
                    Some(blocked) => blocked,
                    None => {
                        let mut out = tools.call(&call).await;
                        hooks.after_tool(&call, &mut out);
                        out
                    }
                };
                let call = &call;
                meter.add_tool_call();
                tool_calls += 1;
                obs.tool_call(call, &out, started.elapsed().as_millis() as u64);
                log.write(&Line::ToolOutput {
                    call_id: &call.id,
                    is_error: out.is_error,
                    exit_code: out.exit_code,
                    truncated: out.truncated,
                });
                let result = Message::tool_result(&call.id, &out.content);
                log.write(&Line::Message { message: &result });
                messages.push(result);
            }
            // A failed environment ends the child; the run then ends as an infrastructure error.
            if response_file.is_file()
                || tools.env.as_ref().is_some_and(|e| e.fault().is_some())
                || hooks.stopped().is_some()
            {
                break 'outer End::Finished(String::new());
            }
        }
        End::MaxSteps
    };
    log.write(&Line::End {
        reason: format!("{end:?}"),
    });
    SessionResult {
        end,
        usage,
        tool_calls,
    }
}

/// The transcript file, written line by line; a write failure stops recording, not the child.
struct Transcript(Option<std::fs::File>);

impl Transcript {
    fn open(path: &Path) -> Transcript {
        Transcript(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok(),
        )
    }

    fn write(&mut self, line: &Line) {
        use std::io::Write;
        if let (Some(f), Ok(mut s)) = (self.0.as_mut(), serde_json::to_string(line)) {
            s.push('\n');
            if f.write_all(s.as_bytes()).is_err() {
                self.0 = None;
            }
        }
    }
}

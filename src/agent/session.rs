//! The built-in child loop for chat backends: ask the model, run the tools it calls, repeat.
//!
//! Four hook points let the interface layers (`crate::interface`) change the loop without
//! touching it: before each model call, after the model's output, before each tool call (which
//! they may repair or block), and after each tool result.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::budget::{Exhausted, Meter};
use super::mcp::McpClient;
use super::realize::{self, Note};
use super::tools::{self, ToolContext, ToolOutput, finish};
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
    /// A call that reached the server and failed (`class`), or was cut off (`cancelled`): it
    /// counts as a call made.
    fn call_failed(&self, _class: &str, _usage: &Usage) {}
    /// The loop repaired or nudged an answer (see `realize`).
    fn interface(&self, _note: &Note) {}
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
    /// Starts the child's shell when `shell` is among its tools ([`tools::warm_shell`]).
    fn warm_up(&self) -> Option<impl Future<Output = ()> + '_> {
        self.builtin
            .iter()
            .any(|s| s.name == "shell")
            .then(|| tools::warm_shell(&self.ctx))
            .flatten()
    }

    /// The tools offered: the built-ins (with `finish`: see `tools::finish`) and the MCP servers'.
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
        let _p = crate::profile::phase(crate::profile::Phase::Tool);
        if call.name == finish::NAME {
            return finish::call(&self.ctx, &call.arguments);
        }
        if call.name == crate::model::dispatch::NAME {
            // The dispatching tool's arguments could not be read: most often a generation cut
            // off at the token limit in the middle of a string.
            return ToolOutput::error(format!(
                "your call was not complete JSON, so no tool ran (was it cut off at the token \
                 limit?); call one tool with {{\"tool\": NAME, \"arguments\": {{…}}}} and keep \
                 the arguments short; got {}",
                clip(&call.arguments, 200)
            ));
        }
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

/// `text` cut to about `max` bytes, at a character boundary.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
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
    /// The model's context window: a request surely larger is not sent.
    pub context_window: Option<u64>,
}

/// Empty answers (no text, no tool call) answered with a nudge before the child is ended: a
/// grammar quirk of some chat formats, not the model's decision to stop.
pub const EMPTY_ANSWER_NUDGES: u32 = 2;

/// What the loop says after an empty answer.
const NUDGE: &str = "Your last answer was empty: no text and no tool call. Continue your task by     calling a tool; when you are done, call `finish` with your status and report.";

/// The tool choice of step `step` (0-based): a named tool is forced at the first step only, then
/// any tool (so that `finish` and the other tools stay callable); after an empty answer, any
/// tool unless the run said `none`.
pub fn choice_for(choice: &ToolChoice, step: u32, nudged: bool) -> ToolChoice {
    match choice {
        ToolChoice::Function(_) if step > 0 => ToolChoice::Any,
        ToolChoice::Auto if nudged => ToolChoice::Any,
        other => other.clone(),
    }
}

/// What a session has spent so far, readable from outside while it runs: a child cut off by its
/// wall time still reports every call it made, the one in flight included.
#[derive(Debug, Default)]
pub struct Tally {
    inner: Mutex<TallyInner>,
}

#[derive(Debug, Default, Clone)]
struct TallyInner {
    usage: Usage,
    tool_calls: u64,
    in_flight: Option<Instant>,
    notes: Vec<&'static str>,
}

impl Tally {
    fn lock(&self) -> std::sync::MutexGuard<'_, TallyInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, u: &Usage) {
        self.lock().usage.add(u);
    }

    fn add_tool_call(&self) {
        self.lock().tool_calls += 1;
    }

    fn note(&self, kind: &'static str) {
        self.lock().notes.push(kind);
    }

    /// Usage and tool calls so far.
    pub fn spent(&self) -> (Usage, u64) {
        let t = self.lock();
        (t.usage, t.tool_calls)
    }

    /// How many interface notes of `kind` there were.
    pub fn count(&self, kind: &str) -> u64 {
        self.lock().notes.iter().filter(|k| **k == kind).count() as u64
    }

    /// How many notes there were in all, empty answers aside: the repairs.
    pub fn repairs(&self) -> u64 {
        self.lock()
            .notes
            .iter()
            .filter(|k| **k != "empty-answer" && **k != "html-entities-kept")
            .count() as u64
    }

    /// The session was dropped: the call in flight, if any, was cut off. Counts it (one call,
    /// its time, no tokens: the server said nothing) and returns its usage.
    pub fn cut_off(&self) -> Option<Usage> {
        let mut t = self.lock();
        let started = t.in_flight.take()?;
        let u = Usage {
            calls: 1,
            latency_ms: millis(started.elapsed()),
            ..Usage::default()
        };
        t.usage.add(&u);
        Some(u)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
    /// Where the session counts what it spends as it goes.
    pub tally: &'a Tally,
}

/// Runs a child to its end.
pub async fn run(s: Session<'_>) -> SessionResult {
    // The child's shell starts beside the first model call, off the path of its first command.
    match s.tools.warm_up() {
        Some(warm) => tokio::join!(steps(s), warm).0,
        None => steps(s).await,
    }
}

/// The session's steps: model calls and the tool calls they ask for, to the end.
async fn steps(s: Session<'_>) -> SessionResult {
    let Session {
        backend,
        spec,
        tools,
        hooks,
        observer: obs,
        meter,
        transcript,
        response_file,
        tally,
    } = s;
    let mut log = Transcript::open(transcript);
    let mut messages = vec![Message::system(&spec.system), Message::user(&spec.task)];
    for m in &messages {
        log.write(&Line::Message { message: m });
    }
    let specs = tools.specs();
    let mut nudges = 0u32;
    let mut nudged = false;
    let end = 'outer: {
        for step in 0..spec.max_steps {
            let mut req = ChatRequest {
                model: spec.model.clone(),
                // Lent to the request and taken back after the call: the history is not
                // copied for each request.
                messages: std::mem::take(&mut messages),
                tools: specs.clone(),
                tool_choice: choice_for(&spec.tool_choice, step, nudged),
                max_tokens: spec.max_tokens,
                temperature: spec.temperature,
                seed: spec.seed,
                trace: Some(format!("{}#{}", spec.id, step + 1)),
            };
            hooks.before_model(&mut req);
            if let Some(window) = spec.context_window {
                let least = req.least_prompt_tokens();
                if least > window {
                    break 'outer End::Model(ModelError::ContextOverflow {
                        prompt_tokens: least,
                        window,
                    });
                }
            }
            // Counted before it is sent (parallel children see it), settled with the real usage.
            let reservation = match meter.reserve_model_call(req.estimated_prompt_tokens()) {
                Ok(r) => r,
                Err(e) => break 'outer End::Budget(e),
            };
            let attempt = || async {
                tally.lock().in_flight = Some(Instant::now());
                let started = Instant::now();
                let r = {
                    let _p = crate::profile::phase(crate::profile::Phase::ModelCall);
                    backend.complete(&req).await
                };
                tally.lock().in_flight = None;
                if let Err(e) = &r
                    && e.reached_server()
                {
                    // The server worked on it: one call, whatever came of it.
                    let u = Usage {
                        calls: 1,
                        latency_ms: millis(started.elapsed()),
                        ..Usage::default()
                    };
                    tally.add(&u);
                    meter.add_usage(&u);
                    obs.call_failed(e.class(), &u);
                }
                r
            };
            let result =
                retry::with_retries(spec.retry.clone(), |note| obs.retry(note), attempt).await;
            messages = std::mem::take(&mut req.messages);
            let mut resp = match result {
                Ok(r) => r,
                Err(e) => break 'outer End::Model(e),
            };
            tally.add(&resp.usage);
            reservation.settle(&resp.usage);
            obs.model_call(&resp);
            log.write(&Line::Usage {
                usage: &resp.usage,
                finish_reason: &resp.finish_reason,
            });
            hooks.after_output(&mut resp);
            for note in realize::repair(&mut resp, step + 1) {
                tally.note(note.kind);
                obs.interface(&note);
            }
            log.write(&Line::Message {
                message: &resp.message,
            });
            let calls = resp.message.tool_calls.clone();
            messages.push(resp.message.clone());
            nudged = false;
            if realize::is_empty(&resp) && nudges < EMPTY_ANSWER_NUDGES {
                nudges += 1;
                nudged = true;
                let note = Note {
                    kind: "empty-answer",
                    detail: format!(
                        "an answer with no text and no tool call (finish reason {}); nudge {nudges} of {EMPTY_ANSWER_NUDGES}",
                        resp.finish_reason
                    ),
                };
                tally.note(note.kind);
                obs.interface(&note);
                let nudge = Message::user(NUDGE);
                log.write(&Line::Message { message: &nudge });
                messages.push(nudge);
                continue;
            }
            if calls.is_empty() {
                break 'outer End::Finished(resp.message.content);
            }
            let mut finished = false;
            for call in &calls {
                if finished {
                    // Calls after `finish` are not run, but every call needs its result.
                    let skipped = Message::tool_result(&call.id, "not run: the turn had ended");
                    log.write(&Line::Message { message: &skipped });
                    messages.push(skipped);
                    continue;
                }
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
                tally.add_tool_call();
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
                finished = call.name == finish::NAME && !out.is_error;
            }
            // A failed environment ends the child; the run then ends as an infrastructure error.
            if finished
                || response_file.is_file()
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
    let (usage, tool_calls) = tally.spent();
    SessionResult {
        end,
        usage,
        tool_calls,
    }
}

/// The transcript file, written line by line; a write failure stops recording, not the child.
struct Transcript(Option<std::fs::File>);

impl Transcript {
    /// Opens for appending, never through a link: the transcript sits in the child's own folder,
    /// where the child may have put one (its folder itself it cannot replace).
    fn open(path: &Path) -> Transcript {
        use std::os::unix::fs::OpenOptionsExt;
        Transcript(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .ok(),
        )
    }

    fn write(&mut self, line: &Line) {
        let _p = crate::profile::phase(crate::profile::Phase::Transcript);
        use std::io::Write;
        if let (Some(f), Ok(mut s)) = (self.0.as_mut(), serde_json::to_string(line)) {
            s.push('\n');
            if f.write_all(s.as_bytes()).is_err() {
                self.0 = None;
            }
        }
    }
}

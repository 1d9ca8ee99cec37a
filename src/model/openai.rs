//! OpenAI-compatible Chat Completions backend: OpenAI itself, OpenRouter and the local servers
//! (vLLM, llama.cpp, Ollama) that speak the same streamed protocol with small quirks. The HTTP
//! and SSE plumbing it shares with `anthropic.rs` lives in `http.rs` and `sse.rs`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use super::http::{Auth, Endpoint, env_nonempty, provider_http_error, required_key};
use super::prices::Prices;
use super::sse::{Answer, SseEvent, json_events};
use super::{
    ChatBackend, ChatRequest, ChatResponse, Message, ModelError, Role, ToolCall, ToolChoice,
    ToolSpec, dispatch,
};
use crate::record::Usage;

// Kept reachable here, where they were public before the plumbing moved.
pub use super::http::{DEFAULT_TIMEOUT, is_loopback};

/// Where requests go when `OPENAI_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// A Chat Completions backend. Cheap to share; the HTTP client pools connections.
pub struct OpenAiBackend {
    endpoint: Endpoint,
    model: String,
    prices: Prices,
    /// OpenAI itself wants `max_completion_tokens` (its reasoning models reject `max_tokens`);
    /// other servers only know `max_tokens`.
    official: bool,
    /// Whether requests are streamed. Cleared once a stream arrives without usage (the server
    /// ignores `stream_options`, as llama-cpp-python does), because plain answers always carry
    /// usage and budgets need it.
    streaming: AtomicBool,
    /// The context window the server reported, asked once.
    window: tokio::sync::OnceCell<Option<u64>>,
}

impl fmt::Debug for OpenAiBackend {
    // By hand, so that the API key never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.endpoint
            .debug(f, "OpenAiBackend", &self.model)
            .field("streaming", &self.streaming())
            .finish()
    }
}

impl OpenAiBackend {
    /// A backend posting to `{base_url}/chat/completions`. `model` is used when a request names
    /// none. Prices start as the default table (see [`OpenAiBackend::with_prices`]).
    pub fn new(
        base_url: impl Into<String>,
        api_key: Option<String>,
        model: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, ModelError> {
        let endpoint = Endpoint::new(
            base_url.into(),
            "/chat/completions",
            api_key,
            Auth::Bearer,
            timeout,
        )?;
        let official = endpoint.host() == Some("api.openai.com");
        Ok(OpenAiBackend {
            endpoint,
            model: model.into(),
            prices: Prices::default(),
            official,
            streaming: AtomicBool::new(true),
            window: tokio::sync::OnceCell::new(),
        })
    }

    /// Configured by `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `NLAH_PRICES`, and
    /// `NLAH_OPENAI_STREAM=1` to stream answers. Plain answers are the default because every
    /// server reports usage in them, while some (llama-cpp-python) never do in streams, and a
    /// call whose tokens are not counted breaks the run's accounting.
    pub fn from_env(model: impl Into<String>) -> Result<Self, ModelError> {
        let backend = Self::from_parts(
            env_nonempty("OPENAI_BASE_URL"),
            env_nonempty("OPENAI_API_KEY"),
            model,
        )?;
        let stream = env_nonempty("NLAH_OPENAI_STREAM")
            .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"));
        Ok(backend
            .with_prices(Prices::from_env()?)
            .with_streaming(stream))
    }

    /// What [`OpenAiBackend::from_env`] does with the values it read: the default base URL when
    /// none is given, and a key required unless the server is on this machine (local servers
    /// need none).
    pub fn from_parts(
        base_url: Option<String>,
        api_key: Option<String>,
        model: impl Into<String>,
    ) -> Result<Self, ModelError> {
        let base = base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let api_key = required_key(&base, api_key, "OPENAI_API_KEY")?;
        Self::new(base, api_key, model, DEFAULT_TIMEOUT)
    }

    pub fn with_prices(mut self, prices: Prices) -> Self {
        self.prices = prices;
        self
    }

    /// Streamed requests (the default) or whole answers.
    pub fn with_streaming(self, on: bool) -> Self {
        self.streaming.store(on, Ordering::Relaxed);
        self
    }

    pub fn streaming(&self) -> bool {
        self.streaming.load(Ordering::Relaxed)
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn endpoint(&self) -> &str {
        self.endpoint.url()
    }

    /// The JSON body sent for `req`: streamed with usage in the last chunk, unless streaming
    /// is off. It borrows the request's text, which is serialized once, straight onto the wire.
    pub fn request_body<'a>(&'a self, req: &'a ChatRequest) -> Result<RequestBody<'a>, ModelError> {
        let messages = req
            .messages
            .iter()
            .map(WireMessage::of)
            .collect::<Result<_, _>>()?;
        let streaming = self.streaming();
        // "Any tool" where only a named tool can be forced: one dispatching tool (dispatch.rs).
        let dispatching = self.dispatches(req);
        // Servers reject `tool_choice` without tools, so both go together or not at all.
        let tools: Vec<WireTool<'_>> = if dispatching {
            let ToolSpec {
                name,
                description,
                parameters,
            } = dispatch::spec(&req.tools);
            vec![WireTool {
                kind: "function",
                function: WireFunction {
                    name: Cow::Owned(name),
                    description: Cow::Owned(description),
                    parameters: Cow::Owned(std::sync::Arc::unwrap_or_clone(parameters)),
                },
            }]
        } else {
            req.tools
                .iter()
                .map(|t| WireTool {
                    kind: "function",
                    function: WireFunction {
                        name: Cow::Borrowed(&t.name),
                        description: Cow::Borrowed(&t.description),
                        parameters: Cow::Borrowed(t.parameters.as_ref()),
                    },
                })
                .collect()
        };
        // Never "required": llama.cpp's function-calling formats fail on it; naming the tool
        // forces a call everywhere.
        let tool_choice = (!tools.is_empty()).then(|| match &req.tool_choice {
            ToolChoice::Auto => WireChoice::Mode("auto"),
            ToolChoice::None => WireChoice::Mode("none"),
            ToolChoice::Function(name) => WireChoice::Function {
                kind: "function",
                function: Named { name },
            },
            ToolChoice::Any if dispatching => WireChoice::Function {
                kind: "function",
                function: Named {
                    name: dispatch::NAME,
                },
            },
            ToolChoice::Any => WireChoice::Mode("required"),
        });
        Ok(RequestBody {
            model: self.model_for(req),
            messages,
            stream: streaming,
            stream_options: streaming.then_some(StreamOptions {
                include_usage: true,
            }),
            tools,
            tool_choice,
            max_tokens: req.max_tokens.filter(|_| !self.official),
            max_completion_tokens: req.max_tokens.filter(|_| self.official),
            temperature: req.temperature,
            seed: req.seed,
        })
    }

    /// Whether `req`'s "any tool" is sent as the dispatching tool: everywhere but OpenAI's own
    /// API, which knows `required`.
    fn dispatches(&self, req: &ChatRequest) -> bool {
        req.tool_choice == ToolChoice::Any && !self.official && !req.tools.is_empty()
    }

    fn model_for<'a>(&'a self, req: &'a ChatRequest) -> &'a str {
        if req.model.is_empty() {
            &self.model
        } else {
            &req.model
        }
    }

    async fn call(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = {
            let _p = crate::profile::phase(crate::profile::Phase::Request);
            self.request_body(req)?
        };
        let started = Instant::now();
        let answer = self.endpoint.post(&body, &[("X-Title", "nlah")]).await?;
        let (mut message, finish_reason, mut usage) = match answer {
            Answer::Json(v) => parse_completion(&v).map_err(|e| self.endpoint.locate(e))?,
            Answer::Events(events) => {
                let mut usage = None;
                let answer = assemble_stream(&events, &mut usage);
                // Also after a cut-short stream: llama-cpp-python cuts streams when another
                // request arrives, and whole answers are not cut.
                if usage.is_none() && matches!(answer, Ok(_) | Err(ModelError::Malformed(_))) {
                    self.streaming.store(false, Ordering::Relaxed);
                }
                let (message, reason) = answer.map_err(|e| self.endpoint.locate(e))?;
                (message, reason, usage.unwrap_or_default())
            }
        };
        if self.dispatches(req) {
            message.tool_calls = std::mem::take(&mut message.tool_calls)
                .into_iter()
                .map(dispatch::unwrap)
                .collect();
        }
        usage.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        usage.calls = 1;
        usage.cost_usd = self.prices.cost(self.model_for(req), &usage).unwrap_or(0.0);
        Ok(ChatResponse {
            message,
            usage,
            finish_reason,
        })
    }
}

impl ChatBackend for OpenAiBackend {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(self.call(req))
    }

    fn context_window(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async {
            *self
                .window
                .get_or_init(|| async {
                    let models = self
                        .endpoint
                        .get_sibling("/chat/completions", "/models")
                        .await?;
                    window_of(&models, &self.model)
                })
                .await
        })
    }
}

/// The context window a `/models` answer gives for `model` (or for its only model): vLLM's
/// `max_model_len`, OpenRouter's `context_length`, or `context_window`; llama.cpp's servers give
/// none that is the running context (llama-cpp-python's entries have no such field).
fn window_of(models: &Value, model: &str) -> Option<u64> {
    let data = models["data"].as_array()?;
    let entry = data
        .iter()
        .find(|m| m["id"] == model)
        .or_else(|| (data.len() == 1).then(|| &data[0]))?;
    ["max_model_len", "context_length", "context_window"]
        .iter()
        .find_map(|k| entry[*k].as_u64())
        .filter(|n| *n > 0)
}

/// The body of a Chat Completions request.
#[derive(Serialize)]
pub struct RequestBody<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireChoice<'a>>,
    /// What every server but OpenAI's own reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    /// What OpenAI's own API reads instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// One message in the Chat Completions shape.
#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    /// Always a string: llama.cpp answers `null` with HTTP 500.
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireCall<'a>>,
}

impl<'a> WireMessage<'a> {
    fn of(m: &'a Message) -> Result<WireMessage<'a>, ModelError> {
        let plain = |role| WireMessage {
            role,
            content: &m.content,
            tool_call_id: None,
            tool_calls: Vec::new(),
        };
        Ok(match m.role {
            Role::System => plain("system"),
            Role::User => plain("user"),
            Role::Assistant => WireMessage {
                tool_calls: m
                    .tool_calls
                    .iter()
                    .map(|c| WireCall {
                        id: &c.id,
                        kind: "function",
                        function: CallFunction {
                            name: &c.name,
                            arguments: &c.arguments,
                        },
                    })
                    .collect(),
                ..plain("assistant")
            },
            Role::Tool => {
                let id = m.tool_call_id.as_deref().ok_or_else(|| {
                    ModelError::Config("a tool result message has no tool_call_id".into())
                })?;
                WireMessage {
                    tool_call_id: Some(id),
                    ..plain("tool")
                }
            }
        })
    }
}

#[derive(Serialize)]
struct WireCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: CallFunction<'a>,
}

#[derive(Serialize)]
struct CallFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: Cow<'a, str>,
    description: Cow<'a, str>,
    parameters: Cow<'a, Value>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireChoice<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: Named<'a>,
    },
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}

/// Usage as Chat Completions reports it in `v["usage"]`. Cached prompt tokens: OpenAI and newer
/// llama.cpp servers say `prompt_tokens_details.cached_tokens`; older llama.cpp servers only
/// `timings.cache_n` beside the usage.
fn parse_usage(v: &Value) -> Usage {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let u = &v["usage"];
    let cached = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or_else(|| n(&v["timings"]["cache_n"]));
    Usage {
        input_tokens: n(&u["prompt_tokens"]),
        cached_input_tokens: cached,
        output_tokens: n(&u["completion_tokens"]),
        reasoning_tokens: n(&u["completion_tokens_details"]["reasoning_tokens"]),
        ..Usage::default()
    }
}

/// Message content is a string, `null`, or (some servers) an array of text parts.
fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

/// Tool arguments are a JSON string; a few servers send the object itself.
fn arguments_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The assistant message and its finish reason (inferred when the server gave none).
fn finish(
    content: String,
    calls: Vec<ToolCall>,
    finish_reason: Option<String>,
) -> (Message, String) {
    let finish_reason = finish_reason.unwrap_or_else(|| {
        if calls.is_empty() {
            "stop".into()
        } else {
            "tool_calls".into()
        }
    });
    let message = Message {
        tool_calls: calls,
        ..Message::assistant(content)
    };
    (message, finish_reason)
}

/// Tool calls without an id (some local servers) get one, because tool results must name it.
fn tool_call(index: usize, id: &str, name: String, arguments: String) -> ToolCall {
    let id = if id.is_empty() {
        format!("call_{index}")
    } else {
        id.to_string()
    };
    let arguments = if arguments.trim().is_empty() {
        "{}".to_string()
    } else {
        arguments
    };
    ToolCall {
        id,
        name,
        arguments,
    }
}

/// A whole (non-streamed) completion: servers that ignore `stream` answer this way.
fn parse_completion(v: &Value) -> Result<(Message, String, Usage), ModelError> {
    let _p = crate::profile::phase(crate::profile::Phase::Response);
    if let Some(err) = provider_error(v) {
        return Err(err);
    }
    let choice = v["choices"]
        .as_array()
        .and_then(|c| c.first())
        .ok_or_else(|| ModelError::Malformed("the response has no choices".into()))?;
    let msg = &choice["message"];
    // Only `tool_calls`: the legacy `function_call` can carry a wrong name on llama.cpp.
    let calls = msg["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let f = &c["function"];
                    tool_call(
                        i,
                        c["id"].as_str().unwrap_or(""),
                        f["name"].as_str().unwrap_or("").to_string(),
                        arguments_text(&f["arguments"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let reason = choice["finish_reason"].as_str().map(str::to_string);
    let (message, reason) = finish(content_text(&msg["content"]), calls, reason);
    Ok((message, reason, parse_usage(v)))
}

/// A tool call as its deltas arrive: id and name first, arguments in pieces.
#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Joins the chunks of a streamed completion. `usage` is set by the chunks that carry it, even
/// when the answer turns out incomplete.
fn assemble_stream(
    events: &[SseEvent],
    usage: &mut Option<Usage>,
) -> Result<(Message, String), ModelError> {
    let _p = crate::profile::phase(crate::profile::Phase::Response);
    let mut content = String::new();
    let mut calls: BTreeMap<usize, PartialCall> = BTreeMap::new();
    let mut last_index: Option<usize> = None;
    let mut reason: Option<String> = None;
    let mut saw_choice = false;
    for chunk in json_events(events, &["[DONE]"]) {
        let chunk = chunk?;
        if let Some(err) = provider_error(&chunk) {
            return Err(err);
        }
        if chunk["usage"].is_object() {
            *usage = Some(parse_usage(&chunk));
        }
        // Only the first choice: we never ask for more than one.
        let Some(choice) = chunk["choices"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["index"].as_u64().unwrap_or(0) == 0))
        else {
            continue;
        };
        saw_choice = true;
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str() {
            content.push_str(text);
        }
        for d in delta["tool_calls"].as_array().into_iter().flatten() {
            let id = d["id"].as_str().unwrap_or("");
            // Deltas name their call by index; without one, a new id starts a new call and
            // anything else continues the last one.
            let index = match d["index"].as_u64() {
                Some(i) => usize::try_from(i).unwrap_or(usize::MAX),
                None if !id.is_empty() && !calls.values().any(|c| c.id == id) => calls.len(),
                None => last_index.unwrap_or(0),
            };
            last_index = Some(index);
            let call = calls.entry(index).or_default();
            if call.id.is_empty() {
                call.id = id.to_string();
            }
            let f = &d["function"];
            if let Some(name) = f["name"].as_str()
                && call.name != name
            {
                // Some servers repeat the name in every delta; others might split it.
                call.name.push_str(name);
            }
            call.arguments.push_str(&arguments_text(&f["arguments"]));
        }
        if let Some(r) = choice["finish_reason"].as_str() {
            reason = Some(r.to_string());
        }
    }
    if !saw_choice {
        return Err(ModelError::Malformed(
            "the stream carried no choices".into(),
        ));
    }
    // `[DONE]` alone is not enough: llama-cpp-python sends it when another request
    // interrupts a generation, so only a finish_reason marks a whole answer.
    if reason.is_none() {
        return Err(ModelError::Malformed(
            "the stream ended without a finish_reason: the answer was cut short".into(),
        ));
    }
    let calls = calls
        .into_values()
        .enumerate()
        .map(|(i, c)| tool_call(i, &c.id, c.name, c.arguments))
        .collect();
    Ok(finish(content, calls, reason))
}

/// An `error` object in a 200 body or mid-stream (OpenRouter reports provider failures so),
/// mapped onto an HTTP error so that retry decisions see its status.
fn provider_error(v: &Value) -> Option<ModelError> {
    let err = v.get("error").filter(|e| !e.is_null())?;
    let status = err["code"]
        .as_u64()
        .or_else(|| err["status"].as_u64())
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(500);
    Some(provider_http_error(err, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_without_index_or_id() {
        let ev = |d: &str| SseEvent {
            event: None,
            data: d.to_string(),
        };
        let events = [
            ev(
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{\"x\""}}]}}]}"#,
            ),
            ev(
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":":1}"}}]}}]}"#,
            ),
            ev(
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"name":"g"}}]},"finish_reason":"tool_calls"}]}"#,
            ),
        ];
        let (m, reason) = assemble_stream(&events, &mut None).unwrap();
        assert_eq!(reason, "tool_calls");
        assert_eq!(
            m.tool_calls[0],
            ToolCall {
                id: "a".into(),
                name: "fg".into(),
                arguments: "{\"x\":1}".into()
            }
        );
    }
}

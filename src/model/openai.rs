//! OpenAI-compatible Chat Completions backend: OpenAI itself, OpenRouter and the local servers
//! (vLLM, llama.cpp, Ollama) that speak the same streamed protocol with small quirks.
//!
//! This file also holds the HTTP plumbing `anthropic.rs` shares: client construction, error
//! mapping and a small SSE reader.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde_json::Value;

use super::prices::Prices;
use super::retry::parse_retry_after;
use super::{
    ChatBackend, ChatRequest, ChatResponse, Message, ModelError, Role, ToolCall, ToolChoice, Usage,
};

/// Where requests go when `OPENAI_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Generous, because a slow local model on two cores can take minutes for one answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// How much of an error body is kept: enough to see the provider's message, not a whole page.
const ERROR_BODY_LIMIT: usize = 2048;

/// A Chat Completions backend. Cheap to share; the HTTP client pools connections.
pub struct OpenAiBackend {
    client: reqwest::Client,
    endpoint: String,
    api_key: Option<String>,
    model: String,
    timeout: Duration,
    prices: Prices,
    /// OpenAI itself wants `max_completion_tokens` (its reasoning models reject `max_tokens`);
    /// other servers only know `max_tokens`.
    official: bool,
    /// Whether requests are streamed. Cleared once a stream arrives without usage (the server
    /// ignores `stream_options`, as llama-cpp-python does), because plain answers always carry
    /// usage and budgets need it.
    streaming: AtomicBool,
}

impl fmt::Debug for OpenAiBackend {
    // By hand, so that the API key never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("has_key", &self.api_key.is_some())
            .field("timeout", &self.timeout)
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
        let base = base_url.into().trim().trim_end_matches('/').to_string();
        let endpoint = format!("{base}/chat/completions");
        let url = parse_base(&endpoint)?;
        let official = url.host_str() == Some("api.openai.com");
        Ok(OpenAiBackend {
            client: http_client(&url, timeout)?,
            endpoint,
            api_key: api_key.filter(|k| !k.trim().is_empty()),
            model: model.into(),
            timeout,
            prices: Prices::default(),
            official,
            streaming: AtomicBool::new(true),
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
        &self.endpoint
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
        // Servers reject `tool_choice` without tools, so both go together or not at all.
        let tools: Vec<WireTool<'_>> = req
            .tools
            .iter()
            .map(|t| WireTool {
                kind: "function",
                function: WireFunction {
                    name: &t.name,
                    description: &t.description,
                    parameters: &t.parameters,
                },
            })
            .collect();
        // Never "required": llama.cpp's function-calling formats fail on it; naming the tool
        // forces a call everywhere.
        let tool_choice = (!tools.is_empty()).then(|| match &req.tool_choice {
            ToolChoice::Auto => WireChoice::Mode("auto"),
            ToolChoice::None => WireChoice::Mode("none"),
            ToolChoice::Function(name) => WireChoice::Function {
                kind: "function",
                function: Named { name },
            },
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

    fn model_for<'a>(&'a self, req: &'a ChatRequest) -> &'a str {
        if req.model.is_empty() {
            &self.model
        } else {
            &req.model
        }
    }

    async fn call(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = self.request_body(req)?;
        let started = Instant::now();
        let mut http = self
            .client
            .post(&self.endpoint)
            .header("X-Title", "nlah")
            .json(&body);
        if let Some(key) = &self.api_key {
            http = http.bearer_auth(key);
        }
        let resp = http
            .send()
            .await
            .map_err(|e| send_error(e, &self.endpoint, self.timeout))?;
        if !resp.status().is_success() {
            return Err(http_error(&self.endpoint, resp).await);
        }
        let (message, finish_reason, mut usage) =
            match read_answer(resp, &self.endpoint, self.timeout).await? {
                Answer::Json(v) => parse_completion(&v).map_err(|e| locate(e, &self.endpoint))?,
                Answer::Events(events) => {
                    let mut usage = None;
                    let answer = assemble_stream(&events, &mut usage);
                    // Also after a cut-short stream: llama-cpp-python cuts streams when another
                    // request arrives, and whole answers are not cut.
                    if usage.is_none() && matches!(answer, Ok(_) | Err(ModelError::Malformed(_))) {
                        self.streaming.store(false, Ordering::Relaxed);
                    }
                    let (message, reason) = answer.map_err(|e| locate(e, &self.endpoint))?;
                    (message, reason, usage.unwrap_or_default())
                }
            };
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

/// A key, unless the server is on this machine (local servers need none).
pub(crate) fn required_key(
    base: &str,
    key: Option<String>,
    var: &'static str,
) -> Result<Option<String>, ModelError> {
    let key = key.filter(|k| !k.trim().is_empty());
    if key.is_none() && !is_loopback(base) {
        return Err(ModelError::MissingKey { var });
    }
    Ok(key)
}

impl ChatBackend for OpenAiBackend {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(self.call(req))
    }
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
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
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
    let mut content = String::new();
    let mut calls: BTreeMap<usize, PartialCall> = BTreeMap::new();
    let mut last_index: Option<usize> = None;
    let mut reason: Option<String> = None;
    let mut saw_choice = false;
    for ev in events {
        let data = ev.data.trim();
        if data.is_empty() || data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            ModelError::Malformed(format!(
                "invalid JSON in the stream ({e}): {}",
                clip(data, 200)
            ))
        })?;
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

/// An error object a provider sent in a body (HTTP 200 or inside a stream), as the HTTP error it
/// stands for: its message, or the whole object when it has none.
pub(crate) fn provider_http_error(err: &Value, status: u16) -> ModelError {
    let body = err["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| err.to_string());
    ModelError::Http {
        url: String::new(), // filled in by `locate`
        status,
        body: clip(&body, ERROR_BODY_LIMIT),
        retry_after: None,
    }
}

// ---- shared HTTP plumbing (also used by anthropic.rs) ----

/// The variable's value, unless unset or blank.
pub(crate) fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

pub(crate) fn parse_base(endpoint: &str) -> Result<Url, ModelError> {
    let url = Url::parse(endpoint)
        .map_err(|e| ModelError::Config(format!("`{endpoint}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ModelError::Config(format!(
            "`{endpoint}` is not an http(s) URL"
        )));
    }
    Ok(url)
}

/// Whether a base URL points at this machine, where servers need no key.
pub fn is_loopback(base: &str) -> bool {
    let Ok(url) = Url::parse(base.trim()) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// A client with the call timeout; loopback servers bypass any proxy from the environment.
pub(crate) fn http_client(url: &Url, timeout: Duration) -> Result<reqwest::Client, ModelError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)));
    if is_loopback(url.as_str()) {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| ModelError::Config(format!("cannot build an HTTP client: {}", chain(&e))))
}

/// An error and its causes, because reqwest's own message hides the useful part.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}

/// Names the endpoint in an error the body reported (the parsers do not know it).
pub(crate) fn locate(e: ModelError, endpoint: &str) -> ModelError {
    match e {
        ModelError::Http {
            url,
            status,
            body,
            retry_after,
        } if url.is_empty() => ModelError::Http {
            url: endpoint.to_string(),
            status,
            body,
            retry_after,
        },
        other => other,
    }
}

/// A failure before any response arrived.
pub(crate) fn send_error(e: reqwest::Error, url: &str, timeout: Duration) -> ModelError {
    if e.is_timeout() {
        ModelError::Timeout {
            url: url.to_string(),
            secs: timeout.as_secs(),
        }
    } else {
        ModelError::Unreachable {
            url: url.to_string(),
            reason: chain(&e),
        }
    }
}

/// A failure while the body streamed in: the answer is cut short.
pub(crate) fn body_error(e: reqwest::Error, url: &str, timeout: Duration) -> ModelError {
    if e.is_timeout() {
        ModelError::Timeout {
            url: url.to_string(),
            secs: timeout.as_secs(),
        }
    } else {
        ModelError::Malformed(format!("the response from {url} broke off: {}", chain(&e)))
    }
}

/// A non-2xx response, with the start of its body and any `Retry-After`.
pub(crate) async fn http_error(url: &str, resp: reqwest::Response) -> ModelError {
    let status = resp.status().as_u16();
    let retry_after = parse_retry_after(resp.headers());
    let body = resp.text().await.unwrap_or_default();
    ModelError::Http {
        url: url.to_string(),
        status,
        body: clip(body.trim(), ERROR_BODY_LIMIT),
        retry_after,
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// An incremental SSE reader: bytes in, complete events out, whatever the chunking.
#[derive(Default)]
pub(crate) struct SseReader {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseReader {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            let line = String::from_utf8_lossy(&self.buf[start..end])
                .trim_end_matches('\r')
                .to_string();
            start = end + 1;
            if let Some(ev) = self.line(&line) {
                out.push(ev);
            }
        }
        self.buf.drain(..start);
        out
    }

    /// The event still pending when the body ends without a final blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let rest = std::mem::take(&mut self.buf);
        let line = String::from_utf8_lossy(&rest)
            .trim_end_matches('\r')
            .to_string();
        let ev = if line.is_empty() {
            None
        } else {
            self.line(&line)
        };
        ev.or_else(|| self.line(""))
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            return self.data.take().map(|data| SseEvent { event, data });
        }
        if line.starts_with(':') {
            return None; // a comment (OpenRouter's keep-alives)
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        None
    }
}

/// A response body: a whole JSON document, or the events of a stream.
pub(crate) enum Answer {
    Json(Value),
    Events(Vec<SseEvent>),
}

/// Reads a successful body. Streams are expected, but a server may ignore `stream` and answer
/// with plain JSON: the content type, or a body starting with `{`, tells.
pub(crate) async fn read_answer(
    resp: reqwest::Response,
    url: &str,
    timeout: Duration,
) -> Result<Answer, ModelError> {
    let declared = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut json_mode = match (declared.contains("json"), declared.contains("event-stream")) {
        (true, false) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let mut raw = Vec::new();
    let mut sse = SseReader::default();
    let mut events = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| body_error(e, url, timeout))?;
        match json_mode {
            Some(true) => raw.extend_from_slice(&chunk),
            Some(false) => events.extend(sse.push(&chunk)),
            None => {
                raw.extend_from_slice(&chunk);
                if let Some(first) = raw.iter().find(|b| !b.is_ascii_whitespace()) {
                    let is_json = *first == b'{';
                    json_mode = Some(is_json);
                    if !is_json {
                        events.extend(sse.push(&raw));
                        raw.clear();
                    }
                }
            }
        }
    }
    if json_mode == Some(true) {
        let v = serde_json::from_slice(&raw).map_err(|e| {
            ModelError::Malformed(format!(
                "invalid JSON from {url} ({e}): {}",
                clip(&String::from_utf8_lossy(&raw), 200)
            ))
        })?;
        return Ok(Answer::Json(v));
    }
    events.extend(sse.finish());
    if events.is_empty() {
        return Err(ModelError::Malformed(format!(
            "{url} answered with an empty body"
        )));
    }
    Ok(Answer::Events(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn sse_survives_any_chunking() {
        let body = b"event: a\r\ndata: {\"x\":1}\r\n\r\n: keep-alive\n\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        for split in 0..body.len() {
            let mut r = SseReader::default();
            let mut evs = r.push(&body[..split]);
            evs.extend(r.push(&body[split..]));
            evs.extend(r.finish());
            assert_eq!(
                data(&evs),
                ["{\"x\":1}", "one\ntwo", "[DONE]"],
                "split at {split}"
            );
            assert_eq!(evs[0].event.as_deref(), Some("a"));
        }
        let mut r = SseReader::default();
        let mut evs = r.push(b"data: last");
        evs.extend(r.finish());
        assert_eq!(data(&evs), ["last"]);
    }

    #[test]
    fn loopback_bases() {
        assert!(is_loopback("http://127.0.0.1:8080/v1"));
        assert!(is_loopback("http://localhost:11434/v1"));
        assert!(is_loopback("http://[::1]:8000"));
        assert!(!is_loopback("https://api.openai.com/v1"));
        assert!(!is_loopback("https://openrouter.ai/api/v1"));
        assert!(!is_loopback("not a url"));
    }

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

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h…");
        assert_eq!(clip("abc", 5), "abc");
    }
}

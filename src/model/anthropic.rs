//! Anthropic Messages API backend. The conversation is reshaped on the way out: system text goes
//! to the top-level `system`, tool calls and results become content blocks, and consecutive
//! messages of one role are merged because the API wants user and assistant turns to alternate.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::http::{
    Auth, DEFAULT_TIMEOUT, Endpoint, env_nonempty, provider_http_error, required_key,
};
use super::prices::Prices;
use super::sse::{Answer, SseEvent, json_events};
use super::{
    ChatBackend, ChatRequest, ChatResponse, Message, ModelError, Role, ToolCall, ToolChoice,
};
use crate::record::Usage;

/// Where requests go when `ANTHROPIC_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version this client speaks.
pub const API_VERSION: &str = "2023-06-01";
/// The API requires `max_tokens`; this is used when a request sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A Messages API backend. Cheap to share; the HTTP client pools connections.
pub struct AnthropicBackend {
    endpoint: Endpoint,
    model: String,
    prices: Prices,
}

impl fmt::Debug for AnthropicBackend {
    // By hand, so that the API key never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.endpoint
            .debug(f, "AnthropicBackend", &self.model)
            .finish()
    }
}

impl AnthropicBackend {
    /// A backend posting to `{base_url}/v1/messages`. `model` is used when a request names none.
    pub fn new(
        base_url: impl Into<String>,
        api_key: Option<String>,
        model: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, ModelError> {
        Ok(AnthropicBackend {
            endpoint: Endpoint::new(
                base_url.into(),
                "/v1/messages",
                api_key,
                Auth::Header("x-api-key"),
                timeout,
            )?,
            model: model.into(),
            prices: Prices::default(),
        })
    }

    /// Configured by `ANTHROPIC_BASE_URL`, `ANTHROPIC_API_KEY` and `NLAH_PRICES`.
    pub fn from_env(model: impl Into<String>) -> Result<Self, ModelError> {
        let backend = Self::from_parts(
            env_nonempty("ANTHROPIC_BASE_URL"),
            env_nonempty("ANTHROPIC_API_KEY"),
            model,
        )?;
        Ok(backend.with_prices(Prices::from_env()?))
    }

    /// What [`AnthropicBackend::from_env`] does with the values it read: the default base URL
    /// when none is given, and a key required unless the server is on this machine.
    pub fn from_parts(
        base_url: Option<String>,
        api_key: Option<String>,
        model: impl Into<String>,
    ) -> Result<Self, ModelError> {
        let base = base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let api_key = required_key(&base, api_key, "ANTHROPIC_API_KEY")?;
        Self::new(base, api_key, model, DEFAULT_TIMEOUT)
    }

    pub fn with_prices(mut self, prices: Prices) -> Self {
        self.prices = prices;
        self
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn endpoint(&self) -> &str {
        self.endpoint.url()
    }

    fn model_for<'a>(&'a self, req: &'a ChatRequest) -> &'a str {
        if req.model.is_empty() {
            &self.model
        } else {
            &req.model
        }
    }

    /// The JSON body sent for `req` (streamed). `seed` has no counterpart here and is dropped.
    pub fn request_body(&self, req: &ChatRequest) -> Result<Value, ModelError> {
        let mut system = Vec::new();
        let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
        for m in &req.messages {
            let (role, blocks) = match m.role {
                Role::System => {
                    if !m.content.trim().is_empty() {
                        system.push(m.content.as_str());
                    }
                    continue;
                }
                Role::User => ("user", text_block(&m.content).into_iter().collect()),
                Role::Assistant => ("assistant", assistant_blocks(m)),
                Role::Tool => ("user", vec![tool_result_block(m)?]),
            };
            if blocks.is_empty() {
                continue; // the API rejects empty content
            }
            match turns.last_mut() {
                Some((last, existing)) if *last == role => existing.extend(blocks),
                _ => turns.push((role, blocks)),
            }
        }
        let messages: Vec<Value> = turns
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        let mut body = Map::new();
        body.insert("model".into(), json!(self.model_for(req)));
        body.insert(
            "max_tokens".into(),
            json!(req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
        );
        if !system.is_empty() {
            body.insert("system".into(), json!(system.join("\n\n")));
        }
        body.insert("messages".into(), Value::Array(messages));
        if !req.tools.is_empty() {
            let tools: Vec<Value> = req
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
                .collect();
            body.insert("tools".into(), Value::Array(tools));
            let choice = match &req.tool_choice {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Function(name) => json!({"type": "tool", "name": name}),
                ToolChoice::Any => json!({"type": "any"}),
            };
            body.insert("tool_choice".into(), choice);
        }
        if let Some(t) = req.temperature {
            body.insert("temperature".into(), json!(t));
        }
        body.insert("stream".into(), json!(true));
        Ok(Value::Object(body))
    }

    async fn call(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = self.request_body(req)?;
        let started = Instant::now();
        let answer = self
            .endpoint
            .post(&body, &[("anthropic-version", API_VERSION)])
            .await?;
        let mut out = match answer {
            Answer::Json(v) => parse_message(&v),
            Answer::Events(events) => assemble_stream(&events),
        }
        .map_err(|e| self.endpoint.locate(e))?;
        out.usage.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        out.usage.calls = 1;
        out.usage.cost_usd = self
            .prices
            .cost(self.model_for(req), &out.usage)
            .unwrap_or(0.0);
        Ok(out)
    }
}

impl ChatBackend for AnthropicBackend {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(self.call(req))
    }
}

/// A text block, or none for blank text (the API rejects empty text blocks).
fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"type": "text", "text": text}))
}

fn assistant_blocks(m: &Message) -> Vec<Value> {
    let mut blocks: Vec<Value> = text_block(&m.content).into_iter().collect();
    for c in &m.tool_calls {
        blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(&c.arguments)}));
    }
    blocks
}

/// Tool input must be an object. Arguments that are not one are kept whole under `_raw`, so the
/// conversation still shows what the model wrote.
fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"_raw": arguments}),
    }
}

fn tool_result_block(m: &Message) -> Result<Value, ModelError> {
    let id = m
        .tool_call_id
        .as_deref()
        .ok_or_else(|| ModelError::Config("a tool result message has no tool_call_id".into()))?;
    let mut block = json!({"type": "tool_result", "tool_use_id": id});
    if !m.content.is_empty() {
        block["content"] = json!(m.content);
    }
    Ok(block)
}

/// Token counts as the API reports them; missing fields stay `None` so that a later report
/// (`message_delta`) only overrides what it carries.
#[derive(Default)]
struct RawUsage {
    input: Option<u64>,
    cache_creation: Option<u64>,
    cache_read: Option<u64>,
    output: Option<u64>,
}

impl RawUsage {
    fn update(&mut self, u: &Value) {
        let fields = [
            (&mut self.input, "input_tokens"),
            (&mut self.cache_creation, "cache_creation_input_tokens"),
            (&mut self.cache_read, "cache_read_input_tokens"),
            (&mut self.output, "output_tokens"),
        ];
        for (slot, key) in fields {
            if let Some(n) = u[key].as_u64() {
                *slot = Some(n);
            }
        }
    }

    /// The API's `input_tokens` excludes cache reads and writes; ours counts all prompt tokens.
    fn normalise(&self) -> Usage {
        let (cw, cr) = (
            self.cache_creation.unwrap_or(0),
            self.cache_read.unwrap_or(0),
        );
        Usage {
            input_tokens: self.input.unwrap_or(0) + cw + cr,
            cached_input_tokens: cr,
            output_tokens: self.output.unwrap_or(0),
            ..Usage::default()
        }
    }
}

/// An `error` event or body, mapped onto the HTTP status the API uses for its type, so that
/// retry decisions work the same mid-stream.
fn api_error(v: &Value) -> Option<ModelError> {
    if v["type"].as_str() != Some("error") {
        return None;
    }
    let err = &v["error"];
    let status = match err["type"].as_str().unwrap_or("") {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        "timeout_error" => 504,
        _ => 500,
    };
    Some(provider_http_error(err, status))
}

/// A content block as it streams in.
enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        json: String,
        initial: Value,
    },
    /// Thinking and other blocks we do not pass on.
    Other,
}

impl Block {
    fn start(b: &Value) -> Block {
        match b["type"].as_str() {
            Some("text") => Block::Text(b["text"].as_str().unwrap_or("").to_string()),
            Some("tool_use") => Block::ToolUse {
                id: b["id"].as_str().unwrap_or("").to_string(),
                name: b["name"].as_str().unwrap_or("").to_string(),
                json: String::new(),
                initial: b["input"].clone(),
            },
            _ => Block::Other,
        }
    }
}

fn response(
    blocks: impl IntoIterator<Item = Block>,
    stop_reason: Option<String>,
    usage: Usage,
) -> ChatResponse {
    let mut content = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b {
            Block::Text(t) => content.push_str(&t),
            Block::ToolUse {
                id,
                name,
                json,
                initial,
            } => {
                // Streamed input arrives as JSON pieces; a whole message carries the object.
                let arguments = if !json.trim().is_empty() {
                    json
                } else if initial.is_object() {
                    initial.to_string()
                } else {
                    "{}".to_string()
                };
                let id = if id.is_empty() {
                    format!("toolu_{}", calls.len())
                } else {
                    id
                };
                calls.push(ToolCall {
                    id,
                    name,
                    arguments,
                });
            }
            Block::Other => {}
        }
    }
    let finish_reason = stop_reason.unwrap_or_else(|| {
        if calls.is_empty() {
            "end_turn".into()
        } else {
            "tool_use".into()
        }
    });
    ChatResponse {
        message: Message {
            tool_calls: calls,
            ..Message::assistant(content)
        },
        usage,
        finish_reason,
    }
}

/// A whole (non-streamed) message.
fn parse_message(v: &Value) -> Result<ChatResponse, ModelError> {
    if let Some(err) = api_error(v) {
        return Err(err);
    }
    let content = v["content"]
        .as_array()
        .ok_or_else(|| ModelError::Malformed("the response has no content".into()))?;
    let mut usage = RawUsage::default();
    usage.update(&v["usage"]);
    let stop = v["stop_reason"].as_str().map(str::to_string);
    Ok(response(
        content.iter().map(Block::start),
        stop,
        usage.normalise(),
    ))
}

/// Joins the events of a streamed message.
fn assemble_stream(events: &[SseEvent]) -> Result<ChatResponse, ModelError> {
    let mut blocks: BTreeMap<u64, Block> = BTreeMap::new();
    let mut usage = RawUsage::default();
    let mut stop: Option<String> = None;
    let (mut started, mut stopped) = (false, false);
    for v in json_events(events, &[]) {
        let v = v?;
        if let Some(err) = api_error(&v) {
            return Err(err);
        }
        let index = v["index"].as_u64().unwrap_or(0);
        match v["type"].as_str().unwrap_or("") {
            "message_start" => {
                started = true;
                usage.update(&v["message"]["usage"]);
            }
            "content_block_start" => {
                blocks.insert(index, Block::start(&v["content_block"]));
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match (blocks.get_mut(&index), d["type"].as_str()) {
                    (Some(Block::Text(t)), Some("text_delta")) => {
                        t.push_str(d["text"].as_str().unwrap_or(""))
                    }
                    (Some(Block::ToolUse { json, .. }), Some("input_json_delta")) => {
                        json.push_str(d["partial_json"].as_str().unwrap_or(""));
                    }
                    (None, Some("text_delta")) => {
                        blocks.insert(
                            index,
                            Block::Text(d["text"].as_str().unwrap_or("").to_string()),
                        );
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    stop = Some(r.to_string());
                }
                usage.update(&v["usage"]);
            }
            "message_stop" => stopped = true,
            _ => {} // ping, content_block_stop, and event types added later
        }
    }
    if !started && blocks.is_empty() {
        return Err(ModelError::Malformed(
            "the stream carried no message".into(),
        ));
    }
    if !stopped && stop.is_none() {
        return Err(ModelError::Malformed(
            "the stream ended before the answer was complete".into(),
        ));
    }
    Ok(response(blocks.into_values(), stop, usage.normalise()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_input_keeps_what_is_not_an_object() {
        assert_eq!(tool_input(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(tool_input(""), json!({}));
        assert_eq!(tool_input("{broken"), json!({"_raw": "{broken"}));
        assert_eq!(tool_input("[1]"), json!({"_raw": "[1]"}));
    }

    #[test]
    fn whole_message_with_cache_usage() {
        let v = json!({"type": "message", "content": [
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "toolu_1", "name": "shell", "input": {"cmd": "ls"}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 7}});
        let r = parse_message(&v).unwrap();
        assert_eq!(r.message.content, "hi");
        assert_eq!(r.message.tool_calls[0].arguments, r#"{"cmd":"ls"}"#);
        assert_eq!(
            (
                r.usage.input_tokens,
                r.usage.cached_input_tokens,
                r.usage.output_tokens
            ),
            (115, 100, 7)
        );
        assert_eq!(r.finish_reason, "tool_use");
    }
}

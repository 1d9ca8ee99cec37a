//! Model backends: how a child thinks. A model spec string picks one:
//! `openai:<model>`, `anthropic:<model>`, `command:<template>`, `replay:<file>`.
//!
//! HTTP backends (and replays of them) implement [`ChatBackend`] and are driven by the built-in
//! agent loop; `command:` runs an external agent CLI for a whole child and lives in
//! `agent::command`.

pub mod anthropic;
pub mod dispatch;
mod http;
pub mod openai;
pub mod prices;
pub mod repair;
pub mod replay;
pub mod retry;
pub mod spec;
mod sse;

use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::record::Usage;

pub use spec::ModelSpec;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A tool call the model asked for. `arguments` is the raw JSON text the model produced (it may
/// be malformed; the agent loop answers malformed arguments with a correction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// One message of a conversation, provider-neutral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self::text(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::text(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::text(Role::Assistant, content)
    }
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(call_id.into()),
            ..Self::text(Role::Tool, content)
        }
    }
    fn text(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool offered to the model: name, description and JSON Schema of its arguments. The schema
/// is shared: every request of every child offers the same tools again, and a schema copied
/// as a tree of JSON values is hundreds of allocations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: std::sync::Arc<serde_json::Value>,
}

/// Whether and how the model must call a tool.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "name")]
pub enum ToolChoice {
    #[default]
    Auto,
    None,
    /// Force a call of this tool (small local models only call tools when forced).
    Function(String),
    /// Force a call of some tool, the model choosing which (the finish tool included), so that
    /// a forced model can still end its turn. OpenAI-compatible servers that can only force a
    /// named tool (llama.cpp) get it as one dispatching tool: see `openai::dispatch`.
    Any,
}

/// A request to a chat backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    #[serde(default)]
    pub tool_choice: ToolChoice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Which child and call this is (`execute-1#3`): never sent to a provider; recordings and
    /// replays are keyed by it so that parallel children replay deterministically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// The length of a value's compact JSON, counted as it is written rather than kept: this runs
/// before every model call, on schemas the requests share.
fn json_len(v: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing a `Value` into a sink that cannot fail cannot fail.
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

impl ChatRequest {
    /// The prompt's size in tokens, estimated before sending so that the meter can refuse a
    /// request that cannot fit the token budget. Conservative on purpose: one token per 3 bytes
    /// of every message, tool call and tool schema (BPE tokenizers average about 4 bytes per
    /// token on English and code, and rarely fewer than 3 outside non-Latin scripts), plus 8 per
    /// message for the chat template's framing. Over-estimating keeps the budget's promise
    /// (overshoot only by completions); a request refused near the limit is the price.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        let messages: usize = self
            .messages
            .iter()
            .map(|m| {
                m.content.len()
                    + m.tool_calls
                        .iter()
                        .map(|c| c.id.len() + c.name.len() + c.arguments.len())
                        .sum::<usize>()
                    + m.tool_call_id.as_ref().map_or(0, String::len)
            })
            .sum();
        let tools: usize = self
            .tools
            .iter()
            .map(|t| t.name.len() + t.description.len() + json_len(&t.parameters))
            .sum();
        let bytes = (messages + tools) as u64;
        bytes.div_ceil(3) + 8 * self.messages.len() as u64
    }

    /// The prompt's size in tokens, estimated low: one token per 5 bytes (BPE tokenizers rarely
    /// do better on English, code or JSON). A request refused because this exceeds the model's
    /// context window surely would not have fit; the server's own answer covers the rest.
    pub fn least_prompt_tokens(&self) -> u64 {
        (self.estimated_prompt_tokens() - 8 * self.messages.len() as u64) * 3 / 5
    }
}

/// The model's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The assistant message (text and/or tool calls).
    pub message: Message,
    pub usage: Usage,
    /// `stop`, `tool_calls`, `length`, … as the provider said it.
    pub finish_reason: String,
}

/// Why a model call failed. `class()` names it for history and retry decisions.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{var} is not set")]
    MissingKey { var: &'static str },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    #[error("the request to {url} timed out after {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("replay: {0}")]
    Replay(String),
    #[error("{0}")]
    Config(String),
    /// A request that cannot fit the model's context window, refused before it was sent.
    #[error(
        "the request (at least {prompt_tokens} prompt tokens) cannot fit the model's context window of {window} tokens"
    )]
    ContextOverflow { prompt_tokens: u64, window: u64 },
}

/// Whether an error body says the prompt is over the context window: OpenAI's and llama.cpp's
/// `context_length_exceeded`, llama-cpp-python's "exceed context window", vLLM's "maximum
/// context length".
fn is_overflow_text(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    b.contains("context_length_exceeded")
        || b.contains("exceed context window")
        || b.contains("maximum context length")
        || b.contains("exceeds the available context size")
}

impl ModelError {
    /// A stable name for history: `auth`, `rate-limited`, `server-error`, `client-error`,
    /// `context-overflow`, `timeout`, `unreachable`, `malformed`, `replay`, `config`.
    pub fn class(&self) -> &'static str {
        match self {
            ModelError::MissingKey { .. } => "auth",
            ModelError::ContextOverflow { .. } => "context-overflow",
            ModelError::Http {
                status: 400 | 413,
                body,
                ..
            } if is_overflow_text(body) => "context-overflow",
            ModelError::Http {
                status: 401 | 403, ..
            } => "auth",
            ModelError::Http { status: 429, .. } => "rate-limited",
            ModelError::Http { status, .. } if *status >= 500 => "server-error",
            ModelError::Http { .. } => "client-error",
            ModelError::Timeout { .. } => "timeout",
            ModelError::Unreachable { .. } => "unreachable",
            ModelError::Malformed(_) => "malformed",
            ModelError::Replay(_) => "replay",
            ModelError::Config(_) => "config",
        }
    }

    /// Whether trying again may help: 429, 5xx, timeouts, dropped connections, malformed bodies.
    pub fn retryable(&self) -> bool {
        matches!(
            self.class(),
            "rate-limited" | "server-error" | "timeout" | "unreachable" | "malformed"
        )
    }

    /// Whether the failed call reached the server, so that it counts as a call made (the server
    /// may have spent prompt processing or generation on it): an HTTP error answer, a timeout or
    /// a broken or malformed body. Calls refused before sending and unreachable servers do not.
    pub fn reached_server(&self) -> bool {
        matches!(
            self,
            ModelError::Http { .. } | ModelError::Timeout { .. } | ModelError::Malformed(_)
        )
    }

    /// Whether the failure says the run's configuration (model, context window, harness size)
    /// cannot work, so running the same cell again would fail the same way.
    pub fn is_configuration(&self) -> bool {
        self.class() == "context-overflow"
    }

    /// What the server asked us to wait (Retry-After), if anything.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A chat backend: one request in, one response out. Implementations are cheap to share.
pub trait ChatBackend: Send + Sync {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>>;

    /// The model's context window in tokens, where the server says it; `None` otherwise.
    fn context_window(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async { None })
    }

    /// Resolves when `child`'s session must be cut off as its recording was (a replayed call
    /// that was in flight when the recorded child's time ran out). Never, for a live model.
    fn cut_off<'a>(&'a self, _child: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(std::future::pending())
    }
}

/// A shared backend is a backend (recorders and caches hold `Arc<dyn ChatBackend>`).
impl<T: ChatBackend + ?Sized> ChatBackend for std::sync::Arc<T> {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        (**self).complete(req)
    }

    fn context_window(&self) -> BoxFuture<'_, Option<u64>> {
        (**self).context_window()
    }

    fn cut_off<'a>(&'a self, child: &'a str) -> BoxFuture<'a, ()> {
        (**self).cut_off(child)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_estimate_counts_text_and_schemas_at_three_bytes_a_token() {
        let mut req = ChatRequest {
            model: "m".into(),
            messages: vec![
                Message::system("a".repeat(300)),
                Message::user("b".repeat(3000)),
            ],
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            max_tokens: None,
            temperature: None,
            seed: None,
            trace: None,
        };
        assert_eq!(req.estimated_prompt_tokens(), 100 + 1000 + 16);
        req.tools.push(ToolSpec {
            name: "shell".into(),
            description: "d".repeat(25),
            parameters: serde_json::json!({"type": "object"}).into(),
        });
        // The schema's 5 + 25 + 17 bytes join the text's 3300 before dividing.
        assert_eq!(req.estimated_prompt_tokens(), 3347u64.div_ceil(3) + 16);
    }
}

//! The Anthropic Messages backend against a scripted server on 127.0.0.1.

use std::time::Duration;

use serde_json::{Value, json};

use nlah::model::anthropic::AnthropicBackend;
use nlah::model::retry::{RetryPolicy, with_retries};
use nlah::model::{ChatBackend, ChatRequest, Message, ModelError, ToolCall, ToolChoice, ToolSpec};

use crate::support::script::{Reply, Script, chat_request};

/// Starts the server; returns its base URL (without `/v1`) and the mock's record.
async fn serve(replies: Vec<Reply>) -> (String, Script) {
    Script::serve("/v1/messages", replies).await
}

fn backend(base: &str) -> AnthropicBackend {
    AnthropicBackend::new(
        base,
        Some("sk-ant-test".into()),
        "claude-test",
        Duration::from_secs(10),
    )
    .unwrap()
}

fn request(messages: Vec<Message>) -> ChatRequest {
    chat_request("claude-test", messages)
}

fn event(v: Value) -> String {
    format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap())
}

fn message_start(usage: Value) -> String {
    event(
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
        "model": "claude-test", "content": [], "stop_reason": null, "usage": usage}}),
    )
}

fn text_stream(text: &str) -> Reply {
    Reply::Sse(vec![
        message_start(json!({"input_tokens": 3, "output_tokens": 1})),
        event(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ),
        event(json!({"type": "content_block_stop", "index": 0})),
        event(
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
        ),
        event(json!({"type": "message_stop"})),
    ])
}

#[tokio::test]
async fn streamed_text_and_tool_use() {
    let pieces = vec![
        message_start(
            json!({"input_tokens": 10, "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 30, "output_tokens": 1}),
        ),
        event(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        "event: ping\ndata: {\"type\": \"ping\"}\n\n".into(),
        event(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}}),
        ),
        event(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "look."}}),
        ),
        event(json!({"type": "content_block_stop", "index": 0})),
        event(
            json!({"type": "content_block_start", "index": 1, "content_block":
            {"type": "tool_use", "id": "toolu_01", "name": "shell", "input": {}}}),
        ),
        event(
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ),
        event(
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"cmd\": \"l"}}),
        ),
        event(
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "s\"}"}}),
        ),
        event(json!({"type": "content_block_stop", "index": 1})),
        event(
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 42}}),
        ),
        event(json!({"type": "message_stop"})),
    ];
    let (base, mock) = serve(vec![Reply::Sse(pieces)]).await;
    let resp = backend(&base)
        .complete(&request(vec![Message::user("list files")]))
        .await
        .unwrap();
    assert_eq!(resp.message.content, "Let me look.");
    assert_eq!(
        resp.message.tool_calls,
        vec![ToolCall {
            id: "toolu_01".into(),
            name: "shell".into(),
            arguments: "{\"cmd\": \"ls\"}".into()
        }]
    );
    assert_eq!(resp.finish_reason, "tool_use");
    // input_tokens excludes the cache: ours is the sum, cached = cache reads.
    let u = resp.usage;
    assert_eq!(
        (
            u.input_tokens,
            u.cached_input_tokens,
            u.output_tokens,
            u.calls
        ),
        (60, 30, 42, 1)
    );

    let h = mock.headers(0);
    assert_eq!(h["x-api-key"], "sk-ant-test");
    assert_eq!(h["anthropic-version"], "2023-06-01");
    assert!(h.get("authorization").is_none());
    let sent = &mock.bodies()[0];
    assert_eq!(sent["stream"], json!(true));
    assert_eq!(sent["max_tokens"], 4096);
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "list files"}]}])
    );
}

#[tokio::test]
async fn request_shape_merges_tool_results() {
    let (base, mock) = serve(vec![text_stream("done")]).await;
    let calls = vec![
        ToolCall {
            id: "toolu_a".into(),
            name: "read".into(),
            arguments: "{\"path\":\"a.txt\"}".into(),
        },
        ToolCall {
            id: "toolu_b".into(),
            name: "read".into(),
            arguments: "{broken".into(),
        },
    ];
    let mut req = request(vec![
        Message::system("You are careful."),
        Message::user("read both"),
        Message {
            tool_calls: calls,
            ..Message::assistant("Reading.")
        },
        Message::tool_result("toolu_a", "alpha"),
        Message::tool_result("toolu_b", "beta"),
        Message::system("Be brief."),
    ]);
    req.tools = vec![ToolSpec {
        name: "read".into(),
        description: "read a file".into(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}).into(),
    }];
    req.tool_choice = ToolChoice::Function("read".into());
    req.max_tokens = Some(100);
    req.temperature = Some(0.5);
    req.seed = Some(3);
    req.trace = Some("child#2".into());
    let resp = backend(&base).complete(&req).await.unwrap();
    assert_eq!(resp.message.content, "done");
    assert_eq!(resp.finish_reason, "end_turn");

    let sent = &mock.bodies()[0];
    assert_eq!(sent["system"], "You are careful.\n\nBe brief.");
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "read both"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "toolu_a", "name": "read", "input": {"path": "a.txt"}},
                {"type": "tool_use", "id": "toolu_b", "name": "read", "input": {"_raw": "{broken"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "alpha"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "beta"}]}
        ])
    );
    assert_eq!(
        sent["tools"],
        json!([{"name": "read", "description": "read a file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}])
    );
    assert_eq!(sent["tool_choice"], json!({"type": "tool", "name": "read"}));
    assert_eq!(sent["max_tokens"], 100);
    assert_eq!(sent["temperature"], 0.5);
    assert!(sent.get("seed").is_none());
    assert!(!sent.to_string().contains("child#2"));
}

#[tokio::test]
async fn tool_choice_auto_and_none() {
    let (base, mock) = serve(vec![text_stream("a"), text_stream("b")]).await;
    let b = backend(&base);
    for choice in [ToolChoice::Auto, ToolChoice::None] {
        let mut req = request(vec![Message::user("x")]);
        req.tools = vec![ToolSpec {
            name: "t".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}).into(),
        }];
        req.tool_choice = choice;
        b.complete(&req).await.unwrap();
    }
    let bodies = mock.bodies();
    assert_eq!(bodies[0]["tool_choice"], json!({"type": "auto"}));
    assert_eq!(bodies[1]["tool_choice"], json!({"type": "none"}));
}

#[tokio::test]
async fn overloaded_is_a_server_error_and_retried() {
    let overloaded =
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let (base, mock) = serve(vec![
        Reply::Json(529, vec![], overloaded.into()),
        Reply::Json(529, vec![], overloaded.into()),
        text_stream("back"),
    ])
    .await;
    let b = backend(&base);
    let req = request(vec![Message::user("x")]);
    let err = b.complete(&req).await.unwrap_err();
    assert!(
        matches!(err, ModelError::Http { status: 529, .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), "server-error");
    assert!(err.retryable());

    let policy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(1),
    };
    let mut notes = Vec::new();
    let resp = with_retries(policy, |n| notes.push(n.clone()), || b.complete(&req))
        .await
        .unwrap();
    assert_eq!(resp.message.content, "back");
    assert_eq!(
        notes.iter().map(|n| n.class).collect::<Vec<_>>(),
        ["server-error"]
    );
    assert_eq!(mock.bodies().len(), 3);
}

#[tokio::test]
async fn error_event_mid_stream() {
    let pieces = vec![
        message_start(json!({"input_tokens": 3, "output_tokens": 1})),
        event(
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ),
    ];
    let (base, _mock) = serve(vec![Reply::Sse(pieces)]).await;
    let err = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModelError::Http { status: 529, .. }),
        "{err:?}"
    );
    let expected = format!("{base}/v1/messages answered HTTP 529");
    assert!(err.to_string().starts_with(&expected), "{err}");
}

#[tokio::test]
async fn stream_without_stop_is_malformed() {
    let pieces = vec![
        message_start(json!({"input_tokens": 3, "output_tokens": 1})),
        event(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hal"}}),
        ),
    ];
    let (base, _mock) = serve(vec![Reply::Sse(pieces)]).await;
    let err = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap_err();
    assert_eq!(err.class(), "malformed", "{err}");
}

#[tokio::test]
async fn plain_json_message() {
    let body = json!({"id": "msg_1", "type": "message", "role": "assistant", "content": [
        {"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 4, "cache_read_input_tokens": 6, "output_tokens": 2}});
    let (base, _mock) = serve(vec![Reply::Json(200, vec![], body.to_string())]).await;
    let resp = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap();
    assert_eq!(resp.message.content, "hi");
    assert_eq!(
        (
            resp.usage.input_tokens,
            resp.usage.cached_input_tokens,
            resp.usage.output_tokens
        ),
        (10, 6, 2)
    );
}

#[tokio::test]
async fn rate_limit_keeps_retry_after() {
    let body = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#;
    let (base, _mock) = serve(vec![Reply::Json(
        429,
        vec![("retry-after", "12")],
        body.into(),
    )])
    .await;
    let err = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap_err();
    assert_eq!(err.class(), "rate-limited");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(12)));
}

#[test]
fn missing_key_unless_local() {
    let err = AnthropicBackend::from_parts(None, None, "claude-sonnet-4-5").unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::MissingKey {
                var: "ANTHROPIC_API_KEY"
            }
        ),
        "{err:?}"
    );
    let b = AnthropicBackend::from_parts(Some("http://127.0.0.1:9/".into()), None, "m").unwrap();
    assert_eq!(b.endpoint(), "http://127.0.0.1:9/v1/messages");
}

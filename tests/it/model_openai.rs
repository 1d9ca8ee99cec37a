//! The OpenAI-compatible backend against a scripted server on 127.0.0.1.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use nlah::model::openai::OpenAiBackend;
use nlah::model::retry::{RetryNote, RetryPolicy, with_retries};
use nlah::model::{ChatBackend, ChatRequest, Message, ModelError, ToolCall, ToolChoice, ToolSpec};

use crate::support::script::{Reply, Script, chat_request};

/// Starts the server; returns the base URL (with `/v1`) and the mock's record.
async fn serve(replies: Vec<Reply>) -> (String, Script) {
    let (origin, script) = Script::serve("/v1/chat/completions", replies).await;
    (format!("{origin}/v1"), script)
}

fn backend(base: &str) -> OpenAiBackend {
    OpenAiBackend::new(
        base,
        Some("sk-test".into()),
        "test-model",
        Duration::from_secs(10),
    )
    .unwrap()
}

fn request(messages: Vec<Message>) -> ChatRequest {
    chat_request("test-model", messages)
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": "c1", "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

fn usage_chunk(usage: Value) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c1", "choices": [], "usage": usage})
    )
}

fn text_stream(text: &str) -> Reply {
    Reply::Sse(vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": text}), None),
        chunk(json!({}), Some("stop")),
        usage_chunk(json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})),
        "data: [DONE]\n\n".into(),
    ])
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
    }
}

// ---- answers ----

#[tokio::test]
async fn plain_json_answer() {
    let body = json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "hello there"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}});
    let (base, _mock) = serve(vec![Reply::Json(200, vec![], body.to_string())]).await;
    let resp = backend(&base)
        .complete(&request(vec![Message::user("hi")]))
        .await
        .unwrap();
    assert_eq!(resp.message.content, "hello there");
    assert!(resp.message.tool_calls.is_empty());
    assert_eq!(resp.finish_reason, "stop");
    assert_eq!(
        (
            resp.usage.input_tokens,
            resp.usage.output_tokens,
            resp.usage.calls
        ),
        (12, 3, 1)
    );
}

#[tokio::test]
async fn streamed_text_and_request_basics() {
    let (base, mock) = serve(vec![text_stream("Hello, world")]).await;
    let mut req = request(vec![Message::system("be brief"), Message::user("hi")]);
    req.trace = Some("child-1#1".into());
    let resp = backend(&base).complete(&req).await.unwrap();
    assert_eq!(resp.message.content, "Hello, world");
    assert_eq!(resp.finish_reason, "stop");
    assert_eq!((resp.usage.input_tokens, resp.usage.output_tokens), (5, 2));

    let sent = &mock.bodies()[0];
    assert_eq!(sent["stream"], json!(true));
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    assert_eq!(sent["model"], "test-model");
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    );
    // No tools: neither tools nor tool_choice; the trace never leaves the process.
    assert!(sent.get("tools").is_none() && sent.get("tool_choice").is_none());
    assert!(!sent.to_string().contains("child-1#1"));
    let h = mock.headers(0);
    assert_eq!(h["authorization"], "Bearer sk-test");
    assert_eq!(h["x-title"], "nlah");
}

#[tokio::test]
async fn streamed_tool_call_split_across_chunks() {
    let mut pieces = vec![
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_abc",
            "type": "function", "function": {"name": "shell", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"cmd\": "}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"ls -"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "la\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(
            json!({"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920},
            "completion_tokens_details": {"reasoning_tokens": 256}}),
        ),
        "data: [DONE]\n\n".into(),
    ];
    // Cut the byte stream in the middle of events too.
    let joined = pieces.concat();
    let (a, b) = joined.split_at(joined.len() / 3);
    let (b, c) = b.split_at(b.len() / 2);
    pieces = vec![a.into(), b.into(), c.into()];
    let (base, _mock) = serve(vec![Reply::Sse(pieces)]).await;
    let resp = backend(&base)
        .complete(&request(vec![Message::user("list")]))
        .await
        .unwrap();
    assert_eq!(
        resp.message.tool_calls,
        vec![ToolCall {
            id: "call_abc".into(),
            name: "shell".into(),
            arguments: "{\"cmd\": \"ls -la\"}".into()
        }]
    );
    assert_eq!(resp.message.content, "");
    assert_eq!(resp.finish_reason, "tool_calls");
    let u = resp.usage;
    assert_eq!(
        (
            u.input_tokens,
            u.cached_input_tokens,
            u.output_tokens,
            u.reasoning_tokens
        ),
        (2006, 1920, 300, 256)
    );
    assert_eq!(u.calls, 1);
}

#[tokio::test]
async fn two_parallel_tool_calls_by_index() {
    let pieces = vec![
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "read", "arguments": "{\"p\":"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "write", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"q\":2}"}}]}),
            Some("tool_calls"),
        ),
        "data: [DONE]\n\n".into(),
    ];
    let (base, _mock) = serve(vec![Reply::Sse(pieces)]).await;
    let resp = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap();
    let calls: Vec<_> = resp
        .message
        .tool_calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(
        calls,
        [("a", "read", "{\"p\":1}"), ("b", "write", "{\"q\":2}")]
    );
}

#[tokio::test]
async fn llama_cpp_python_tool_stream() {
    // llama-cpp-python repeats id and name in every delta and fills the legacy `function_call`
    // (with a name that may be wrong); only `tool_calls` counts.
    let delta = |args: &str| {
        json!({"role": null, "content": null,
               "function_call": {"name": "wrong_name", "arguments": args},
               "tool_calls": [{"index": 0, "id": "call__0_shell_cmpl-1", "type": "function",
                               "function": {"name": "shell", "arguments": args}}]})
    };
    let pieces = vec![
        chunk(
            json!({"role": "assistant", "content": null, "function_call": null, "tool_calls": null}),
            None,
        ),
        chunk(delta("{\"cmd\""), None),
        chunk(delta(": \"pwd\"}"), None),
        chunk(
            json!({"role": null, "content": null, "function_call": null, "tool_calls": null}),
            Some("tool_calls"),
        ),
        ": ping - 2026-01-01 00:00:00\n\n".into(),
        "data: [DONE]\n\n".into(),
    ];
    let (base, _mock) = serve(vec![Reply::Sse(pieces)]).await;
    let resp = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap();
    assert_eq!(
        resp.message.tool_calls,
        vec![ToolCall {
            id: "call__0_shell_cmpl-1".into(),
            name: "shell".into(),
            arguments: "{\"cmd\": \"pwd\"}".into()
        }]
    );
}

#[tokio::test]
async fn done_without_finish_reason_is_malformed() {
    // llama-cpp-python ends an interrupted generation with a bare [DONE].
    let pieces = vec![
        chunk(json!({"role": "assistant", "content": "Hal"}), None),
        "data: [DONE]\n\n".into(),
    ];
    let (base, _mock) = serve(vec![Reply::Sse(pieces)]).await;
    let err = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap_err();
    assert_eq!(err.class(), "malformed", "{err}");
}

#[tokio::test]
async fn streams_without_usage_switch_to_whole_answers() {
    let no_usage = Reply::Sse(vec![
        chunk(json!({"role": "assistant", "content": "one"}), Some("stop")),
        "data: [DONE]\n\n".into(),
    ]);
    let whole = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "two"},
        "finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 1}});
    let (base, mock) = serve(vec![no_usage, Reply::Json(200, vec![], whole.to_string())]).await;
    let b = backend(&base);
    assert!(b.streaming());
    let first = b
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap();
    assert_eq!(
        (first.message.content.as_str(), first.usage.input_tokens),
        ("one", 0)
    );
    assert!(!b.streaming());
    let second = b
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap();
    assert_eq!(
        (second.message.content.as_str(), second.usage.input_tokens),
        ("two", 9)
    );
    let bodies = mock.bodies();
    assert_eq!(bodies[0]["stream"], json!(true));
    assert_eq!(bodies[1]["stream"], json!(false));
    assert!(bodies[1].get("stream_options").is_none());
}

#[tokio::test]
async fn request_shape_with_tools_and_history() {
    let (base, mock) = serve(vec![text_stream("ok")]).await;
    let call = ToolCall {
        id: "call_1".into(),
        name: "shell".into(),
        arguments: "{\"cmd\":\"ls\"}".into(),
    };
    let mut req = request(vec![
        Message::user("list files"),
        Message {
            tool_calls: vec![call],
            ..Message::assistant("")
        },
        Message::tool_result("call_1", "a.txt\nb.txt"),
    ]);
    req.tools = vec![ToolSpec {
        name: "shell".into(),
        description: "run a command".into(),
        parameters: json!({"type": "object", "properties": {"cmd": {"type": "string"}}}).into(),
    }];
    req.tool_choice = ToolChoice::Function("shell".into());
    req.max_tokens = Some(256);
    req.temperature = Some(0.0);
    req.seed = Some(7);
    backend(&base).complete(&req).await.unwrap();

    let sent = &mock.bodies()[0];
    let assistant = &sent["messages"][1];
    // llama.cpp rejects `content: null`.
    assert_eq!(assistant["content"], json!(""));
    assert_eq!(
        assistant["tool_calls"],
        json!([{"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": "{\"cmd\":\"ls\"}"}}])
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "a.txt\nb.txt"})
    );
    assert_eq!(sent["tools"][0]["type"], "function");
    assert_eq!(sent["tools"][0]["function"]["name"], "shell");
    assert_eq!(
        sent["tools"][0]["function"]["parameters"]["properties"]["cmd"]["type"],
        "string"
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "shell"}})
    );
    assert_eq!(sent["max_tokens"], 256);
    assert_eq!(sent["temperature"], 0.0);
    assert_eq!(sent["seed"], 7);
    assert!(!sent.to_string().contains("\"required\""));
}

#[tokio::test]
async fn tool_choice_auto_and_none() {
    let (base, mock) = serve(vec![text_stream("a"), text_stream("b")]).await;
    let b = backend(&base);
    let tool = ToolSpec {
        name: "t".into(),
        description: "d".into(),
        parameters: json!({"type": "object"}).into(),
    };
    for choice in [ToolChoice::Auto, ToolChoice::None] {
        let mut req = request(vec![Message::user("x")]);
        req.tools = vec![tool.clone()];
        req.tool_choice = choice;
        b.complete(&req).await.unwrap();
    }
    let bodies = mock.bodies();
    assert_eq!(bodies[0]["tool_choice"], "auto");
    assert_eq!(bodies[1]["tool_choice"], "none");
}

// ---- failures and retries ----

#[tokio::test]
async fn rate_limited_then_success_honours_retry_after() {
    let limited = Reply::Json(
        429,
        vec![("retry-after", "1")],
        r#"{"error":{"message":"slow down"}}"#.into(),
    );
    let (base, mock) = serve(vec![limited, text_stream("done")]).await;
    let b = backend(&base);
    let req = request(vec![Message::user("x")]);
    let mut notes: Vec<RetryNote> = Vec::new();
    let started = Instant::now();
    let resp = with_retries(
        fast_policy(),
        |n| notes.push(n.clone()),
        || b.complete(&req),
    )
    .await
    .unwrap();
    assert_eq!(resp.message.content, "done");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].class, "rate-limited");
    assert_eq!(notes[0].attempt, 1);
    assert_eq!(notes[0].delay, Duration::from_secs(1));
    assert!(notes[0].error.contains("slow down"), "{}", notes[0].error);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(mock.bodies().len(), 2);
}

#[tokio::test]
async fn server_error_then_success() {
    let (base, mock) = serve(vec![
        Reply::Json(500, vec![], "boom".into()),
        text_stream("fine"),
    ])
    .await;
    let b = backend(&base);
    let req = request(vec![Message::user("x")]);
    let mut notes = Vec::new();
    let resp = with_retries(
        fast_policy(),
        |n| notes.push(n.clone()),
        || b.complete(&req),
    )
    .await
    .unwrap();
    assert_eq!(resp.message.content, "fine");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].class, "server-error");
    assert!(notes[0].delay <= Duration::from_millis(10));
    assert_eq!(mock.bodies().len(), 2);
}

#[tokio::test]
async fn truncated_stream_is_malformed_and_retried() {
    let partial = vec![
        chunk(json!({"role": "assistant", "content": "Hel"}), None),
        "data: {\"id\":".into(),
    ];
    let (base, _mock) = serve(vec![
        Reply::Truncated(partial.clone()),
        Reply::Truncated(partial),
        text_stream("Hello"),
    ])
    .await;
    let b = backend(&base);
    let req = request(vec![Message::user("x")]);
    let err = b.complete(&req).await.unwrap_err();
    assert!(matches!(err, ModelError::Malformed(_)), "{err:?}");
    assert!(err.to_string().contains("broke off"), "{err}");
    assert!(err.retryable());

    let mut notes = Vec::new();
    let resp = with_retries(
        fast_policy(),
        |n| notes.push(n.clone()),
        || b.complete(&req),
    )
    .await
    .unwrap();
    assert_eq!(resp.message.content, "Hello");
    assert_eq!(
        notes.iter().map(|n| n.class).collect::<Vec<_>>(),
        ["malformed"]
    );
}

#[tokio::test]
async fn stream_without_end_is_malformed() {
    // A well-framed body that simply stops: no finish_reason, no [DONE].
    let (base, _mock) = serve(vec![Reply::Sse(vec![chunk(
        json!({"content": "Hel"}),
        None,
    )])])
    .await;
    let err = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap_err();
    assert_eq!(err.class(), "malformed", "{err}");
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let (base, mock) = serve(vec![
        Reply::Json(
            400,
            vec![],
            r#"{"error":{"message":"bad tool schema"}}"#.into(),
        ),
        text_stream("no"),
    ])
    .await;
    let b = backend(&base);
    let req = request(vec![Message::user("x")]);
    let mut notes = Vec::new();
    let err = with_retries(
        fast_policy(),
        |n| notes.push(n.clone()),
        || b.complete(&req),
    )
    .await
    .unwrap_err();
    match &err {
        ModelError::Http {
            status,
            body,
            retry_after,
            ..
        } => {
            assert_eq!(*status, 400);
            assert!(body.contains("bad tool schema"));
            assert_eq!(*retry_after, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.class(), "client-error");
    assert!(notes.is_empty());
    assert_eq!(mock.bodies().len(), 1);
}

#[tokio::test]
async fn error_body_is_capped() {
    let (base, _mock) = serve(vec![Reply::Json(503, vec![], "x".repeat(10_000))]).await;
    let err = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap_err();
    let ModelError::Http {
        body, status: 503, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(body.len() <= 2048 + 4, "{}", body.len());
}

#[tokio::test]
async fn no_choices_is_malformed() {
    let (base, _mock) = serve(vec![Reply::Json(
        200,
        vec![],
        r#"{"id":"x","choices":[]}"#.into(),
    )])
    .await;
    let err = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn invalid_json_is_malformed() {
    let (base, _mock) = serve(vec![Reply::Json(200, vec![], "{not json".into())]).await;
    let err = backend(&base)
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn slow_server_times_out() {
    let (base, _mock) = serve(vec![Reply::Slow(Duration::from_secs(5))]).await;
    let b = OpenAiBackend::new(&base, None, "m", Duration::from_millis(300)).unwrap();
    let err = b
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Timeout { .. }), "{err:?}");
    assert!(err.retryable());
}

#[tokio::test]
async fn unreachable_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let b = backend(&format!("http://127.0.0.1:{port}/v1"));
    let err = b
        .complete(&request(vec![Message::user("x")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.class(), "unreachable");
}

// ---- configuration ----

#[test]
fn missing_key_unless_local() {
    let err = OpenAiBackend::from_parts(Some("https://api.example.com/v1".into()), None, "m")
        .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::MissingKey {
                var: "OPENAI_API_KEY"
            }
        ),
        "{err:?}"
    );
    let err = OpenAiBackend::from_parts(None, Some("  ".into()), "m").unwrap_err();
    assert_eq!(err.class(), "auth");
    // Local servers need no key.
    let b = OpenAiBackend::from_parts(Some("http://127.0.0.1:8080/v1/".into()), None, "m").unwrap();
    assert_eq!(b.endpoint(), "http://127.0.0.1:8080/v1/chat/completions");
    assert!(OpenAiBackend::from_parts(Some("http://localhost:11434/v1".into()), None, "m").is_ok());
    let err = OpenAiBackend::new("not a url", None, "m", Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.class(), "config");
}

#[tokio::test]
async fn no_key_sends_no_authorization() {
    let (base, mock) = serve(vec![text_stream("hi")]).await;
    let b = OpenAiBackend::from_parts(Some(base), None, "m").unwrap();
    b.complete(&request(vec![Message::user("x")]))
        .await
        .unwrap();
    assert!(mock.headers(0).get("authorization").is_none());
}

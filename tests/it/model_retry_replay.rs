//! Retries, recording and replay, and prices.

use std::sync::atomic::{AtomicU32, Ordering};

use std::time::Duration;

use serde_json::{Value, json};

use nlah::model::openai::OpenAiBackend;
use nlah::model::prices::Prices;
use nlah::model::replay::{CassetteLine, Recorder, ReplayBackend};
use nlah::model::retry::{RetryPolicy, with_retries};
use nlah::model::{ChatBackend, ChatRequest, ChatResponse, Message, ModelError};
use nlah::record::Usage;

use crate::support::script::{Reply, Script, chat_request};

// ---- a scripted OpenAI-style server ----

async fn serve(replies: Vec<Reply>) -> (String, Script) {
    let (origin, script) = Script::serve("/v1/chat/completions", replies).await;
    (format!("{origin}/v1"), script)
}

/// A JSON answer with this status and body.
fn status(code: u16, body: &str) -> Reply {
    Reply::Json(code, vec![], body.into())
}

fn completion(text: &str, input: u64, output: u64) -> Reply {
    let body = json!({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
        "finish_reason": "stop"}], "usage": {"prompt_tokens": input, "completion_tokens": output}});
    status(200, &body.to_string())
}

fn request(text: &str, trace: Option<&str>) -> ChatRequest {
    ChatRequest {
        trace: trace.map(str::to_string),
        ..chat_request("gpt-4.1-mini", vec![Message::user(text)])
    }
}

fn answer(text: &str) -> ChatResponse {
    ChatResponse {
        message: Message::assistant(text),
        usage: Usage {
            calls: 1,
            ..Usage::default()
        },
        finish_reason: "stop".into(),
    }
}

fn fast(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
    }
}

// ---- retries without HTTP ----

#[tokio::test]
async fn retries_stop_at_max_attempts_with_the_last_error() {
    let calls = AtomicU32::new(0);
    let mut notes = Vec::new();
    let err = with_retries(
        fast(4),
        |n| notes.push(n.clone()),
        || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Err::<ChatResponse, _>(ModelError::Malformed(format!("attempt {n}"))) }
        },
    )
    .await
    .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(err.to_string(), "malformed response: attempt 4");
    assert_eq!(
        notes.iter().map(|n| n.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(
        notes
            .iter()
            .all(|n| n.class == "malformed" && n.delay <= Duration::from_millis(20))
    );
}

#[tokio::test]
async fn non_retryable_errors_return_at_once() {
    let calls = AtomicU32::new(0);
    let mut notes = Vec::new();
    let err = with_retries(
        fast(5),
        |n| notes.push(n.clone()),
        || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<ChatResponse, _>(ModelError::MissingKey {
                    var: "OPENAI_API_KEY",
                })
            }
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), "auth");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(notes.is_empty());
}

#[tokio::test]
async fn retry_after_is_capped_by_max_delay() {
    let calls = AtomicU32::new(0);
    let mut notes = Vec::new();
    let resp = with_retries(
        fast(3),
        |n| notes.push(n.clone()),
        || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(ModelError::Http {
                        url: "u".into(),
                        status: 429,
                        body: String::new(),
                        retry_after: Some(Duration::from_secs(3600)),
                    })
                } else {
                    Ok(answer("ok"))
                }
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(resp.message.content, "ok");
    assert_eq!(notes[0].delay, Duration::from_millis(20));
}

// ---- recording and replay ----

#[tokio::test]
async fn record_then_replay_by_trace_and_in_order() {
    let (base, mock) = serve(vec![
        completion("first answer", 10, 2),
        completion("second answer", 20, 4),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("run.jsonl");
    let backend = OpenAiBackend::new(
        &base,
        Some("sk-secret-do-not-record".into()),
        "m",
        Duration::from_secs(10),
    )
    .unwrap();
    let recorder = Recorder::new(backend, &cassette).await.unwrap();
    let a = recorder
        .complete(&request("one", Some("plan-1#1")))
        .await
        .unwrap();
    let b = recorder
        .complete(&request("two", Some("execute-1#1")))
        .await
        .unwrap();
    assert_eq!(a.message.content, "first answer");
    assert_eq!(b.message.content, "second answer");
    assert_eq!(mock.bodies().len(), 2);

    let text = std::fs::read_to_string(&cassette).unwrap();
    assert!(!text.contains("sk-secret"), "the cassette holds the key");
    let lines: Vec<CassetteLine> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].trace.as_deref(), Some("plan-1#1"));
    assert_eq!(lines[1].request.messages[0].content, "two");
    let raw: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(raw["trace"], "plan-1#1");
    assert!(raw["response"].is_object() && raw.get("error").is_none());

    // Out of order, by trace.
    let replay = ReplayBackend::open(&cassette).unwrap();
    assert_eq!(replay.len(), 2);
    let rb = replay
        .complete(&request("two", Some("execute-1#1")))
        .await
        .unwrap();
    let ra = replay
        .complete(&request("one", Some("plan-1#1")))
        .await
        .unwrap();
    assert_eq!(rb.message.content, "second answer");
    assert_eq!(ra.message.content, "first answer");
    // Tokens exactly as recorded; no time passes in a replay.
    assert_eq!(
        (
            ra.usage.input_tokens,
            ra.usage.output_tokens,
            ra.usage.calls
        ),
        (10, 2, 1)
    );
    assert_eq!(ra.usage.cost_usd, a.usage.cost_usd);
    assert!(a.usage.cost_usd > 0.0, "gpt-4.1-mini is priced");
    assert_eq!(ra.usage.latency_ms, 0);
    // A used trace has nothing more.
    let err = replay
        .complete(&request("one", Some("plan-1#1")))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Replay(_)), "{err:?}");
    assert!(
        err.to_string().contains("no recorded answer for plan-1#1"),
        "{err}"
    );
    assert_eq!(replay.remaining(), 0);

    // In file order, without traces.
    let replay = ReplayBackend::open(&cassette).unwrap();
    let r1 = replay.complete(&request("?", None)).await.unwrap();
    let r2 = replay.complete(&request("?", None)).await.unwrap();
    assert_eq!(
        (r1.message.content.as_str(), r2.message.content.as_str()),
        ("first answer", "second answer")
    );
    let err = replay.complete(&request("?", None)).await.unwrap_err();
    assert_eq!(err.class(), "replay");
}

#[tokio::test]
async fn unknown_traces_take_the_next_unused_line() {
    let (base, _mock) = serve(vec![
        completion("a", 1, 1),
        completion("b", 1, 1),
        completion("c", 1, 1),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("c.jsonl");
    let rec = Recorder::new(
        OpenAiBackend::new(&base, None, "m", Duration::from_secs(10)).unwrap(),
        &cassette,
    )
    .await
    .unwrap();
    for t in ["x#1", "x#2", "x#3"] {
        rec.complete(&request(t, Some(t))).await.unwrap();
    }
    let replay = ReplayBackend::open(&cassette).unwrap();
    assert_eq!(
        replay
            .complete(&request("", Some("x#2")))
            .await
            .unwrap()
            .message
            .content,
        "b"
    );
    // A trace the cassette does not know: the first line not used yet.
    assert_eq!(
        replay
            .complete(&request("", Some("other#1")))
            .await
            .unwrap()
            .message
            .content,
        "a"
    );
    assert_eq!(
        replay
            .complete(&request("", None))
            .await
            .unwrap()
            .message
            .content,
        "c"
    );
    assert!(replay.complete(&request("", Some("x#1"))).await.is_err());
}

#[tokio::test]
async fn failed_calls_are_recorded_and_replayed() {
    let (base, _mock) = serve(vec![
        status(429, r#"{"error":{"message":"slow down"}}"#),
        completion("ok", 3, 1),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("f.jsonl");
    let rec = Recorder::new(
        OpenAiBackend::new(&base, None, "m", Duration::from_secs(10)).unwrap(),
        &cassette,
    )
    .await
    .unwrap();
    let req = request("x", Some("c#1"));
    let mut notes = Vec::new();
    with_retries(fast(3), |n| notes.push(n.clone()), || rec.complete(&req))
        .await
        .unwrap();
    assert_eq!(notes.len(), 1);

    let text = std::fs::read_to_string(&cassette).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["error"]["class"], "rate-limited");
    assert!(
        first["error"]["message"]
            .as_str()
            .unwrap()
            .contains("slow down")
    );
    assert!(first.get("response").is_none());

    // The replay fails and recovers the same way, without waiting.
    let replay = ReplayBackend::open(&cassette).unwrap();
    let mut notes = Vec::new();
    let slow = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_secs(10),
        max_delay: Duration::from_secs(10),
    };
    let started = std::time::Instant::now();
    let resp = with_retries(slow, |n| notes.push(n.clone()), || replay.complete(&req))
        .await
        .unwrap();
    assert_eq!(resp.message.content, "ok");
    assert_eq!(
        notes.iter().map(|n| n.class).collect::<Vec<_>>(),
        ["rate-limited"]
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn broken_cassettes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "{\"trace\": null}\n").unwrap();
    let err = ReplayBackend::open(&path).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    assert!(ReplayBackend::open(dir.path().join("missing.jsonl")).is_err());
}

// ---- prices ----

#[test]
fn known_model_cost() {
    let prices = Prices::default();
    let usage = Usage {
        input_tokens: 1_000_000,
        cached_input_tokens: 200_000,
        output_tokens: 100_000,
        ..Usage::default()
    };
    // gpt-4.1: $2 input, $0.50 cached input, $8 output per million.
    let cost = prices.cost("gpt-4.1", &usage).unwrap();
    assert!(
        (cost - (0.8 * 2.0 + 0.2 * 0.5 + 0.1 * 8.0)).abs() < 1e-9,
        "{cost}"
    );
    assert!(prices.cost("claude-sonnet-4-5", &usage).unwrap() > 0.0);
    assert_eq!(prices.cost("my-local-model", &usage), None);
    assert!(!prices.is_priced("my-local-model"));
}

#[test]
fn override_file_changes_prices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.toml");
    std::fs::write(
        &path,
        "[models.\"gpt-4.1\"]\ninput = 1.0\ncached_input = 0.25\noutput = 4.0\n\n[models.\"smollm2\"]\ninput = 0.5\noutput = 0.5\n",
    )
    .unwrap();
    let mut prices = Prices::default();
    prices.load_overrides(&path).unwrap();
    let usage = Usage {
        input_tokens: 1_000_000,
        output_tokens: 1_000_000,
        ..Usage::default()
    };
    assert!((prices.cost("gpt-4.1", &usage).unwrap() - 5.0).abs() < 1e-9);
    assert!((prices.cost("smollm2", &usage).unwrap() - 1.0).abs() < 1e-9);
    // Models the file does not name keep their list price.
    assert_eq!(prices.lookup("gpt-4o"), Prices::default().lookup("gpt-4o"));

    std::fs::write(&path, "[models.x]\ninput = \"cheap\"\n").unwrap();
    let err = Prices::default().load_overrides(&path).unwrap_err();
    assert_eq!(err.class(), "config");
}

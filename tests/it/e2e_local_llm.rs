//! End to end against real small instruction models served on 127.0.0.1 over the OpenAI
//! protocol (llama-cpp-python's server with SmolLM2-135M and Qwen2.5-Coder-0.5B under two
//! aliases; `.ci/run` starts it with `examples/small-models/serve.sh` and sets
//! `NLAH_LOCAL_LLM_URL` (the base URL), `NLAH_LOCAL_LLM_MODEL` (SmolLM2's alias) and
//! `NLAH_LOCAL_LLM_QWEN` (Qwen's alias)). They are ignored by default; run anyway without those
//! variables, they fail.
//!
//! They use a compact charter and harness (prompt processing on two cores dominates their time;
//! the guarantees do not depend on prompt size). They assert what the runtime guarantees — a complete workspace and history, usage totals equal
//! to the sum of the server's own usage fields, budgets enforced, a clean failure when the model
//! never does what the stage asks — never the quality of the model's answers.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::Value;

use crate::support::TestEnv;
use crate::support::outside::require_env;

/// The model server's base URL and model name.
fn server() -> (String, String) {
    let what = "a local OpenAI-compatible model server";
    (
        require_env("NLAH_LOCAL_LLM_URL", what),
        require_env("NLAH_LOCAL_LLM_MODEL", what),
    )
}

/// Sums the `usage` objects in a server body: a JSON answer, or SSE chunks.
fn usage_of(body: &str) -> (u64, u64, u64) {
    let mut sum = (0, 0, 0);
    let mut add = |v: &Value| {
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            sum.0 += 1;
            sum.1 += u["prompt_tokens"].as_u64().unwrap_or(0);
            sum.2 += u["completion_tokens"].as_u64().unwrap_or(0);
        }
    };
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        add(&v);
        return sum;
    }
    for line in body.lines() {
        let data = line
            .strip_prefix("data:")
            .map(str::trim)
            .filter(|d| *d != "[DONE]");
        if let Some(v) = data.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
            add(&v);
        }
    }
    sum
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    seen: Arc<Mutex<(u64, u64, u64)>>,
}

async fn forward(State(p): State<Proxy>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("{}/chat/completions", p.upstream))
        .body(body.to_vec());
    if let Some(ct) = headers.get("content-type") {
        req = req.header("content-type", ct.as_bytes());
    }
    match req.send().await {
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            HeaderMap::new(),
            e.to_string().into_bytes(),
        ),
        Ok(resp) => {
            let status =
                StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut out = HeaderMap::new();
            if let Some(ct) = resp.headers().get("content-type") {
                out.insert(
                    "content-type",
                    ct.to_str().unwrap_or("application/json").parse().unwrap(),
                );
            }
            let bytes = resp.bytes().await.unwrap_or_default().to_vec();
            let (n, i, o) = usage_of(&String::from_utf8_lossy(&bytes));
            let mut s = p.seen.lock().unwrap();
            s.0 += n;
            s.1 += i;
            s.2 += o;
            (status, out, bytes)
        }
    }
}

/// A recording proxy in front of the model server: what the server itself reported.
async fn proxy(upstream: &str) -> (String, Arc<Mutex<(u64, u64, u64)>>) {
    let seen = Arc::new(Mutex::new((0, 0, 0)));
    let app = Router::new()
        .route("/v1/chat/completions", post(forward))
        .with_state(Proxy {
            upstream: upstream.trim_end_matches('/').to_string(),
            seen: seen.clone(),
        });
    let (origin, _) = crate::support::serve(app).await;
    (format!("{origin}/v1"), seen)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a local model server; set NLAH_LOCAL_LLM_URL and NLAH_LOCAL_LLM_MODEL (.ci/run does)"]
async fn local_llm_forced_tool_calls_are_accounted_exactly() {
    let (url, model) = server();
    let (base, seen) = proxy(&url).await;
    let spec = format!("openai:{model}");
    let ran = TestEnv::with_base_url(&base)
        .nlah_run(&[
            "tests/fixtures/tiny",
            "tests/fixtures/tasks/write-result",
            "--charter",
            "tests/fixtures/charter-mini",
            "--model",
            &spec,
            "--tool-choice",
            "shell",
            "--max-steps",
            "4",
            "--max-tokens",
            "96",
            "--temperature",
            "0",
        ])
        .await;
    assert!(
        ran.code == 0 || ran.code == 1,
        "exit {}: {}",
        ran.code,
        ran.stderr
    );
    for f in [
        "TASK.md",
        "SKILL.md",
        "RESPONSE.md",
        "run.json",
        "history/events.jsonl",
        "children/execute-1/TASK.md",
        "children/execute-1/transcript.jsonl",
    ] {
        assert!(ran.ws.join(f).exists(), "{f} missing");
    }
    let r = ran.record();
    let (calls, prompt, completion) = *seen.lock().unwrap();
    assert!(calls >= 1, "the model was called");
    assert_eq!(r["metrics"]["total"]["calls"], calls);
    assert_eq!(r["metrics"]["total"]["input_tokens"], prompt);
    assert_eq!(r["metrics"]["total"]["output_tokens"], completion);
    assert!(
        !ran.kinds("tool-call").is_empty(),
        "a forced tool call was executed"
    );
    assert!(ran.story().last().unwrap().starts_with("run finished:"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a local model server; set NLAH_LOCAL_LLM_URL and NLAH_LOCAL_LLM_MODEL (.ci/run does)"]
async fn local_llm_budgets_are_enforced() {
    let (url, model) = server();
    let spec = format!("openai:{model}");
    let ran = TestEnv::with_base_url(&url)
        .nlah_run(&[
            "tests/fixtures/budget",
            "tests/fixtures/tasks/write-result",
            "--charter",
            "tests/fixtures/charter-mini",
            "--model",
            &spec,
            "--tool-choice",
            "shell",
            "--max-steps",
            "30",
            "--max-tokens",
            "64",
            "--temperature",
            "0",
        ])
        .await;
    let r = ran.record();
    assert!(r["metrics"]["tool_calls"].as_u64().unwrap() <= 5, "{r}");
    // Either the model reported within budget, or the budget stopped it.
    if r["metrics"]["tool_calls"] == 5 {
        assert_eq!(ran.kinds("budget-hit").len(), 1);
    }
    assert!(ran.story().last().unwrap().starts_with("run finished:"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a local model server; set NLAH_LOCAL_LLM_URL and NLAH_LOCAL_LLM_MODEL (.ci/run does)"]
async fn local_llm_that_never_does_the_stage_fails_cleanly() {
    let (url, model) = server();
    let spec = format!("openai:{model}");
    // Not forced, SmolLM2 answers in prose and never calls a tool or writes RESPONSE.md.
    let ran = TestEnv::with_base_url(&url)
        .nlah_run(&[
            "tests/fixtures/tiny",
            "tests/fixtures/tasks/write-result",
            "--charter",
            "tests/fixtures/charter-mini",
            "--model",
            &spec,
            "--tool-choice",
            "none",
            "--max-steps",
            "2",
            "--max-tokens",
            "48",
            "--temperature",
            "0",
        ])
        .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let r = ran.record();
    assert_eq!(r["outcome"], "failed");
    assert_eq!(ran.kinds("child-finished")[0]["status"], "no-response");
    assert!(
        ran.story()
            .last()
            .unwrap()
            .starts_with("run finished: failed")
    );
}

/// The Qwen model's alias on the same server (`.ci/run` serves both).
fn qwen() -> String {
    require_env(
        "NLAH_LOCAL_LLM_QWEN",
        "Qwen2.5-Coder-0.5B on the local model server",
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a local model server with Qwen2.5-Coder-0.5B; set NLAH_LOCAL_LLM_URL and NLAH_LOCAL_LLM_QWEN (.ci/run does)"]
async fn local_qwen_forced_to_any_tool_loses_nothing_at_the_interface() {
    let (url, _) = server();
    let model = qwen();
    let (base, seen) = proxy(&url).await;
    let spec = format!("openai:{model}");
    let ran = TestEnv::with_base_url(&base)
        .nlah_run(&[
            "tests/fixtures/tiny",
            "tests/fixtures/tasks/write-result",
            "--charter",
            "tests/fixtures/charter-mini",
            "--model",
            &spec,
            "--tool-choice",
            "any",
            "--max-steps",
            "4",
            "--max-tokens",
            "128",
            "--temperature",
            "0",
        ])
        .await;
    assert!(
        ran.code == 0 || ran.code == 1,
        "exit {}: {}",
        ran.code,
        ran.stderr
    );
    let r = ran.record();
    assert_ne!(r["outcome"], "error", "{r}");
    // Every call the server answered is in run.json, and in the events.
    let (calls, prompt, completion) = *seen.lock().unwrap();
    assert!(calls >= 1, "the model was called");
    assert_eq!(r["metrics"]["total"]["calls"], calls);
    assert_eq!(r["metrics"]["total"]["input_tokens"], prompt);
    assert_eq!(r["metrics"]["total"]["output_tokens"], completion);
    let events: u64 = ran
        .kinds("model-call")
        .iter()
        .map(|e| e["usage"]["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(events, calls);
    // Forced through the dispatching tool, every answer was a call of a real tool with
    // arguments the runtime could read.
    let tools = ran.kinds("tool-call");
    assert!(!tools.is_empty(), "no tool was called");
    for t in &tools {
        assert_ne!(t["tool"], "call_tool", "{t}");
        assert!(!t["summary"].as_str().unwrap_or("").is_empty(), "{t}");
    }
    let unreadable = ran
        .kinds("tool-call")
        .iter()
        .filter(|t| t["ok"] == false && t["exit_code"].is_null())
        .count();
    let transcript =
        std::fs::read_to_string(ran.ws.join("children/execute-1/transcript.jsonl")).unwrap();
    assert!(
        !transcript.contains("not valid JSON"),
        "{unreadable} refused calls: {transcript}"
    );
    assert_eq!(r["requests"]["max_tokens"], 128);
    assert!(ran.story().last().unwrap().starts_with("run finished:"));
}

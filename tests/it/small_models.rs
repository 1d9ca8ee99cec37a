//! Small local models as children: what they send that a hosted model rarely does (empty
//! answers, raw control characters, HTML entities, tool calls written as text, runaway
//! generations, prompts over the context window), reproduced by scripted servers on 127.0.0.1,
//! and what the runtime must make of it (issue 16).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::env::output;
use crate::support::script::{Reply, Script};
use crate::support::{Answer, TestEnv, Turn};

const HELLO: &str = "examples/tasks/hello-greeting";

fn finish(status: &str) -> Answer {
    Answer::call(
        "finish",
        json!({"status": status, "report": "wrote repo/greeting.txt"}),
    )
}

fn greet() -> Answer {
    Answer::write("repo/greeting.txt", "Hello from nlah!\n")
}

/// A whole completion whose message carries these tool calls, arguments as raw text (they may
/// be invalid JSON), and `content`.
fn completion(content: &str, calls: &[(&str, &str)]) -> Reply {
    let calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"id": format!("c{i}"), "type": "function",
                   "function": {"name": name, "arguments": args}})
        })
        .collect();
    let mut message = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let body = json!({
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    });
    Reply::Json(200, vec![], body.to_string())
}

/// The loop's repairs: `intervention` events of layer `loop` (no `interface` events any more).
fn interface_kinds(ran: &crate::support::env::Ran) -> Vec<String> {
    assert!(ran.kinds("interface").is_empty());
    ran.kinds("intervention")
        .iter()
        .filter(|e| e["layer"] == "loop")
        .map(|e| e["rule"].as_str().unwrap().to_string())
        .collect()
}

/// Calls in run.json and in the model-call events: they must agree.
fn calls(ran: &crate::support::env::Ran) -> (u64, u64) {
    let events: u64 = ran
        .kinds("model-call")
        .iter()
        .map(|e| e["usage"]["calls"].as_u64().unwrap())
        .sum();
    (
        ran.record()["metrics"]["total"]["calls"].as_u64().unwrap(),
        events,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_answer_is_nudged_and_the_child_goes_on() {
    let env = TestEnv::with_model(|t: &Turn| match t.turn {
        0 => Answer::text(""),
        1 => greet(),
        _ => finish("done"),
    })
    .await;
    let ran = env
        .nlah_run(&["harness-skills/basic", HELLO, "--model", "openai:m"])
        .await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(interface_kinds(&ran), ["empty-answer"]);
    let rec = ran.record();
    assert_eq!(rec["metrics"]["empty_answers"], 1);
    assert_eq!(calls(&ran), (3, 3));
    let reqs = env.model().requests();
    assert_eq!(reqs[0]["tool_choice"], "auto");
    // The nudge is a user message, and the step after it must call some tool.
    let last = reqs[1]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "user");
    assert!(
        last["content"].as_str().unwrap().contains("empty"),
        "{last}"
    );
    assert_eq!(reqs[1]["tool_choice"]["function"]["name"], "call_tool");
    // Generation is bounded by default, and the record says so.
    assert!(reqs.iter().all(|r| r["max_tokens"] == 4096));
    assert_eq!(rec["requests"]["max_tokens"], 4096);
    let response = std::fs::read_to_string(ran.ws.join("children/execute-1/RESPONSE.md")).unwrap();
    assert!(response.starts_with("status: done\n"), "{response}");
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_answers_past_the_nudges_end_the_child() {
    let env = TestEnv::with_model(|_: &Turn| Answer::text("")).await;
    let ran = env
        .nlah_run(&["harness-skills/basic", HELLO, "--model", "openai:m"])
        .await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(interface_kinds(&ran), ["empty-answer", "empty-answer"]);
    assert_eq!(ran.record()["metrics"]["empty_answers"], 2);
    assert_eq!(calls(&ran), (3, 3));
    let finished = &ran.kinds("child-finished")[0];
    assert_eq!(finished["status"], "no-response");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forced_tool_leaves_the_others_and_finish_callable() {
    let env = TestEnv::with_model(|t: &Turn| match t.turn {
        0 => Answer::shell("printf 'Hello from nlah!\\n' > repo/greeting.txt"),
        _ => finish("done"),
    })
    .await;
    let ran = env
        .nlah_run(&[
            "harness-skills/basic",
            HELLO,
            "--model",
            "openai:m",
            "--tool-choice",
            "shell",
        ])
        .await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let reqs = env.model().requests();
    assert_eq!(reqs.len(), 2, "finish ends the child at once");
    assert_eq!(reqs[0]["tool_choice"]["function"]["name"], "shell");
    let offered: Vec<&str> = reqs[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["shell", "read", "write", "edit", "finish"]);
    // Later steps force "some tool": one dispatching tool whose alternatives are all of them.
    assert_eq!(reqs[1]["tool_choice"]["function"]["name"], "call_tool");
    let tools = reqs[1]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1);
    let alternatives: Vec<&str> = tools[0]["function"]["parameters"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["properties"]["tool"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(alternatives, offered);
    let finished = &ran.kinds("child-finished")[0];
    assert_eq!(finished["status"], "done");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dispatching_tool_is_unwrapped_into_the_chosen_call() {
    let wrapped = |tool: &str, args: Value| {
        completion(
            "",
            &[(
                "call_tool",
                &json!({"tool": tool, "arguments": args}).to_string(),
            )],
        )
    };
    let (origin, script) = Script::serve(
        "/v1/chat/completions",
        vec![
            // Cut off at the token limit inside a string: no tool runs, the model is told why.
            completion(
                "",
                &[("call_tool", r#"{"tool": "write", "arguments": {"path": "repo/greeting.txt", "content": "Hel"#)],
            ),
            wrapped(
                "write",
                json!({"path": "repo/greeting.txt", "content": "Hello from nlah!\n"}),
            ),
            wrapped("finish", json!({"status": "done", "report": "done"})),
        ],
    )
    .await;
    let env = TestEnv::with_base_url(&format!("{origin}/v1"));
    let ran = env
        .nlah_run(&[
            "harness-skills/basic",
            HELLO,
            "--model",
            "openai:m",
            "--tool-choice",
            "any",
        ])
        .await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(script.bodies().len(), 3);
    let tools: Vec<String> = ran
        .kinds("tool-call")
        .iter()
        .map(|e| e["tool"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tools, ["call_tool", "write", "finish"]);
    let told = script.bodies()[1]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(told.contains("not complete JSON"), "{told}");
}

#[tokio::test(flavor = "multi_thread")]
async fn control_characters_entities_and_text_calls_are_repaired_and_recorded() {
    let (origin, _script) = Script::serve(
        "/v1/chat/completions",
        vec![
            // A raw newline inside a JSON string, as SmolLM2 writes a third of the time.
            completion(
                "",
                &[(
                    "write",
                    "{\"path\": \"repo/notes.txt\", \"content\": \"line 1\nline 2\"}",
                )],
            ),
            // What chatml-function-calling's escaping makes Qwen copy.
            completion(
                "",
                &[(
                    "shell",
                    r#"{"command": "echo 'Hello from nlah!' &gt; repo/greeting.txt &amp;&amp; true"}"#,
                )],
            ),
            // A call written as text, as a model's own chat template has it.
            completion(
                "Done.\n<tool_call>\n{\"name\": \"finish\", \"arguments\": {\"status\": \"done\", \"report\": \"ok\"}}\n</tool_call>",
                &[],
            ),
        ],
    )
    .await;
    let env = TestEnv::with_base_url(&format!("{origin}/v1"));
    let ran = env
        .nlah_run(&["harness-skills/basic", HELLO, "--model", "openai:m"])
        .await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(
        std::fs::read_to_string(ran.ws.join("repo/notes.txt")).unwrap(),
        "line 1\nline 2"
    );
    assert_eq!(
        std::fs::read_to_string(ran.ws.join("repo/greeting.txt")).unwrap(),
        "Hello from nlah!\n"
    );
    assert_eq!(
        interface_kinds(&ran),
        ["control-characters", "html-entities", "text-tool-call"]
    );
    assert_eq!(ran.record()["metrics"]["repairs"], 3);
    assert!(
        ran.kinds("tool-call").iter().all(|e| e["ok"] == true),
        "{:?}",
        ran.kinds("tool-call")
    );
}

/// `harness-skills/basic` copied to `dir`, its wall time set to `wall`.
fn basic_with_wall_time(dir: &Path, wall: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness-skills/basic");
    let dst = dir.join("basic");
    copy_dir(&src, &dst);
    let skill = dst.join("SKILL.md");
    let text = std::fs::read_to_string(&skill).unwrap();
    assert!(text.contains("| wall time | 20 min |"));
    std::fs::write(
        &skill,
        text.replace("| wall time | 20 min |", &format!("| wall time | {wall} |")),
    )
    .unwrap();
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_never_ending_stream_is_cut_at_the_wall_time_and_still_counted() {
    let ended = Arc::new(AtomicBool::new(false));
    let chunk = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"la \"}}]}\n\n";
    let (origin, script) = Script::serve(
        "/v1/chat/completions",
        vec![Reply::Endless(chunk.into(), ended.clone())],
    )
    .await;
    let env = TestEnv::with_base_url(&format!("{origin}/v1"));
    let harness = basic_with_wall_time(env.root(), "3 s");
    let ws = env.root().join("ws");
    let mut cmd = env.nlah();
    cmd.env("NLAH_OPENAI_STREAM", "1")
        .arg("run")
        .arg(&harness)
        .args([
            HELLO,
            "--model",
            "openai:m",
            "--retries",
            "1",
            "--workspace",
        ])
        .arg(&ws);
    let started = Instant::now();
    let o = output(cmd).await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    // The client hung up: the server's stream was dropped.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ended.load(Ordering::SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ended.load(Ordering::SeqCst), "the stream was not abandoned");
    assert_eq!(script.bodies().len(), 1);
    assert_eq!(script.bodies()[0]["stream"], true);
    let ran = crate::support::env::Ran::at(&env, ws);
    let cut: Vec<Value> = ran
        .kinds("model-call")
        .into_iter()
        .filter(|e| e["finish_reason"] == "cancelled")
        .collect();
    assert_eq!(cut.len(), 1, "{:?}", ran.kinds("model-call"));
    assert_eq!(calls(&ran), (1, 1));
    assert_eq!(ran.kinds("budget-hit")[0]["budget"], "wall time");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_cut_at_the_wall_time_is_recorded_and_its_replay_is_cut_there_too() {
    let chunk = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"la \"}}]}\n\n";
    let ended = Arc::new(AtomicBool::new(false));
    let (origin, _script) = Script::serve(
        "/v1/chat/completions",
        vec![Reply::Endless(chunk.into(), ended)],
    )
    .await;
    let env = TestEnv::with_base_url(&format!("{origin}/v1"));
    let cassette = env.root().join("cassette.jsonl");
    let run = |harness: &Path, model: &str, ws: &Path| {
        let mut cmd = env.nlah();
        cmd.env("NLAH_OPENAI_STREAM", "1")
            .arg("run")
            .arg(harness)
            .args([HELLO, "--model", model, "--retries", "1", "--workspace"])
            .arg(ws);
        cmd
    };
    let recorded = env.root().join("recorded");
    let mut cmd = run(
        &basic_with_wall_time(&env.root().join("short"), "3 s"),
        "openai:m",
        &recorded,
    );
    cmd.arg("--record").arg(&cassette);
    assert_eq!(output(cmd).await.status.code(), Some(1));
    let lines: Vec<Value> = std::fs::read_to_string(&cassette)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["cut"], true);
    assert_eq!(lines[0]["trace"], "execute-1#1");
    assert!(lines[0].get("response").is_none() && lines[0].get("error").is_none());

    // Replayed calls take no time, and this harness allows 10 min: only the cassette can cut
    // the replay, and it cuts it where the recording was cut.
    let replayed = env.root().join("replayed");
    let spec = format!("replay:{}", cassette.display());
    let o = output(run(
        &basic_with_wall_time(&env.root().join("long"), "10 min"),
        &spec,
        &replayed,
    ))
    .await;
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let (a, b) = (
        crate::support::env::Ran::at(&env, recorded),
        crate::support::env::Ran::at(&env, replayed),
    );
    assert_eq!(calls(&b), calls(&a));
    assert_eq!(b.kinds("budget-hit")[0]["budget"], "wall time");
    assert_eq!(b.record()["outcome"], a.record()["outcome"]);
    assert_eq!(b.record()["failure"], a.record()["failure"]);
}

fn overflow_reply() -> Reply {
    Reply::Json(
        400,
        vec![],
        json!({"error": {"message": "Requested tokens (8563) exceed context window of 8192",
                         "type": "invalid_request_error", "code": "context_length_exceeded"}})
        .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_context_overflow_answer_is_a_configuration_failure_that_resume_keeps() {
    let (origin, script) = Script::serve(
        "/v1/chat/completions",
        vec![overflow_reply(), overflow_reply()],
    )
    .await;
    let env = TestEnv::with_base_url(&format!("{origin}/v1"));
    let ran = env
        .nlah_run(&["harness-skills/basic", HELLO, "--model", "openai:m"])
        .await;
    assert_eq!(script.bodies().len(), 1, "an overflow is not retried");
    let rec = ran.record();
    assert_eq!(
        rec["outcome"], "failed",
        "a result, not an infrastructure error"
    );
    assert_eq!(rec["error_class"], "context-overflow");
    assert_eq!(
        calls(&ran),
        (1, 1),
        "the call reached the server: it counts"
    );
    assert_eq!(
        ran.kinds("model-call")[0]["finish_reason"],
        "error: context-overflow"
    );

    // In a matrix, the cell is finished: a resume runs nothing again.
    let tasks = env.root().join("tasks");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(HELLO),
        &tasks.join("hello-greeting"),
    );
    let out = env.root().join("out");
    let eval = |resume: bool| {
        let mut cmd = env.nlah();
        cmd.args(["eval", "harness-skills/basic"])
            .arg(&tasks)
            .args(["--model", "openai:m", "--retries", "1", "--json", "--out"])
            .arg(&out);
        if resume {
            cmd.arg("--resume");
        }
        output(cmd)
    };
    let first = eval(false).await;
    assert_eq!(script.bodies().len(), 2, "{first:?}");
    let again = eval(false).await;
    assert_eq!(
        script.bodies().len(),
        2,
        "the overflowed cell ran again: {again:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_the_context_window_is_not_sent() {
    let env = TestEnv::with_model(|_: &Turn| greet()).await;
    let ran = env
        .nlah_run(&[
            "harness-skills/basic",
            HELLO,
            "--model",
            "openai:m",
            "--context-window",
            "300",
        ])
        .await;
    assert!(env.model().requests().is_empty());
    let rec = ran.record();
    assert_eq!(rec["error_class"], "context-overflow");
    assert_eq!(rec["requests"]["context_window"], 300);
    assert_eq!(calls(&ran), (0, 0));
    let err = &ran.kinds("error")[0];
    assert_eq!(err["class"], "context-overflow");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("context window of 300 tokens"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_context_window_the_server_reports_is_checked() {
    use axum::routing::{get, post};
    let chats = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = chats.clone();
    let app = axum::Router::new()
        .route(
            "/v1/models",
            get(|| async { axum::Json(json!({"data": [{"id": "m", "max_model_len": 300}]})) }),
        )
        .route(
            "/v1/chat/completions",
            post(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }
            }),
        );
    let (origin, _) = crate::support::serve(app).await;
    let env = TestEnv::with_base_url(&format!("{origin}/v1"));
    let ran = env
        .nlah_run(&["harness-skills/basic", HELLO, "--model", "openai:m"])
        .await;
    assert_eq!(
        chats.load(Ordering::SeqCst),
        0,
        "an oversized request was sent"
    );
    let rec = ran.record();
    assert_eq!(rec["error_class"], "context-overflow");
    assert_eq!(rec["requests"]["context_window"], 300);
}

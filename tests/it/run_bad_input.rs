//! Bad input to `nlah run`: each case gets a clear message and a history record, the run ends
//! cleanly, and the workspace stays consistent (a final commit says how it ended).

use crate::support::{Answer, Ran, TestEnv, Turn, diligent};
use serde_json::json;

fn assert_clean_end(ran: &Ran, outcome: &str) {
    let r = ran.record();
    assert_eq!(r["outcome"], outcome, "{}\n{}", ran.stdout, ran.stderr);
    assert!(r["finished"].is_string());
    let story = ran.story();
    assert!(
        story
            .last()
            .unwrap()
            .starts_with(&format!("run finished: {outcome}")),
        "{story:?}"
    );
    let repo = git2::Repository::open(&ran.ws).unwrap();
    let dirty = repo
        .statuses(None)
        .unwrap()
        .iter()
        .filter(|s| !s.status().is_ignored())
        .count();
    assert_eq!(dirty, 0, "everything is committed");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_api_key_is_a_usage_error_before_any_workspace() {
    // A non-loopback endpoint needs a key; the check happens before anything is created.
    let ran = TestEnv::with_base_url("https://api.example.invalid/v1")
        .nlah_run(&[
            "harness-skills/basic",
            "tests/fixtures/tasks/write-result",
            "--model",
            "openai:gpt-4.1-mini",
        ])
        .await;
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("OPENAI_API_KEY"), "{}", ran.stderr);
    assert!(!ran.ws.exists(), "no workspace is left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_is_an_infrastructure_error_after_retries() {
    let ran = TestEnv::new()
        .nlah_run(&[
            "harness-skills/basic",
            "tests/fixtures/tasks/write-result",
            "--model",
            "openai:m",
        ])
        .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_clean_end(&ran, "error");
    assert_eq!(ran.record()["error_class"], "unreachable");
    assert!(!ran.kinds("retry").is_empty(), "each retry is in history");
    assert!(
        ran.record()["verifier"].is_null(),
        "no verdict on a run the infrastructure broke"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_never_calls_a_tool_fails_cleanly() {
    let env = TestEnv::with_model(|_: &Turn| Answer::text("I would rather not.")).await;
    let ran = env.run_basic("openai:m").await;
    assert_eq!(ran.code, 1);
    assert_clean_end(&ran, "failed");
    let finished = ran.kinds("child-finished");
    assert_eq!(finished[0]["status"], "no-response");
    assert!(
        ran.kinds("stage-finished")[0]["reason"]
            .as_str()
            .unwrap()
            .contains("wrote no RESPONSE.md")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_tools_and_malformed_arguments_get_corrections() {
    let env = TestEnv::with_model(|t: &Turn| match t.turn {
        0 => Answer::call("frobnicate", json!({"x": 1})),
        1 => Answer {
            text: String::new(),
            calls: vec![("shell".into(), json!({"cmd": "ls"}))],
        },
        2 => Answer::call("write", json!("not an object")),
        n => {
            let mut d = diligent(&Turn {
                turn: n - 3,
                ..t.clone()
            });
            if d.calls.is_empty() && n == 3 {
                d = Answer::write("artifacts/result.txt", "ok\n");
            }
            d
        }
    })
    .await;
    let ran = env.run_basic("openai:m").await;
    let tools = ran.kinds("tool-call");
    assert_eq!(tools[0]["tool"], "frobnicate");
    assert_eq!(tools[0]["ok"], false);
    assert_eq!(
        tools[1]["ok"], false,
        "shell with `cmd` instead of `command`"
    );
    assert_eq!(tools[2]["ok"], false);
    // The corrections reached the model as tool results.
    let reqs = env.model().requests();
    let fourth = reqs[3]["messages"].as_array().unwrap();
    let results: Vec<&str> = fourth
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(results[0].contains("frobnicate"), "{results:?}");
    assert!(results[1].contains("command"), "{results:?}");
    assert_clean_end(&ran, ran.record()["outcome"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gate_script_that_hangs_is_killed_at_its_limit() {
    let env = TestEnv::with_model(diligent).await;
    let started = std::time::Instant::now();
    let ran = env
        .nlah_run(&[
            "tests/fixtures/hang",
            "tests/fixtures/tasks/write-result",
            "--model",
            "openai:m",
        ])
        .await;
    assert!(
        started.elapsed().as_secs() < 30,
        "the 60 s script was not waited for"
    );
    let failed = ran.kinds("gate-failed");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("did not finish within 2 s"),
        "{failed:?}"
    );
    // The gate's command waited: the child's end was committed before it, on its own.
    let story = ran.story();
    let finished = story
        .iter()
        .position(|s| s.starts_with("child execute-1 finished"));
    let judged = story
        .iter()
        .position(|s| s.starts_with("stage execute attempt 1 failed"));
    assert!(
        matches!((finished, judged), (Some(f), Some(j)) if f < j),
        "{story:?}"
    );
    assert_clean_end(&ran, "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_stops_the_run_in_code() {
    // The model keeps calling tools forever; the tool-call budget (5) stops it, and no retry
    // runs once a budget is spent.
    let env = TestEnv::with_model(|t: &Turn| Answer::shell(&format!("echo step {}", t.turn))).await;
    let ran = env
        .nlah_run(&[
            "tests/fixtures/budget",
            "tests/fixtures/tasks/write-result",
            "--model",
            "openai:m",
            "--max-steps",
            "100",
        ])
        .await;
    let hits = ran.kinds("budget-hit");
    assert_eq!(hits.len(), 1, "{:?}", ran.events().len());
    assert_eq!(hits[0]["budget"], "tool calls");
    assert_eq!(ran.record()["metrics"]["tool_calls"], 5);
    assert_eq!(ran.kinds("child-started").len(), 1);
    assert_clean_end(&ran, "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_without_instruction_is_a_usage_error() {
    let ran = TestEnv::new()
        .nlah_run(&[
            "harness-skills/basic",
            "tests/fixtures/tasks/no-instruction",
            "--model",
            "openai:m",
        ])
        .await;
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("TASK.md"), "{}", ran.stderr);
    assert!(
        !ran.ws.exists(),
        "nothing is created for a run that cannot start"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_harness_with_errors_is_refused_before_anything_runs() {
    let ran = TestEnv::new()
        .nlah_run(&[
            "tests/fixtures/bad/unknown-role",
            "tests/fixtures/tasks/write-result",
            "--model",
            "openai:m",
        ])
        .await;
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr
            .contains("stage \"verify\" names role \"checker\""),
        "{}",
        ran.stderr
    );
    assert!(!ran.ws.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_candidates_together_stay_within_the_call_budget() {
    // Eight candidates start at once against `llm calls: 3`: each call is reserved before it is
    // sent, so the model serves three requests, not eight.
    let env = TestEnv::with_model(|t: &Turn| Answer::shell(&format!("echo step {}", t.turn))).await;
    let ran = env
        .nlah_run(&[
            "tests/fixtures/budget-parallel",
            "tests/fixtures/tasks/write-result",
            "--model",
            "openai:m",
            "--max-steps",
            "20",
        ])
        .await;
    assert_eq!(ran.kinds("child-started").len(), 8, "{}", ran.stderr);
    assert_eq!(env.model().served().calls, 3);
    assert_eq!(ran.record()["metrics"]["total"]["calls"], 3);
    let hits = ran.kinds("budget-hit");
    assert!(
        hits.len() >= 5 && hits.iter().all(|h| h["budget"] == "llm calls"),
        "{hits:?}"
    );
    assert_clean_end(&ran, "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_larger_than_the_token_budget_is_never_sent() {
    // A 2 MB TASK.md is about 700k tokens by the meter's estimate (bytes / 3): it cannot fit the
    // harness's 300k, so no candidate sends it, and the run still ends with its record.
    let env = TestEnv::with_model(|t: &Turn| Answer::shell(&format!("echo step {}", t.turn))).await;
    let task = env.root().join("huge-task");
    std::fs::create_dir(&task).unwrap();
    let line = "Make the tests pass without touching them; explain every change you make.\n";
    std::fs::write(task.join("TASK.md"), line.repeat(2_000_000 / line.len())).unwrap();
    let ran = env
        .nlah_run(&[
            "tests/fixtures/budget-parallel",
            task.to_str().unwrap(),
            "--model",
            "openai:m",
        ])
        .await;
    assert_eq!(env.model().served().calls, 0, "{}", ran.stderr);
    let hits = ran.kinds("budget-hit");
    assert!(!hits.is_empty(), "{:?}", ran.events());
    for h in &hits {
        assert_eq!(h["budget"], "tokens");
        assert!(h["request"].as_u64().unwrap() > 600_000, "{h}");
    }
    assert!(
        ran.stdout.contains("cannot fit") || ran.stderr.contains("cannot fit"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    assert!(
        ran.events().iter().any(|e| e
            .to_string()
            .contains("budget-exhausted: tokens budget cannot fit a request")),
        "the stage fails with budget-exhausted"
    );
    assert_eq!(ran.record()["metrics"]["total"]["calls"], 0);
    // The task has no hidden tests, so the run ends unverified, with its record.
    assert_clean_end(&ran, "unverified");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_md_with_an_invalid_byte_is_named_once_with_its_position() {
    let env = TestEnv::new();
    let task = env.root().join("latin1");
    std::fs::create_dir(&task).unwrap();
    std::fs::write(task.join("TASK.md"), b"Fix the bug.\nCaf\xe9 menu\n").unwrap();
    let ran = env
        .nlah_run(&[
            "harness-skills/basic",
            task.to_str().unwrap(),
            "--model",
            "openai:m",
        ])
        .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let want = format!(
        "error: {}:2:4: the instruction is not valid UTF-8 (byte 0xe9); save it as UTF-8 text\n",
        task.canonicalize().unwrap().join("TASK.md").display()
    );
    assert_eq!(ran.stderr, want);
    assert!(!ran.ws.exists());
}

//! The `command:` backend with a fake agent CLI, and a record → replay round trip.

use crate::support::{Answer, Ran, TestEnv, Turn, assert_fsck, diligent};

#[tokio::test(flavor = "multi_thread")]
async fn a_command_backend_runs_an_agent_cli_per_child() {
    let script = std::fs::canonicalize("tests/fixtures/agents/fake-codex.sh").unwrap();
    let spec = format!("command:bash {}", script.display());
    let env = TestEnv::new();
    let ws = env.root().join("ws");
    let out = env
        .nlah()
        .args([
            "run",
            "harness-skills/basic",
            "tests/fixtures/tasks/write-result",
            "--model",
            &spec,
            "--workspace",
        ])
        .arg(&ws)
        .env("OPENAI_API_KEY", "sk-test-never-leaks")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let response = std::fs::read_to_string(ws.join("children/execute-1/RESPONSE.md")).unwrap();
    assert!(response.starts_with("status: done"));
    assert!(
        !response.contains("leaked"),
        "the API key reached the agent CLI"
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.join("run.json")).unwrap()).unwrap();
    let total = &record["metrics"]["total"];
    assert_eq!(
        (
            total["input_tokens"].as_u64(),
            total["cached_input_tokens"].as_u64(),
            total["output_tokens"].as_u64()
        ),
        (Some(1500), Some(300), Some(120))
    );
    assert_eq!(
        record["metrics"]["tool_calls"], 2,
        "codex items counted as tool calls"
    );
    assert!(ws.join("children/execute-1/transcript.jsonl").is_file());
    // Nothing in the workspace or its history holds the key.
    let grep = std::process::Command::new("git")
        .args(["-C"])
        .arg(&ws)
        .args(["grep", "-q", "sk-test-never-leaks", "HEAD"])
        .status()
        .unwrap();
    assert!(!grep.success());
    assert_fsck(&ws);
}

#[tokio::test(flavor = "multi_thread")]
async fn record_then_replay_gives_the_same_history() {
    let env = TestEnv::with_model(|t: &Turn| {
        if t.child == "execute-1" && t.turn == 0 {
            return Answer::write("artifacts/result.txt", "42\n");
        }
        diligent(&Turn {
            turn: t.turn.saturating_sub(usize::from(t.child == "execute-1")),
            ..t.clone()
        })
    })
    .await;
    let cassette = env.root().join("session.jsonl");
    let cassette_s = cassette.to_str().unwrap();
    let recorded = env
        .nlah_run(&[
            "harness-skills/swe",
            "tests/fixtures/tasks/py-ok",
            "--model",
            "openai:mock-1",
            "--with",
            "multi-candidate-search",
            "--record",
            cassette_s,
        ])
        .await;
    assert_eq!(recorded.code, 0, "{}", recorded.stderr);
    let text = std::fs::read_to_string(&cassette).unwrap();
    assert!(
        !text.to_lowercase().contains("authorization"),
        "no credentials in cassettes"
    );
    // Replay with no server at all.
    let spec = format!("replay:{cassette_s}");
    let replayed = TestEnv::new()
        .nlah_run(&[
            "harness-skills/swe",
            "tests/fixtures/tasks/py-ok",
            "--model",
            &spec,
            "--with",
            "multi-candidate-search",
        ])
        .await;
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    let shape = |r: &Ran| -> Vec<String> {
        r.events()
            .iter()
            .filter(|e| e["event"] != "retry")
            .map(|e| format!("{} {} {} {}", e["event"], e["stage"], e["child"], e["tool"]))
            .collect::<Vec<_>>()
    };
    let mut a = shape(&recorded);
    let mut b = shape(&replayed);
    // Parallel candidates interleave differently from run to run; the multiset is what replays.
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let story = |r: &Ran| r.story().into_iter().skip(1).collect::<Vec<_>>();
    assert_eq!(story(&recorded).len(), story(&replayed).len());
    let usage = |r: &Ran| r.record()["metrics"]["total"]["input_tokens"].clone();
    assert_eq!(
        usage(&recorded),
        usage(&replayed),
        "replays account the recorded tokens"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_servers_of_the_adapters_give_children_tools() {
    let env = TestEnv::with_model(|t: &Turn| match t.turn {
        0 => Answer::call("echo__add", serde_json::json!({"a": 2, "b": 40})),
        1 => Answer::write(
            &format!("children/{}/RESPONSE.md", t.child),
            &format!("status: done\n\nThe server said: {}\n", t.last),
        ),
        _ => Answer::text("done"),
    })
    .await;
    let ran = env
        .nlah_run(&[
            "tests/fixtures/mcp-harness",
            "tests/fixtures/tasks/write-result",
            "--model",
            "openai:m",
        ])
        .await;
    // The server's tools were offered to the model with their schemas.
    let first = &env.model().requests()[0];
    let names: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"echo__add") && names.contains(&"shell"),
        "{names:?}"
    );
    let calls = ran.kinds("tool-call");
    assert_eq!(calls[0]["tool"], "echo__add");
    assert_eq!(calls[0]["ok"], true, "{calls:?}");
    let response = std::fs::read_to_string(ran.ws.join("children/execute-1/RESPONSE.md")).unwrap();
    assert!(
        response.contains("42"),
        "the call was forwarded and answered: {response}"
    );
}

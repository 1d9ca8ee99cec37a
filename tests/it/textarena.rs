//! The TextArena adapter (examples/environments/textarena/server.py) through `nlah run` with the
//! scripted model: real TextArena 0.7.4 games, offline. Needs a Python with the pinned package
//! set, named by `NLAH_TEXTARENA_PYTHON` (.ci/run installs it and sets it).

use std::path::Path;

use serde_json::json;

use crate::support::{Answer, TestEnv, Turn, output};

/// Runs the arena harness on a bundled TextArena task with that Python first on `PATH`.
async fn play(env: &TestEnv, task: &str) -> (i32, serde_json::Value, Vec<serde_json::Value>) {
    play_with(env, task, &[]).await
}

async fn play_with(
    env: &TestEnv,
    task: &str,
    modules: &[&str],
) -> (i32, serde_json::Value, Vec<serde_json::Value>) {
    let python = crate::support::outside::require_env(
        "NLAH_TEXTARENA_PYTHON",
        "a Python with examples/environments/textarena/requirements.txt installed",
    );
    let bin = Path::new(&python).parent().expect("the python's folder");
    let ws = env.root().join("ws");
    let mut cmd = env.nlah();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path).args([
        "run",
        "harness-skills/arena",
        task,
        "--model",
        "openai:mock-1",
        "--workspace",
        &ws.display().to_string(),
    ]);
    for m in modules {
        cmd.args(["--with", m]);
    }
    let out = output(cmd).await;
    let code = out.status.code().unwrap_or(-1);
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ws.join("run.json")).unwrap_or_else(|_| {
            panic!(
                "no run.json; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }),
    )
    .expect("run.json");
    let events = std::fs::read_to_string(ws.join("history/events.jsonl"))
        .expect("events")
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    crate::support::assert_fsck(&ws);
    (code, record, events)
}

fn scripted(moves: &'static [&'static str]) -> impl Fn(&Turn) -> Answer + Send + Sync {
    move |t: &Turn| match moves.get(t.turn) {
        Some(m) => Answer::call("game__act", json!({"action": m})),
        None => Answer::write(
            &format!("children/{}/RESPONSE.md", t.child),
            "status: done\n",
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs textarena (NLAH_TEXTARENA_PYTHON)"]
async fn textarena_tower_of_hanoi_is_solved_through_nlah() {
    let env = TestEnv::with_model(scripted(&[
        "[A C]", "[A B]", "[C B]", "[A C]", "[B A]", "[B C]", "[A C]",
    ]))
    .await;
    let (code, r, events) = play(&env, "examples/textarena/tower-of-hanoi-s0").await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["outcome"], "passed");
    let ep = &r["episode"];
    assert_eq!(ep["convention"], true);
    assert_eq!(ep["config"]["game"], "TowerOfHanoi-v0");
    assert_eq!(ep["steps"], 7);
    assert_eq!(ep["invalid_actions"], 0);
    assert_eq!(ep["reward"], 1.0);
    assert_eq!(ep["end"], "done");
    let steps = events
        .iter()
        .filter(|e| e["event"] == "environment-step")
        .count();
    assert_eq!(steps, 7);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs textarena (NLAH_TEXTARENA_PYTHON)"]
async fn textarena_counts_invalid_moves_as_textarena_does() {
    // One invalid move is forgiven; the second in a row ends the game with TextArena's reward.
    let env = TestEnv::with_model(scripted(&[
        "[A C]", "[A C]", "[A B]", "move it", "[A C]", "[C B]",
    ]))
    .await;
    let (code, r, events) = play(&env, "examples/textarena/tower-of-hanoi-s0").await;
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["outcome"], "failed");
    let ep = &r["episode"];
    assert_eq!(ep["steps"], 5);
    assert_eq!(ep["invalid_actions"], 3);
    assert_eq!(ep["end"], "done");
    assert!(ep["reward"].as_f64().unwrap() < 1.0);
    let invalid: Vec<bool> = events
        .iter()
        .filter(|e| e["event"] == "environment-step")
        .map(|e| e["invalid"].as_bool().unwrap())
        .collect();
    assert_eq!(invalid, [false, true, false, true, true]);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs textarena (NLAH_TEXTARENA_PYTHON)"]
async fn textarena_tictactoe_is_won_against_the_fixed_opponent() {
    // The opponent plays the first free cell: 0, then 1; the diagonal 2-4-6 wins.
    let env = TestEnv::with_model(scripted(&["[4]", "[2]", "[6]"])).await;
    let (code, r, _) = play(&env, "examples/textarena/tictactoe-vs-first-legal").await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["episode"]["reward"], 1.0);
    assert_eq!(r["episode"]["steps"], 3);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs textarena (NLAH_TEXTARENA_PYTHON)"]
async fn textarena_tower_of_hanoi_with_every_layer_on() {
    // A sloppy first move ("A to C" is repaired to "[A C]"), then the solution.
    let env = TestEnv::with_model(scripted(&[
        "A to C", "[A B]", "[C B]", "[A C]", "[B A]", "[B C]", "[A C]",
    ]))
    .await;
    let (code, r, events) = play_with(
        &env,
        "examples/textarena/tower-of-hanoi-s0",
        &[
            "action-realization",
            "trajectory-regulation",
            "contract-notes",
            "procedural-skills",
            "code-verifier",
        ],
    )
    .await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["episode"]["reward"], 1.0);
    assert_eq!(r["episode"]["invalid_actions"], 0);
    let m = &r["interface"];
    assert_eq!(m["repaired"], 1, "{m}");
    assert_eq!(m["skills_retrieved"], 1, "{m}");
    assert_eq!(m["blocked"], 0, "{m}");
    let rules: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "intervention")
        .map(|e| e["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"legal-action"), "{rules:?}");
}

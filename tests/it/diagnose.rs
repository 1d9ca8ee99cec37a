//! `nlah diagnose`: runs that fail in each way of the taxonomy, made with the scripted model,
//! placed by the detectors; and the detectors checked against the runtime's real answers to bad
//! calls, so that a reworded message cannot silently stop being recognised.

use std::path::Path;

use nlah::agent::tools::{self, ToolContext};
use nlah::diagnose::steps::{Action, Step};
use nlah::diagnose::{Category, detect};
use serde_json::json;

use crate::support::{Answer, TestEnv, Turn, diligent};

/// The runtime's answer to a call, as a transcript step.
async fn step(ctx: &ToolContext, index: usize, tool: &str, arguments: &str) -> Step {
    let out = tools::call(ctx, tool, arguments).await;
    Step {
        index,
        action: Action::Call {
            tool: tool.to_string(),
            arguments: arguments.to_string(),
            is_error: out.is_error,
            exit_code: out.exit_code,
            output: out.content,
        },
    }
}

#[tokio::test]
async fn every_bad_call_the_runtime_answers_is_placed() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("history")).unwrap();
    std::fs::write(ws.path().join("history/events.jsonl"), "{}\n").unwrap();
    std::fs::write(ws.path().join("a.txt"), "x\nx\n").unwrap();
    let mut ctx = ToolContext::new(ws.path(), "children/c1");
    ctx.hidden = vec!["history/".into()];
    let cases: Vec<(&str, &str, Category, &str)> = vec![
        (
            "write",
            "{\"path\": \"a\", ",
            Category::ActionRealization,
            "invalid-json",
        ),
        ("write", "[1]", Category::ActionRealization, "not-an-object"),
        (
            "write",
            r#"{"file": "a", "content": "x"}"#,
            Category::ActionRealization,
            "unknown-argument",
        ),
        (
            "edit",
            r#"{"path": "a.txt"}"#,
            Category::ActionRealization,
            "missing-argument",
        ),
        (
            "read",
            r#"{"path": 3}"#,
            Category::ActionRealization,
            "wrong-type",
        ),
        (
            "bash",
            r#"{"command": "ls"}"#,
            Category::ActionRealization,
            "unknown-tool",
        ),
        (
            "shell",
            r#"{"command": " "}"#,
            Category::ActionRealization,
            "empty-argument",
        ),
        (
            "read",
            r#"{"path": "history/events.jsonl"}"#,
            Category::ContractMismatch,
            "hidden-path",
        ),
        (
            "read",
            r#"{"path": "/etc/passwd"}"#,
            Category::ContractMismatch,
            "outside-workspace",
        ),
        (
            "read",
            r#"{"path": "../x"}"#,
            Category::ContractMismatch,
            "outside-workspace",
        ),
        (
            "read",
            r#"{"path": "nope.txt"}"#,
            Category::ContractMismatch,
            "missing-path",
        ),
        (
            "edit",
            r#"{"path": "a.txt", "old": "y", "new": "z"}"#,
            Category::ContractMismatch,
            "edit-no-match",
        ),
        (
            "edit",
            r#"{"path": "a.txt", "old": "x", "new": "z"}"#,
            Category::ContractMismatch,
            "ambiguous-edit",
        ),
        (
            "write",
            r#"{"path": "history", "content": "x"}"#,
            Category::ContractMismatch,
            "hidden-path",
        ),
        (
            "shell",
            r#"{"command": "no-such-program-here"}"#,
            Category::ContractMismatch,
            "tool-not-installed",
        ),
    ];
    for (tool, args, category, detector) in cases {
        let s = step(&ctx, 1, tool, args).await;
        let found = detect::child("c1", std::slice::from_ref(&s));
        assert_eq!(found.len(), 1, "{tool} {args}: {s:?} → {found:?}");
        assert_eq!(
            (found[0].category, found[0].detector.as_str()),
            (category, detector),
            "{tool} {args}: {s:?}"
        );
    }
    // A failing command is work, not an interface failure; the same one twice is a circle.
    let fail = step(&ctx, 1, "shell", r#"{"command": "exit 3"}"#).await;
    assert!(detect::child("c1", std::slice::from_ref(&fail)).is_empty());
    let again = Step {
        index: 2,
        ..fail.clone()
    };
    let found = detect::child("c1", &[fail, again]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].detector, "repeated-call");
}

/// A task whose TASK.md tells the scripted model how to fail.
fn task(root: &Path, name: &str, mode: &str) {
    let dir = root.join("tasks").join(name);
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("TASK.md"),
        format!("Write the answer to `artifacts/result.txt`: any non-empty text. MODE-{mode}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("tests/test.sh"),
        "#!/usr/bin/env bash\n# Runs in repo/.\ntest -s ../artifacts/result.txt || { echo \"AssertionError: result.txt is empty at $RANDOM\"; exit 1; }\n",
    )
    .unwrap();
}

fn report(id: &str) -> Answer {
    Answer::write(
        &format!("children/{id}/RESPONSE.md"),
        "status: done\n\nDone.\n",
    )
}

fn policy(t: &Turn) -> Answer {
    // The judge's question: the evidence of a run.
    if t.task.starts_with("# The task") {
        assert!(t.task.contains("# The verifier's output"), "{}", t.task);
        return Answer::text(
            r#"{"category": "contract-mismatch", "why": "the notes went where no check looks"}"#,
        );
    }
    let mode = t
        .task
        .split("MODE-")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("");
    match (mode, t.turn) {
        ("realization", 0 | 1) => Answer::call("write", json!("artifacts/result.txt=42")),
        ("realization", _) => report(&t.child),
        ("contract", 0 | 1) => Answer::call("read", json!({"path": "history/events.jsonl"})),
        ("contract", _) => report(&t.child),
        ("degeneration", 0..=4) => Answer::shell("cat artifacts/answer.txt"),
        ("degeneration", _) => report(&t.child),
        ("reasoning", 0) => Answer::write("artifacts/notes.txt", "thinking\n"),
        ("reasoning", _) => report(&t.child),
        // Recovers from a slip: a bad call, then the right one.
        ("recovered", 0) => Answer::call("write", json!({"file": "artifacts/result.txt"})),
        ("recovered", 1) => Answer::write("artifacts/result.txt", "42\n"),
        ("recovered", _) => diligent(&Turn {
            turn: t.turn - 2,
            ..t.clone()
        }),
        _ => diligent(t),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_runs_are_placed_with_examples_and_signatures() {
    let env = TestEnv::with_model(policy).await;
    let modes = [
        "realization",
        "contract",
        "degeneration",
        "reasoning",
        "recovered",
    ];
    for m in modes {
        task(env.root(), m, m);
    }
    for m in modes {
        let t = env.root().join("tasks").join(m);
        env.nlah_run(&[
            "harness-skills/basic",
            t.to_str().unwrap(),
            "--model",
            "openai:mock-1",
        ])
        .await;
    }
    let runs = ["ws", "ws-2", "ws-3", "ws-4", "ws-5"];
    let mut args = vec!["diagnose"];
    args.extend(runs);
    let (code, out, err) = env.run_in(env.root(), &args);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("diagnose_table", out);

    args.push("--json");
    let (code, out, _) = env.run_in(env.root(), &args);
    assert_eq!(code, 0);
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    let placed: Vec<(String, String)> = d["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["task"].as_str().unwrap().to_string(),
                r["category"].as_str().unwrap_or("passed").to_string(),
            )
        })
        .collect();
    assert_eq!(
        placed,
        [
            ("realization", "action-realization"),
            ("contract", "contract-mismatch"),
            ("degeneration", "trajectory-degeneration"),
            ("reasoning", "residual-reasoning"),
            ("recovered", "passed"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // The four failed runs share one verifier signature (the random number blanked).
    assert_eq!(d["clusters"].as_array().unwrap().len(), 1);
    assert_eq!(d["clusters"][0]["runs"].as_array().unwrap().len(), 4);

    // The judge is asked only about the run placed by elimination, and says so.
    let calls = env.model().served().calls;
    let (code, out, err) = env.run_in(
        env.root(),
        &[
            "diagnose",
            "ws",
            "ws-4",
            "--judge",
            "openai:mock-1",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.model().served().calls, calls + 1);
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["runs"][0]["method"], "detector:not-an-object");
    assert_eq!(d["runs"][1]["method"], "judge");
    assert_eq!(d["runs"][1]["category"], "contract-mismatch");
    assert_eq!(d["judge_usage"]["calls"], 1);
}

#[test]
fn a_folder_without_runs_is_a_usage_error() {
    let env = TestEnv::new();
    let (code, _, err) = env.run(&["diagnose", "tests/fixtures/tasks"]);
    assert_eq!(code, 2);
    assert!(err.contains("no finished run here"), "{err}");
    let (code, _, err) = env.run(&["diagnose", "/nonexistent"]);
    assert_eq!(code, 2);
    assert!(err.contains("no such folder"), "{err}");
}

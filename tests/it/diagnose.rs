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
    // The four failed runs share one verifier signature (the random number blanked); clusters
    // keep their categories apart, in the taxonomy's order.
    let clusters = d["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 4);
    assert!(
        clusters.iter().all(
            |c| c["signature"] == "AssertionError: result.txt is empty at #" && c["count"] == 1
        ),
        "{clusters:?}"
    );
    assert_eq!(clusters[0]["category"], "action-realization");
    assert_eq!(clusters[0]["examples"][0]["run"], "ws");

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

/// A 2-disk Hanoi task (A to B) judged by its reward; TASK.md tells the scripted model how to
/// play: `MODE-…`.
fn hanoi_task(root: &Path, name: &str, mode: &str) -> String {
    let dir = root.join("hanoi").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("TASK.md"),
        format!("# Tower of Hanoi\n\nSolve the tower of hanoi. MODE-{mode}\n"),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/environments/toy/hanoi.py");
    std::fs::write(
        dir.join("task.toml"),
        format!(
            "[env]\nname = \"hanoi\"\ncommand = \"exec python3 '{}'\"\nconfig = {{ disks = 2, seed = 0 }}\n\n[verifier]\nreward_at_least = 1.0\n",
            script.display()
        ),
    )
    .unwrap();
    dir.display().to_string()
}

fn hanoi_policy(t: &Turn) -> Answer {
    let mode = t
        .task
        .split("MODE-")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("");
    let act = |a: &str| Answer::call("hanoi__act", json!({"action": a}));
    let mv = |f: &str, to: &str| Answer::call("hanoi__move", json!({"from": f, "to": to}));
    match (mode, t.turn) {
        // Well-formed moves the rules forbid (peg C is empty), twice: the game is lost.
        ("rule", 0) => act("move C A"),
        ("rule", 1) => act("move C B"),
        // Pegs the game does not have, twice.
        ("contract", 0) => mv("A", "D"),
        ("contract", 1) => mv("D", "B"),
        // A tool that does not exist, which the realization layer blocks; then the report.
        ("blocked", 0) => Answer::call("teleport", json!({"disk": 1})),
        // One refused move, then the game solved: the refusal was put right.
        ("recovered", 0) => act("move C A"),
        ("recovered", 1) => mv("A", "C"),
        ("recovered", 2) => mv("A", "B"),
        ("recovered", 3) => mv("C", "B"),
        // `arena`'s player reports with `finish` (it has no built-in tool).
        _ => Answer::call("finish", json!({"status": "done", "report": "Done."})),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_runs_are_placed_by_refusals_and_interventions_and_grouped() {
    let env = TestEnv::with_model(hanoi_policy).await;
    // The arena harness with the realization layer blocking from the first invalid action.
    let arena = env.root().join("arena");
    crate::support::gitrepo::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("harness-skills/arena"),
        &arena,
    );
    let module = arena.join("modules/action-realization.md");
    let text = std::fs::read_to_string(&module).unwrap();
    assert!(text.contains("block after: 2"));
    std::fs::write(&module, text.replace("block after: 2", "block after: 1")).unwrap();
    let arena = arena.display().to_string();
    for (mode, with) in [
        ("rule", None),
        ("contract", None),
        ("blocked", Some("action-realization")),
        ("recovered", None),
    ] {
        let t = hanoi_task(env.root(), mode, mode);
        let mut args = vec![arena.as_str(), &t, "--model", "openai:mock-1"];
        if let Some(m) = with {
            args.extend(["--with", m]);
        }
        env.nlah_run(&args).await;
    }
    // And one plain task, which groups apart from the environment's.
    task(env.root(), "reasoning", "reasoning");
    let t = env.root().join("tasks/reasoning");
    env.nlah_run(&[
        "harness-skills/basic",
        t.to_str().unwrap(),
        "--model",
        "openai:mock-1",
    ])
    .await;

    let runs = ["ws", "ws-2", "ws-3", "ws-4", "ws-5"];
    let mut args = vec!["diagnose"];
    args.extend(runs);
    let (code, out, err) = env.run_in(env.root(), &args);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("diagnose_environment_table", out);

    args.push("--json");
    let (code, out, _) = env.run_in(env.root(), &args);
    assert_eq!(code, 0);
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    let placed: Vec<(&str, &str, &str)> = d["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["task"].as_str().unwrap(),
                r["category"].as_str().unwrap_or("passed"),
                r["method"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        placed,
        [
            ("rule", "residual-reasoning", "detector:env-rule"),
            ("contract", "contract-mismatch", "detector:env-contract"),
            (
                "blocked",
                "action-realization",
                "detector:action-realization:unknown-tool"
            ),
            ("recovered", "passed", ""),
            ("reasoning", "residual-reasoning", "elimination"),
        ]
    );
    // The refused move of the run that won is a finding, recovered.
    let recovered = &d["runs"][3]["findings"];
    assert_eq!(recovered[0]["detector"], "env-rule", "{recovered}");
    assert_eq!(d["runs"][3]["env_refusals"], 1);
    assert_eq!(d["runs"][2]["interventions"]["action-realization"], 1);
    // The cause points at the step `nlah inspect` shows.
    assert_eq!(d["runs"][0]["cause"]["step"], 1);
    assert_eq!(d["runs"][0]["cause"]["child"], "play-1");

    // Grouped by environment and model, then task set and model.
    let groups: Vec<(&str, u64, u64)> = d["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["scope"].as_str().unwrap(),
                g["runs"].as_u64().unwrap(),
                g["failed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, [("env:hanoi", 4, 3), ("tasks", 1, 1)]);
    assert_eq!(d["groups"][0]["env_refusals"], 5);

    // The clusters a learning loop reads: every failed run once, the largest first.
    let runs: Vec<std::path::PathBuf> = runs.iter().map(|r| env.root().join(r)).collect();
    let diag = nlah::diagnose::diagnose(&runs).unwrap();
    let clusters = nlah::diagnose::clusters(&diag.runs);
    assert_eq!(clusters.iter().map(|c| c.count).sum::<usize>(), 4);
    assert!(clusters.windows(2).all(|w| w[0].count >= w[1].count));
    let blocked = clusters
        .iter()
        .find(|c| c.category == Category::ActionRealization)
        .unwrap();
    assert_eq!(blocked.examples[0].task, "blocked");
    assert_eq!(blocked.examples[0].child, "play-1");
    assert_eq!(blocked.examples[0].step, Some(1));
    // The same runs diagnosed again give the same clusters.
    assert_eq!(
        nlah::diagnose::clusters(&nlah::diagnose::diagnose(&runs).unwrap().runs),
        clusters
    );
}

#[test]
fn old_interface_events_are_still_read() {
    // A run record of before the loop's repairs were `intervention` events.
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("history")).unwrap();
    let events = [
        json!({"seq": 1, "t": "2026-01-01T00:00:00.000Z", "event": "child-started", "child": "c1", "stage": "s", "role": "r", "model": "m"}),
        json!({"seq": 2, "t": "2026-01-01T00:00:00.000Z", "event": "interface", "child": "c1", "kind": "empty-answer", "detail": "nudged"}),
        json!({"seq": 3, "t": "2026-01-01T00:00:00.000Z", "event": "interface", "child": "c1", "kind": "text-tool-call", "detail": "1 tool call(s) written as text: write"}),
        json!({"seq": 4, "t": "2026-01-01T00:00:00.000Z", "event": "tool-call", "child": "c1", "tool": "write", "ok": true, "exit_code": null, "duration_ms": 1, "summary": "{}"}),
    ];
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(ws.path().join("history/events.jsonl"), text).unwrap();
    let d = nlah::diagnose::run(ws.path()).unwrap();
    assert_eq!(d.interventions.get("loop"), Some(&2));
    let f: Vec<(&str, bool)> = d
        .findings
        .iter()
        .map(|f| (f.detector.as_str(), f.step.is_some()))
        .collect();
    assert_eq!(
        f,
        [
            ("loop:empty-answer", true),
            ("loop:text-tool-call", true),
            ("no-report", false)
        ]
    );
}

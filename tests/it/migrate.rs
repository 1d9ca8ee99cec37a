//! `nlah migrate`: the examples migrate from recorded cassettes into harnesses that check and run;
//! repairs, a model that never gets it right, and bad input.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::{Answer, TestEnv, Turn, diligent, output};

const EXAMPLES: [&str; 3] = ["py-plan-act-verify", "ts-review-agent", "yaml-agent"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    root().join("examples/code-harnesses").join(name)
}

fn cassette(name: &str) -> PathBuf {
    root()
        .join("tests/fixtures/migrate")
        .join(format!("{name}.jsonl"))
}

/// The test double of the model's answer: the committed migrated files, in the output protocol.
fn draft_answer(name: &str, skill_edit: impl Fn(String) -> String) -> String {
    let dir = example(name).join("migrated").join(name);
    let skill = skill_edit(std::fs::read_to_string(dir.join("SKILL.md")).unwrap());
    let mapping = std::fs::read_to_string(dir.join("MIGRATION.md")).unwrap();
    format!(
        "Here is the harness.\n\n````markdown path=SKILL.md\n{skill}````\n\n````markdown path=MIGRATION.md\n{mapping}````\n"
    )
}

/// A draft with an error `nlah check` finds: a stage whose role does not exist.
fn broken(skill: String) -> String {
    skill
        .replacen("- role: planner", "- role: ghost", 1)
        .replacen("- role: agent", "- role: ghost", 1)
}

/// `nlah migrate ARGS` in `env`: against its scripted model, if it has one.
async fn migrate(env: &TestEnv, args: Vec<String>) -> Output {
    let mut cmd = env.nlah();
    cmd.arg("migrate").args(args);
    output(cmd).await
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// A cassette's lines without what varies from one recording to the next (the latency).
fn tape(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["response"]["usage"]["latency_ms"] = Value::Null;
            v
        })
        .collect()
}

/// Recording the cassettes again gives the committed ones: the drafting request has not
/// drifted from what they hold. With `NLAH_RECORD_CASSETTES=1` it writes them instead (after
/// changing the committed migrated harnesses or the drafting request). The model here is a
/// test double: the scripted server, whose policy answers with the committed migrated files; no
/// real model wrote them.
#[tokio::test]
async fn record_cassettes() {
    let write = std::env::var("NLAH_RECORD_CASSETTES").as_deref() == Ok("1");
    for name in EXAMPLES {
        let answer = draft_answer(name, |s| s);
        let env = TestEnv::with_model(move |_: &Turn| Answer::text(&answer)).await;
        let out = env.root().join(name);
        let tape_path = if write {
            cassette(name)
        } else {
            env.root().join(format!("{name}.jsonl"))
        };
        let _ = std::fs::remove_file(&tape_path);
        let o = migrate(
            &env,
            vec![
                format!("examples/code-harnesses/{name}"),
                "--out".into(),
                s(&out),
                "--model".into(),
                "openai:mock-model".into(),
                "--record".into(),
                s(&tape_path),
            ],
        )
        .await;
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let recorded = tape(&std::fs::read_to_string(&tape_path).unwrap());
        let committed = tape(&std::fs::read_to_string(cassette(name)).unwrap());
        assert!(
            recorded == committed,
            "{name}: the committed cassette is stale; record it again with NLAH_RECORD_CASSETTES=1"
        );
    }
}

#[tokio::test]
async fn examples_migrate_check_map_and_run() {
    for name in EXAMPLES {
        let env = TestEnv::new();
        let out = env.root().join("harness-skills").join(name);
        let o = migrate(
            &env,
            vec![
                s(&example(name)),
                "--out".into(),
                s(&out),
                "--model".into(),
                format!("replay:{}", s(&cassette(name))),
                "--json".into(),
            ],
        )
        .await;
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{name}: {stderr}");
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["ok"], true);
        assert_eq!(report["report"]["rounds"], 1);
        assert_eq!(report["report"]["not_mapped"], serde_json::json!([]));

        // The committed migrated harness is exactly what the migration writes.
        assert_eq!(
            files(&out),
            files(&example(name).join("migrated").join(name)),
            "{name}"
        );

        let (code, stdout, stderr) = env.run(&["check", &s(&out)]);
        assert_eq!(code, 0, "{name}: {stdout}{stderr}");

        // Every prompt and tool of the source appears in the mapping.
        let (ex, _) = nlah::migrate::extract::extract(&example(name)).unwrap();
        assert!(!ex.prompts.is_empty() && !ex.tools.is_empty());
        let mapping = std::fs::read_to_string(out.join("MIGRATION.md")).unwrap();
        for construct in ex
            .prompts
            .iter()
            .map(|p| &p.name)
            .chain(ex.tools.iter().map(|t| &t.name))
        {
            assert!(
                mapping.contains(&format!("`{construct}`")),
                "{name}: {construct} unmapped"
            );
        }

        // The migrated harness runs to its end on a bundled task.
        let runner = TestEnv::with_model(diligent).await;
        let task = root().join("tests/fixtures/tasks/write-result");
        let ran = runner
            .nlah_run(&[&s(&out), &s(&task), "--model", "openai:mock-model"])
            .await;
        assert!(
            matches!(ran.code, 0 | 1),
            "{name}: exit {}\n{}",
            ran.code,
            ran.stderr
        );
        let record = ran.record();
        if name == "py-plan-act-verify" {
            // Its gates call the script nlah extracted (`scripts/verify_step.py`): they pass.
            let stages = record["metrics"]["stages"].as_array().unwrap();
            assert_eq!(stages.len(), 3, "{record}");
            assert!(stages.iter().all(|s| s["passed"] == true), "{record}");
        }
        assert!(
            matches!(record["outcome"].as_str(), Some("passed" | "failed")),
            "{name}: {record}"
        );
        assert!(runner.model().served().calls > 0);
    }
}

#[tokio::test]
async fn diagnostics_go_back_to_the_model_for_repair() {
    let bad = draft_answer("py-plan-act-verify", broken);
    let good = draft_answer("py-plan-act-verify", |s| s);
    let env =
        TestEnv::with_model(move |t: &Turn| Answer::text(if t.turn == 0 { &bad } else { &good }))
            .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("py-plan-act-verify");
    let o = migrate(
        &env,
        vec![
            s(&example("py-plan-act-verify")),
            "--out".into(),
            s(&out),
            "--model".into(),
            "openai:mock-model".into(),
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("2 model call(s)"), "{stdout}");
    let requests = env.model().requests();
    assert_eq!(requests.len(), 2);
    let msgs = requests[1]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 4, "system, source, draft, diagnostics");
    let feedback = msgs[3]["content"].as_str().unwrap();
    assert!(
        feedback.contains("SKILL.md:") && feedback.contains("ghost"),
        "{feedback}"
    );
    assert!(out.join("SKILL.md").is_file() && out.join("scripts/verify_step.py").is_file());
}

#[tokio::test]
async fn a_model_that_never_gets_it_right_leaves_nothing() {
    let bad = draft_answer("yaml-agent", broken);
    let env = TestEnv::with_model(move |_: &Turn| Answer::text(&bad)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("yaml-agent");
    let o = migrate(
        &env,
        vec![
            s(&example("yaml-agent")),
            "--out".into(),
            s(&out),
            "--model".into(),
            "openai:mock-model".into(),
            "--repairs".into(),
            "2".into(),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no valid harness in 3 round(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("ghost"), "{stderr}");
    assert_eq!(env.model().served().calls, 3);
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary folder left"
    );
}

async fn bad_input(src: &Path, out: &Path) -> (i32, String) {
    let o = migrate(
        &TestEnv::new(),
        vec![
            s(src),
            "--out".into(),
            s(out),
            "--model".into(),
            "replay:/nonexistent.jsonl".into(),
        ],
    )
    .await;
    assert!(!out.join("SKILL.md").exists());
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out/new-harness");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, err) = bad_input(&empty, &out).await;
    assert_eq!(code, 2);
    assert!(err.contains("the folder has no files"), "{err}");

    let binary = dir.path().join("agent.bin");
    std::fs::write(&binary, [0x7f, b'E', b'L', b'F', 0, 0, 1, 2]).unwrap();
    let (code, err) = bad_input(&binary, &out).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("nothing nlah can read") && err.contains("binary"),
        "{err}"
    );

    let go = dir.path().join("go-agent");
    std::fs::create_dir(&go).unwrap();
    std::fs::write(
        go.join("agent.go"),
        "package main\n\nconst systemPrompt = `hi`\n",
    )
    .unwrap();
    std::fs::write(go.join("blob.bin"), [0u8, 159, 146, 150]).unwrap();
    let (code, err) = bad_input(&go, &out).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("agent.go: Go: this build of nlah has no parser"),
        "{err}"
    );
    assert!(err.contains("blob.bin: a binary file"), "{err}");

    let plain = dir.path().join("notes");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("hello.py"), "print('hello')\n").unwrap();
    let (code, err) = bad_input(&plain, &out).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("found no prompt, tool, loop or check"),
        "{err}"
    );

    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("keep.txt"), "mine").unwrap();
    let (code, err) = bad_input(&example("yaml-agent"), &taken).await;
    assert_eq!(code, 2);
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(taken.join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(!out.exists());
}

#[tokio::test]
async fn constructs_the_draft_does_not_map_are_listed_by_nlah() {
    // The draft's mapping forgets the `finish` tool and the plan template.
    let answer = draft_answer("py-plan-act-verify", |s| s)
        .lines()
        .filter(|l| !l.starts_with("| `finish`") && !l.starts_with("| `PLAN_TEMPLATE`"))
        .collect::<Vec<_>>()
        .join("\n");
    let env = TestEnv::with_model(move |_: &Turn| Answer::text(&answer)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("py-plan-act-verify");
    let o = migrate(
        &env,
        vec![
            s(&example("py-plan-act-verify")),
            "--out".into(),
            s(&out),
            "--model".into(),
            "openai:mock-model".into(),
            "--json".into(),
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        report["report"]["not_mapped"],
        serde_json::json!([
            "prompt `PLAN_TEMPLATE` (agent/prompts.py:14)",
            "tool `finish` (agent/tools.py:58, decorated function (@tool))"
        ])
    );
    let mapping = std::fs::read_to_string(out.join("MIGRATION.md")).unwrap();
    assert!(mapping.contains("## Not mapped by the draft"), "{mapping}");
    assert!(
        mapping.contains("- tool `finish` (agent/tools.py:58"),
        "{mapping}"
    );
}

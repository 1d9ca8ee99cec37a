//! What a new user trips on, tried as one would on a fresh clone: each mistake gets a clear
//! message and the documented exit code, and nothing is left behind.

use std::path::Path;

use crate::support::{TestEnv, assert_fsck, assert_fsck_cells};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    TestEnv::new().run(args)
}

#[test]
fn check_json_ends_with_a_summary_even_when_clean() {
    let (code, stdout, _) = run(&["check", "--json", "harness-skills/basic"]);
    assert_eq!(code, 0, "{stdout}");
    let last: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["summary"]["skill_folders"], 1);
    assert_eq!(last["summary"]["errors"], 0);
    assert_eq!(last["summary"]["warnings"], 0);
}

#[test]
fn check_of_a_folder_with_nothing_to_check_is_a_usage_error() {
    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(&["check", empty.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nothing to check"), "{stderr}");
}

#[test]
fn check_refuses_a_skill_md_that_is_not_a_regular_file() {
    // A FIFO would block the reader forever; a special file named SKILL.md, as the path given or
    // inside a folder, or a module file, is an error naming it, within a second.
    let dir = tempfile::tempdir().unwrap();
    let fifo_in = |p: &Path| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let out = std::process::Command::new("mkfifo")
            .arg(p)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let h = dir.path().join("h");
    fifo_in(&h.join("SKILL.md"));
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::copy(
        root().join("harness-skills/basic/SKILL.md"),
        m.join("SKILL.md"),
    )
    .unwrap();
    fifo_in(&m.join("modules/extra.md"));
    let started = std::time::Instant::now();
    for (arg, named) in [
        (h.clone(), h.join("SKILL.md")),
        (h.join("SKILL.md"), h.join("SKILL.md")),
        (dir.path().to_path_buf(), h.join("SKILL.md")),
        (m.clone(), m.join("modules/extra.md")),
    ] {
        let (code, stdout, stderr) = run(&["check", arg.to_str().unwrap()]);
        assert_ne!(code, 0, "{arg:?}: {stdout}");
        assert!(
            format!("{stdout}{stderr}")
                .contains(&format!("{}: not a regular file (a FIFO)", named.display())),
            "{arg:?}: {stdout}{stderr}"
        );
    }
    assert!(
        started.elapsed().as_secs() < 20,
        "nothing blocked on the FIFO"
    );
}

#[test]
fn the_migrated_examples_pass_strict_checks() {
    for name in ["py-plan-act-verify", "ts-review-agent", "yaml-agent"] {
        let dir = format!("examples/code-harnesses/{name}/migrated/{name}");
        let (code, stdout, stderr) = run(&["check", "--strict", &dir]);
        assert_eq!(code, 0, "{dir}: {stdout}{stderr}");
    }
}

/// `nlah run basic hello-greeting --model MODEL` in an empty folder: it must exit 2, name
/// `cause` and leave the folder empty.
fn refused_before_any_workspace(model: &str, cause: &str) {
    let env = TestEnv::with_base_url("https://api.example.invalid/v1");
    let cwd = tempfile::tempdir().unwrap();
    let harness = root().join("harness-skills/basic");
    let task = root().join("examples/tasks/hello-greeting");
    let args = [
        "run",
        harness.to_str().unwrap(),
        task.to_str().unwrap(),
        "--model",
        model,
    ];
    let (code, _, stderr) = env.run_in(cwd.path(), &args);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(cause), "{stderr}");
    let left = std::fs::read_dir(cwd.path()).unwrap().count();
    assert_eq!(left, 0, "nothing created");
}

#[test]
fn a_missing_cassette_is_a_usage_error_before_any_workspace_exists() {
    refused_before_any_workspace(
        "replay:/nonexistent/cassette.jsonl",
        "/nonexistent/cassette.jsonl",
    );
}

#[test]
fn a_missing_api_key_is_a_usage_error_before_any_workspace_exists() {
    refused_before_any_workspace("openai:gpt-4.1-mini", "OPENAI_API_KEY");
}

#[test]
fn the_run_summary_counts_one_child_in_the_singular() {
    let env = TestEnv::new();
    let cwd = tempfile::tempdir().unwrap();
    let cassette = root().join("examples/cassettes/basic-hello-greeting.qwen2.5-coder-0.5b.jsonl");
    let (_, stdout, stderr) = env.run_in(
        cwd.path(),
        &[
            "run",
            root().join("harness-skills/basic").to_str().unwrap(),
            root()
                .join("examples/tasks/hello-greeting")
                .to_str()
                .unwrap(),
            "--model",
            &format!("replay:{}", cassette.display()),
            "--max-steps",
            "5",
            "--workspace",
            "ws",
        ],
    );
    assert!(stdout.contains(" 1 child, "), "{stdout}{stderr}");
    assert_fsck(&cwd.path().join("ws"));
}

#[test]
fn diff_of_a_folder_and_a_missing_path_says_no_such_folder() {
    let (code, _, stderr) = run(&["diff", "/nonexistent", "harness-skills/swe"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/nonexistent: no such folder"), "{stderr}");
}

#[test]
fn eval_with_a_missing_cassette_is_a_usage_error_before_out_exists() {
    let env = TestEnv::new();
    let out = env.root().join("out");
    let (code, _, stderr) = env.run(&[
        "eval",
        "harness-skills/basic",
        "examples/tasks/hello-greeting",
        "--model",
        "replay:/nonexistent/cassette.jsonl",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/nonexistent/cassette.jsonl"), "{stderr}");
    assert!(!out.exists(), "nothing created");
}

#[test]
fn a_single_task_folder_is_its_own_task_set_in_the_report() {
    let env = TestEnv::new();
    let out = env.root().join("out");
    let cassette = root().join("examples/cassettes/basic-hello-greeting.qwen2.5-coder-0.5b.jsonl");
    let (code, stdout, stderr) = env.run(&[
        "eval",
        "harness-skills/basic",
        "examples/tasks/hello-greeting",
        "--model",
        &format!("replay:{}", cassette.display()),
        "--max-steps",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_fsck_cells(&out);
    let (code, json, stderr) = env.run(&["report", out.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(report["groups"][0]["task_set"], "hello-greeting", "{json}");
}

//! `nlah ablate HARNESS TASKS` without `--module` (also `nlah eval`): the harness as it is over a
//! task set, as one matrix of one variant, resumable and reportable; and the run settings a
//! matrix keeps in its matrix.json, including files written by earlier versions.

use std::path::Path;

use crate::support::{TestEnv, assert_fsck_cells, diligent, output};
use serde_json::Value;

const MINI: &str = "tests/fixtures/mini";
const TASKS: &str = "tests/fixtures/ablate-tasks";

fn lines(o: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn show(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("file")).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eval_runs_the_harness_as_it_is_and_reports() {
    let env = TestEnv::with_model(diligent).await;
    let out = env.root().join("out");
    let mut cmd = env.nlah();
    cmd.args([
        "eval",
        MINI,
        TASKS,
        "--model",
        "openai:mock-1",
        "--seeds",
        "2",
    ])
    .args(["--retries", "1", "--json", "--out"])
    .arg(&out);
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let summary = lines(&o).into_iter().find(|l| l["event"] == "summary");
    let summary = summary.expect("a summary line");
    assert_eq!(summary["cells"], 4);
    assert_eq!(summary["passed"], 4, "{}", show(&o));
    assert_fsck_cells(&out);

    // One variant, `default`: mini's own defaults (reflect on, reviewer off).
    let m = read_json(&out.join("matrix.json"));
    assert_eq!(m["design"], "default");
    assert_eq!(m["baseline"], "default");
    assert_eq!(m["variants"].as_array().unwrap().len(), 1);
    assert_eq!(m["variants"][0]["name"], "default");
    assert_eq!(m["variants"][0]["modules"], serde_json::json!(["reflect"]));
    let cells = m["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    // Exactly the harness `nlah show` composes with no toggles.
    let mut show_cmd = env.nlah();
    show_cmd.args(["show", MINI]);
    let shown = String::from_utf8_lossy(&output(show_cmd).await.stdout).into_owned();
    let version = m["variants"][0]["version"].as_str().unwrap();
    assert!(shown.contains(&version[..12]), "{version} not in:\n{shown}");
    for c in cells {
        let run = read_json(
            &out.join("cells")
                .join(c["id"].as_str().unwrap())
                .join("run.json"),
        );
        assert_eq!(run["harness"]["modules"], serde_json::json!(["reflect"]));
        assert_eq!(run["harness"]["version"], version);
    }

    // Resumable like any matrix: the same command runs nothing again.
    let calls = env.model().served().calls;
    let mut again = env.nlah();
    again
        .args([
            "ablate",
            MINI,
            TASKS,
            "--model",
            "openai:mock-1",
            "--seeds",
            "2",
        ])
        .args(["--json", "--out"])
        .arg(&out);
    let o = output(again).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let plan = lines(&o).into_iter().find(|l| l["event"] == "matrix");
    assert_eq!(plan.expect("a matrix line")["to_run"], 0);
    assert_eq!(env.model().served().calls, calls);

    // Reportable like any matrix.
    let mut report = env.nlah();
    report.arg("report").arg(&out).args(["--format", "json"]);
    let o = output(report).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let r: Value = serde_json::from_slice(&o.stdout).expect("report json");
    assert_eq!(r["design"], "default");
    assert_eq!(r["baseline"], "default");
    assert_eq!(r["counts"]["passed"], 4);
    let row = &r["groups"][0]["rows"][0];
    assert_eq!(row["variant"], "default");
    assert_eq!(row["perf"]["mean"], 100.0);
    let mut md = env.nlah();
    md.arg("report").arg(&out);
    let o = output(md).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("default"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_errors_name_their_cause() {
    let env = TestEnv::with_model(diligent).await;

    let cases: [(&[&str], &str); 5] = [
        (
            &["--design", "default", "--module", "reviewer"],
            "takes no --module (given: reviewer)",
        ),
        (&["--baseline", "basic"], "`basic` is not a variant"),
        (
            &["--design", "leave-one-out"],
            "needs the modules to ablate",
        ),
        (&["--design", "nonesuch"], "give default, one-at-a-time"),
        (&["--seeds", "0"], "--seeds must be at least 1"),
    ];
    for (extra, cause) in cases {
        let mut cmd = env.nlah();
        cmd.args(["eval", MINI, TASKS, "--model", "openai:mock-1", "--out"])
            .arg(env.root().join("out"))
            .args(extra);
        let o = output(cmd).await;
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(cause), "{extra:?}: {err}");
    }
    let mut cmd = env.nlah();
    cmd.args(["eval", MINI, TASKS]);
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no model"));
    let mut cmd = env.nlah();
    cmd.args([
        "eval",
        MINI,
        "tests/fixtures/no-such-tasks",
        "--model",
        "openai:mock-1",
    ]);
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no-such-tasks"),
        "{}",
        show(&o)
    );
    assert!(!env.root().join("out").exists(), "nothing ran");
    assert_eq!(env.model().served().calls, 0);
}

/// `tests/fixtures/matrix-v1/matrix.json` was written by nlah before the run settings became
/// one type (`nlah ablate mini ablate-tasks --module reviewer --max-steps 7 --tool-choice write
/// --retries 2 --pass-env NLAH_TEST_KEY --temperature 0.5 --max-tokens 300 --charter
/// tests/fixtures/charter-mini`), with this repository's path replaced by `@ROOT@`.
fn old_matrix(out: &Path) {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string("tests/fixtures/matrix-v1/matrix.json").unwrap();
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(out.join("matrix.json"), text.replace("@ROOT@", root)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_matrix_of_the_earlier_layout_resumes_with_its_settings() {
    let env = TestEnv::with_model(diligent).await;
    let out = env.root().join("out");
    old_matrix(&out);
    let mut cmd = env.nlah();
    cmd.args(["ablate", "--resume", "--json", "--out"])
        .arg(&out);
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let summary = lines(&o).into_iter().find(|l| l["event"] == "summary");
    assert_eq!(summary.expect("a summary line")["cells"], 4);

    // Every model call ran with the stored settings, not the defaults.
    let requests = env.model().requests();
    assert!(!requests.is_empty());
    for r in &requests {
        // `--tool-choice write` forces `write` at a child's first step, then any tool (through
        // the dispatching tool on servers other than OpenAI's).
        let first = !r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "assistant");
        let forced = if first { "write" } else { "call_tool" };
        assert_eq!(r["tool_choice"]["function"]["name"], forced, "{r}");
        assert_eq!(r["temperature"], 0.5);
        let max = if r["max_tokens"].is_null() {
            &r["max_completion_tokens"]
        } else {
            &r["max_tokens"]
        };
        assert_eq!(max, 300);
        let system = r["messages"][0]["content"].as_str().unwrap_or_default();
        let user = r["messages"][1]["content"].as_str().unwrap_or_default();
        // A line of tests/fixtures/charter-mini that the default charter does not have.
        let line = "Work in the current directory. Use the tools to act.";
        assert!(
            system.contains(line) || user.contains(line),
            "the stored charter reaches the children"
        );
    }
    // The settings stay as they were stored, the flags given later aside.
    let m = read_json(&out.join("matrix.json"));
    assert_eq!(m["settings"]["max_steps"], 7);
    assert_eq!(m["settings"]["tool_choice"], "write");
    assert_eq!(m["settings"]["retries"], 2);
    assert_eq!(
        m["settings"]["pass_env"],
        serde_json::json!(["NLAH_TEST_KEY"])
    );

    let mut cmd = env.nlah();
    cmd.args(["ablate", "--resume", "--json", "--retries", "1", "--out"])
        .arg(&out);
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let m = read_json(&out.join("matrix.json"));
    assert_eq!(m["settings"]["retries"], 1);
    assert_eq!(
        m["settings"]["max_steps"], 7,
        "a flag not given keeps its value"
    );
    assert_eq!(m["settings"]["tool_choice"], "write");
}

/// The commands that take the run settings keep their flags and help; a change shows here.
#[tokio::test]
async fn the_help_of_the_commands_that_run_cells() {
    for command in ["run", "ablate"] {
        let mut cmd = TestEnv::new().nlah();
        cmd.args([command, "--help"]);
        let o = output(cmd).await;
        assert_eq!(o.status.code(), Some(0));
        insta::assert_snapshot!(
            format!("help_{command}"),
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

//! `nlah evolve`: Self-Harness against the scripted model. The children write the answer their
//! task names, in capitals or reversed when their stage says so; the proposer is the same model
//! server, answering requests that start with the proposer's mark. A helpful edit (capitals) is
//! accepted, a harmful one (reversal) and one that names a task are rejected, the test split runs
//! only at the end, and a run killed with SIGKILL continues where it was.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::gitrepo::Repo;
use crate::support::{Answer, TestEnv, Turn, assert_fsck, output};

const MARK: &str = "# Harness evolution: propose edits";

const SKILL: &str = "---
name: answer
description: One stage that writes the answer a task names.
---

# Answer

## Contract

### Budgets
- tokens: 60k
- tool calls: 12
- llm calls: 12

## Roles

### executor
Write the requested file with the write tool.

## Stages

### solve
- role: executor
- produces: `artifacts/result.txt`
- on failure: stop

Write the answer to `artifacts/result.txt`, then the report.

## Failure taxonomy
- no-result: nothing was written.
";

/// (id, split, answer the task names, what its hidden test expects)
const TASKS: [(&str, &str, &str, &str); 10] = [
    ("s-apple", "search", "apple", "APPLE"),
    ("s-banana", "search", "banana", "BANANA"),
    ("s-cherry", "search", "cherry", "CHERRY"),
    ("s-42", "search", "42", "42"),
    ("v-delta", "validation", "delta", "DELTA"),
    ("v-echo", "validation", "echo", "ECHO"),
    ("v-7", "validation", "7", "7"),
    ("t-fox", "test", "fox", "FOX"),
    ("t-golf", "test", "golf", "GOLF"),
    ("t-9", "test", "9", "9"),
];

/// A repository holding the harness at `h/`, committed, and the tasks outside it.
fn world(env: TestEnv) -> (Repo, PathBuf) {
    let mut repo = Repo::in_env(env);
    repo.write("h/SKILL.md", SKILL);
    repo.write("README.md", "a project\n");
    repo.commit("the harness");
    let tasks = repo.env.root().join("tasks");
    for (id, split, answer, expect) in TASKS {
        let d = tasks.join(id);
        std::fs::create_dir_all(d.join("tests")).unwrap();
        std::fs::write(
            d.join("TASK.md"),
            format!("Write the answer to `artifacts/result.txt`. The answer is `{answer}`.\n"),
        )
        .unwrap();
        std::fs::write(d.join("task.toml"), format!("split = \"{split}\"\n")).unwrap();
        std::fs::write(
            d.join("tests/test.sh"),
            format!("#!/usr/bin/env bash\ngrep -qx '{expect}' ../artifacts/result.txt\n"),
        )
        .unwrap();
    }
    (repo, tasks)
}

fn change(find: &str, replace: &str) -> Value {
    json!({"file": "SKILL.md", "find": find, "replace": replace})
}

const LINE: &str = "Write the answer to `artifacts/result.txt`, then the report.";

/// The first iteration's proposals: helpful, harmful, naming a task, outside its surface.
fn proposals() -> Value {
    json!({"edits": [
        {"surface": "SKILL.md#Stages", "mechanism": "the verifier wants capitals: say so",
         "changes": [change(LINE, "Write the answer to `artifacts/result.txt` in UPPERCASE, then the report.")],
         "predicted": {"search": 0.75, "validation": 0.5}},
        {"surface": "SKILL.md#solve", "mechanism": "write answers reversed",
         "changes": [change(LINE, "Write the answer to `artifacts/result.txt` reversed, then the report.")],
         "predicted": {"search": 0.25, "validation": 0.0}},
        {"surface": "SKILL.md#Stages", "mechanism": "special-case the failing task",
         "changes": [change(LINE, "Write the answer to `artifacts/result.txt`; for s-apple write APPLE.")],
         "predicted": {"search": 0.25, "validation": 0.0}},
        {"surface": "SKILL.md#Stages", "mechanism": "a bigger budget",
         "changes": [change("- tool calls: 12", "- tool calls: 20")],
         "predicted": {"search": 0.1, "validation": 0.1}}
    ]})
}

/// The children: the answer their task names, transformed as their stage says; then the report.
fn child(t: &Turn) -> Answer {
    let word = t
        .task
        .split("The answer is `")
        .nth(1)
        .and_then(|r| r.split('`').next())
        .unwrap_or("?");
    let answer = if t.task.contains("in UPPERCASE") {
        word.to_uppercase()
    } else if t.task.contains("reversed") {
        word.chars().rev().collect()
    } else {
        word.to_string()
    };
    match t.turn {
        0 => Answer::write("artifacts/result.txt", &format!("{answer}\n")),
        1 => Answer::write(
            &format!("children/{}/RESPONSE.md", t.child),
            "status: done\n\nWritten.\n",
        ),
        _ => Answer::text("Finished."),
    }
}

fn evolve_cmd(
    env: &TestEnv,
    repo: &Repo,
    tasks: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Command {
    let mut cmd = env.nlah();
    cmd.current_dir(repo.path()).args([
        "evolve",
        "h",
        tasks.to_str().unwrap(),
        "--model",
        "openai:mock-1",
        "--seeds",
        "2",
        "--edits",
        "4",
        "--iterations",
        "2",
        "--retries",
        "1",
        "--name",
        "t",
        "--out",
        out.to_str().unwrap(),
    ]);
    cmd.args(extra);
    cmd
}

fn state(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("evolve.json")).unwrap()).unwrap()
}

/// Every cell of every matrix under OUT/evals, as (task, run.json).
fn cells(out: &Path) -> Vec<(String, Option<Value>)> {
    let mut v = Vec::new();
    let Ok(dirs) = std::fs::read_dir(out.join("evals")) else {
        return v;
    };
    for d in dirs {
        let d = d.unwrap().path();
        let Ok(m) = std::fs::read(d.join("matrix.json")) else {
            continue;
        };
        let m: Value = serde_json::from_slice(&m).unwrap();
        for c in m["cells"].as_array().unwrap() {
            let run = d
                .join("cells")
                .join(c["id"].as_str().unwrap())
                .join("run.json");
            let rec = std::fs::read(&run)
                .ok()
                .map(|b| serde_json::from_slice(&b).unwrap());
            v.push((c["task"].as_str().unwrap().to_string(), rec));
        }
    }
    v
}

fn is_test(task: &str) -> bool {
    task.starts_with("t-")
}

fn redact(s: &str, root: &Path) -> String {
    let root = root.canonicalize().unwrap();
    let s = s.replace(root.to_str().unwrap(), "[root]");
    regex::Regex::new(r"\b[0-9a-f]{12}\b")
        .unwrap()
        .replace_all(&s, "[commit]")
        .into_owned()
}

#[tokio::test]
async fn evolution_accepts_the_helpful_edit_and_rejects_the_rest() {
    let proposer_calls = Arc::new(AtomicUsize::new(0));
    let calls = proposer_calls.clone();
    let env = TestEnv::with_model(move |t: &Turn| {
        if t.task.starts_with(MARK) {
            calls.fetch_add(1, Ordering::SeqCst);
            return Answer::text(&format!(
                "Here are my edits:\n```json\n{}\n```",
                proposals()
            ));
        }
        child(t)
    })
    .await;
    let (repo, tasks) = world(env);
    let head = repo.repo.head().unwrap().target().unwrap();
    let out = repo.env.root().join("out");
    let o = output(evolve_cmd(&repo.env, &repo, &tasks, &out, &[])).await;
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");

    let s = state(&out);
    let c = &s["rounds"][0]["candidates"];
    assert_eq!(c[0]["status"], "accepted", "{c:#}");
    assert_eq!(c[1]["status"], "screen-rejected", "{c:#}");
    assert_eq!(c[2]["status"], "rejected");
    assert_eq!(c[2]["reason"], "names task `s-apple`");
    assert_eq!(c[3]["status"], "rejected");
    assert!(
        c[3]["reason"]
            .as_str()
            .unwrap()
            .contains("outside the section `Stages`"),
        "{c:#}"
    );
    assert_eq!(c[0]["search"]["delta"], 0.75);
    assert_eq!(c[0]["prediction"][0][1]["held"], true);
    assert_eq!(s["rounds"][0]["accepted"], "1-1");
    // The accepted harness fails nothing on search: nothing is left to mine.
    assert_eq!(s["rounds"].as_array().unwrap().len(), 1);
    assert_eq!(s["stop"], "the search split has no failures left to mine");
    assert_eq!(s["phase"], "done");
    assert_eq!(proposer_calls.load(Ordering::SeqCst), 1);

    // The test split: run once, at the end, on the starting and the accepted harness.
    let fin = &s["final_"];
    assert_eq!(fin["comparison"]["parent"].as_f64().unwrap(), 1.0 / 3.0);
    assert_eq!(fin["comparison"]["candidate"], 1.0);
    let final_start =
        chrono::DateTime::parse_from_rfc3339(fin["started"].as_str().unwrap()).unwrap();
    let all = cells(&out);
    let mut test_cells = 0;
    for (task, rec) in &all {
        // A candidate the screen rejected leaves the rest of its matrix unrun.
        let Some(rec) = rec else {
            assert!(!is_test(task), "an unrun test cell of {task}");
            continue;
        };
        let started =
            chrono::DateTime::parse_from_rfc3339(rec["started"].as_str().unwrap()).unwrap();
        if is_test(task) {
            test_cells += 1;
            assert!(
                started >= final_start,
                "test cell {task} ran before the end"
            );
        } else {
            assert!(
                started <= final_start,
                "search cell {task} ran after the end"
            );
        }
    }
    assert_eq!(
        test_cells,
        3 * 2 * 2,
        "two harnesses × three tasks × two seeds"
    );

    // The lineage: commits in the repository, the user's HEAD, index and files untouched.
    assert_eq!(repo.repo.head().unwrap().target().unwrap(), head);
    assert!(repo.repo.statuses(None).unwrap().is_empty());
    let branch = repo.repo.revparse_single("nlah/evolve/t").unwrap().id();
    assert_eq!(branch.to_string(), s["current"].as_str().unwrap());
    assert!(
        repo.repo.revparse_single("refs/nlah/evolve/t/1-2").is_ok(),
        "the screened-out candidate is kept"
    );
    assert_fsck(&repo.path());
    let (code, log, err) = repo.nlah(&["log", "h", "--rev", "nlah/evolve/t"]);
    assert_eq!(code, 0, "{err}");
    assert!(log.contains("nlah evolve 1-1"), "{log}");
    assert!(log.contains("openai:mock-1"), "{log}");
    let (code, diff, err) = repo.nlah(&[
        "diff",
        s["start"].as_str().unwrap(),
        "nlah/evolve/t",
        "--",
        "h",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(diff.contains("in UPPERCASE"), "{diff}");
    let note = repo
        .repo
        .find_note(Some("refs/notes/nlah"), branch)
        .unwrap();
    assert!(note.message().unwrap().contains("\"evolve\""));

    insta::assert_snapshot!("report", redact(&stdout, repo.env.root()));
}

#[tokio::test]
async fn proposer_faults_are_recorded_and_the_run_ends_cleanly() {
    let n = Arc::new(AtomicUsize::new(0));
    let k = n.clone();
    let env = TestEnv::with_model(move |t: &Turn| {
        if t.task.starts_with(MARK) {
            return match k.fetch_add(1, Ordering::SeqCst) {
                0 => Answer::text("I would rather not {edits: ["),
                _ => Answer::text("{\"edits\": []}"),
            };
        }
        child(t)
    })
    .await;
    let (repo, tasks) = world(env);
    let out = repo.env.root().join("out");
    let o = output(evolve_cmd(&repo.env, &repo, &tasks, &out, &["--json"])).await;
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = state(&out);
    assert_eq!(s["rounds"][0]["proposer"]["status"], "malformed");
    assert_eq!(s["rounds"][1]["proposer"]["status"], "no edit");
    assert_eq!(s["current"], s["start"], "nothing accepted");
    assert_eq!(s["phase"], "done");
    assert!(
        stdout.lines().any(|l| l.contains("\"proposer-failed\"")),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_split_too_small_is_a_clear_error() {
    let env = TestEnv::with_model(child).await;
    let (repo, tasks) = world(env);
    for t in ["t-fox", "t-golf", "t-9"] {
        std::fs::remove_dir_all(tasks.join(t)).unwrap();
    }
    let out = repo.env.root().join("out");
    let o = output(evolve_cmd(&repo.env, &repo, &tasks, &out, &[])).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("the test split has 0 task(s) of 7"), "{err}");
    assert!(!out.join("evals").exists());
}

#[tokio::test]
async fn a_killed_evolution_continues_and_never_touched_the_test_split() {
    let proposer_calls = Arc::new(AtomicUsize::new(0));
    let calls = proposer_calls.clone();
    let env = TestEnv::with_model(move |t: &Turn| {
        if t.task.starts_with(MARK) {
            calls.fetch_add(1, Ordering::SeqCst);
            return Answer::text(&proposals().to_string());
        }
        child(t)
    })
    .await;
    let (repo, tasks) = world(env);
    let out = repo.env.root().join("out");
    let mut cmd = evolve_cmd(&repo.env, &repo, &tasks, &out, &["--concurrency", "1"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child_proc = cmd.spawn().unwrap();
    // Killed once the first candidate is a commit: in the middle of its evaluation.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = std::fs::read(out.join("evolve.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if s.is_some_and(|s| s["rounds"][0]["candidates"][0]["commit"].is_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no candidate commit within a minute"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child_proc.kill().unwrap();
    child_proc.wait().unwrap();
    let s = state(&out);
    assert_ne!(s["phase"], "done", "killed before the end");
    assert!(
        cells(&out).iter().all(|(task, _)| !is_test(task)),
        "no test-split cell exists before the end"
    );

    let o = output(evolve_cmd(&repo.env, &repo, &tasks, &out, &[])).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = state(&out);
    assert_eq!(s["phase"], "done");
    assert_eq!(s["rounds"][0]["accepted"], "1-1");
    assert_eq!(
        proposer_calls.load(Ordering::SeqCst),
        1,
        "the proposal was kept, not asked again"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("continuing the evolution"));
    assert_fsck(&repo.path());
}

/// Environment tasks: the `arena` harness on `examples/hanoi` (three towers: one per split). The
/// player solves the tower only when its stage tells it to; the edit that says so is accepted,
/// judged by the episodes' rewards.
#[tokio::test(flavor = "multi_thread")]
async fn evolution_works_on_environment_tasks() {
    let env = TestEnv::with_model(|t: &Turn| {
        if t.task.starts_with(MARK) {
            return Answer::text(
                &json!({"edits": [{
                    "surface": "SKILL.md#play",
                    "mechanism": "players stop early: ask for the whole solution",
                    "changes": [change("Play the episode to its end, then report.", "Play the episode to its end, then report. Solve the tower move by move.")],
                    "predicted": {"search": 1.0, "validation": 1.0}
                }]})
                .to_string(),
            );
        }
        if t.task.contains("Solve the tower move by move") {
            crate::environments::solver(t)
        } else {
            crate::environments::report(t)
        }
    })
    .await;
    let mut repo = Repo::in_env(env);
    repo.copy("harness-skills/arena", "arena");
    repo.commit("the arena harness");
    let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hanoi");
    let out = repo.env.root().join("out");
    let mut cmd = repo.env.nlah();
    cmd.current_dir(repo.path()).args([
        "evolve",
        "arena",
        tasks.to_str().unwrap(),
        "--model",
        "openai:mock-1",
        "--iterations",
        "1",
        "--edits",
        "1",
        "--seeds",
        "2",
        "--retries",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let o = output(cmd).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let s = state(&out);
    assert_eq!(s["rounds"][0]["accepted"], "1-1", "{:#}", s["rounds"]);
    assert_eq!(s["final_"]["comparison"]["candidate"], 1.0);
    assert_eq!(s["final_"]["comparison"]["parent"], 0.0);
    assert_eq!(s["branch"], "nlah/evolve/out");
}

fn helpful_env_policy(calls: Arc<AtomicUsize>) -> impl Fn(&Turn) -> Answer + Send + Sync + 'static {
    move |t: &Turn| {
        if t.task.starts_with(MARK) {
            calls.fetch_add(1, Ordering::SeqCst);
            return Answer::text(&proposals().to_string());
        }
        child(t)
    }
}

/// `--max-cost` bounds the whole evolution: spent, the search stops cleanly before the test
/// split; rerun with more, it continues to the end. Every iteration's cost is recorded.
#[tokio::test]
async fn max_cost_stops_the_search_and_a_rerun_continues() {
    let env = TestEnv::with_model(helpful_env_policy(Arc::default())).await;
    let (repo, tasks) = world(env);
    let prices = repo.env.root().join("prices.toml");
    std::fs::write(
        &prices,
        "[models.\"mock-1\"]\ninput = 10.0\noutput = 10.0\n",
    )
    .unwrap();
    let out = repo.env.root().join("out");
    let mut cmd = evolve_cmd(&repo.env, &repo, &tasks, &out, &["--max-cost", "0.0005"]);
    cmd.env("NLAH_PRICES", &prices);
    let o = output(cmd).await;
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = state(&out);
    assert_eq!(s["stop"], "--max-cost is spent", "{s:#}");
    assert_ne!(s["phase"], "done");
    assert!(
        stdout.contains("The test split has not been run"),
        "{stdout}"
    );
    assert!(cells(&out).iter().all(|(t, _)| !is_test(t)));

    let mut cmd = evolve_cmd(&repo.env, &repo, &tasks, &out, &["--max-cost", "100"]);
    cmd.env("NLAH_PRICES", &prices);
    let o = output(cmd).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = state(&out);
    assert_eq!(s["phase"], "done");
    assert_eq!(s["rounds"][0]["accepted"], "1-1");
    assert!(s["rounds"][0]["cost_proposer"].as_f64().unwrap() > 0.0);
    assert!(s["rounds"][0]["cost_evaluation"].as_f64().unwrap() > 0.0);
    assert!(s["final_"]["cost"].as_f64().unwrap() > 0.0);
}

/// Evaluations run as Slurm job arrays (fake `sbatch` and friends that run the array tasks
/// themselves, tests/fixtures/slurm/bin).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evolution_runs_its_cells_on_slurm() {
    let env = TestEnv::with_model(helpful_env_policy(Arc::default())).await;
    let (repo, tasks) = world(env);
    let state_dir = repo.env.root().join("slurm-state");
    let out = repo.env.root().join("out");
    let mut cmd = evolve_cmd(
        &repo.env,
        &repo,
        &tasks,
        &out,
        &["--executor", "slurm", "--poll-ms", "100"],
    );
    crate::support::fake_slurm::use_fake_slurm(&mut cmd, &state_dir, 100);
    let o = output(cmd).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = state(&out);
    assert_eq!(s["rounds"][0]["accepted"], "1-1");
    let sbatch = crate::support::fake_slurm::sbatch_calls(&state_dir);
    assert!(!sbatch.is_empty(), "the evaluations went through sbatch");
}

/// The bundled task set with the `basic` harness: the split follows the tasks' own `task.toml`
/// (two search, one validation, two test), their real hidden verifiers judge, and an edit that
/// changes nothing the children do is evaluated and not accepted.
#[tokio::test]
async fn evolution_runs_on_the_bundled_tasks_with_basic() {
    let env = TestEnv::with_model(|t: &Turn| {
        if t.task.starts_with(MARK) {
            return Answer::text(
                &json!({"edits": [{
                    "surface": "SKILL.md#Failure taxonomy",
                    "mechanism": "name the failure of giving up early",
                    "changes": [{"file": "SKILL.md", "find": "## Failure taxonomy\n", "replace": "## Failure taxonomy\n- gave-up: the child reported before changing anything; look at the files first.\n"}],
                    "predicted": {"search": 0.5, "validation": 0.0}
                }]})
                .to_string(),
            );
        }
        // A child that reports at once, changing nothing: every hidden verifier fails.
        match t.turn {
            0 => Answer::write(
                &format!("children/{}/RESPONSE.md", t.child),
                "status: done\n\nNothing to change.\n",
            ),
            _ => Answer::text("Finished."),
        }
    })
    .await;
    let mut repo = Repo::in_env(env);
    repo.copy("harness-skills/basic", "basic");
    repo.commit("the basic harness");
    let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tasks");
    let out = repo.env.root().join("out");
    let mut cmd = repo.env.nlah();
    cmd.current_dir(repo.path()).args([
        "evolve",
        "basic",
        tasks.to_str().unwrap(),
        "--model",
        "openai:mock-1",
        "--iterations",
        "1",
        "--edits",
        "1",
        "--seeds",
        "1",
        "--retries",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let o = output(cmd).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = state(&out);
    assert_eq!(
        s["split"]["search"],
        json!(["fix-csv-quoting", "fix-median"])
    );
    assert_eq!(s["split"]["validation"], json!(["shell-word-count"]));
    assert_eq!(
        s["split"]["test"],
        json!(["hello-greeting", "write-config"])
    );
    let c = &s["rounds"][0]["candidates"][0];
    assert_eq!(c["status"], "not-accepted", "{c:#}");
    assert_eq!(c["reason"], "better on neither split beyond noise");
    assert_eq!(
        c["prediction"][0][1]["held"], false,
        "it predicted +0.5 on search"
    );
    assert_eq!(
        s["final_"]["comparison"],
        Value::Null,
        "one harness: nothing to compare"
    );
    assert_eq!(s["final_"]["start"]["hello-greeting"], json!([0, 1]));
}

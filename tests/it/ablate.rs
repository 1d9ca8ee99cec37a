//! `nlah ablate` end to end against the scripted model on loopback: cells and their ids, the
//! matrix file, resuming (finished cells cost no model call), rerunning errors and half-written
//! cells, surviving kill -9, the cost ceiling, designs, and the index.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{TestEnv, Turn, assert_fsck, assert_fsck_cells, diligent, output};

const MINI: &str = "tests/fixtures/mini";
const TASKS: &str = "tests/fixtures/ablate-tasks";

/// `nlah ablate MINI TASKS --module reviewer --seeds 2 …`: 2 variants × 2 tasks × 2 seeds.
fn ablate(env: &TestEnv, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = env.ablate_mini(TASKS);
    cmd.arg("--out").arg(out).args(extra);
    cmd
}

fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn events<'a>(v: &'a [Value], kind: &str) -> Vec<&'a Value> {
    v.iter().filter(|e| e["event"] == kind).collect()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn matrix(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("matrix.json")).expect("matrix.json"))
        .expect("json")
}

fn cell_ids(out: &Path) -> Vec<String> {
    matrix(out)["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

fn run_json(out: &Path, id: &str) -> PathBuf {
    out.join("cells").join(id).join("run.json")
}

fn outcome(out: &Path, id: &str) -> Option<String> {
    let v: Value = serde_json::from_slice(&std::fs::read(run_json(out, id)).ok()?).ok()?;
    v["outcome"].as_str().map(str::to_string)
}

fn finished(o: Option<String>) -> bool {
    matches!(o.as_deref(), Some("passed" | "failed" | "unverified"))
}

/// Folders of earlier attempts of a cell.
fn attempts(out: &Path, id: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join("cells"))
        .expect("cells/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{id}.attempt-")))
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_matrix_runs_every_cell_once_and_resumes_for_free() {
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    let out = env.root().join("out");

    let o = output(ablate(&env, &out, &["--concurrency", "3"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let m = matrix(&out);
    assert_eq!(m["schema"], "nlah.matrix/1");
    assert_eq!(m["design"], "one-at-a-time");
    assert_eq!(m["baseline"], "basic");
    let variants: Vec<(&str, &Value)> = m["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), &v["modules"]))
        .collect();
    assert_eq!(
        variants,
        [
            ("basic", &serde_json::json!([])),
            ("+reviewer", &serde_json::json!(["reviewer"]))
        ],
        "reflect is enabled by default, but is off in every variant since it is not listed"
    );
    let ids = cell_ids(&out);
    assert_eq!(ids.len(), 8, "2 variants × 2 tasks × 2 seeds");
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 8);
    for (i, c) in m["cells"].as_array().unwrap().iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["id"].as_str().unwrap().len(), 16);
    }
    for id in &ids {
        assert_eq!(outcome(&out, id).as_deref(), Some("passed"), "cell {id}");
        let r: Value = serde_json::from_slice(&std::fs::read(run_json(&out, id)).unwrap()).unwrap();
        let on = r["harness"]["modules"].as_array().unwrap();
        assert!(!on.iter().any(|m| m == "reflect"), "{r}");
    }
    let ev = lines(&o);
    assert_eq!(events(&ev, "cell-started").len(), 8);
    let fin = events(&ev, "cell-finished");
    assert_eq!(fin.len(), 8);
    assert!(
        fin.iter()
            .all(|e| e["outcome"] == "passed" && e["usage"]["llm_calls"].as_u64().unwrap() > 0)
    );
    let summary = events(&ev, "summary");
    assert_eq!(summary[0]["passed"], 8);
    assert_eq!(summary[0]["complete"], true);
    assert!(out.join("index.sqlite").is_file());
    assert!(out.join("cells").read_dir().unwrap().count() == 8);

    // A full rerun (with or without --resume) runs nothing: no model call at all.
    let calls = model.served().calls;
    let stamp = |id: &str| {
        std::fs::metadata(run_json(&out, id))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before: Vec<_> = ids.iter().map(|id| stamp(id)).collect();
    for extra in [&[][..], &["--resume"][..]] {
        let o = output(ablate(&env, &out, extra)).await;
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        assert_eq!(events(&lines(&o), "matrix")[0]["to_run"], 0);
        assert_eq!(
            model.served().calls,
            calls,
            "a finished cell costs no model call"
        );
    }
    assert_eq!(cell_ids(&out), ids, "cell ids are stable across runs");
    let after: Vec<_> = ids.iter().map(|id| stamp(id)).collect();
    assert_eq!(before, after);

    // A cell that ended in `error` and one left half-written are run again; their old folders
    // are kept aside; nothing else runs.
    let err = &ids[1];
    let path = run_json(&out, err);
    let mut r: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    r["outcome"] = "error".into();
    r["error_class"] = "unreachable".into();
    std::fs::write(&path, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    let half = &ids[6];
    std::fs::remove_file(run_json(&out, half)).unwrap();
    let o = output(ablate(&env, &out, &["--resume"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let ev = lines(&o);
    assert_eq!(events(&ev, "matrix")[0]["to_run"], 2);
    let rerun: Vec<&str> = events(&ev, "cell-finished")
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(rerun.len(), 2);
    assert!(rerun.contains(&err.as_str()) && rerun.contains(&half.as_str()));
    assert!(model.served().calls > calls);
    for id in [err, half] {
        assert_eq!(outcome(&out, id).as_deref(), Some("passed"));
        let a = attempts(&out, id);
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(a[0].to_string_lossy().ends_with(".attempt-1"));
    }

    // The index serves the same cells as the files, and rebuilds from them.
    let cells = nlah::ablation::index::load(&out).unwrap();
    assert_eq!(cells.len(), 8);
    assert!(cells.iter().all(|c| {
        c.record
            .as_ref()
            .is_some_and(|r| r.outcome.as_str() == "passed")
    }));
    std::fs::write(out.join("index.sqlite"), b"not a database").unwrap();
    assert_eq!(nlah::ablation::index::load(&out).unwrap().len(), 8);
    let o = output({
        let mut c = env.nlah();
        c.args(["ablate", "--reindex"]).arg(&out);
        c
    })
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("from 8 run.json"));

    // run-cell runs one cell the same way, and not twice.
    let o = output({
        let mut c = env.nlah();
        c.args(["run-cell", "--matrix"])
            .arg(out.join("matrix.json"))
            .args(["--index", "3"]);
        c
    })
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("has a result already"));
    assert_fsck_cells(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cells_of_a_matrix_share_one_connection_to_their_model() {
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    let out = env.root().join("out");
    let o = output(ablate(&env, &out, &["--concurrency", "1"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(cell_ids(&out).len(), 8);
    assert!(model.served().calls >= 8);
    // A client per cell opens a connection per cell (8). With one client per model the
    // connection stays open from cell to cell; hyper hands a connection back to its pool
    // only after the response's end is processed, so on a loaded machine a request sent at once
    // after the previous one may still open a second.
    let connections = model.connections();
    assert!(
        (1..=3).contains(&connections),
        "one HTTP client per model, its connection kept open from cell to cell: {connections} connections for 8 cells"
    );
    assert_fsck_cells(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_cell_runs_exactly_one_cell() {
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    let out = env.root().join("out");
    // A matrix whose cells are all left to run: the cost ceiling stops it at once.
    let o = output(ablate(&env, &out, &["--max-cost", "0"])).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let ids = cell_ids(&out);
    assert!(ids.iter().all(|id| outcome(&out, id).is_none()));
    assert_eq!(model.served().calls, 0);

    let o = output({
        let mut c = env.nlah();
        c.args(["run-cell", "--json", "--matrix"])
            .arg(out.join("matrix.json"))
            .args(["--index", "5"]);
        c
    })
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let ev = lines(&o);
    assert_eq!(events(&ev, "cell-finished")[0]["id"], ids[5].as_str());
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(finished(outcome(&out, id)), i == 5, "cell {i}");
    }
    let o = output({
        let mut c = env.nlah();
        c.args(["run-cell", "--matrix"])
            .arg(out.join("matrix.json"))
            .args(["--index", "8"]);
        c
    })
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert_fsck_cells(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_killed_matrix_resumes_without_losing_or_duplicating_a_result() {
    // Slow answers, so that the kill lands while cells are running.
    let env = TestEnv::with_model(|t: &Turn| {
        std::thread::sleep(Duration::from_millis(120));
        diligent(t)
    })
    .await;
    let out = env.root().join("out");
    let mut cmd = ablate(&env, &out, &["--concurrency", "2"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let done_before = loop {
        let ids = if out.join("matrix.json").is_file() {
            cell_ids(&out)
        } else {
            Vec::new()
        };
        let done: Vec<String> = ids
            .iter()
            .filter(|id| finished(outcome(&out, id)))
            .cloned()
            .collect();
        if done.len() >= 3 {
            break done;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "ablate ended too early"
        );
        assert!(Instant::now() < deadline, "no cell finished in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let ids = cell_ids(&out);
    let finished_at_kill: Vec<String> = ids
        .iter()
        .filter(|id| finished(outcome(&out, id)))
        .cloned()
        .collect();
    assert!(finished_at_kill.len() >= done_before.len());
    assert!(
        finished_at_kill.len() < ids.len(),
        "the kill came too late to test anything"
    );
    let stamps: Vec<_> = finished_at_kill
        .iter()
        .map(|id| std::fs::read(run_json(&out, id)).unwrap())
        .collect();

    let o = output(ablate(&env, &out, &["--concurrency", "4"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let ev = lines(&o);
    assert_eq!(
        events(&ev, "matrix")[0]["to_run"],
        ids.len() - finished_at_kill.len()
    );
    for id in &ids {
        assert!(finished(outcome(&out, id)), "cell {id} has no result");
        // Earlier attempts were never results: every result exists exactly once.
        for a in attempts(&out, id) {
            let o = std::fs::read(a.join("run.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v["outcome"].as_str().map(str::to_string));
            assert!(
                !finished(o.clone()),
                "{} holds a result: {o:?}",
                a.display()
            );
        }
    }
    for (id, bytes) in finished_at_kill.iter().zip(stamps) {
        assert_eq!(
            std::fs::read(run_json(&out, id)).unwrap(),
            bytes,
            "cell {id} finished before the kill and was not run again"
        );
    }
    for id in &ids {
        assert_fsck(&out.join("cells").join(id));
        for a in attempts(&out, id) {
            // A cell killed before its repository was renamed into place has no `.git` at all
            // (`init_repo` makes it aside); every `.git` there is must be whole.
            if a.join(".git").exists() {
                assert_fsck(&a);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cost_ceiling_stops_scheduling_and_says_so() {
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    let out = env.root().join("out");
    let prices = env.root().join("prices.toml");
    std::fs::write(&prices, "[models.\"mock-1\"]\ninput = 1.0\noutput = 1.0\n").unwrap();
    let mut cmd = ablate(
        &env,
        &out,
        &["--concurrency", "1", "--max-cost", "0.000001"],
    );
    cmd.env("NLAH_PRICES", &prices);
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let ev = lines(&o);
    let fin = events(&ev, "cell-finished");
    assert_eq!(fin.len(), 1, "one cell runs, then the ceiling is reached");
    assert!(fin[0]["usage"]["cost_usd"].as_f64().unwrap() > 0.000001);
    let stop = events(&ev, "max-cost-reached");
    assert_eq!(stop.len(), 1);
    assert_eq!(stop[0]["unscheduled"], 7);
    let ids = cell_ids(&out);
    assert_eq!(
        ids.iter().filter(|id| outcome(&out, id).is_some()).count(),
        1
    );
    assert_eq!(events(&ev, "summary")[0]["complete"], false);

    // Rerunning with the same ceiling runs nothing (the finished cell's cost counts), and the
    // human output says why.
    let calls = model.served().calls;
    let mut cmd = env.ablate_design(TASKS);
    cmd.args(["--max-cost", "0.000001", "--out"])
        .arg(&out)
        .env("NLAH_PRICES", &prices);
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cost ceiling reached"),
        "{}",
        show(&o)
    );
    assert_eq!(model.served().calls, calls);
    assert_fsck_cells(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn designs_files_and_bad_input() {
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    let out = env.root().join("out");

    // A design file with its own variants; its first variant is the baseline.
    let design = env.root().join("pair.toml");
    std::fs::write(
        &design,
        "[[variant]]\nname = \"both\"\nmodules = [\"reflect\", \"reviewer\"]\n\n[[variant]]\nname = \"reflect-only\"\nmodules = [\"reflect\"]\n",
    )
    .unwrap();
    let with_design = || {
        let mut cmd = env.nlah();
        cmd.args([
            "ablate",
            MINI,
            "tests/fixtures/ablate-tasks/alpha",
            "--design",
        ])
        .arg(&design)
        .args(["--model", "openai:mock-1", "--json", "--out"])
        .arg(&out);
        cmd
    };
    let o = output(with_design()).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let m = matrix(&out);
    assert_eq!(m["design"], "pair");
    assert_eq!(m["baseline"], "both");
    assert_eq!(m["cells"].as_array().unwrap().len(), 2);
    assert_eq!(
        m["variants"][0]["modules"],
        serde_json::json!(["reflect", "reviewer"])
    );

    // A design that gains an arm grows the matrix in place: only the new cell runs.
    std::fs::write(
        &design,
        "[[variant]]\nname = \"both\"\nmodules = [\"reflect\", \"reviewer\"]\n\n[[variant]]\nname = \"reflect-only\"\nmodules = [\"reflect\"]\n\n[[variant]]\nname = \"reviewer-only\"\nmodules = [\"reviewer\"]\n",
    )
    .unwrap();
    let before = model.served().calls;
    let created = matrix(&out)["created"].clone();
    let o = output(with_design()).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let m = matrix(&out);
    assert_eq!(m["cells"].as_array().unwrap().len(), 3);
    assert_eq!(m["created"], created);
    let plan: serde_json::Value = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|e: &serde_json::Value| e["event"] == "matrix")
        .unwrap();
    assert_eq!(plan["finished_earlier"], 2, "{}", show(&o));
    assert_eq!(
        plan["to_run"],
        1,
        "only the new arm's cell runs: {}",
        show(&o)
    );
    assert!(model.served().calls > before);

    // The same folder with a matrix that drops its cells is refused.
    let o = output(ablate(&env, &out, &[])).await;
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("different matrix"));

    // Unknown modules are usage errors, with a suggestion, before anything runs.
    let calls = model.served().calls;
    let mut cmd = env.nlah();
    cmd.args([
        "ablate",
        MINI,
        TASKS,
        "--module",
        "reviewr",
        "--model",
        "openai:mock-1",
        "--out",
    ])
    .arg(env.root().join("out2"));
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown module `reviewr`") && err.contains("reviewer"),
        "{err}"
    );
    assert!(!env.root().join("out2").join("matrix.json").exists());
    assert_eq!(model.served().calls, calls);

    // No model, no modules: usage errors too.
    let mut cmd = env.nlah();
    cmd.args(["ablate", MINI, TASKS, "--module", "reviewer"]);
    assert_eq!(output(cmd).await.status.code(), Some(2));
    let mut cmd = env.nlah();
    cmd.args([
        "ablate",
        MINI,
        TASKS,
        "--model",
        "openai:mock-1",
        "--design",
        "one-at-a-time",
    ]);
    assert_eq!(output(cmd).await.status.code(), Some(2));
    let mut cmd = env.nlah();
    cmd.args(["ablate", "--resume", "--out"])
        .arg(env.root().join("none"));
    assert_eq!(output(cmd).await.status.code(), Some(2));
    assert_fsck_cells(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_variant_that_does_not_compose_stops_everything() {
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    // A copy of mini whose reviewer module inserts a stage after one that does not exist.
    let h = env.root().join("broken");
    copy_dir(Path::new(MINI), &h);
    let m = std::fs::read_to_string(h.join("modules/reviewer.md")).unwrap();
    std::fs::write(
        h.join("modules/reviewer.md"),
        m.replace("after execute", "after nowhere"),
    )
    .unwrap();
    let mut cmd = env.nlah();
    cmd.arg("ablate")
        .arg(&h)
        .args([
            TASKS,
            "--module",
            "reviewer",
            "--model",
            "openai:mock-1",
            "--out",
        ])
        .arg(env.root().join("out"));
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("variant `+reviewer` does not compose"),
        "{err}"
    );
    assert_eq!(model.served().calls, 0);
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_matrix_is_not_resumed_on_a_changed_harness() {
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    let h = env.root().join("mini");
    copy_dir(Path::new(MINI), &h);
    let out = env.root().join("out");
    let mut cmd = env.nlah();
    cmd.arg("ablate")
        .arg(&h)
        .args([TASKS, "--module", "reviewer", "--model", "openai:mock-1"])
        .args(["--max-cost", "0", "--out"])
        .arg(&out);
    assert_eq!(output(cmd).await.status.code(), Some(1));
    let skill = std::fs::read_to_string(h.join("SKILL.md")).unwrap();
    std::fs::write(
        h.join("SKILL.md"),
        skill.replace("Write a short plan.", "Write a plan."),
    )
    .unwrap();
    let mut cmd = env.nlah();
    cmd.args(["ablate", "--resume", "--out"]).arg(&out);
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the harness changed"),
        "{}",
        show(&o)
    );
    assert_eq!(model.served().calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn ctrl_c_stops_cleanly_with_exit_130() {
    let env = TestEnv::with_model(|t: &Turn| {
        std::thread::sleep(Duration::from_millis(100));
        diligent(t)
    })
    .await;
    let out = env.root().join("out");
    let mut cmd = ablate(&env, &out, &["--concurrency", "2"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = out.join("matrix.json").is_file()
            && cell_ids(&out).iter().any(|id| finished(outcome(&out, id)));
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "no cell finished in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY: signalling the child this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("interrupted"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let ids = cell_ids(&out);
    let left: Vec<&String> = ids
        .iter()
        .filter(|id| !finished(outcome(&out, id)))
        .collect();
    assert!(!left.is_empty());
    let o = output(ablate(&env, &out, &["--resume"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(events(&lines(&o), "matrix")[0]["to_run"], left.len());
    assert!(ids.iter().all(|id| finished(outcome(&out, id))));
    assert_fsck_cells(&out);
}

/// The parts of a cell's record that a replay must reproduce: how it ended and what it spent
/// (not when, or how long it took).
fn replayable(out: &Path, id: &str) -> Value {
    let r: Value = serde_json::from_slice(&std::fs::read(run_json(out, id)).unwrap()).unwrap();
    serde_json::json!({
        "outcome": r["outcome"],
        "usage": r["usage"],
        "tool_calls": r["tool_calls"],
        "harness": r["harness"]["version"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recorded_matrix_replays_offline_cell_by_cell() {
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    let out = env.root().join("recorded");
    let o = output(ablate(&env, &out, &["--record-cassettes"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let ids = cell_ids(&out);
    for id in &ids {
        let cassette = out.join("cassettes").join(format!("{id}.jsonl"));
        let n = std::fs::read_to_string(&cassette).unwrap().lines().count();
        assert!(n > 0, "{} holds the cell's calls", cassette.display());
        assert!(
            !out.join("cells").join(id).join("cassette.jsonl").exists(),
            "a cassette is not in the cell's workspace"
        );
    }
    let calls = model.served().calls;

    // Replayed into a new folder: the same cells, the same results, and no model call.
    let replayed = env.root().join("replayed");
    let o = output(ablate(
        &env,
        &replayed,
        &[
            "--replay-cassettes",
            out.join("cassettes").to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(model.served().calls, calls, "a replay calls no model");
    assert_eq!(cell_ids(&replayed), ids);
    for id in &ids {
        assert_eq!(replayable(&replayed, id), replayable(&out, id), "cell {id}");
    }

    // A replay of a matrix recorded in part runs the recorded cells and says what it left out.
    let partial = env.root().join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::copy(
        out.join("cassettes").join(format!("{}.jsonl", ids[0])),
        partial.join(format!("{}.jsonl", ids[0])),
    )
    .unwrap();
    let again = env.root().join("again");
    let o = output(ablate(
        &env,
        &again,
        &["--replay-cassettes", partial.to_str().unwrap()],
    ))
    .await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "the matrix is not complete: {}",
        show(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("7 cell(s) have no cassette and are not replayed"),
        "{err}"
    );
    assert_eq!(replayable(&again, &ids[0]), replayable(&out, &ids[0]));
    assert_eq!(outcome(&again, &ids[1]), None);
    assert_eq!(model.served().calls, calls);

    // Cassettes of another matrix (or none): nothing runs.
    for dir in [
        env.root().join("empty"),
        PathBuf::from("/nonexistent/cassettes"),
    ] {
        std::fs::create_dir_all(env.root().join("empty")).unwrap();
        let none = env.root().join("none");
        let o = output(ablate(
            &env,
            &none,
            &["--replay-cassettes", dir.to_str().unwrap()],
        ))
        .await;
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        assert!(!none.join("cells").exists(), "nothing ran");
    }
}

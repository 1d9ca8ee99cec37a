//! The Slurm executor against fake `sbatch`/`squeue`/`scontrol`/`scancel` on PATH
//! (tests/fixtures/slurm/bin): they record their arguments and run the array tasks themselves, so
//! the submissions, their chunking under MaxArraySize, the `nlah run-cell` command lines, and the
//! collection of results are all checked without a cluster.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::fake_slurm::{sbatch_calls, use_fake_slurm};
use crate::support::{TestEnv, Turn, assert_fsck_cells, diligent, output};

struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        Fake { dir }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.state().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn sbatch_calls(&self) -> Vec<String> {
        sbatch_calls(&self.state())
    }

    fn cmd(&self, env: &TestEnv, max_array: usize, extra: &[&str]) -> Command {
        let mut cmd = env.ablate_mini("tests/fixtures/ablate-tasks");
        cmd.args(["--executor", "slurm", "--poll-ms", "100", "--out"])
            .arg(self.out())
            .args(extra);
        use_fake_slurm(&mut cmd, &self.state(), max_array);
        cmd
    }
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
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

fn ids(out: &Path) -> Vec<String> {
    let m: Value =
        serde_json::from_slice(&std::fs::read(out.join("matrix.json")).unwrap()).unwrap();
    m["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn outcome(out: &Path, id: &str) -> Option<String> {
    let b = std::fs::read(out.join("cells").join(id).join("run.json")).ok()?;
    let v: Value = serde_json::from_slice(&b).ok()?;
    v["outcome"].as_str().map(str::to_string)
}

/// The value of `--name=` in a recorded command line.
fn flag<'a>(call: &'a str, name: &str) -> Option<&'a str> {
    call.split(' ')
        .find_map(|w| w.strip_prefix(&format!("--{name}=")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cells_become_chunked_array_jobs_whose_results_are_collected() {
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    let fake = Fake::new();
    let out = fake.out();

    let o = output(fake.cmd(&env, 3, &["--concurrency", "2"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = out.canonicalize().unwrap();
    let ids = ids(&out);
    assert_eq!(ids.len(), 8);
    for id in &ids {
        assert_eq!(outcome(&out, id).as_deref(), Some("passed"), "cell {id}");
    }
    let ev = lines(&o);
    assert_eq!(events(&ev, "cell-finished").len(), 8);
    assert_eq!(events(&ev, "summary")[0]["complete"], true);

    // MaxArraySize 3: cells 0-2, 3-5 and 6-7 in three submissions, each after the one before.
    let calls = fake.calls();
    assert!(
        calls.iter().any(|c| c == "scontrol show config"),
        "{calls:?}"
    );
    let sb = fake.sbatch_calls();
    assert_eq!(sb.len(), 3, "{sb:?}");
    let arrays: Vec<&str> = sb.iter().map(|c| flag(c, "array").unwrap()).collect();
    assert_eq!(arrays, ["0-2%2", "0-2%2", "0-1%2"]);
    assert!(sb.iter().all(|c| c.contains("--parsable")));
    assert_eq!(flag(&sb[0], "dependency"), None);
    assert_eq!(flag(&sb[1], "dependency"), Some("afterany:4101"));
    assert_eq!(flag(&sb[2], "dependency"), Some("afterany:4102"));
    let log = out.join("slurm/%A_%a.log");
    assert!(
        sb.iter()
            .all(|c| flag(c, "output") == Some(log.to_str().unwrap()))
    );
    for (call, offset) in sb.iter().zip([0, 3, 6]) {
        let script = out.join(format!("slurm/array-{offset}.sh"));
        assert!(call.ends_with(script.to_str().unwrap()), "{call}");
        let text = std::fs::read_to_string(&script).unwrap();
        assert!(text.contains(&format!("OFFSET={offset}\n")), "{text}");
        assert!(
            text.contains(&format!(
                "{}' run-cell --matrix '{}' --index \"$((OFFSET + SLURM_ARRAY_TASK_ID))\"",
                env!("CARGO_BIN_EXE_nlah"),
                out.join("matrix.json").display()
            )),
            "{text}"
        );
    }
    // Every array task logged its cell; cells.txt maps indexes to ids.
    for (job, n) in [(4101, 3), (4102, 3), (4103, 2)] {
        for a in 0..n {
            let l = std::fs::read_to_string(out.join(format!("slurm/{job}_{a}.log"))).unwrap();
            let index = (job - 4101) * 3 + a;
            assert!(
                l.contains(&format!("cell {} finished: passed", ids[index])),
                "{job}_{a}: {l}"
            );
        }
    }
    let txt = std::fs::read_to_string(out.join("slurm/cells.txt")).unwrap();
    assert_eq!(txt.lines().collect::<Vec<_>>(), ids);
    assert!(calls.iter().any(|c| c.starts_with("squeue ")));
    let jobs: Value =
        serde_json::from_slice(&std::fs::read(out.join("slurm/jobs.json")).unwrap()).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 3);

    // Nothing left: no submission. One cell in error: one single-task submission.
    let calls_before = model.served().calls;
    let o = output(fake.cmd(&env, 3, &["--resume"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fake.sbatch_calls().len(), 3);
    assert_eq!(model.served().calls, calls_before);

    let p = out.join("cells").join(&ids[4]).join("run.json");
    let mut r: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    r["outcome"] = "error".into();
    std::fs::write(&p, serde_json::to_vec(&r).unwrap()).unwrap();
    let o = output(fake.cmd(&env, 3, &["--resume", "--concurrency", "5"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let sb = fake.sbatch_calls();
    assert_eq!(sb.len(), 4);
    assert_eq!(flag(&sb[3], "array"), Some("1%5"));
    assert!(sb[3].ends_with("array-3.sh"));
    assert_eq!(outcome(&out, &ids[4]).as_deref(), Some("passed"));
    assert!(
        out.join("cells")
            .join(format!("{}.attempt-1", ids[4]))
            .is_dir()
    );
    let ev = lines(&o);
    assert_eq!(events(&ev, "cell-finished").len(), 1);
    assert_fsck_cells(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cost_ceiling_cancels_pending_array_tasks() {
    let env = TestEnv::with_model(|t: &Turn| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        diligent(t)
    })
    .await;
    let fake = Fake::new();
    let prices = fake.dir.path().join("prices.toml");
    std::fs::write(&prices, "[models.\"mock-1\"]\ninput = 1.0\noutput = 1.0\n").unwrap();
    let mut cmd = fake.cmd(
        &env,
        1001,
        &["--concurrency", "1", "--max-cost", "0.000001"],
    );
    cmd.env("NLAH_PRICES", &prices);
    let o = output(cmd).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let calls = fake.calls();
    assert!(
        calls.iter().any(|c| c == "scancel --state=PENDING 4101"),
        "{calls:?}"
    );
    let ev = lines(&o);
    assert_eq!(events(&ev, "max-cost-reached").len(), 1);
    let out = fake.out();
    let done = ids(&out)
        .iter()
        .filter(|id| outcome(&out, id).is_some())
        .count();
    assert!((1..8).contains(&done), "{done} cells ran");
    let s = events(&ev, "summary")[0];
    assert_eq!(s["complete"], false);
    assert!(s["unscheduled"].as_u64().unwrap() >= 1, "{s}");
    assert_fsck_cells(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_an_earlier_submission_still_running_are_not_doubled() {
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    let fake = Fake::new();
    let out = fake.out();
    std::fs::create_dir_all(out.join("slurm")).unwrap();
    std::fs::write(
        out.join("slurm/jobs.json"),
        r#"[{"id": "77", "offset": 0, "array": "0-7%2", "cells": 8, "submitted": "2025-01-01T00:00:00Z"}]"#,
    )
    .unwrap();
    std::fs::create_dir_all(fake.state().join("jobs")).unwrap();
    std::fs::write(fake.state().join("jobs/77.running"), "").unwrap();
    let o = output(fake.cmd(&env, 1001, &[])).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("scancel 77"),
        "{}",
        show(&o)
    );
    assert!(fake.sbatch_calls().is_empty());
    assert_eq!(model.served().calls, 0);
}

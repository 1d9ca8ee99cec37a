//! `nlah ablate --max-cost` counted live: parallel cells against a priced scripted model on
//! loopback. The matrix's spend passes the limit by at most one model call per running cell,
//! cells the budget stops end as `budget` (not failures), the record and the report state the
//! spend and the overshoot, and resuming with a higher limit finishes the matrix.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support::{TestEnv, Turn, assert_fsck_cells, diligent, output};

const TASKS: &str = "tests/fixtures/ablate-tasks";
const CONCURRENCY: usize = 4;

fn ablate(env: &TestEnv, out: &Path, prices: &Path, extra: &[&str]) -> Command {
    let mut cmd = env.ablate_mini(TASKS);
    cmd.arg("--out")
        .arg(out)
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .args(extra)
        .env("NLAH_PRICES", prices);
    cmd
}

fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("json")
}

/// Each cell's run.json (None where the cell never started).
fn records(out: &Path) -> Vec<Option<Value>> {
    json(&out.join("matrix.json"))["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| {
            let p = out
                .join("cells")
                .join(c["id"].as_str().unwrap())
                .join("run.json");
            p.is_file().then(|| json(&p))
        })
        .collect()
}

fn cost(r: &Value) -> f64 {
    r["metrics"]["total"]["cost_usd"].as_f64().unwrap()
}

/// The most any single model call cost, over every cell's history.
fn max_call_cost(out: &Path) -> f64 {
    let mut max: f64 = 0.0;
    for entry in std::fs::read_dir(out.join("cells")).unwrap() {
        let log = entry.unwrap().path().join("history/events.jsonl");
        let Ok(text) = std::fs::read_to_string(&log) else {
            continue;
        };
        for line in text.lines() {
            let e: Value = serde_json::from_str(line).unwrap();
            if e["event"] == "model-call" {
                max = max.max(e["usage"]["cost_usd"].as_f64().unwrap());
            }
        }
    }
    max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_cost_is_counted_live_across_parallel_cells_and_resume_finishes_the_matrix() {
    // Slow answers, so that the four cells overlap and are mid-run when the budget runs out.
    let env = TestEnv::with_model(|t: &Turn| {
        std::thread::sleep(Duration::from_millis(40));
        diligent(t)
    })
    .await;
    let model = env.model();
    let prices = env.root().join("prices.toml");
    // $10 per million tokens: a call of a few thousand tokens costs a few cents... of a cent.
    std::fs::write(
        &prices,
        "[models.\"mock-1\"]\ninput = 10.0\noutput = 10.0\n",
    )
    .unwrap();

    // The whole matrix without a limit, for what it costs.
    let full = env.root().join("full");
    let o = output(ablate(&env, &full, &prices, &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let total: f64 = records(&full).iter().flatten().map(cost).sum();
    let call = max_call_cost(&full);
    assert!(total > 0.0 && call > 0.0);
    assert!(!full.join("spend.json").exists());

    // A third of that, four cells at once.
    let out = env.root().join("out");
    let limit = total / 3.0;
    let limit_arg = format!("{limit:.6}");
    let limit: f64 = limit_arg.parse().unwrap();
    let o = output(ablate(&env, &out, &prices, &["--max-cost", &limit_arg])).await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "an incomplete matrix: {}",
        show(&o)
    );
    let recs = records(&out);
    let spent: f64 = recs.iter().flatten().map(cost).sum();
    let bound = limit + CONCURRENCY as f64 * call;
    eprintln!(
        "max-cost {limit:.6}: spent {spent:.6} (overshoot {:.6}, {:.2} calls of at most {call:.6}); whole matrix {total:.6}",
        spent - limit,
        (spent - limit).max(0.0) / call
    );
    assert!(
        spent <= bound,
        "spent {spent} > max-cost {limit} + {CONCURRENCY} running cells × one call ({call})"
    );
    assert!(spent < total, "the limit stopped the matrix early");
    let outcomes: Vec<&str> = recs
        .iter()
        .flatten()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    let stopped: Vec<&Value> = recs
        .iter()
        .flatten()
        .filter(|r| r["outcome"] == "budget")
        .collect();
    assert!(
        !stopped.is_empty(),
        "running cells are stopped when the budget is spent: {outcomes:?}"
    );
    for r in &stopped {
        assert!(
            r["reason"].as_str().unwrap().contains("--max-cost"),
            "{}",
            r["reason"]
        );
        assert!(r["verifier"].is_null(), "a stopped cell gets no verdict");
    }
    // Cells never started have no folder.
    assert!(recs.iter().any(Option::is_none), "{outcomes:?}");

    // What the invocation said, and what it recorded.
    let ev = lines(&o);
    let summary = ev.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["stopped_by_budget"], stopped.len());
    assert_eq!(summary["spend"], json(&out.join("spend.json")));
    assert_eq!(summary["complete"], false);
    assert_eq!(
        ev.iter()
            .filter(|e| e["event"] == "max-cost-reached")
            .count(),
        1
    );
    let rec = json(&out.join("spend.json"));
    assert_eq!(rec["schema"], "nlah.spend/1");
    assert_eq!(rec["max_cost_usd"].as_f64().unwrap(), limit);
    let recorded = rec["spent_usd"].as_f64().unwrap();
    assert!((recorded - spent).abs() < 1e-9, "{recorded} vs {spent}");
    assert!((rec["overshoot_usd"].as_f64().unwrap() - (spent - limit).max(0.0)).abs() < 1e-9);
    assert_eq!(rec["cells_stopped"], stopped.len());
    assert!(rec["calls_refused"].as_u64().unwrap() >= stopped.len() as u64);

    // The report states the spend and does not count stopped cells as failures.
    let (code, md, err) = env.run(&["report", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(md.contains("Spend: $"), "{md}");
    assert!(
        md.contains(&format!("{} stopped by --max-cost", stopped.len())),
        "{md}"
    );
    let (code, js, err) = env.run(&["report", out.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&js).unwrap();
    assert_eq!(report["counts"]["budget"], stopped.len());
    let failed = outcomes.iter().filter(|o| **o == "failed").count();
    assert_eq!(report["counts"]["failed"], failed);
    assert!((report["spend"]["spent_usd"].as_f64().unwrap() - spent).abs() < 1e-9);
    assert_fsck_cells(&out);

    // Resumed with the same limit: nothing runs, and it says why.
    let calls = model.served().calls;
    let o = output(ablate(
        &env,
        &out,
        &prices,
        &["--resume", "--max-cost", &limit_arg],
    ))
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(model.served().calls, calls);
    assert_eq!(
        lines(&o).iter().find(|e| e["event"] == "matrix").unwrap()["to_run"],
        recs.iter()
            .filter(|r| r.as_ref().is_none_or(|r| r["outcome"] == "budget"))
            .count()
    );

    // Resumed with room: the stopped and the unstarted cells run, and the matrix is complete.
    let o = output(ablate(
        &env,
        &out,
        &prices,
        &["--resume", "--max-cost", "1000"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let recs = records(&out);
    assert!(
        recs.iter().flatten().all(|r| matches!(
            r["outcome"].as_str(),
            Some("passed" | "failed" | "unverified")
        )),
        "{recs:?}"
    );
    assert_eq!(recs.iter().flatten().count(), recs.len());
    let rec = json(&out.join("spend.json"));
    assert_eq!(rec["overshoot_usd"].as_f64().unwrap(), 0.0);
    assert_eq!(rec["cells_stopped"], 0);
    let (_, md, _) = env.run(&["report", out.to_str().unwrap()]);
    assert!(!md.contains("stopped by --max-cost"), "{md}");
    assert_fsck_cells(&out);

    // Without --max-cost the record would be stale: it goes.
    let o = output(ablate(&env, &out, &prices, &["--resume"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(!out.join("spend.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_below_one_call_is_passed_by_at_most_the_first_calls_of_the_running_cells() {
    let env = TestEnv::with_model(|t: &Turn| {
        std::thread::sleep(Duration::from_millis(40));
        diligent(t)
    })
    .await;
    let prices = env.root().join("prices.toml");
    std::fs::write(
        &prices,
        "[models.\"mock-1\"]\ninput = 10.0\noutput = 10.0\n",
    )
    .unwrap();
    // A hundredth of a cent: less than any call costs. Up to four cells start before anything
    // is known of a call's cost; each is refused its second call (or its first, if another
    // cell's call settled before it asked).
    let out = env.root().join("out");
    let o = output(ablate(&env, &out, &prices, &["--max-cost", "0.0001"])).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let recs = records(&out);
    let started: Vec<&Value> = recs.iter().flatten().collect();
    assert!(
        started.len() <= CONCURRENCY,
        "{} cells started",
        started.len()
    );
    assert!(started.iter().all(|r| r["outcome"] == "budget"));
    assert!(
        started
            .iter()
            .all(|r| r["metrics"]["total"]["calls"].as_u64() <= Some(1)),
        "one call each at most"
    );
    let spent: f64 = started.iter().map(|r| cost(r)).sum();
    let call = max_call_cost(&out);
    eprintln!(
        "max-cost 0.0001: spent {spent:.6} by {} cells ({:.2} calls of at most {call:.6})",
        started.len(),
        spent / call
    );
    assert!(spent <= 0.0001 + started.len() as f64 * call);
    let rec = json(&out.join("spend.json"));
    assert_eq!(rec["cells_stopped"], started.len());
    assert_eq!(
        rec["cells_unscheduled"].as_u64().unwrap() as usize,
        recs.len() - started.len()
    );
    assert_fsck_cells(&out);
}

//! `nlah ablate` speed.
//!
//! 1. 500 cells at concurrency 64 against a mock model on loopback HTTP (axum, on its own thread
//!    and runtime) that answers each call after a fixed latency; every cell makes the same 3
//!    calls (write the result, write a note, write the child's RESPONSE.md, which ends the
//!    child). Cells run through the local executor exactly as `nlah ablate` runs them (workspaces, git commits, hidden
//!    verifier, run.json). Wall time against the ideal, ceil(500 / 64) × the model time of one
//!    cell; the process's CPU time says whether the machine, rather than the scheduling, sets
//!    the pace.
//! 2. Deciding what to resume in an output folder of 10,000 finished cells (synthetic run.json
//!    files written directly): reading matrix.json and bringing the index up to date, without an
//!    index (first scan, which builds it), with a current one, and with 1% of the cells changed;
//!    plus reading every record through the index (what `nlah report` starts with).
//!
//! Run: `cargo bench --bench ablate` (`-- cells` or `-- scan` for one part).
//! `NLAH_BENCH_LATENCY_MS` (default 200, the latency of `run_overhead`'s mock),
//! `NLAH_BENCH_CELLS` (500) and `NLAH_BENCH_CONCURRENCY` (64) change part 1, and
//! `NLAH_BENCH_SPACING_US` the pool's spacing of cell starts (by default
//! [`local::start_spacing`]; 0 starts them all at once); `NLAH_BENCH_DIR` puts the output folders
//! on another file system (e.g. /dev/shm); `NLAH_BENCH_KEEP=1` leaves them there for inspection.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nlah::ablation::design::Design;
use nlah::ablation::executor::{Event, Runner, local};
use nlah::ablation::index;
use nlah::ablation::matrix::{self, MatrixFile, cell_id};
use nlah::ablation::resume;
use nlah::ablation::{Cell, MATRIX_SCHEMA, Matrix, Variant};
use nlah::charter;
use nlah::diag::Diags;
use nlah::engine::RunSettings;
use nlah::record::Usage;
use nlah::record::{
    HarnessRef, Metrics, RunOutcome, RunRecord, SCHEMA, StageMetrics, TaskRef, VerifierRecord,
};
use serde_json::{Value, json};

#[path = "support/mock_model.rs"]
mod mock_model;

const CALLS_PER_CELL: u64 = 3;
const SCAN_CELLS: usize = 10_000;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stats(mut v: Vec<f64>, unit: &str) -> String {
    v.sort_by(f64::total_cmp);
    let med = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    format!(
        "median {med:.3} {unit} (min {:.3}, max {:.3}, spread {:.3}; n={})",
        v[0],
        v[v.len() - 1],
        v[v.len() - 1] - v[0],
        v.len()
    )
}

/// CPU seconds: (user, system) of this process, and (user, system) of its waited-for children.
fn cpu() -> [f64; 4] {
    let mut out = [0.0; 4];
    for (i, who) in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN]
        .into_iter()
        .enumerate()
    {
        // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut u) } == 0 {
            out[2 * i] = u.ru_utime.tv_sec as f64 + u.ru_utime.tv_usec as f64 / 1e6;
            out[2 * i + 1] = u.ru_stime.tv_sec as f64 + u.ru_stime.tv_usec as f64 / 1e6;
        }
    }
    out
}

/// A mock model: after `latency`, the first call writes the result, the second a note, the
/// third the child's RESPONSE.md (which ends the child).
/// Each cell's child writes the result, a note and its RESPONSE.md (which ends it).
fn mock_answer(turn: usize, child: &str) -> mock_model::Answer {
    let write = |args: Value| Some(("write".to_string(), args.to_string()));
    let call = match turn {
        0 => write(json!({"path": "artifacts/result.txt", "content": "42\n"})),
        1 => write(json!({"path": "artifacts/notes.md", "content": "checked\n"})),
        2 => write(
            json!({"path": format!("children/{child}/RESPONSE.md"), "content": "status: done\n"}),
        ),
        _ => None,
    };
    let text = if call.is_some() { "" } else { "Finished." };
    (text.to_string(), call)
}

fn part1(dir: &Path) -> Res<()> {
    let latency = Duration::from_millis(env_or("NLAH_BENCH_LATENCY_MS", 200));
    let cells = env_or("NLAH_BENCH_CELLS", 500);
    let concurrency = env_or("NLAH_BENCH_CONCURRENCY", 64) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let base = mock_model::serve(latency, mock_answer);
    // SAFETY: set before any thread of ours reads the environment (the runtime's workers do
    // not); the engine reads it to reach the mock, as `nlah ablate` would.
    unsafe {
        std::env::set_var("OPENAI_BASE_URL", &base);
        std::env::remove_var("OPENAI_API_KEY");
        std::env::remove_var("NLAH_PRICES");
    }
    let design = dir.join("one.toml");
    std::fs::write(&design, "[[variant]]\nname = \"basic\"\nmodules = []\n")?;
    let harness = root().join("harness-skills/basic");
    let tasks = root().join("tests/fixtures/tasks/write-result");
    let m = matrix::build(&matrix::Request {
        harness: &harness,
        tasks: &tasks,
        design: &Design::File(design),
        modules: &[],
        models: &["openai:bench".to_string()],
        seeds: cells,
        baseline: None,
    })?;
    let mut diags = Diags::default();
    let charter = charter::load(&root().join("runtime-charter"), &mut diags)?;
    let per_cell = latency.as_secs_f64() * CALLS_PER_CELL as f64;
    let ideal = (cells as f64 / concurrency as f64).ceil() * per_cell;
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for round in 0..3 {
        let out = dir.join(format!("matrix-{round}"));
        std::fs::create_dir_all(&out)?;
        let file = matrix::install(
            &out,
            MatrixFile {
                matrix: m.clone(),
                settings: RunSettings {
                    max_steps: 10,
                    retries: 1,
                    ..RunSettings::default()
                },
            },
        )?;
        let runner = std::sync::Arc::new(Runner::new(out.clone(), file, charter.clone())?);
        let pending: Vec<Cell> = m.cells.clone();
        // Each cell's time from start to result, as the executor reports them.
        let busy = std::sync::Arc::new(std::sync::Mutex::new((
            std::collections::HashMap::<usize, Instant>::new(),
            0.0f64,
        )));
        let b = busy.clone();
        let sink: nlah::ablation::executor::Sink = std::sync::Arc::new(move |e: &Event| {
            let Ok(mut g) = b.lock() else { return };
            match e {
                Event::Started { cell, .. } => {
                    g.0.insert(cell.index, Instant::now());
                }
                Event::Finished { cell, .. } | Event::Failed { cell, .. } => {
                    if let Some(t) = g.0.remove(&cell.index) {
                        g.1 += t.elapsed().as_secs_f64();
                    }
                }
                _ => {}
            }
        });
        let mut pool = local::Local::new(concurrency, None);
        if let Ok(us) = std::env::var("NLAH_BENCH_SPACING_US") {
            pool.spacing = Duration::from_micros(us.parse()?);
        }
        let cpu0 = cpu();
        let t = Instant::now();
        let report = rt.block_on(local::run(
            runner,
            pending,
            0.0,
            pool,
            sink,
            std::future::pending::<()>(),
        ));
        let wall = t.elapsed().as_secs_f64();
        let c = cpu();
        let d: Vec<f64> = (0..4).map(|i| c[i] - cpu0[i]).collect();
        let cpu_total: f64 = d.iter().sum();
        println!(
            "   round {round}: {wall:.2} s wall; CPU {cpu_total:.2} s = nlah {:.2} user + {:.2} system, child processes {:.2} user + {:.2} system",
            d[0], d[1], d[2], d[3]
        );
        let results = index::load(&out)?;
        let busy = busy.lock().map(|b| b.1).unwrap_or_default();
        println!(
            "   round {round}: a cell took {:.2} s from start to run.json on average ({per_cell:.2} s of it the model's); the pool kept its {concurrency} slots {:.0}% busy",
            busy / results.len().max(1) as f64,
            busy / (concurrency as f64 * wall) * 100.0
        );
        for r in &results {
            let rec = r.record.as_ref().ok_or("a cell has no run.json")?;
            if rec.outcome != RunOutcome::Passed || rec.metrics.total.calls != CALLS_PER_CELL {
                return Err(format!(
                    "cell {}: {} after {} calls ({})",
                    r.cell.id,
                    rec.outcome.as_str(),
                    rec.metrics.total.calls,
                    rec.reason
                )
                .into());
            }
        }
        if report.errors > 0 {
            return Err(format!("{} cells failed", report.errors).into());
        }
        walls.push(wall);
        cpus.push(cpu_total);
        // Kept until the end: on ext4, files created right after many were deleted are slower
        // to make, which would slow the next round for a reason of the benchmark's own.
    }
    let over: Vec<f64> = walls.iter().map(|w| (w / ideal - 1.0) * 100.0).collect();
    println!(
        "1. {cells} cells, concurrency {concurrency}, {CALLS_PER_CELL} model calls per cell at {} ms over loopback HTTP: ideal {ideal:.2} s (ceil({cells}/{concurrency}) × {per_cell:.2} s)\n   wall: {}\n   over ideal: {}\n   CPU (process + children): {} on {} core(s)",
        latency.as_millis(),
        stats(walls, "s"),
        stats(over, "%"),
        stats(cpus, "s"),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}

fn record(c: &Cell, version: &str) -> RunRecord {
    let u = |i: u64, o: u64, calls: u64| Usage {
        input_tokens: i,
        output_tokens: o,
        calls,
        cost_usd: (i as f64 * 2.0 + o as f64 * 8.0) / 1e6,
        latency_ms: 900 * calls,
        ..Usage::default()
    };
    let seed = c.index as u64;
    let children = u(20_000 + seed % 977, 1_500 + seed % 131, 9);
    let parent = u(3_000, 200, 2);
    let mut total = children;
    total.add(&parent);
    RunRecord {
        schema: SCHEMA.to_string(),
        run_id: format!("swe-{}-20250101T000000-{:04x}", c.task, c.index % 65536),
        harness: HarnessRef {
            name: "swe".into(),
            version: version.to_string(),
            modules: vec!["verifier".into()],
        },
        task: TaskRef {
            id: c.task.clone(),
            hash: c.task_hash.clone(),
            path: c.task_path.display().to_string(),
        },
        model: c.model.clone(),
        seed: c.seed,
        started: "2025-01-01T00:00:00.000Z".into(),
        finished: Some("2025-01-01T00:03:00.000Z".into()),
        outcome: if seed.is_multiple_of(3) {
            RunOutcome::Failed
        } else {
            RunOutcome::Passed
        },
        reason: "the harness finished after stage verify; the hidden verifier passed".into(),
        verifier: Some(VerifierRecord {
            passed: !seed.is_multiple_of(3),
            reward: None,
            exit_code: Some(0),
            timed_out: false,
            duration_ms: 1200,
        }),
        error_class: None,
        metrics: Metrics {
            wall_ms: 180_000,
            total,
            parent,
            children,
            tool_calls: 30,
            parent_tool_calls: 0,
            child_count: 4,
            empty_answers: 0,
            repairs: 0,
            stages: ["plan", "execute", "verify", "repair"]
                .iter()
                .map(|s| StageMetrics {
                    stage: s.to_string(),
                    attempts: 1,
                    passed: true,
                    usage: u(5_000, 400, 2),
                    tool_calls: 7,
                })
                .collect(),
        },
        requests: Default::default(),
        sandbox: "landlock: enforced; network: private namespace".into(),
        episode: None,
        interface: None,
    }
}

/// An output folder of 10,000 finished cells, written directly.
fn synthetic(out: &Path) -> Res<Matrix> {
    let variants: Vec<Variant> = [
        "basic",
        "+verifier",
        "+self-evolution",
        "+file-backed-state",
    ]
    .iter()
    .enumerate()
    .map(|(i, n)| Variant {
        name: n.to_string(),
        modules: Vec::new(),
        version: nlah::harness::compose::sha256_hex(format!("variant {i}").as_bytes()),
    })
    .collect();
    let tasks = SCAN_CELLS / variants.len() / 10;
    let mut cells = Vec::new();
    for seed in 0..10u64 {
        for t in 0..tasks {
            let task_hash = nlah::harness::compose::sha256_hex(format!("task {t}").as_bytes());
            for v in &variants {
                let model = "openai:gpt-4.1-mini".to_string();
                cells.push(Cell {
                    id: cell_id(&v.version, &task_hash, &model, seed),
                    index: cells.len(),
                    variant: v.name.clone(),
                    task: format!("task-{t:03}"),
                    task_path: PathBuf::from(format!("/data/tasks/task-{t:03}")),
                    task_set: "tasks".into(),
                    task_hash: task_hash.clone(),
                    model,
                    seed,
                });
            }
        }
    }
    let m = Matrix {
        schema: MATRIX_SCHEMA.into(),
        harness: PathBuf::from("/data/harness-skills/swe"),
        harness_name: "swe".into(),
        design: "one-at-a-time".into(),
        baseline: "basic".into(),
        variants: variants.clone(),
        models: vec!["openai:gpt-4.1-mini".into()],
        seeds: 10,
        cells,
        created: "2025-01-01T00:00:00Z".into(),
    };
    matrix::write(
        out,
        &MatrixFile {
            matrix: m.clone(),
            settings: RunSettings::default(),
        },
    )?;
    for c in &m.cells {
        let v = variants
            .iter()
            .find(|v| v.name == c.variant)
            .ok_or("variant")?;
        let dir = resume::cell_dir(out, &c.id);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("run.json"),
            serde_json::to_string_pretty(&record(c, &v.version))? + "\n",
        )?;
    }
    Ok(m)
}

/// What `nlah ablate` does before it schedules: read the matrix, refresh the index, list the
/// cells without a result.
fn decide(out: &Path) -> Res<usize> {
    let file = matrix::read(&out.join(matrix::MATRIX_FILE))?;
    let entries = index::refresh(out, &file.matrix, false)?;
    let pending = entries
        .iter()
        .filter(|e| !e.outcome().is_some_and(resume::is_result))
        .count();
    Ok(pending)
}

fn time<T>(f: impl FnOnce() -> Res<T>) -> Res<(f64, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed().as_secs_f64(), v))
}

fn part2(dir: &Path) -> Res<()> {
    let out = dir.join("scan");
    std::fs::create_dir_all(&out)?;
    let (gen_s, m) = time(|| synthetic(&out))?;
    let bytes: u64 = m
        .cells
        .iter()
        .filter_map(|c| std::fs::metadata(resume::run_json(&out, &c.id)).ok())
        .map(|md| md.len())
        .sum();
    println!(
        "2. {SCAN_CELLS} finished cells (run.json {:.1} KB each; written in {gen_s:.1} s)",
        bytes as f64 / SCAN_CELLS as f64 / 1024.0
    );
    let idx = index::path(&out);

    let mut cold = Vec::new();
    for _ in 0..5 {
        let _ = std::fs::remove_file(&idx);
        let (s, pending) = time(|| decide(&out))?;
        if pending != 0 {
            return Err(format!("{pending} cells would run again").into());
        }
        cold.push(s);
    }
    println!(
        "   resume decision, no index (reads every run.json, builds the index): {}",
        stats(cold, "s")
    );

    let mut warm = Vec::new();
    for _ in 0..7 {
        let (s, pending) = time(|| decide(&out))?;
        if pending != 0 {
            return Err("cells would run again".into());
        }
        warm.push(s);
    }
    println!(
        "   resume decision, current index (one stat per cell): {}",
        stats(warm, "s")
    );

    let mut partial = Vec::new();
    for round in 0..5 {
        for c in m.cells.iter().skip(round).step_by(100) {
            let p = resume::run_json(&out, &c.id);
            let text = std::fs::read_to_string(&p)?;
            nlah::atomic::write(&p, text.as_bytes())?;
        }
        let (s, _) = time(|| decide(&out))?;
        partial.push(s);
    }
    println!(
        "   resume decision, 1% of run.json files rewritten: {}",
        stats(partial, "s")
    );

    let mut files_only = Vec::new();
    for _ in 0..5 {
        let (s, n) = time(|| {
            let file = matrix::read(&out.join(matrix::MATRIX_FILE))?;
            Ok(file
                .matrix
                .cells
                .iter()
                .filter(|c| !resume::state(&out, &c.id).is_finished())
                .count())
        })?;
        if n != 0 {
            return Err("cells would run again".into());
        }
        files_only.push(s);
    }
    println!(
        "   for reference, reading every run.json's outcome without the index: {}",
        stats(files_only, "s")
    );

    let mut load = Vec::new();
    for _ in 0..5 {
        let (s, cells) = time(|| Ok(index::load(&out)?))?;
        if cells.len() != SCAN_CELLS || cells.iter().any(|c| c.record.is_none()) {
            return Err("index::load lost cells".into());
        }
        load.push(s);
    }
    println!(
        "   index::load, every cell with its parsed record (current index): {}",
        stats(load, "s")
    );
    Ok(())
}

fn main() -> Res<()> {
    // The output folders' file system matters: git objects and workspaces are thousands of new
    // files per second. NLAH_BENCH_DIR picks where they go (default: the system's temp folder).
    let dir = match std::env::var_os("NLAH_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    println!("output folders under {}", dir.path().display());
    let only = std::env::args().find(|a| a == "scan" || a == "cells");
    if only.as_deref() != Some("scan") {
        part1(dir.path())?;
    }
    if only.as_deref() != Some("cells") {
        part2(dir.path())?;
    }
    if std::env::var_os("NLAH_BENCH_KEEP").is_some() {
        println!("kept {}", dir.keep().display());
    }
    Ok(())
}

//! `nlah ablate` speed.
//!
//! 0. The workload of issue 20: one-stage tasks (`write-result`, whose hidden verifier checks
//!    `artifacts/result.txt`), each solved in 3 model calls with 3 `shell` calls (`echo`, `cd`,
//!    `ls`; the third leaves the child's RESPONSE.md), against a mock model on loopback HTTP
//!    answering in 200 ms: 50 cells at concurrency 50, then 200 at 200. Cells run through the
//!    local executor exactly as `nlah ablate` runs them (workspaces, git commits, the child's
//!    confined shell, the hidden verifier, run.json). Prints wall time against the ideal (3 ×
//!    the latency), CPU per cell (getrusage of the process and its children, taken once the
//!    round's last child process is reaped, less the mock's thread), peak RSS, and where a
//!    cell's time goes, per phase (`nlah::profile`: wall time, and for the phases that never
//!    wait the CPU time of their thread).
//! 1. The ablation: 500 cells of the same workload at concurrency 64, model at 100 ms: wall
//!    time against the ideal, ceil(500 / 64) × the model time of one cell.
//! 2. Deciding what to resume in an output folder of 10,000 finished cells (synthetic run.json
//!    files written directly): reading matrix.json and bringing the index up to date, without an
//!    index (first scan, which builds it), with a current one, and with 1% of the cells changed;
//!    plus reading every record through the index (what `nlah report` starts with).
//!
//! Run: `cargo bench --bench ablate` (`-- workload`, `-- cells` or `-- scan` for one part).
//! `NLAH_BENCH_ROUNDS` (5) sets part 0's repetitions, `NLAH_BENCH_WORKLOAD_LATENCY_MS` (200)
//! its latency; `NLAH_BENCH_LATENCY_MS` (100), `NLAH_BENCH_CELLS` (500) and
//! `NLAH_BENCH_CONCURRENCY` (64) change part 1, and `NLAH_BENCH_SPACING_US` the pool's spacing
//! of cell starts (by default [`local::start_spacing`]; 0 starts them all at once);
//! `NLAH_BENCH_DIR` puts the output folders on another file system (e.g. /dev/shm), and
//! `TMPDIR` the verifiers' scratch folders. The file system matters (the first line printed
//! names it): on ext4 without a journal, making a file costs a lookup for every inode deleted
//! nearby in the last minutes, so after a build or an earlier benchmark deleted many files the
//! same cells cost several ms more; a fresh file system (`benches/fresh-fs.sh -- cargo bench
//! --bench ablate` makes one on a loop device) or tmpfs gives the figures of the cells alone;
//! `NLAH_BENCH_KEEP=1` leaves them there for inspection.

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
use nlah::profile;
use nlah::record::Usage;
use nlah::record::{
    HarnessRef, Metrics, RunOutcome, RunRecord, SCHEMA, StageMetrics, TaskRef, VerifierRecord,
};
use serde_json::json;

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

/// The mock model's answers, the workload: three `shell` calls (`echo`, `cd`, `ls`), the
/// last of which leaves the child's RESPONSE.md, which ends it; `cd` must persist between calls
/// (the child's long-lived shell) for the third to find the child's folder.
fn mock_answer(turn: usize, child: &str) -> mock_model::Answer {
    let shell = |command: String| {
        Some((
            "shell".to_string(),
            json!({ "command": command }).to_string(),
        ))
    };
    let call = match turn {
        0 => shell("echo 42 > artifacts/result.txt".into()),
        1 => shell("cd repo".into()),
        2 => shell(format!(
            "ls >/dev/null && printf 'status: done\\n' > ../children/{child}/RESPONSE.md"
        )),
        _ => None,
    };
    let text = if call.is_some() { "" } else { "Finished." };
    (text.to_string(), call)
}

/// What one round of a matrix cost.
struct Round {
    wall: f64,
    /// user + system CPU seconds of this process and its waited-for children, the mock's
    /// thread excluded.
    cpu: f64,
    /// Of which the child processes' (shells, the verifier, the commands they ran).
    children_cpu: f64,
    mock_cpu: f64,
    phases: profile::Snapshot,
}

/// Runs `cells` cells of the workload at `concurrency`, `rounds` times, each round into a new
/// output folder; checks that every cell passed after 3 calls.
fn matrix_rounds(
    dir: &Path,
    rt: &tokio::runtime::Runtime,
    cells: u64,
    concurrency: usize,
    rounds: usize,
) -> Res<Vec<Round>> {
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
    let mut out_rounds = Vec::new();
    for round in 0..rounds {
        let out = dir.join(format!("matrix-{cells}-{concurrency}-{round}"));
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
        let sink: nlah::ablation::executor::Sink = std::sync::Arc::new(|_: &Event| {});
        let mut pool = local::Local::new(concurrency, None);
        if let Ok(us) = std::env::var("NLAH_BENCH_SPACING_US") {
            pool.spacing = Duration::from_micros(us.parse()?);
        }
        let cpu0 = cpu();
        let mock0 = mock_model::cpu_seconds();
        let phases0 = profile::snapshot();
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
        let phases = profile::snapshot().since(&phases0);
        let mock_cpu = mock_model::cpu_seconds() - mock0;
        // A child's shell ends when its session is dropped and is reaped a moment later, off
        // the cell's path; its CPU time reaches this process's account only then.
        let unreaped = wait_for_no_children(Duration::from_secs(2));
        if unreaped > 0 {
            println!("   ({unreaped} child processes still ran 2 s after the round; not counted)");
        }
        let c = cpu();
        let cpu_total: f64 = (0..4).map(|i| c[i] - cpu0[i]).sum();
        let children_cpu = (c[2] - cpu0[2]) + (c[3] - cpu0[3]);
        let results = index::load(&out)?;
        for r in &results {
            let rec = r.record.as_ref().ok_or("a cell has no run.json")?;
            if rec.outcome != RunOutcome::Passed
                || rec.metrics.total.calls != CALLS_PER_CELL
                || rec.metrics.tool_calls != CALLS_PER_CELL
            {
                return Err(format!(
                    "cell {}: {} after {} calls and {} tool calls ({})",
                    r.cell.id,
                    rec.outcome.as_str(),
                    rec.metrics.total.calls,
                    rec.metrics.tool_calls,
                    rec.reason
                )
                .into());
            }
        }
        if report.errors > 0 {
            return Err(format!("{} cells failed", report.errors).into());
        }
        out_rounds.push(Round {
            wall,
            cpu: cpu_total - mock_cpu,
            children_cpu,
            mock_cpu,
            phases,
        });
        // Kept until the end: on ext4, files created right after many were deleted are slower
        // to make, which would slow the next round for a reason of the benchmark's own.
    }
    Ok(out_rounds)
}

/// Waits (up to `limit`) until this process has no child processes left but the sandbox's
/// guardian (a fork of this program, which lives as long as it does), so that their CPU time is
/// counted; returns how many were still there at the limit.
fn wait_for_no_children(limit: Duration) -> usize {
    let me = std::fs::read_link("/proc/self/exe").ok();
    let children = || -> usize {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return 0;
        };
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .map(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
                    .collect::<Vec<_>>()
            })
            .filter(|exe| exe.is_none() || *exe != me)
            .count()
    };
    let until = Instant::now() + limit;
    loop {
        let n = children();
        if n == 0 || Instant::now() >= until {
            return n;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Peak resident memory of this process so far, in MB.
fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    u.ru_maxrss as f64 / 1024.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Prints a matrix's rounds: wall against the ideal, CPU per cell, and the phases of a cell.
fn summarize(rounds: &[Round], cells: u64, concurrency: usize, latency: Duration) {
    let per_cell = latency.as_secs_f64() * CALLS_PER_CELL as f64;
    let ideal = (cells as f64 / concurrency as f64).ceil() * per_cell;
    let walls: Vec<f64> = rounds.iter().map(|r| r.wall).collect();
    let ratio: Vec<f64> = walls.iter().map(|w| w / ideal).collect();
    let cpu_cell: Vec<f64> = rounds.iter().map(|r| r.cpu / cells as f64 * 1e3).collect();
    let children_cell: Vec<f64> = rounds
        .iter()
        .map(|r| r.children_cpu / cells as f64 * 1e3)
        .collect();
    let mock_cell: Vec<f64> = rounds
        .iter()
        .map(|r| r.mock_cpu / cells as f64 * 1e3)
        .collect();
    println!(
        "   {cells} cells at concurrency {concurrency}, {CALLS_PER_CELL} model calls + {CALLS_PER_CELL} shell calls per cell, model {} ms: ideal {ideal:.2} s\n   wall: {}\n   wall / ideal: {}\n   CPU per cell (nlah + its child processes): {}\n   of which child processes (shell, verifier, commands): {}\n   CPU per cell of the mock model (excluded above): {}\n   peak RSS of the process so far: {:.0} MB",
        latency.as_millis(),
        stats(walls, "s"),
        stats(ratio, "×"),
        stats(cpu_cell, "ms"),
        stats(children_cell, "ms"),
        stats(mock_cell, "ms"),
        peak_rss_mb(),
    );
    println!(
        "   phases of a cell (wall time inside each, summed over the cell's threads, and for phases that never wait the CPU time of their thread; median over rounds):"
    );
    for p in profile::Phase::ALL {
        let per_cell = |f: fn(&profile::Total) -> u64| {
            let v: Vec<f64> = rounds
                .iter()
                .map(|r| f(&r.phases.get(p)) as f64 / cells as f64)
                .collect();
            median(v)
        };
        let cpu = if p.on_one_thread() {
            format!("{:>6.3} ms CPU", per_cell(|t| t.cpu_nanos) / 1e6)
        } else {
            format!("{:>13}", "")
        };
        println!(
            "     {:<30} {:>8.2} ms wall {cpu} per cell  ({:.1} per cell)",
            p.name(),
            per_cell(|t| t.nanos) / 1e6,
            per_cell(|t| t.count)
        );
    }
}

/// Sets the model server the engine reaches (as `nlah ablate` reads it from its environment).
fn point_at(base: &str) {
    // SAFETY: called between matrices, while no cell runs and no thread of ours reads the
    // environment (the runtime's workers are idle; the mock servers do not read it).
    unsafe {
        std::env::set_var("OPENAI_BASE_URL", base);
        std::env::remove_var("OPENAI_API_KEY");
        std::env::remove_var("NLAH_PRICES");
    }
}

/// The workload: 50 cells at concurrency 50, and 200 at 200, model at 200 ms.
fn workload(dir: &Path, rt: &tokio::runtime::Runtime) -> Res<()> {
    let latency = Duration::from_millis(env_or("NLAH_BENCH_WORKLOAD_LATENCY_MS", 200));
    let rounds = env_or("NLAH_BENCH_ROUNDS", 5) as usize;
    point_at(&mock_model::serve(latency, mock_answer));
    println!(
        "0. the workload (one-stage task, 3 model calls with 3 shell calls, hidden verifier), {rounds} rounds"
    );
    for n in [50u64, 200] {
        let r = matrix_rounds(dir, rt, n, n as usize, rounds)?;
        summarize(&r, n, n as usize, latency);
    }
    Ok(())
}

fn part1(dir: &Path, rt: &tokio::runtime::Runtime) -> Res<()> {
    let latency = Duration::from_millis(env_or("NLAH_BENCH_LATENCY_MS", 100));
    let cells = env_or("NLAH_BENCH_CELLS", 500);
    let concurrency = env_or("NLAH_BENCH_CONCURRENCY", 64) as usize;
    point_at(&mock_model::serve(latency, mock_answer));
    println!("1. the ablation: {cells} cells, 3 rounds");
    let r = matrix_rounds(dir, rt, cells, concurrency, 3)?;
    summarize(&r, cells, concurrency, latency);
    println!(
        "   CPU: {} on {} core(s)",
        stats(r.iter().map(|r| r.cpu).collect(), "s"),
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

/// The file system `path` is on, since the figures depend on it: its type, and for ext4 whether
/// it keeps a journal. Without one, ext4 skips every inode deleted in the last minutes when it
/// makes a file, with a lookup each (`recently_deleted` in the kernel's `ialloc.c`), so making
/// files slows down after many were deleted anywhere near them: the same cells then cost
/// several ms more of CPU than on a fresh file system or tmpfs.
fn file_system(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: a zeroed statfs is a valid value, and statfs writes the struct it is given from a
    // NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    match st.f_type {
        0xEF53 => match ext4_journal(path) {
            Some(true) => "ext4 with a journal".into(),
            Some(false) => "ext4 without a journal".into(),
            None => "ext4".into(),
        },
        0x0102_1994 => "tmpfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        other => format!("file system type {other:#x}"),
    }
}

/// Whether the ext4 file system holding `path` has a journal, from its mount's device in
/// /proc/self/mountinfo and /sys/fs/ext4/DEVICE/journal_task (`<none>` without one).
fn ext4_journal(path: &Path) -> Option<bool> {
    let path = path.canonicalize().ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (_, device) = info
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            let mount = Path::new(fields.get(4)?);
            let device = fields.get(dash + 2)?;
            (fields.get(dash + 1) == Some(&"ext4") && path.starts_with(mount))
                .then(|| (mount.as_os_str().len(), device.to_string()))
        })
        .max_by_key(|(len, _)| *len)?;
    let name = Path::new(&device).file_name()?.to_str()?.to_string();
    let task = std::fs::read_to_string(format!("/sys/fs/ext4/{name}/journal_task")).ok()?;
    Some(task.trim() != "<none>")
}

fn main() -> Res<()> {
    // The output folders' file system matters: git objects and workspaces are thousands of new
    // files per second. NLAH_BENCH_DIR picks where they go (default: the system's temp folder).
    let dir = match std::env::var_os("NLAH_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    println!(
        "output folders under {} ({}); the verifiers' scratch folders in {} ({})",
        dir.path().display(),
        file_system(dir.path()),
        std::env::temp_dir().display(),
        file_system(&std::env::temp_dir())
    );
    // Kept from the start, so that a failed check leaves the cells to look at.
    let (path, _dir) = if std::env::var_os("NLAH_BENCH_KEEP").is_some() {
        println!("kept");
        (dir.keep(), None)
    } else {
        (dir.path().to_path_buf(), Some(dir))
    };
    let only = std::env::args().find(|a| ["scan", "cells", "workload"].contains(&a.as_str()));
    let runs = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if runs("workload") {
        workload(&path, &rt)?;
    }
    if runs("cells") {
        part1(&path, &rt)?;
    }
    if runs("scan") {
        part2(&path)?;
    }
    Ok(())
}

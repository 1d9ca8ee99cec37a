//! `nlah run` speed: runtime overhead per child step, and many concurrent runs.
//!
//! 1. Overhead per child step, model latency excluded, git commits included: one child takes
//!    STEPS steps against an in-process model that answers at once (each step: a model call, a
//!    `write` tool call, history events); the run's wall time (workspace creation, every commit,
//!    the verifier) divided by its steps, over several runs. The cost of one workspace commit is
//!    measured on its own as well, in a small workspace and in one whose `repo/` holds a
//!    2,000-file project.
//! 2. 64 concurrent runs against a mock model on loopback HTTP that answers after 200 ms:
//!    wall time against the ideal (the model's latency times the calls of one run), the CPU time
//!    per run (the verifier's processes included), and the process's peak resident memory. One
//!    run alone first, so the runtime's serial cost and its cost under contention can be told
//!    apart. The mock model runs on its own thread and runtime: a server that shares the
//!    machine's cores but not nlah's scheduler.
//! 0. First, whole short runs (ten calls to a model answering at once), one after another: the
//!    fixed cost every concurrent run pays.
//!
//! Run: `cargo bench --bench run_overhead`. For profiling: `NLAH_BENCH_CONCURRENT_ONLY=1` skips
//! part 1, `NLAH_BENCH_SHORT_ONLY=1` stops after part 0, `NLAH_BENCH_SHORT_RUNS=N` (20) sets
//! how many short runs part 0 makes, `NLAH_BENCH_COMMITS_ONLY=1` measures the workspace commits
//! alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use nlah::charter;
use nlah::diag::Diags;
use nlah::engine::{self, RunOptions};
use nlah::model::openai::OpenAiBackend;
use nlah::model::{
    ChatBackend, ChatRequest, ChatResponse, Message, ModelError, ModelSpec, Role, ToolCall,
};
use nlah::record::Usage;
use serde_json::json;

#[path = "support/mock_model.rs"]
mod mock_model;

const STEPS: usize = 200;
const CONCURRENT: usize = 64;
const LATENCY: Duration = Duration::from_millis(200);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Answers each request of a child at once: `write` calls, then the RESPONSE.md, then text.
fn answer(messages_so_far: usize, child: &str, steps: usize) -> (String, Option<(String, String)>) {
    let turn = messages_so_far;
    if turn < steps {
        return (String::new(), Some(("write".into(), json!({"path": format!("artifacts/step-{}.txt", turn % 8), "content": format!("step {turn}\n")}).to_string())));
    }
    if turn == steps {
        return (
            String::new(),
            Some((
                "write".into(),
                json!({"path": "artifacts/result.txt", "content": "done\n"}).to_string(),
            )),
        );
    }
    if turn == steps + 1 {
        return (String::new(), Some(("write".into(), json!({"path": format!("children/{child}/RESPONSE.md"), "content": "status: done\n"}).to_string())));
    }
    ("Finished.".into(), None)
}

struct Instant0 {
    steps: usize,
}

impl ChatBackend for Instant0 {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(async move {
            let task = req
                .messages
                .iter()
                .find(|m| m.role == Role::User)
                .map_or("", |m| m.content.as_str());
            let turn = req
                .messages
                .iter()
                .filter(|m| m.role == Role::Assistant)
                .count();
            let (text, call) = answer(turn, &mock_model::child_of(task), self.steps);
            let tool_calls = call
                .map(|(name, arguments)| {
                    vec![ToolCall {
                        id: format!("c{turn}"),
                        name,
                        arguments,
                    }]
                })
                .unwrap_or_default();
            Ok(ChatResponse {
                finish_reason: if tool_calls.is_empty() {
                    "stop".into()
                } else {
                    "tool_calls".into()
                },
                message: Message {
                    role: Role::Assistant,
                    content: text,
                    tool_calls,
                    tool_call_id: None,
                },
                usage: Usage {
                    input_tokens: 100,
                    output_tokens: 10,
                    calls: 1,
                    ..Usage::default()
                },
            })
        })
    }
}

/// A one-stage harness whose budgets leave room for hundreds of steps.
const HARNESS: &str = "---\nname: bench\ndescription: One executor stage with large budgets, for benchmarks.\n---\n\n## Contract\n\n### Budgets\n- tokens: 100M\n- tool calls: 100k\n- llm calls: 100k\n\n## Roles\n\n### executor\nDo the work.\n\n## Stages\n\n### execute\n- role: executor\n- produces: `artifacts/result.txt`\n";

fn harness(dir: &Path) -> std::io::Result<PathBuf> {
    let h = dir.join("bench");
    std::fs::create_dir_all(&h)?;
    std::fs::write(h.join("SKILL.md"), HARNESS)?;
    Ok(h)
}

fn options(harness: &Path, ws: PathBuf, charter: &charter::Charter) -> RunOptions {
    let mut o = RunOptions::new(
        harness.to_path_buf(),
        root().join("tests/fixtures/tasks/write-result"),
        "openai:bench"
            .parse::<ModelSpec>()
            .unwrap_or(ModelSpec::OpenAi {
                model: "bench".into(),
            }),
        charter.clone(),
    );
    o.workspace = Some(ws);
    o.settings.max_steps = (STEPS + 10) as u32;
    o
}

fn stats(mut v: Vec<f64>, unit: &str) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "median {:.3} {unit}, min {:.3}, max {:.3}, mean {:.3} (n={})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        // Rare costs (the packs merged every fifty commits or so) show here, not in the median.
        v.iter().sum::<f64>() / v.len() as f64,
        v.len()
    )
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User plus system time of this process and its waited-for children, in seconds.
fn cpu_seconds() -> f64 {
    let secs = |who| {
        // SAFETY: getrusage only writes the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    };
    secs(libc::RUSAGE_SELF) + secs(libc::RUSAGE_CHILDREN)
}

fn commit_costs(dir: &Path) {
    println!(
        "one workspace commit (a changed file): {}",
        stats(commit_cost(dir, 0), "ms")
    );
    println!(
        "one workspace commit with a 2,000-file project in repo/ (a changed file): {}",
        stats(commit_cost(dir, 2000), "ms")
    );
}

/// Commit times in a workspace whose `repo/` holds a copy of a project of `files` files in
/// `files / 10` folders (as a task's `files/` brings one), one changed file per commit.
fn commit_cost(dir: &Path, files: usize) -> Vec<f64> {
    let ws = nlah::workspace::Workspace::create(&dir.join(format!("commits-{files}")))
        .expect("workspace");
    for i in 0..files {
        ws.write(
            &format!("repo/pkg{}/mod{i}.py", i / 10),
            format!("def f{i}():\n    return {i}\n"),
        )
        .expect("write");
    }
    // Settled: stats older than the clock's tick are trusted, as in a run's later commits.
    ws.commit("the project").expect("commit");
    std::thread::sleep(std::time::Duration::from_millis(20));
    (0..200)
        .map(|i| {
            ws.write("artifacts/x.txt", format!("{i}\n"))
                .expect("write");
            let t = Instant::now();
            ws.commit(&format!("step {i}")).expect("commit");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut diags = Diags::default();
    let charter = charter::load(&root().join("runtime-charter"), &mut diags)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    if std::env::var_os("NLAH_BENCH_COMMITS_ONLY").is_some() {
        commit_costs(dir.path());
        return Ok(());
    }
    let h = harness(dir.path())?;

    // 0. Whole short runs, model answering at once.
    let mut short = Vec::new();
    let short_runs = std::env::var("NLAH_BENCH_SHORT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    for i in 0..short_runs {
        let mut o = options(&h, dir.path().join(format!("short-{i}")), &charter);
        o.chat_backend = Some(Arc::new(Instant0 { steps: 8 }));
        let t = Instant::now();
        let report = rt.block_on(engine::run(o))?;
        short.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(report.record.outcome.as_str(), "passed");
    }
    println!(
        "a whole run of 10 model calls (model answering at once; workspace, 4 commits, verifier): {}",
        stats(short, "ms")
    );
    if std::env::var_os("NLAH_BENCH_SHORT_ONLY").is_some() {
        return Ok(());
    }

    // 1. Overhead per step.
    if std::env::var_os("NLAH_BENCH_CONCURRENT_ONLY").is_none() {
        let mut per_step = Vec::new();
        for i in 0..7 {
            let mut o = options(&h, dir.path().join(format!("step-{i}")), &charter);
            o.chat_backend = Some(Arc::new(Instant0 { steps: STEPS }));
            let t = Instant::now();
            let report = rt.block_on(engine::run(o))?;
            let wall = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(
                report.record.outcome.as_str(),
                "passed",
                "{}",
                report.record.reason
            );
            let steps = report.record.metrics.total.calls as f64;
            per_step.push(wall / steps);
        }
        println!(
            "runtime overhead per child step (in-process model answering at once; {STEPS}+ steps per run; workspace, commits and verifier included): {}",
            stats(per_step, "ms")
        );
        commit_costs(dir.path());
    }

    // 2. One run, then 64 concurrent runs, against a 200 ms model over loopback HTTP.
    let steps = 8;
    let base = mock_model::serve(LATENCY, move |turn, child| answer(turn, child, steps));
    // The writes, the result, the report; the loop ends once the report exists.
    let calls_per_run = steps + 2;
    let ideal = LATENCY.as_secs_f64() * calls_per_run as f64;
    for n in [1, CONCURRENT] {
        let mut walls = Vec::new();
        let mut cpu = Vec::new();
        for round in 0..5 {
            let cpu0 = cpu_seconds();
            let t = Instant::now();
            let results = rt.block_on(async {
                let mut runs = Vec::new();
                for i in 0..n {
                    let ws = dir.path().join(format!("c{n}-{round}-{i}"));
                    let mut o = options(&h, ws, &charter);
                    o.settings.max_steps = 30;
                    o.chat_backend = Some(Arc::new(OpenAiBackend::new(
                        base.clone(),
                        None,
                        "bench",
                        Duration::from_secs(30),
                    )?));
                    runs.push(tokio::spawn(engine::run(o)));
                }
                Ok::<_, ModelError>(futures::future::join_all(runs).await)
            });
            walls.push(t.elapsed().as_secs_f64());
            cpu.push((cpu_seconds() - cpu0) * 1e3 / n as f64);
            for r in results? {
                let report = r??;
                assert_eq!(
                    report.record.metrics.total.calls as usize, calls_per_run,
                    "{}",
                    report.record.reason
                );
            }
        }
        let over: Vec<f64> = walls.iter().map(|w| (w / ideal - 1.0) * 100.0).collect();
        println!(
            "{n} concurrent run(s), {calls_per_run} model calls each at {} ms: ideal {ideal:.2} s; {}; over ideal: {}; CPU per run (user+sys, verifier included): {}",
            LATENCY.as_millis(),
            stats(walls, "s"),
            stats(over, "%"),
            stats(cpu, "ms")
        );
    }
    println!(
        "peak resident memory of the process: {:.1} MB",
        peak_rss_mb()
    );
    Ok(())
}

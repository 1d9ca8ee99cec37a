//! `nlah ablate HARNESS TASKS --module M...`: run an ablation matrix, locally or on Slurm, and
//! resume it where it stopped.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ArgMatches;
use indicatif::{ProgressBar, ProgressStyle};
use nlah::ablation::cassettes::{self, Cassettes};
use nlah::ablation::design::Design;
use nlah::ablation::error::AblationError;
use nlah::ablation::executor::choice::Choice;
use nlah::ablation::executor::{Event, Runner, Sink, Tally, local, slurm};
use nlah::ablation::index::{self, Summary};
use nlah::ablation::matrix::{self, MATRIX_FILE, MatrixFile};
use nlah::ablation::resume::{OutLock, is_result};
use nlah::ablation::spend::{self, Finished, SpendRecord};
use nlah::ablation::{Cell, Matrix};
use nlah::charter::{self, Charter};
use nlah::diag::Diags;
use nlah::engine::RunSettings;
use nlah::harness::compose::sha256_hex;
use nlah::record::Usage;

use super::{exit, output, resolve_harness, run::load_charter};

/// Interrupted by Ctrl-C.
const INTERRUPTED: u8 = 130;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExecutorKind {
    Local,
    Slurm,
}

impl ExecutorKind {
    /// The executor a learning loop's matrices run on (`synthesize`, `evolve`); their budget is
    /// given per matrix.
    pub(crate) fn choice(self, concurrency: usize, poll_ms: u64) -> anyhow::Result<Choice> {
        let concurrency = concurrency.max(1);
        Ok(match self {
            ExecutorKind::Local => Choice::Local { concurrency },
            ExecutorKind::Slurm => Choice::Slurm(slurm::Slurm {
                concurrency,
                max_cost: None,
                poll: std::time::Duration::from_millis(poll_ms.max(10)),
                exe: std::env::current_exe().context("where is the nlah binary?")?,
                workdir: std::env::current_dir().context("no working directory")?,
            }),
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// A harness folder, or the name of one in ./harness-skills/.
    #[arg(required_unless_present_any = ["reindex", "resume"])]
    harness: Option<PathBuf>,
    /// A task folder, or a folder of task folders.
    #[arg(required_unless_present_any = ["reindex", "resume"])]
    tasks: Option<PathBuf>,
    /// A module to ablate (repeatable). Modules not listed are off in every variant; without
    /// any, the harness runs as it is (one variant, `default`).
    #[arg(long = "module", value_name = "M")]
    modules: Vec<String>,
    /// one-at-a-time (default with --module), leave-one-out, factorial, a TOML file of variants,
    /// or default (the harness as it is; the default without --module).
    #[arg(long, value_name = "DESIGN")]
    design: Option<String>,
    /// A model spec (repeatable; default: $NLAH_MODEL).
    #[arg(long = "model", value_name = "SPEC")]
    models: Vec<String>,
    /// Seeds per (variant, task, model): 0..N (default 1).
    #[arg(long, value_name = "N")]
    seeds: Option<u64>,
    /// Cells running at once (local, started a few milliseconds apart), or array tasks at once
    /// (Slurm).
    #[arg(long, default_value_t = 4, value_name = "K")]
    concurrency: usize,
    /// The output folder (default: workspaces/ablate-<harness>-<design>-<matrix id>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "local")]
    executor: ExecutorKind,
    /// Continue the matrix in --out (HARNESS and TASKS may then be left out: matrix.json has them).
    #[arg(long)]
    resume: bool,
    /// The matrix's budget, counted per model call (Slurm: per finished cell): no cell starts
    /// that it cannot cover, and running cells stop (outcome `budget`) once it is spent.
    #[arg(long, value_name = "USD")]
    max_cost: Option<f64>,
    /// The variant reports compare against (default: basic, full, or a file's first).
    #[arg(long, value_name = "VARIANT")]
    baseline: Option<String>,
    /// Record each cell's model calls to OUT/cassettes/<cell id>.jsonl (local executor).
    #[arg(long, conflicts_with = "replay_cassettes")]
    record_cassettes: bool,
    /// Answer each cell's model calls from DIR/<cell id>.jsonl (a recorded OUT/cassettes),
    /// offline: the matrix keeps its model specs, so cell ids and reports match the recording.
    #[arg(long, value_name = "DIR")]
    replay_cassettes: Option<PathBuf>,
    /// Print JSON lines (cell started/finished, summary) instead of the progress display.
    #[arg(long)]
    json: bool,
    /// Rebuild OUT/index.sqlite from the cells' run.json files, and do nothing else.
    #[arg(long, value_name = "OUT", conflicts_with_all = ["harness", "tasks", "resume"])]
    reindex: Option<PathBuf>,
    #[command(flatten)]
    settings: RunSettings,
    /// How often the Slurm executor looks at the cells and the queue, in milliseconds.
    #[arg(long, default_value_t = 5000, hide = true)]
    poll_ms: u64,
}

/// Prints an ablation error the way it deserves: diagnostics for variants that do not compose.
/// Returns the exit code.
pub(crate) fn report_error(e: &AblationError) -> u8 {
    match e {
        AblationError::Compose(broken) => {
            let color = output::stderr_color();
            for (variant, diags) in broken {
                eprintln!("variant `{variant}` does not compose:");
                output::write_all(&mut std::io::stderr().lock(), diags, false, color);
            }
            eprintln!("error: {e}; nothing was run");
        }
        _ => eprintln!("error: {e}"),
    }
    if e.is_usage() {
        exit::USAGE
    } else {
        exit::FAILED
    }
}

/// The charter a matrix's settings name: a folder, or the built-in one.
pub(crate) fn charter_of(settings: &RunSettings) -> anyhow::Result<Charter> {
    match &settings.charter {
        Some(dir) => load_charter(Some(dir)),
        None => {
            let mut diags = Diags::default();
            Ok(charter::builtin(&mut diags))
        }
    }
}

/// `--charter`, else `./runtime-charter`, else the built-in one; as an absolute path, since
/// Slurm jobs may start elsewhere.
pub(crate) fn resolve_charter(arg: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    let dir = match arg {
        Some(d) => d.to_path_buf(),
        None if Path::new("runtime-charter").is_dir() => PathBuf::from("runtime-charter"),
        None => return Ok(None),
    };
    Ok(Some(dir.canonicalize().with_context(|| {
        format!("{}: no such charter folder", dir.display())
    })?))
}

/// The settings flags given on the command line (`matches` says which) over `s`: a matrix
/// resumed or rerun keeps the settings it was started with unless told otherwise.
fn apply_flags(a: &Args, s: &mut RunSettings, matches: Option<&ArgMatches>) -> anyhow::Result<()> {
    let Some(matches) = matches else {
        return Ok(());
    };
    let mut flags = a.settings.clone();
    if flags.charter.is_some() {
        flags.charter = resolve_charter(flags.charter.as_deref())?;
    }
    s.overlay(&flags, matches);
    Ok(())
}

/// The default output folder: named for the harness and design, and for the cells, so that the
/// same command resumes the same matrix and a different one never collides with it.
fn default_out(m: &Matrix) -> PathBuf {
    let mut ids: Vec<&str> = m.cells.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    let h = sha256_hex(ids.join("\n").as_bytes());
    let design: String = m
        .design
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from("workspaces").join(format!("ablate-{}-{design}-{}", m.harness_name, &h[..8]))
}

/// Builds the matrix from the arguments, or reads it from --out when resuming without them.
/// Also says whether the matrix was read back from its file (and must be checked against the
/// harness and tasks as they are now).
fn matrix_from_args(
    a: &Args,
    matches: Option<&ArgMatches>,
) -> Result<(PathBuf, MatrixFile, bool), Result<u8, anyhow::Error>> {
    let Some(harness_arg) = &a.harness else {
        let Some(out) = &a.out else {
            return Err(Err(anyhow::anyhow!(
                "--resume without HARNESS and TASKS needs --out OUT (the folder holding matrix.json)"
            )));
        };
        if !a.modules.is_empty() || a.design.is_some() || !a.models.is_empty() || a.seeds.is_some()
        {
            return Err(Err(anyhow::anyhow!(
                "--module, --design, --model and --seeds define a matrix; when resuming from {} they come from its matrix.json (give HARNESS and TASKS to check them against it)",
                out.display()
            )));
        }
        let path = out.join(MATRIX_FILE);
        if !path.is_file() {
            return Err(Err(anyhow::anyhow!(
                "{}: nothing to resume (no matrix.json)",
                out.display()
            )));
        }
        let mut file = matrix::read(&path).map_err(|e| Ok(report_error(&e)))?;
        if let Some(b) = &a.baseline {
            if !file.matrix.variants.iter().any(|v| &v.name == b) {
                return Err(Err(anyhow::anyhow!(
                    "--baseline `{b}` is not a variant of this matrix"
                )));
            }
            file.matrix.baseline = b.clone();
        }
        apply_flags(a, &mut file.settings, matches).map_err(Err)?;
        return Ok((out.clone(), file, true));
    };
    let harness = resolve_harness(harness_arg).map_err(Err)?;
    let Some(tasks) = &a.tasks else {
        return Err(Err(anyhow::anyhow!(
            "give TASKS: a task folder or a folder of them"
        )));
    };
    // Without modules to ablate, the one obvious job: the harness as it is over the tasks.
    let design = match a.design.as_deref() {
        Some(d) => Design::parse(d),
        None if a.modules.is_empty() => Design::Default,
        None => Design::OneAtATime,
    };
    let models: Vec<String> = if a.models.is_empty() {
        std::env::var("NLAH_MODEL")
            .ok()
            .filter(|m| !m.trim().is_empty())
            .into_iter()
            .collect()
    } else {
        a.models.clone()
    };
    let req = matrix::Request {
        harness: &harness,
        tasks,
        design: &design,
        modules: &a.modules,
        models: &models,
        seeds: a.seeds.unwrap_or(1),
        baseline: a.baseline.as_deref(),
    };
    let m = matrix::build(&req).map_err(|e| Ok(report_error(&e)))?;
    let out = a.out.clone().unwrap_or_else(|| default_out(&m));
    let existing = out.join(MATRIX_FILE);
    if a.resume && !existing.is_file() {
        return Err(Err(anyhow::anyhow!(
            "{}: nothing to resume (no matrix.json); leave out --resume to start this matrix",
            out.display()
        )));
    }
    let mut settings = if existing.is_file() {
        matrix::read(&existing)
            .map(|f| f.settings)
            .unwrap_or_default()
    } else {
        RunSettings {
            charter: resolve_charter(None).map_err(Err)?,
            ..RunSettings::default()
        }
    };
    apply_flags(a, &mut settings, matches).map_err(Err)?;
    Ok((
        out,
        MatrixFile {
            matrix: m,
            settings,
        },
        false,
    ))
}

/// What the display knows while cells run.
struct Live {
    tally: Tally,
    /// Usage of model calls made in this invocation so far (running cells included).
    live: Usage,
    /// Usage of cells finished before this invocation.
    earlier: Usage,
    /// Cells this invocation will run, and how many of them ended.
    planned: usize,
    ended: usize,
    started: Instant,
}

impl Live {
    fn message(&self) -> String {
        let t = &self.tally;
        let tokens = self.earlier.total_tokens() + self.live.total_tokens();
        let cost = self.earlier.cost_usd + self.live.cost_usd;
        let eta = if self.ended > 0 && self.ended < self.planned {
            let per = self.started.elapsed().as_secs_f64() / self.ended as f64;
            let left = per * (self.planned - self.ended) as f64;
            format!(", ETA {}", human_duration(left))
        } else {
            String::new()
        };
        format!(
            "{} done ({} failed), {} errors, {} running, {} remaining · {} tokens · ${:.4}{eta}",
            t.done(),
            t.failed,
            t.errors,
            t.running,
            t.remaining(),
            tokens,
            cost
        )
    }
}

fn human_duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn cell_json(c: &Cell) -> serde_json::Value {
    serde_json::json!({"id": c.id, "index": c.index, "variant": c.variant, "task": c.task, "model": c.model, "seed": c.seed})
}

fn usage_json(s: &Summary) -> serde_json::Value {
    serde_json::json!({
        "input_tokens": s.input_tokens, "output_tokens": s.output_tokens,
        "cached_input_tokens": s.cached_input_tokens, "llm_calls": s.llm_calls,
        "tool_calls": s.tool_calls, "cost_usd": s.cost_usd, "wall_ms": s.wall_ms,
    })
}

fn cell_line(c: &Cell) -> String {
    format!(
        "cell {} [{} · {} · {} · seed {}]",
        c.id, c.variant, c.task, c.model, c.seed
    )
}

/// Renders executor events: a progress bar on a terminal, lines otherwise, JSON with --json.
struct Display {
    live: Mutex<Live>,
    bar: Option<ProgressBar>,
    json: bool,
    out: Mutex<std::io::Stdout>,
}

impl Display {
    fn emit_json(&self, v: serde_json::Value) {
        let mut o = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(o, "{v}");
    }

    fn line(&self, s: String) {
        match &self.bar {
            Some(b) => b.println(s),
            None => eprintln!("{s}"),
        }
    }

    fn on(&self, e: &Event) {
        let mut l = self.live.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Started { cell, moved_aside } => {
                l.tally.running += 1;
                if self.json {
                    let mut v = cell_json(cell);
                    v["event"] = "cell-started".into();
                    if let Some(m) = moved_aside {
                        v["moved_aside"] = m.display().to_string().into();
                    }
                    self.emit_json(v);
                } else if let Some(m) = moved_aside
                    && self.bar.is_none()
                {
                    self.line(format!(
                        "  {}: an earlier attempt was moved to {}",
                        cell_line(cell),
                        m.display()
                    ));
                }
            }
            Event::ModelCall { usage, .. } => l.live.add(usage),
            Event::Finished { cell, record } => {
                let s = Summary::of(record);
                l.tally.running = l.tally.running.saturating_sub(1);
                l.tally.add(&s);
                l.ended += 1;
                if self.json {
                    let mut v = cell_json(cell);
                    v["event"] = "cell-finished".into();
                    v["outcome"] = s.outcome.as_str().into();
                    v["reason"] = record.reason.clone().into();
                    v["usage"] = usage_json(&s);
                    if let Some(c) = &record.error_class {
                        v["error_class"] = c.clone().into();
                    }
                    self.emit_json(v);
                } else if self.bar.is_none() || !is_result(s.outcome) {
                    let mark = match s.outcome.as_str() {
                        "passed" => "✓",
                        "failed" => "✗",
                        "unverified" => "·",
                        _ => "!",
                    };
                    self.line(format!(
                        "{mark} {}: {} ({} tokens, ${:.4}, {:.1} s){}",
                        cell_line(cell),
                        s.outcome.as_str(),
                        s.input_tokens + s.output_tokens,
                        s.cost_usd,
                        s.wall_ms as f64 / 1000.0,
                        if is_result(s.outcome) {
                            String::new()
                        } else {
                            format!(": {}", record.reason)
                        }
                    ));
                }
            }
            Event::Failed { cell, error } => {
                l.tally.running = l.tally.running.saturating_sub(1);
                l.tally.errors += 1;
                l.ended += 1;
                if self.json {
                    let mut v = cell_json(cell);
                    v["event"] = "cell-failed".into();
                    v["error"] = error.clone().into();
                    self.emit_json(v);
                } else {
                    self.line(format!("! {}: {error}", cell_line(cell)));
                }
            }
            Event::CostCeiling {
                spent,
                limit,
                unscheduled,
            } => {
                if self.json {
                    self.emit_json(serde_json::json!({"event": "max-cost-reached", "spent_usd": spent, "limit_usd": limit, "unscheduled": unscheduled}));
                } else {
                    self.line(format!(
                        "cost ceiling reached: ${spent:.4} spent of --max-cost ${limit:.4}; {unscheduled} cell(s) will not be started (rerun with a higher --max-cost to continue)"
                    ));
                }
            }
        }
        if let Some(b) = &self.bar {
            b.set_position(l.ended as u64);
            b.set_message(l.message());
        }
    }
}

/// What `--record-cassettes` or `--replay-cassettes` ask for; cassettes are per cell of the
/// local pool (a Slurm array task starts from the matrix file alone).
fn cassettes_of(a: &Args, out: &Path) -> Result<Option<Cassettes>, u8> {
    let c = match (&a.replay_cassettes, a.record_cassettes) {
        (Some(dir), _) => Cassettes::Replay(dir.clone()),
        (None, true) => Cassettes::Record(out.join(cassettes::DIR)),
        (None, false) => return Ok(None),
    };
    if a.executor == ExecutorKind::Slurm {
        eprintln!(
            "error: cassettes are recorded and replayed by the local executor only; drop --executor slurm"
        );
        return Err(exit::USAGE);
    }
    if let Cassettes::Replay(dir) = &c
        && !dir.is_dir()
    {
        eprintln!("error: {}: no such folder of cassettes", dir.display());
        return Err(exit::USAGE);
    }
    Ok(Some(c))
}

/// Resolves on Ctrl-C (never, when the signal cannot be listened to).
async fn interrupt() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `matches` are the subcommand's own: they tell which settings flags were given.
pub fn run(a: Args, matches: Option<&ArgMatches>) -> anyhow::Result<u8> {
    if let Some(out) = &a.reindex {
        return match index::rebuild(out) {
            Ok(n) => {
                println!(
                    "rebuilt {} from {n} run.json file(s)",
                    index::path(out).display()
                );
                Ok(exit::OK)
            }
            Err(e) => Ok(report_error(&e)),
        };
    }
    let (out, file, from_file) = match matrix_from_args(&a, matches) {
        Ok(x) => x,
        Err(Ok(code)) => return Ok(code),
        Err(Err(e)) => return Err(e),
    };
    let cassettes = match cassettes_of(&a, &out) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    // A missing cassette or key is the user's to fix: say so before OUT holds anything.
    match &cassettes {
        Some(Cassettes::Replay(dir)) => {
            if !file
                .matrix
                .cells
                .iter()
                .any(|c| cassettes::path(dir, &c.id).is_file())
            {
                eprintln!(
                    "error: {}: no cassette of any cell of this matrix (was it recorded with --record-cassettes, from the same harness, tasks, models and seeds?); nothing was run",
                    dir.display()
                );
                return Ok(exit::USAGE);
            }
        }
        _ => {
            for spec in &file.matrix.models {
                nlah::engine::backends::preflight(&spec.parse()?)?;
            }
        }
    }
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    let out = out
        .canonicalize()
        .with_context(|| format!("{}: cannot resolve", out.display()))?;
    let _lock = match OutLock::acquire(&out) {
        Ok(l) => l,
        Err(e) => return Ok(report_error(&e)),
    };
    let file = match matrix::install(&out, file) {
        Ok(f) => f,
        Err(e) => return Ok(report_error(&e)),
    };
    let charter = charter_of(&file.settings)?;
    let entries = match index::refresh(&out, &file.matrix, false) {
        Ok(e) => e,
        Err(e) => return Ok(report_error(&e)),
    };
    let mut tally = Tally {
        total: file.matrix.cells.len(),
        ..Tally::default()
    };
    let mut earlier = Usage::default();
    let mut spent = 0.0;
    let mut finished = Finished::default();
    let mut pending = Vec::new();
    for (c, e) in file.matrix.cells.iter().zip(&entries) {
        match e.summary {
            Some(s) if is_result(s.outcome) => {
                tally.add(&s);
                earlier.input_tokens += s.input_tokens;
                earlier.output_tokens += s.output_tokens;
                earlier.cost_usd += s.cost_usd;
                spent += s.cost_usd;
                finished.add(s.cost_usd);
            }
            Some(s) => {
                // An error, an interrupted attempt or one the budget stopped: it cost money,
                // and runs again.
                spent += s.cost_usd;
                earlier.cost_usd += s.cost_usd;
                pending.push(c.clone());
            }
            None => pending.push(c.clone()),
        }
    }
    tally.earlier = tally.done();
    if let Some(c) = &cassettes {
        let before = pending.len();
        pending.retain(|cell| c.covers(cell));
        if pending.len() < before {
            eprintln!(
                "note: {} cell(s) have no cassette and are not replayed",
                before - pending.len()
            );
        }
    }
    let runner = match Runner::new(out.clone(), file.clone(), charter) {
        Ok(mut r) => {
            r.cassettes = cassettes.map(|c| match c {
                // OUT is canonical only now that it exists.
                Cassettes::Record(_) => Cassettes::Record(out.join(cassettes::DIR)),
                replay => replay,
            });
            Arc::new(r)
        }
        Err(e) => return Ok(report_error(&e)),
    };
    if from_file
        && !pending.is_empty()
        && let Err(e) = runner.verify_all()
    {
        return Ok(report_error(&e));
    }
    let m = &file.matrix;
    let plan = format!(
        "matrix {}: {} variant(s) × {} task(s) × {} model(s) × {} seed(s) = {} cells; {} finished earlier, {} to run ({} executor)",
        out.display(),
        m.variants.len(),
        m.cells
            .iter()
            .map(|c| &c.task)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        m.models.len(),
        m.seeds,
        m.cells.len(),
        tally.earlier,
        pending.len(),
        match a.executor {
            ExecutorKind::Local => "local",
            ExecutorKind::Slurm => "slurm",
        }
    );
    if a.json {
        println!(
            "{}",
            serde_json::json!({"event": "matrix", "out": out, "cells": m.cells.len(), "variants": m.variants.iter().map(|v| &v.name).collect::<Vec<_>>(), "finished_earlier": tally.earlier, "to_run": pending.len()})
        );
    } else {
        eprintln!("{plan}");
    }

    let planned = pending.len();
    let bar = (!a.json && planned > 0 && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(planned as u64);
        b.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} [{bar:24}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let display = Arc::new(Display {
        live: Mutex::new(Live {
            tally,
            live: Usage::default(),
            earlier,
            planned,
            ended: 0,
            started: Instant::now(),
        }),
        bar,
        json: a.json,
        out: Mutex::new(std::io::stdout()),
    });
    let d = display.clone();
    let sink: Sink = Arc::new(move |e: &Event| d.on(e));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let run = async {
        if planned > 0 {
            // Cells of an earlier Slurm submission may still be running.
            slurm::check_no_active_jobs(&out).await?;
        }
        match a.executor {
            ExecutorKind::Local => {
                let mut opts = local::Local::new(a.concurrency, a.max_cost);
                opts.finished = finished;
                let r = local::run(runner, pending, spent, opts, sink, interrupt()).await;
                record_spend(&out, &r)?;
                Ok::<_, AblationError>((!r.interrupted).then_some((r.errors, r.unscheduled)))
            }
            ExecutorKind::Slurm => {
                let opts = slurm::Slurm {
                    concurrency: a.concurrency,
                    max_cost: a.max_cost,
                    poll: Duration::from_millis(a.poll_ms.max(10)),
                    exe: std::env::current_exe()
                        .map_err(|e| AblationError::Slurm(format!("where is nlah? {e}")))?,
                    workdir: std::env::current_dir()
                        .map_err(|e| AblationError::Slurm(format!("no working directory: {e}")))?,
                };
                // Array tasks share no meter: `--max-cost` counts finished cells there, and a
                // spend record of an earlier local invocation would no longer be true.
                spend::remove(&out)?;
                // The jobs run on without us: an interruption only stops the watching.
                tokio::select! {
                    r = slurm::run(&out, &file.matrix, pending, spent, &opts, sink) => {
                        r.map(|r| Some((r.errors, r.unscheduled)))
                    }
                    () = interrupt() => Ok(None),
                }
            }
        }
    };
    let result = rt.block_on(run);
    if let Some(b) = &display.bar {
        b.finish_and_clear();
    }
    let (errors, unscheduled) = match result {
        Ok(None) => {
            // The running cells were stopped: their run.json says `running`.
            let jobs: Vec<String> = slurm::jobs(&out).into_iter().map(|j| j.id).collect();
            if a.executor == ExecutorKind::Slurm && !jobs.is_empty() {
                eprintln!(
                    "interrupted: the Slurm jobs ({}) keep running; stop them with `scancel {}`; when they are done, `nlah ablate --resume --out {}` collects their cells and runs what is left",
                    jobs.join(", "),
                    jobs.join(" "),
                    out.display()
                );
            } else {
                eprintln!(
                    "interrupted: finished cells are kept; `nlah ablate --resume --out {}` runs the rest",
                    out.display()
                );
            }
            rt.shutdown_timeout(Duration::from_secs(2));
            return Ok(INTERRUPTED);
        }
        Err(e) => return Ok(report_error(&e)),
        Ok(Some(counts)) => counts,
    };
    rt.shutdown_timeout(Duration::from_secs(2));

    // The final word comes from the files, through the index (which this also brings up to date).
    let entries = match index::refresh(&out, &file.matrix, false) {
        Ok(e) => e,
        Err(e) => return Ok(report_error(&e)),
    };
    let mut fin = Tally {
        total: file.matrix.cells.len(),
        ..Tally::default()
    };
    let mut missing = 0;
    for e in &entries {
        match &e.summary {
            Some(s) => fin.add(s),
            None => missing += 1,
        }
    }
    let complete = fin.done() == fin.total;
    // What this invocation recorded against its --max-cost.
    let spent = a.max_cost.and_then(|_| spend::read(&out).ok().flatten());
    if a.json {
        let mut v = serde_json::json!({
                "event": "summary", "out": out, "cells": fin.total,
                "passed": fin.passed, "failed": fin.failed, "unverified": fin.unverified,
                "errors": fin.errors, "not_run": missing, "errors_this_run": errors,
                "unscheduled": unscheduled, "stopped_by_budget": fin.budget,
                "input_tokens": fin.usage.input_tokens,
                "output_tokens": fin.usage.output_tokens, "llm_calls": fin.usage.calls,
                "tool_calls": fin.tool_calls, "cost_usd": fin.cost, "complete": complete,
        });
        if let Some(r) = &spent {
            v["spend"] = serde_json::to_value(r).unwrap_or_default();
        }
        println!("{v}");
    } else {
        println!(
            "{}: {} of {} cells finished: {} passed, {} failed, {} unverified; {} error(s), {} not run\n  {} prompt + {} completion tokens, {} LLM calls, {} tool calls, ${:.4}\n  index {}",
            out.display(),
            fin.done(),
            fin.total,
            fin.passed,
            fin.failed,
            fin.unverified,
            fin.errors,
            missing,
            fin.usage.input_tokens,
            fin.usage.output_tokens,
            fin.usage.calls,
            fin.tool_calls,
            fin.cost,
            index::path(&out).display()
        );
        if let Some(r) = &spent {
            println!("  {}", r.sentence());
        }
        if !complete {
            println!(
                "  rerun `nlah ablate --resume --out {}` to run the cells without a result",
                out.display()
            );
        }
    }
    Ok(if complete { exit::OK } else { exit::FAILED })
}

/// Records what the invocation spent against `--max-cost` in OUT/spend.json (and removes a
/// record an invocation without one would leave stale).
fn record_spend(out: &Path, r: &local::PoolSummary) -> Result<(), AblationError> {
    match &r.spend {
        Some(s) => spend::write(
            out,
            &SpendRecord::of(s, r.stopped as u64, r.unscheduled as u64),
        ),
        None => spend::remove(out),
    }
}

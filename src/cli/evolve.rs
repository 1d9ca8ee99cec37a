//! `nlah evolve HARNESS TASKS --model SPEC`: Self-Harness evolution with a three-way split, a
//! paired acceptance rule and every candidate a commit; resumable (rerun the same command).

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nlah::ablation::executor::{Event, Sink};
use nlah::ablation::resume::OutLock;
use nlah::engine::RunSettings;
use nlah::evolve::{self, Options, Phase, Progress, eval};

use super::{exit, resolve_harness};

/// Interrupted by Ctrl-C.
const INTERRUPTED: u8 = 130;

#[derive(clap::Args)]
pub struct Args {
    /// A harness folder inside a git repository, or the name of one in ./harness-skills/.
    harness: PathBuf,
    /// A folder of task folders (split into search, validation and test).
    tasks: PathBuf,
    /// The model the harness runs with (default: $NLAH_MODEL).
    #[arg(long, value_name = "SPEC")]
    model: Option<String>,
    /// The model that proposes edits (default: the same model, as in Self-Harness).
    #[arg(long, value_name = "SPEC")]
    proposer: Option<String>,
    /// Iterations of mine → propose → screen → evaluate.
    #[arg(long, default_value_t = 3, value_name = "N")]
    iterations: usize,
    /// Edits asked of the proposer per iteration.
    #[arg(long, default_value_t = 3, value_name = "K")]
    edits: usize,
    /// Runs per task (seeds 0..N) of every evaluation.
    #[arg(long, default_value_t = 2, value_name = "N")]
    seeds: u64,
    /// The seed of the split rule (task.toml `split` wins over it).
    #[arg(long, default_value_t = 0, value_name = "SEED")]
    split_seed: u64,
    /// The budget of the whole evolution (proposer and every evaluation), in USD.
    #[arg(long, value_name = "USD")]
    max_cost: Option<f64>,
    /// Cells running at once (local), or array tasks at once (Slurm).
    #[arg(long, default_value_t = 4, value_name = "K")]
    concurrency: usize,
    #[arg(long, value_enum, default_value = "local")]
    executor: super::ablate::ExecutorKind,
    /// The record folder (default: workspaces/evolve-<harness>); rerun to continue it.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The evolution's name: its branch is nlah/evolve/NAME (default: the --out folder's name).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Print JSON lines (progress, cells, the final state) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: RunSettings,
    /// How often the Slurm executor looks at the cells and the queue, in milliseconds.
    #[arg(long, default_value_t = 5000, hide = true)]
    poll_ms: u64,
}

fn branch_safe(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "evolve".into() } else { s }
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let harness = resolve_harness(&a.harness)?;
    let model = match a.model.clone().or_else(|| {
        std::env::var("NLAH_MODEL")
            .ok()
            .filter(|m| !m.trim().is_empty())
    }) {
        Some(m) => m,
        None => anyhow::bail!("no model: give --model SPEC or set NLAH_MODEL"),
    };
    let proposer = a.proposer.clone().unwrap_or_else(|| model.clone());
    for spec in [&model, &proposer] {
        nlah::engine::backends::preflight(&spec.parse()?)?;
    }
    if a.iterations == 0 || a.edits == 0 || a.seeds == 0 {
        anyhow::bail!("--iterations, --edits and --seeds must each be at least 1");
    }
    let harness_name = super::harness_name(&harness);
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("workspaces").join(format!("evolve-{harness_name}")));
    std::fs::create_dir_all(&out)?;
    let name = branch_safe(&a.name.clone().unwrap_or_else(|| {
        out.canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "evolve".into())
    }));
    let _lock = match OutLock::acquire(&out) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    let mut settings = a.settings.clone();
    settings.charter = super::ablate::resolve_charter(settings.charter.as_deref())?;
    let charter = super::ablate::charter_of(&settings)?;
    let json = a.json;
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let emit = {
        let stdout = stdout.clone();
        move |v: serde_json::Value| {
            let mut o = stdout.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(o, "{v}");
        }
    };
    let cell_emit = emit.clone();
    let sink: Sink = Arc::new(move |e: &Event| {
        if !json {
            return;
        }
        match e {
            Event::Finished { cell, record } => cell_emit(serde_json::json!({
                "event": "cell-finished", "id": cell.id, "task": cell.task, "seed": cell.seed,
                "outcome": record.outcome.as_str(),
            })),
            Event::Failed { cell, error } => cell_emit(serde_json::json!({
                "event": "cell-failed", "id": cell.id, "task": cell.task, "error": error,
            })),
            _ => {}
        }
    });
    let executor = a.executor.choice(a.concurrency, a.poll_ms)?;
    let ctx = eval::Context {
        tasks: a.tasks.clone(),
        model: model.clone(),
        seeds: a.seeds,
        settings,
        charter,
        executor,
        max_cost: a.max_cost,
        sink,
    };
    let opts = Options {
        harness,
        tasks: a.tasks.clone(),
        model,
        proposer,
        iterations: a.iterations,
        edits: a.edits,
        seeds: a.seeds,
        split_seed: a.split_seed,
        out: out.clone(),
        name,
    };
    let say = move |p: Progress| {
        if json {
            emit(serde_json::json!({"event": p.event, "message": p.message}));
        } else {
            eprintln!("{}", p.message);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        tokio::select! {
            r = evolve::run(&opts, &ctx, a.max_cost, &say) => Some(r),
            r = tokio::signal::ctrl_c() => { let _ = r; None }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let state = match result {
        None => {
            eprintln!(
                "interrupted: everything decided is kept in {}; rerun the same command to continue",
                out.display()
            );
            return Ok(INTERRUPTED);
        }
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return Ok(if e.is_usage() {
                exit::USAGE
            } else {
                exit::FAILED
            });
        }
        Some(Ok(s)) => s,
    };
    if a.json {
        let mut o = stdout.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            o,
            "{}",
            serde_json::json!({"event": "done", "out": out, "state": state})
        );
    } else {
        print!("{}", evolve::report::render(&state));
    }
    Ok(if state.phase == Phase::Done {
        exit::OK
    } else {
        exit::FAILED
    })
}

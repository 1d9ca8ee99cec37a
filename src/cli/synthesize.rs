//! `nlah synthesize HARNESS TASKS --model SPEC --target verifier|filter|policy`: AutoHarness's
//! tree search for a harness script (library: `nlah::synthesize`). Progress goes to stderr (JSON
//! lines on stdout with `--json`), the summary to stdout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nlah::engine::RunSettings;
use nlah::synthesize::search::Stop;
use nlah::synthesize::{self, Options, Outcome, Progress, Target};

use super::{exit, resolve_harness};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TargetArg {
    Verifier,
    Filter,
    Policy,
}

#[derive(clap::Args)]
pub struct Args {
    /// A harness folder inside a git repository (or the name of one in ./harness-skills/).
    harness: PathBuf,
    /// A task folder, or a folder of tasks; each must run in an environment (`[env]`).
    tasks: PathBuf,
    /// The model that plays the rollouts, e.g. `openai:gpt-4.1-mini`.
    #[arg(long, env = "NLAH_MODEL", value_name = "SPEC")]
    model: String,
    /// What to write: an action check (`is_legal`), a legal-action lister (`legal_actions`) or a
    /// policy (`policy`).
    #[arg(long, value_enum)]
    target: TargetArg,
    /// The model that writes the script (default: --model).
    #[arg(long, value_name = "SPEC")]
    refiner: Option<String>,
    /// Rollouts per node.
    #[arg(long, default_value_t = 10, value_name = "N")]
    rollouts: usize,
    /// Environment actions per rollout at most.
    #[arg(long, default_value_t = 30, value_name = "N")]
    max_steps: u64,
    /// Refinements at most (the first script counts as one).
    #[arg(long, default_value_t = 10, value_name = "N")]
    iterations: usize,
    /// Stop once the refiner's calls and the rollouts cost this much (USD).
    #[arg(long, value_name = "USD")]
    max_cost: Option<f64>,
    /// Rollouts running at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,
    /// Seeds the Thompson draws (the rollouts use seeds 0, 1, … on every node).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The search's record folder; rerunning the same command continues it.
    /// Default: `synthesis/<harness>-<target>`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where the rollouts run.
    #[arg(long, value_enum, default_value = "local")]
    executor: super::ablate::ExecutorKind,
    /// How often the Slurm executor looks at the cells, in milliseconds.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    poll_ms: u64,
    /// The runtime charter folder (default: ./runtime-charter, else the built-in one).
    #[arg(long)]
    charter: Option<PathBuf>,
    /// The rollouts' tool choice (`auto`, `none`, `any`, or a tool to force first).
    #[arg(long, default_value = "auto")]
    tool_choice: String,
    #[arg(long)]
    temperature: Option<f32>,
    /// Completion tokens per model call at most (rollouts and refiner); 0 sends no limit.
    #[arg(long, default_value_t = nlah::engine::settings::defaults::MAX_TOKENS)]
    max_tokens: u32,
    /// Print progress and the summary as JSON lines.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let harness = resolve_harness(&a.harness)?;
    let target = match a.target {
        TargetArg::Verifier => Target::Verifier,
        TargetArg::Filter => Target::Filter,
        TargetArg::Policy => Target::Policy,
    };
    let name = super::harness_name(&harness);
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new("synthesis").join(format!("{name}-{}", target.name())));
    let charter_dir = match &a.charter {
        Some(d) => Some(
            d.canonicalize()
                .map_err(|_| anyhow::anyhow!("{}: no such charter folder", d.display()))?,
        ),
        None if Path::new("runtime-charter").is_dir() => {
            Path::new("runtime-charter").canonicalize().ok()
        }
        None => None,
    };
    let settings = RunSettings {
        charter: charter_dir,
        tool_choice: a.tool_choice.clone(),
        // Each action may take the model a few turns (re-prompts by the check).
        max_steps: RunSettings::default().max_steps.max(
            u32::try_from(a.max_steps.saturating_mul(4).saturating_add(5)).unwrap_or(u32::MAX),
        ),
        max_tokens: a.max_tokens,
        temperature: a.temperature,
        ..RunSettings::default()
    };
    let charter = super::ablate::charter_of(&settings)?;
    let executor = a.executor.choice(a.concurrency, a.poll_ms)?;
    let opts = Options {
        harness: harness.clone(),
        tasks: a.tasks.clone(),
        refiner: a.refiner.clone().unwrap_or_else(|| a.model.clone()),
        model: a.model.clone(),
        target,
        rollouts: a.rollouts,
        max_steps: a.max_steps,
        iterations: a.iterations,
        max_cost: a.max_cost,
        seed: a.seed,
        out,
        settings,
        charter,
        executor,
    };
    let json = a.json;
    let sink: synthesize::Sink = Arc::new(move |p: &Progress| {
        if json {
            println!("{}", serde_json::to_string(p).unwrap_or_default());
        } else {
            eprintln!("{}", progress_line(p));
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(synthesize::run(opts, sink));
    rt.shutdown_timeout(Duration::from_secs(2));
    let outcome = match result {
        Ok(o) => o,
        Err(e) if e.is_input() => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::FAILED);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "finished", "outcome": outcome})
        );
    } else {
        print!("{}", summary(&outcome, &harness));
    }
    Ok(code(&outcome))
}

/// 0 when the search ended (solved, iterations or cost spent) and its best node was written
/// into a harness that checks; 1 otherwise.
fn code(o: &Outcome) -> u8 {
    let clean = o.stop != Stop::ModelFailed && o.best.is_some() && o.check_errors.is_empty();
    if clean { exit::OK } else { exit::FAILED }
}

fn rate(r: Option<f64>) -> String {
    r.map_or("none (no action taken)".into(), |r| format!("{r:.2}"))
}

fn progress_line(p: &Progress) -> String {
    match p {
        Progress::Started {
            out,
            branch,
            resumed,
            nodes,
            iterations,
        } => {
            if *resumed {
                format!(
                    "synthesize: continuing {} ({nodes} node(s), {iterations} iteration(s) so far; branch {branch})",
                    out.display()
                )
            } else {
                format!("synthesize: {} (branch {branch})", out.display())
            }
        }
        Progress::Refined {
            iteration,
            refined,
            draws,
            what,
            shown,
            node,
            fault,
            cost_usd,
        } => {
            let from = match refined {
                None => "a first script".to_string(),
                Some(p) => format!(
                    "node {p} drawn ({}), {shown} failed step(s), refining the {what}",
                    draws
                        .iter()
                        .map(|(n, d)| format!("{n}: {d:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let to = match (node, fault) {
                (Some(n), _) => format!("node {n}"),
                (None, Some(f)) => format!("no node ({}: {})", f.kind, f.message),
                (None, None) => "no node".into(),
            };
            format!("iteration {iteration}: {from} → {to}; refiner ${cost_usd:.4}")
        }
        Progress::Evaluated {
            node,
            legal,
            illegal,
            code_errors,
            infra_errors,
            rate: r,
            cost_usd,
            commit,
        } => format!(
            "node {node}: legal-action rate {} ({legal}/{}){}{}; rollouts ${cost_usd:.4}; commit {}",
            rate(*r),
            legal + illegal,
            if *code_errors > 0 {
                format!(", {code_errors} code error(s)")
            } else {
                String::new()
            },
            if *infra_errors > 0 {
                format!(
                    ", {infra_errors} rollout(s) ended in an infrastructure error (not counted)"
                )
            } else {
                String::new()
            },
            &commit[..commit.len().min(10)]
        ),
    }
}

fn summary(o: &Outcome, harness: &Path) -> String {
    let mut s = format!("stopped: {}\n", o.stop.words());
    match o.best {
        Some(b) => {
            s.push_str(&format!(
                "best: node {b}, legal-action rate {}\n",
                rate(o.best_rate)
            ));
            let names: Vec<String> = o
                .written
                .iter()
                .map(|p| {
                    p.strip_prefix(harness.canonicalize().unwrap_or_default())
                        .unwrap_or(p)
                        .display()
                        .to_string()
                })
                .collect();
            s.push_str(&format!("written into the harness: {}\n", names.join(", ")));
        }
        None => s.push_str("no node was evaluated; nothing written\n"),
    }
    for e in &o.check_errors {
        s.push_str(&format!("check: {e}\n"));
    }
    s.push_str(&format!(
        "{} node(s), {} iteration(s), cost ${:.4}\nthe tree: nlah log {} --rev {}\n",
        o.nodes,
        o.iterations,
        o.cost_usd,
        harness.display(),
        o.branch
    ));
    s
}

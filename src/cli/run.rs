//! `nlah run HARNESS TASK`: run a harness on a task and show it happen.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use nlah::charter::{self, Charter};
use nlah::diag::Diags;
use nlah::engine::{self, EngineError, RunOptions, RunSettings};
use nlah::harness::Toggles;
use nlah::model::ModelSpec;
use nlah::record::Usage;
use nlah::record::{Event, EventKind};
use nlah::record::{RunOutcome, RunRecord};

use super::{exit, output, resolve_harness};

#[derive(clap::Args)]
pub struct Args {
    /// A harness folder, or the name of one in ./harness-skills/.
    harness: PathBuf,
    /// A task folder (TASK.md or instruction.md, optional task.toml, files/, tests/).
    task: PathBuf,
    /// The model: openai:MODEL, anthropic:MODEL, command:TEMPLATE or replay:FILE
    /// (default: $NLAH_MODEL).
    #[arg(long, env = "NLAH_MODEL")]
    model: Option<String>,
    /// Enable a module (repeatable).
    #[arg(long = "with", value_name = "MODULE")]
    with: Vec<String>,
    /// Disable a module (repeatable).
    #[arg(long = "without", value_name = "MODULE")]
    without: Vec<String>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The workspace folder (default: workspaces/<run-id>).
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// Record every model call to this cassette (replay it with --model replay:FILE).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Print every event as a JSON line instead of the progress display.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: RunSettings,
}

/// The charter: `--charter`, else `./runtime-charter`, else the one built into the binary.
pub fn load_charter(dir: Option<&Path>) -> anyhow::Result<Charter> {
    let mut diags = Diags::default();
    let charter = match dir {
        Some(d) => charter::load(d, &mut diags)?,
        None if Path::new("runtime-charter").is_dir() => {
            charter::load(Path::new("runtime-charter"), &mut diags)?
        }
        None => charter::builtin(&mut diags),
    };
    let errors: Vec<String> = diags
        .into_sorted()
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    anyhow::ensure!(
        errors.is_empty(),
        "the runtime charter has errors:\n{}",
        errors.join("\n")
    );
    Ok(charter)
}

/// Live progress on a terminal: a spinner with totals, and a line per milestone.
struct Progress {
    bar: Option<ProgressBar>,
    usage: Mutex<(Usage, u64)>,
}

impl Progress {
    fn line(&self, s: String) {
        match &self.bar {
            Some(b) => b.println(s),
            None => eprintln!("{s}"),
        }
    }

    fn on(&self, e: &Event) {
        let mut g = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        match &e.kind {
            EventKind::RunStarted {
                run_id,
                harness,
                version,
                modules,
                model,
                task,
                sandbox,
                ..
            } => {
                self.line(format!("run {run_id}\n  harness {harness} {version} (modules: {})\n  task {task}, model {model}\n  sandbox: {sandbox}", if modules.is_empty() { "none".into() } else { modules.join(", ") }));
            }
            EventKind::StageStarted { stage, attempt } => {
                self.line(format!("▶ stage {stage} (attempt {attempt})"))
            }
            EventKind::ChildStarted {
                child, role, model, ..
            } => self.line(format!("  child {child} — {role} on {model}")),
            EventKind::ChildFinished {
                child,
                status,
                reason,
                usage,
                tool_calls,
            } => {
                self.line(format!("  child {child} finished: {status} ({reason}; {} tokens, {tool_calls} tool calls)", usage.total_tokens()));
            }
            EventKind::ModelCall { usage, .. } => g.0.add(usage),
            EventKind::ToolCall { .. } => g.1 += 1,
            EventKind::GatePassed { gate, .. } => self.line(format!("  ✓ {gate}")),
            EventKind::GateFailed { gate, reason, .. } => self.line(format!(
                "  ✗ {gate}: {}",
                reason.lines().next().unwrap_or_default()
            )),
            EventKind::BudgetHit {
                budget,
                limit,
                used,
                request: None,
            } => self.line(format!("  ! budget {budget} spent ({used} of {limit})")),
            EventKind::BudgetHit {
                budget,
                limit,
                used,
                request: Some(n),
            } => self.line(format!(
                "  ! budget {budget}: a request of about {n} tokens cannot fit ({used} of {limit} used)"
            )),
            EventKind::Retry {
                class,
                attempt,
                delay_ms,
                ..
            } => self.line(format!("  ↻ {class}: retry {attempt} in {delay_ms} ms")),
            EventKind::Error { class, message } => self.line(format!("  ! {class}: {message}")),
            EventKind::Transition { to, reason, .. } => self.line(format!("→ {to} ({reason})")),
            EventKind::CandidateSelected { child, reason, .. } => {
                self.line(format!("  ★ {child}: {reason}"))
            }
            EventKind::OrchestratorChoice {
                choice,
                accepted,
                reason,
                ..
            } => self.line(format!(
                "  orchestrator chose {choice}: {}",
                if *accepted {
                    "accepted".to_string()
                } else {
                    format!("refused ({reason})")
                }
            )),
            EventKind::Reflection { path, bytes, .. } => {
                self.line(format!("  reflection written to {path} ({bytes} bytes)"))
            }
            EventKind::VerifierFinished { passed, .. } => self.line(format!(
                "verifier: {}",
                if *passed { "passed" } else { "failed" }
            )),
            _ => {}
        }
        if let Some(b) = &self.bar {
            b.set_message(format!(
                "{} tokens, {} LLM calls, {} tool calls, ${:.4}",
                g.0.total_tokens(),
                g.0.calls,
                g.1,
                g.0.cost_usd
            ));
        }
    }
}

fn summary(r: &RunRecord, ws: &Path) -> String {
    let m = &r.metrics;
    format!(
        "\n{}: {}\n  workspace {}\n  {} prompt + {} completion tokens, {} LLM calls, {} tool calls, {} {}, ${:.4}, {:.1} s\n  runtime's own share: {} prompt tokens, {} LLM calls",
        r.outcome.as_str().to_uppercase(),
        r.reason,
        ws.display(),
        m.total.input_tokens,
        m.total.output_tokens,
        m.total.calls,
        m.tool_calls,
        m.child_count,
        if m.child_count == 1 {
            "child"
        } else {
            "children"
        },
        m.total.cost_usd,
        m.wall_ms as f64 / 1000.0,
        m.parent.input_tokens,
        m.parent.calls
    )
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let harness = resolve_harness(&a.harness)?;
    let Some(model) = a.model.as_deref() else {
        anyhow::bail!(
            "no model: give --model (e.g. openai:gpt-4.1-mini, replay:cassette.jsonl) or set NLAH_MODEL"
        );
    };
    let model: ModelSpec = model.parse()?;
    // A missing cassette or key is the user's to fix: say so before a workspace exists.
    engine::backends::preflight(&model)?;
    let charter = load_charter(a.settings.charter.as_deref())?;
    let mut opts = RunOptions::new(harness, a.task.clone(), model, charter);
    opts.toggles = Toggles {
        with: a.with,
        without: a.without,
    };
    opts.seed = a.seed;
    opts.workspace = a.workspace;
    opts.record = a.record;
    opts.settings = a.settings;
    let progress = if a.json {
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let observer: engine::EventSink = Arc::new(move |e: &Event| {
            if let Ok(line) = serde_json::to_string(e) {
                let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(o, "{line}");
            }
        });
        opts.observer = Some(observer);
        None
    } else {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        let p = Arc::new(Progress {
            bar,
            usage: Mutex::new((Usage::default(), 0)),
        });
        let obs = p.clone();
        opts.observer = Some(Arc::new(move |e: &Event| obs.on(e)));
        Some(p)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        tokio::select! {
            r = engine::run(opts) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    if let Some(b) = progress.as_ref().and_then(|p| p.bar.as_ref()) {
        b.finish_and_clear();
    }
    let report = match result {
        None => {
            eprintln!(
                "interrupted: the workspace keeps everything recorded so far (run.json says `running`)"
            );
            return Ok(130);
        }
        Some(Err(EngineError::Harness(diags))) => {
            output::write_all(
                &mut std::io::stderr().lock(),
                &diags,
                false,
                output::stderr_color(),
            );
            eprintln!("error: the harness has errors; nothing was run");
            return Ok(exit::USAGE);
        }
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(r)) => r,
    };
    if a.json {
        let line = serde_json::json!({"event": "summary", "workspace": report.workspace, "record": report.record});
        println!("{line}");
    } else {
        println!("{}", summary(&report.record, &report.workspace));
    }
    Ok(match report.record.outcome {
        RunOutcome::Passed => exit::OK,
        RunOutcome::Error
            if matches!(
                report.record.error_class.as_deref(),
                Some("auth" | "config")
            ) =>
        {
            exit::USAGE
        }
        _ => exit::FAILED,
    })
}

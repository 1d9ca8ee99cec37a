//! The stage engine: interprets a composed harness on a task and records everything.
//!
//! `run` creates the workspace, walks the stages (children on backends, gates in code, declared
//! transitions within their bounds, budgets on a shared meter), runs the task's hidden verifier,
//! and writes RESPONSE.md and run.json. Every state transition is one commit.

pub mod backends;
pub mod brief;
pub mod candidates;
pub mod child;
pub mod episode;
pub mod flow;
pub mod gates;
pub mod response;
pub mod settings;
mod stage;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::agent::budget::{Limits, Meter};
use crate::agent::shared_budget::CellBudget;
use crate::charter::Charter;
use crate::diag::Diagnostic;
use crate::harness::model::BriefForm;
use crate::harness::{self, Composed, Harness, Toggles};
use crate::model::{ChatBackend, ModelSpec};
use crate::record::EventKind;
use crate::record::Usage;
use crate::record::{
    HarnessRef, Metrics, RunOutcome, RunRecord, SCHEMA, StageMetrics, TaskRef, VerifierRecord,
};
use crate::sandbox::{self, Confinement};
use crate::task::{self, Task};
use crate::workspace::history::now;
use crate::workspace::{Workspace, WorkspaceError};
use backends::Backends;
pub use backends::HttpBackends;
use flow::{Flow, Next};
pub use settings::RunSettings;

/// Receives every event as it is recorded (the CLI renders progress from them).
pub type EventSink = Arc<dyn Fn(&crate::record::Event) + Send + Sync>;

/// Everything a run is given: what it runs (harness, toggles, task, model, seed), where, the
/// [`RunSettings`] it runs with, the engine's own limits, and the services the embedding program
/// injects (observer, backends, a built harness).
#[derive(Clone)]
pub struct RunOptions {
    pub harness: PathBuf,
    pub toggles: Toggles,
    pub task: PathBuf,
    pub model: ModelSpec,
    pub seed: u64,
    /// The workspace folder; default `<workspaces_dir>/<run-id>`.
    pub workspace: Option<PathBuf>,
    pub workspaces_dir: PathBuf,
    pub record: Option<PathBuf>,
    /// The charter `settings.charter` names, loaded by the caller.
    pub charter: Charter,
    /// The `nlah run` flags a matrix's cells share: tool choice, steps, tokens, retries, ….
    pub settings: RunSettings,
    pub shell_timeout: Duration,
    pub output_cap: usize,
    /// No child runs longer than this (nor past the wall-time budget).
    pub child_timeout: Duration,
    pub observer: Option<EventSink>,
    /// A chat backend of the embedding program's own, used instead of the model spec's HTTP
    /// backend (the spec still names the model in requests and records).
    pub chat_backend: Option<Arc<dyn ChatBackend>>,
    /// The harness already built from `harness` with `toggles`, shared by many runs (the cells
    /// of an ablation) so that each does not parse it again. Built here when `None`.
    pub built: Option<Built>,
    /// HTTP model backends shared with other runs of this process (the cells of an ablation,
    /// which then reuse one client and its open connections per model). Must be used within
    /// one tokio runtime: connections belong to the runtime that opened them.
    pub http: Option<Arc<HttpBackends>>,
    /// A cost budget shared with other runs (an ablation's `--max-cost`): when it refuses a
    /// call, the run ends with the `budget` outcome.
    pub shared_budget: Option<CellBudget>,
}

/// A harness composed, parsed and found free of errors: what a run interprets.
#[derive(Clone)]
pub struct Built {
    pub composed: Arc<Composed>,
    pub harness: Arc<Harness>,
}

impl Built {
    /// Loads, composes and parses the harness at `root` with `toggles`; its errors end here.
    pub fn new(root: &Path, toggles: &Toggles) -> Result<Built, EngineError> {
        let (composed, h, diags) = harness::build(root, toggles)?;
        let errors: Vec<Diagnostic> = diags
            .into_sorted()
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect();
        if !errors.is_empty() {
            return Err(EngineError::Harness(errors));
        }
        let harness = h.ok_or_else(|| EngineError::NotAHarness(root.to_path_buf()))?;
        if harness.contract.budgets.child_depth == Some(0) {
            return Err(EngineError::Config(
                "the contract's child depth is 0, which allows no child to run a stage".into(),
            ));
        }
        Ok(Built {
            composed: Arc::new(composed),
            harness: Arc::new(harness),
        })
    }
}

impl RunOptions {
    pub fn new(harness: PathBuf, task: PathBuf, model: ModelSpec, charter: Charter) -> RunOptions {
        RunOptions {
            harness,
            toggles: Toggles::default(),
            task,
            model,
            seed: 0,
            workspace: None,
            workspaces_dir: PathBuf::from("workspaces"),
            record: None,
            charter,
            settings: RunSettings::default(),
            shell_timeout: Duration::from_secs(120),
            output_cap: 16 * 1024,
            child_timeout: Duration::from_secs(3600),
            observer: None,
            chat_backend: None,
            built: None,
            http: None,
            shared_budget: None,
        }
    }
}

/// What stops a run before its workspace exists: bad configuration, not a result.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the harness has errors:\n{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Harness(Vec<Diagnostic>),
    #[error("{0} is a plain Agent Skill, not a harness: it has no `## Stages` section")]
    NotAHarness(PathBuf),
    #[error(transparent)]
    HarnessIo(#[from] harness::HarnessError),
    #[error(transparent)]
    Task(#[from] task::TaskError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("{0}")]
    Config(String),
}

/// A finished run: where it is and what it recorded.
#[derive(Debug)]
pub struct RunReport {
    pub workspace: PathBuf,
    pub record: RunRecord,
}

/// The state of one run, shared by its children.
pub struct Run {
    pub opts: RunOptions,
    pub ws: Workspace,
    pub harness: Arc<Harness>,
    pub harness_root: PathBuf,
    pub composed: Arc<Composed>,
    pub charter: String,
    pub task: Task,
    pub meter: Meter,
    pub backends: Backends,
    pub sandbox: String,
    metrics: Mutex<Metrics>,
    events_failed: Mutex<Option<String>>,
    /// The class of a configuration failure a child met (`context-overflow`), if any.
    config_error: Mutex<Option<String>>,
    /// The context window requests were checked against (a setting, or the server's word).
    window: Mutex<Option<u64>>,
    /// The task's environment while its episode runs (`episode.rs`).
    episode: Mutex<Option<Arc<crate::env::Episode>>>,
    /// What the interface layers counted, over every child.
    interface: Mutex<crate::record::InterfaceMetrics>,
}

impl Run {
    /// Records an event (and shows it to the observer). A failed write is remembered and ends
    /// the run at the next commit, which would fail the same way.
    pub fn emit(&self, kind: EventKind) {
        match self.ws.event(kind) {
            Ok(e) => {
                if let Some(o) = &self.opts.observer {
                    o(&e);
                }
            }
            Err(e) => {
                let mut g = self.events_failed.lock().unwrap_or_else(|p| p.into_inner());
                g.get_or_insert_with(|| e.to_string());
            }
        }
    }

    /// Adds a child's interface-layer counts to the run's.
    pub fn add_interface(&self, m: &crate::record::InterfaceMetrics) {
        self.interface
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(m);
    }

    /// The running environment of the task, if it has one.
    pub fn episode(&self) -> Option<Arc<crate::env::Episode>> {
        self.episode
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn commit(&self, message: &str) -> Result<(), WorkspaceError> {
        self.ws.commit(message).map(|_| ())
    }

    /// How tool and gate commands of a workspace (or candidate copy) are confined: they read the
    /// workspace and write only where children work ([`child_writable`]), so that the record
    /// (`history/`, the git directory, `run.json`) and what the runtime checks with (`scripts/`,
    /// `TASK.md`, `SKILL.md`) stay out of their reach. A child's own tools narrow this further
    /// to what the child may see.
    pub fn confinement(&self, root: &Path) -> Confinement {
        Confinement {
            writable: child_writable(root, &self.harness),
            readable: vec![root.to_path_buf()],
            network: self.harness.contract.permissions.network,
            limits: self.harness.contract.permissions.limits,
        }
    }

    pub fn add_usage(&self, parent: bool, usage: &Usage, tool_calls: u64) {
        let mut m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        m.total.add(usage);
        m.tool_calls += tool_calls;
        m.child_count += 1;
        if parent {
            m.parent.add(usage);
            m.parent_tool_calls += tool_calls;
        } else {
            m.children.add(usage);
        }
    }

    /// Counts what the loop did at the model interface (nudges, repairs).
    pub fn add_loop_repairs(&self, empty_answers: u64, repairs: u64) {
        let mut m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        m.empty_answers += empty_answers;
        m.repairs += repairs;
    }

    /// Remembers a configuration failure (the first one) for run.json's `error_class`.
    pub fn config_failure(&self, class: &str) {
        let mut g = self.config_error.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert_with(|| class.to_string());
    }

    /// Notes the context window a child's requests were checked against, for run.json.
    pub fn checked_window(&self, window: u64) {
        *self.window.lock().unwrap_or_else(|p| p.into_inner()) = Some(window);
    }

    fn stage_metrics(&self, stage: &str, passed: bool, usage: &Usage, tool_calls: u64) {
        let mut m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        let i = match m.stages.iter().position(|s| s.stage == stage) {
            Some(i) => i,
            None => {
                m.stages.push(StageMetrics {
                    stage: stage.to_string(),
                    ..StageMetrics::default()
                });
                m.stages.len() - 1
            }
        };
        let s = &mut m.stages[i];
        s.attempts += 1;
        s.passed = passed;
        s.usage.add(usage);
        s.tool_calls += tool_calls;
    }
}

fn run_id(harness: &str, task: &str) -> String {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let salt: u16 = rand::random();
    format!("{harness}-{task}-{stamp}-{salt:04x}")
}

fn budgets(h: &Harness, task: &Task) -> Limits {
    let b = &h.contract.budgets;
    let t = &task.config.budgets;
    Limits {
        tokens: t.tokens.or(b.tokens),
        tool_calls: t.tool_calls.or(b.tool_calls),
        llm_calls: t.llm_calls.or(b.llm_calls),
        wall_time: t.wall_time().or(b.wall_time),
        cost_usd: t.cost_usd.or(b.cost_usd),
    }
}

/// Copies the harness's `scripts/` into the workspace, where gates and children run them.
fn copy_scripts(from: &Path, to: &Path) -> std::io::Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    // Symbolic links are followed: the workspace gets the scripts themselves.
    for entry in walkdir::WalkDir::new(from)
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok)
    {
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// Prepares a run: harness, task and workspace. Errors here are configuration errors.
pub fn prepare(opts: RunOptions) -> Result<Run, EngineError> {
    let _p = crate::profile::phase(crate::profile::Phase::Workspace);
    let Built { composed, harness } = match &opts.built {
        Some(b) => b.clone(),
        None => Built::new(&opts.harness, &opts.toggles)?,
    };
    let task = task::load(&opts.task)?;
    let limits = budgets(&harness, &task);
    let mut opts = opts;
    if let Some(t) = task.config.agent.timeout() {
        opts.child_timeout = opts.child_timeout.min(t);
    }
    let id = run_id(&harness.meta.name, &task.id);
    let root = opts
        .workspace
        .clone()
        .unwrap_or_else(|| opts.workspaces_dir.join(&id));
    let ws = Workspace::create(&root)?;
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| WorkspaceError::Io { path: p, source }
    };
    ws.write("TASK.md", &task.instruction)?;
    ws.write("SKILL.md", composed.text.as_str())?;
    let charter = opts.charter.render();
    // The compact brief leaves the charter out and points children to this file instead.
    if harness.contract.brief == BriefForm::Compact {
        ws.write(brief::CHARTER_FILE, brief::charter_file(&charter))?;
    }
    task::copy_files(&task, &ws.path("repo"))?;
    copy_scripts(&opts.harness.join("scripts"), &ws.path("scripts"))
        .map_err(io(&ws.path("scripts")))?;
    for p in &harness.state.persist {
        let path = ws.path(p);
        if p.ends_with('/') {
            std::fs::create_dir_all(&path).map_err(io(&path))?;
        } else if !path.exists() {
            ws.write(
                p,
                format!("<!-- {p}: state that persists across stages (see SKILL.md, State) -->\n"),
            )?;
        }
    }
    let enforcement = sandbox::probe();
    let harness_root = opts.harness.clone();
    Ok(Run {
        charter,
        backends: Backends::new(opts.record.clone(), opts.http.clone()),
        meter: Meter::new(limits).sharing(opts.shared_budget.clone()),
        sandbox: enforcement.summary(),
        metrics: Mutex::new(Metrics::default()),
        config_error: Mutex::new(None),
        window: Mutex::new(None),
        events_failed: Mutex::new(None),
        episode: Mutex::new(None),
        interface: Mutex::new(crate::record::InterfaceMetrics::default()),
        opts,
        ws,
        harness,
        harness_root,
        composed,
        task,
    })
}

/// Runs a harness on a task to the end.
pub async fn run(opts: RunOptions) -> Result<RunReport, EngineError> {
    let _p = crate::profile::phase(crate::profile::Phase::Run);
    let run = prepare(opts)?;
    let started = Instant::now();
    let started_at = now();
    let task_hash = run.task.content_hash()?;
    let mut record = RunRecord {
        schema: SCHEMA.to_string(),
        run_id: run
            .ws
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        harness: HarnessRef {
            name: run.harness.meta.name.clone(),
            version: run.composed.hash.clone(),
            modules: run.composed.modules.clone(),
        },
        task: TaskRef {
            id: run.task.id.clone(),
            hash: task_hash,
            path: run.task.root.display().to_string(),
        },
        model: run.opts.model.to_string(),
        seed: run.opts.seed,
        started: started_at,
        finished: None,
        outcome: RunOutcome::Running,
        reason: "the run is in progress".into(),
        verifier: None,
        error_class: None,
        metrics: Metrics::default(),
        sandbox: run.sandbox.clone(),
        requests: crate::record::RequestBounds {
            max_tokens: run.opts.settings.max_tokens(),
            context_window: run.opts.settings.context_window,
        },
        episode: None,
        interface: None,
    };
    write_record(&run, &record)?;
    run.emit(EventKind::RunStarted {
        run_id: record.run_id.clone(),
        harness: record.harness.name.clone(),
        version: run.composed.version().to_string(),
        modules: record.harness.modules.clone(),
        model: record.model.clone(),
        seed: record.seed,
        task: record.task.id.clone(),
        sandbox: run.sandbox.clone(),
    });
    run.commit(&format!(
        "run started: {} {} on task {} with {} (seed {})",
        record.harness.name,
        run.composed.version(),
        record.task.id,
        record.model,
        record.seed
    ))?;

    // A workspace the runtime cannot write ends the run here, with a final record all the same;
    // one changed behind its back (a planted link, a moved branch) is the child's failure.
    let mut tampered = None;
    let walked = match episode::start(&run).await {
        Ok(()) => stages(&run).await,
        Err(e) => Ok((false, e, Some(episode::ERROR_CLASS.to_string()))),
    };
    let (harness_ok, mut reason, mut infra) = match walked {
        Ok(walked) => walked,
        Err(e) if e.is_tampering() => {
            run.emit(EventKind::Error {
                class: "tampering".into(),
                message: e.to_string(),
            });
            tampered = Some(e.to_string());
            (false, format!("the workspace was tampered with: {e}"), None)
        }
        Err(e) => {
            run.emit(EventKind::Error {
                class: "workspace".into(),
                message: e.to_string(),
            });
            let why = format!("the workspace could not be written: {e}");
            (false, why.clone(), Some(why))
        }
    };
    if tampered.is_none() {
        outputs_and_completion(&run, &mut reason).await;
    }
    record.episode = episode::close(&run).await;
    if let Some(f) = record.episode.as_ref().and_then(|e| e.fault.clone())
        && infra.as_deref().is_none_or(|c| c == episode::ERROR_CLASS)
    {
        reason = format!("stopped by an environment fault: {f}");
        infra = Some(episode::ERROR_CLASS.to_string());
    }

    // Stopped from outside (the matrix's budget), not by the harness: no verdict.
    let cut = infra.is_none() && tampered.is_none() && run.meter.stopped_by_shared();
    if cut {
        reason = format!("stopped because the matrix's --max-cost was spent ({reason})");
    }
    let verdict = if infra.is_some() || tampered.is_some() || cut {
        None
    } else if let Some(min) = run.task.config.verifier.reward_at_least {
        let v = episode::judge(min, record.episode.as_ref());
        run.emit(EventKind::VerifierFinished {
            passed: v.passed,
            reward: v.reward,
            exit_code: None,
            timed_out: false,
            duration_ms: 0,
        });
        run.ws.write("history/verifier-output.txt", &v.output)?;
        Some(v)
    } else {
        // The hidden tests are the task's code, but they run the agent's: they read the
        // workspace, write the task's files and their own temporary folder (added by
        // `task::verify`), never the record, and reach no network.
        let confinement = Confinement {
            writable: vec![run.ws.path("repo"), run.ws.path(sandbox::Scratch::DIR)],
            readable: vec![run.ws.root.clone()],
            network: false,
            limits: sandbox::Limits::default(),
        };
        let repo = run.ws.path("repo");
        let home = sandbox::Scratch::prepare(&run.ws.root)
            .map(|s| s.home)
            .unwrap_or_else(|_| run.ws.path(".tmp"));
        match task::verify(
            &run.task,
            &repo,
            task::Launcher::Confined {
                confinement: &confinement,
                home: &home,
            },
        )
        .await
        {
            Ok(v) => {
                run.emit(EventKind::VerifierFinished {
                    passed: v.passed,
                    reward: v.reward,
                    exit_code: v.exit_code,
                    timed_out: v.timed_out,
                    duration_ms: v.duration.as_millis() as u64,
                });
                run.ws.write("history/verifier-output.txt", &v.output)?;
                Some(v)
            }
            Err(task::TaskError::NoVerifier { .. }) => None,
            Err(e) => {
                run.emit(EventKind::Error {
                    class: "verifier".into(),
                    message: e.to_string(),
                });
                None
            }
        }
    };
    if let Some(w) = *run.window.lock().unwrap_or_else(|p| p.into_inner()) {
        record.requests.context_window = Some(w);
    }
    record.error_class = infra
        .clone()
        .or(tampered.as_ref().map(|_| "tampering".to_string()))
        .or_else(|| {
            run.config_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        });
    record.outcome = match (&verdict, infra.is_some()) {
        (_, true) => RunOutcome::Error,
        _ if tampered.is_some() => RunOutcome::Failed,
        _ if cut => RunOutcome::Budget,
        (Some(v), _) if v.passed => RunOutcome::Passed,
        (Some(_), _) => RunOutcome::Failed,
        (None, _) => RunOutcome::Unverified,
    };
    record.verifier = verdict.as_ref().map(|v| VerifierRecord {
        passed: v.passed,
        reward: v.reward,
        exit_code: v.exit_code,
        timed_out: v.timed_out,
        duration_ms: v.duration.as_millis() as u64,
    });
    record.reason = format!(
        "{}{}",
        reason,
        match (&verdict, harness_ok) {
            (Some(v), _) => format!(
                "; the hidden verifier {}",
                if v.passed {
                    "passed"
                } else if v.timed_out {
                    "timed out"
                } else {
                    "failed"
                }
            ),
            (None, _) if infra.is_some() || cut => String::new(),
            (None, _) => "; the task has no verifier".into(),
        }
    );
    record.metrics = run
        .metrics
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    record.metrics.wall_ms = started.elapsed().as_millis() as u64;
    if !run.harness.layers.is_empty() || record.episode.is_some() {
        record.interface = Some(
            run.interface
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        );
    }
    record.finished = Some(now());
    run.emit(EventKind::RunFinished {
        outcome: record.outcome,
        usage: record.metrics.total,
    });
    // The last writes wait for the disk (fsync): off the async workers, which other runs share.
    tokio::task::spawn_blocking(move || finish(&run, record))
        .await
        .map_err(|e| EngineError::Config(format!("finishing the run failed: {e}")))?
}

/// Where commands may write in a workspace (or candidate copy) `root`: the task's files (`repo/`),
/// `artifacts/`, the children's folders, the scratch space, and the top folder of every declared
/// output and persisted state path (made here, so that there is something to write into). With
/// `write: none`, only the scratch space.
pub fn child_writable(root: &Path, harness: &Harness) -> Vec<PathBuf> {
    let mut dirs: Vec<String> = vec![sandbox::Scratch::DIR.to_string()];
    if harness.contract.permissions.write == harness::model::WriteScope::Workspace {
        dirs.extend(["repo", "artifacts", "children"].map(String::from));
        let declared = harness
            .contract
            .outputs
            .iter()
            .map(|o| o.path.as_str())
            .chain(harness.state.persist.iter().map(String::as_str));
        for p in declared {
            let p = p.trim_start_matches("./");
            match p.split_once('/') {
                Some((top, _)) if !RUNTIME_OWNED.contains(&top) && !top.is_empty() => {
                    let _ = std::fs::create_dir_all(root.join(top));
                    dirs.push(top.to_string());
                }
                // A file at the top: writable if it is there (a rule cannot cover what does not
                // exist, and the top folder itself stays closed).
                None if !RUNTIME_OWNED.contains(&p) && !p.is_empty() => dirs.push(p.to_string()),
                _ => {}
            }
        }
    }
    dirs.sort();
    dirs.dedup();
    dirs.into_iter().map(|d| root.join(d)).collect()
}

/// What the runtime writes and checks with at a workspace's top: never writable by commands.
pub const RUNTIME_OWNED: &[&str] = &[
    ".git",
    "history",
    "run.json",
    "RESPONSE.md",
    "TASK.md",
    "SKILL.md",
    brief::CHARTER_FILE,
    "scripts",
    ".candidates",
];

/// Writes a finished run's RESPONSE.md and run.json, commits and syncs the workspace.
fn finish(run: &Run, record: RunRecord) -> Result<RunReport, EngineError> {
    run.ws.write("RESPONSE.md", response_md(run, &record))?;
    write_record(run, &record)?;
    if let Some(e) = run
        .events_failed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        return Err(EngineError::Config(format!(
            "the history could not be written: {e}"
        )));
    }
    run.commit(&format!(
        "run finished: {} ({})",
        record.outcome.as_str(),
        record.reason
    ))?;
    run.ws.sync()?;
    Ok(RunReport {
        workspace: run.ws.root.clone(),
        record,
    })
}

fn write_record(run: &Run, record: &RunRecord) -> Result<(), WorkspaceError> {
    let _p = crate::profile::phase(crate::profile::Phase::Record);
    let json = serde_json::to_string_pretty(record).map_err(|e| WorkspaceError::Io {
        path: run.ws.path("run.json"),
        source: std::io::Error::other(e),
    })?;
    // A finished run's record must survive losing the machine: resumed matrices trust it.
    if record.finished.is_some() {
        run.ws.write_durable("run.json", json + "\n")
    } else {
        run.ws.write("run.json", json + "\n")
    }
}

/// Commits the lines of history not committed yet as one commit: the first is its summary,
/// the others its body.
fn commit_pending(run: &Run, lines: &mut Vec<String>) -> Result<(), WorkspaceError> {
    let Some((summary, body)) = lines.split_first() else {
        return Ok(());
    };
    let message = if body.is_empty() {
        summary.clone()
    } else {
        format!("{summary}\n\n{}", body.join("\n"))
    };
    lines.clear();
    run.commit(&message)
}

/// Walks the stages. Returns whether the harness's flow succeeded, why it ended, and whether
/// the infrastructure failed (a provider down, retries spent).
async fn stages(run: &Run) -> Result<(bool, String, Option<String>), WorkspaceError> {
    let stages = &run.harness.stages;
    let mut flow = Flow::default();
    let mut attempts = vec![0u32; stages.len()];
    let mut idx = 0;
    let mut turns = 0u32;
    let max_turns = run
        .harness
        .flow
        .max_turns
        .unwrap_or(2 * stages.len() as u32);
    let mut story = Vec::new();
    // A fuse beyond every declared bound: no run walks more stages than this.
    let fuse = 64 * stages.len().max(1);
    for _ in 0..fuse {
        attempts[idx] += 1;
        let mut outcome = stage::attempt(run, idx, attempts[idx]).await?;
        run.stage_metrics(
            &stages[idx].name,
            outcome.passed,
            &outcome.usage,
            outcome.tool_calls,
        );
        story.push(format!(
            "- {} attempt {}: {} ({})",
            stages[idx].name,
            attempts[idx],
            if outcome.passed { "passed" } else { "failed" },
            outcome.reason
        ));
        let class = outcome
            .infra
            .or_else(|| episode::fault(run).map(|_| episode::ERROR_CLASS.to_string()));
        // The attempt's line is committed with the transition it leads to; a run that ends
        // here, or an orchestrator that waits for a model first, records it on its own.
        let mut lines = std::mem::take(&mut outcome.commit_lines);
        if let Some(class) = class {
            commit_pending(run, &mut lines)?;
            return Ok((
                false,
                format!(
                    "stopped by an infrastructure failure in stage {}: {}",
                    stages[idx].name, outcome.reason
                ),
                Some(class),
            ));
        }
        if let Some(b) = &outcome.budget {
            commit_pending(run, &mut lines)?;
            return Ok((
                false,
                format!("stopped in stage {}: {b}", stages[idx].name),
                None,
            ));
        }
        let (mut next, mut why) = flow.after(stages, idx, outcome.passed);
        if let Some(orch) = &run.harness.flow.orchestrator {
            if turns < max_turns {
                turns += 1;
                commit_pending(run, &mut lines)?;
                if let Some((n, w)) =
                    stage::orchestrate(run, orch, idx, turns, &story.join("\n")).await?
                {
                    (next, why) = (n, w);
                }
            } else {
                why = format!("{why} (the orchestrator's {max_turns} turns are spent)");
            }
        }
        let to = match &next {
            Next::Stage(i) => stages[*i].name.clone(),
            Next::Finish => "finish".into(),
            Next::Fail(_) => "stop".into(),
        };
        run.emit(EventKind::Transition {
            from: stages[idx].name.clone(),
            to: to.clone(),
            reason: why.clone(),
        });
        lines.push(format!("transition {} -> {to}: {why}", stages[idx].name));
        commit_pending(run, &mut lines)?;
        match next {
            Next::Stage(i) => idx = i,
            Next::Finish => {
                return Ok((
                    true,
                    format!("the harness finished after stage {}", stages[idx].name),
                    None,
                ));
            }
            Next::Fail(w) => return Ok((false, w, None)),
        }
    }
    Ok((
        false,
        format!("the run walked {fuse} stages, the runtime's safety limit"),
        None,
    ))
}

/// The contract's outputs must exist; completion gates are checked.
async fn outputs_and_completion(run: &Run, reason: &mut String) {
    let mut missing = Vec::new();
    for out in &run.harness.contract.outputs {
        if out.path == "RESPONSE.md" {
            continue;
        }
        let c = gates::non_empty(&run.ws.root, &out.path);
        if !c.passed {
            missing.push(out.path.clone());
            run.emit(EventKind::GateFailed {
                stage: "contract".into(),
                child: String::new(),
                gate: format!("output `{}`", out.path),
                reason: c.detail,
            });
        }
    }
    if !missing.is_empty() {
        reason.push_str(&format!(
            "; contract outputs missing: {}",
            missing.join(", ")
        ));
    }
    let confinement = run.confinement(&run.ws.root);
    let env = gates::GateEnv {
        root: &run.ws.root,
        harness_root: &run.harness_root,
        confinement: &confinement,
        output_cap: run.opts.output_cap,
    };
    for g in &run.harness.contract.completion_gates {
        let c = gates::check(g, &env).await;
        let kind = if c.passed {
            EventKind::GatePassed {
                stage: "completion".into(),
                child: String::new(),
                gate: g.text.clone(),
            }
        } else {
            reason.push_str(&format!("; completion gate failed: {}", g.text));
            EventKind::GateFailed {
                stage: "completion".into(),
                child: String::new(),
                gate: g.text.clone(),
                reason: c.detail,
            }
        };
        run.emit(kind);
    }
}

/// The run-level RESPONSE.md: status first, then pointers.
fn response_md(run: &Run, r: &RunRecord) -> String {
    let m = &r.metrics;
    let mut s = format!("status: {}\n", r.outcome.as_str());
    match &r.verifier {
        Some(v) => s.push_str(&format!(
            "verifier: {}{}\n",
            if v.passed { "passed" } else { "failed" },
            v.reward
                .map(|x| format!(" (reward {x})"))
                .unwrap_or_default()
        )),
        None => s.push_str("verifier: none\n"),
    }
    s.push_str(&format!(
        "\n# Run {}\n\nHarness `{}` version `{}` (modules: {}), model `{}`, seed {}, task `{}`.\n\n{}.\n\n## Stages\n\n| stage | attempts | passed | tokens | tool calls |\n| --- | --- | --- | --- | --- |\n",
        r.run_id,
        r.harness.name,
        &r.harness.version[..12.min(r.harness.version.len())],
        if r.harness.modules.is_empty() { "none".into() } else { r.harness.modules.join(", ") },
        r.model,
        r.seed,
        r.task.id,
        r.reason
    ));
    for st in &m.stages {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            st.stage,
            st.attempts,
            if st.passed { "yes" } else { "no" },
            st.usage.total_tokens(),
            st.tool_calls
        ));
    }
    s.push_str("\n## Artifacts\n\n");
    let mut arts: Vec<String> = walkdir::WalkDir::new(run.ws.path("artifacts"))
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            e.path()
                .strip_prefix(&run.ws.root)
                .ok()
                .map(|p| p.display().to_string())
        })
        .collect();
    arts.truncate(200);
    if arts.is_empty() {
        s.push_str("(none)\n");
    }
    for a in arts {
        s.push_str(&format!("- `{a}`\n"));
    }
    s.push_str(&format!(
        "\n## Usage\n\n- prompt tokens: {} ({} cached), completion tokens: {}\n- LLM calls: {}, tool calls: {}, children: {}\n- runtime's own share: {} prompt tokens, {} LLM calls\n- cost: ${:.4}, wall time: {:.1} s\n\nHistory: `history/events.jsonl`; the story: `git log --reverse --oneline`.\n",
        m.total.input_tokens, m.total.cached_input_tokens, m.total.output_tokens, m.total.calls, m.tool_calls, m.child_count, m.parent.input_tokens, m.parent.calls, m.total.cost_usd, m.wall_ms as f64 / 1000.0
    ));
    s
}

//! `nlah evolve`: Self-Harness (seed `004_*`) with the guards its critics asked for.
//!
//! The tasks are split three ways ([`split`]): the proposer sees only the search split's
//! failures; acceptance also needs the validation split; the test split runs once, at the end,
//! on the starting and the accepted harness, and [`eval::prepare`] refuses it before then. Each
//! iteration evaluates the current harness, mines its search failures ([`propose::mine`], the
//! clusters of `nlah diagnose`), asks the proposer for minimal edits on declared surfaces,
//! rejects those that leave their surface, break `nlah check` or name or copy tasks
//! ([`edit`], [`leak`]), screens the rest on one seed of the search split (a screen may only
//! reject), re-runs both splits with every seed and accepts by a paired rule ([`compare`]).
//! Every candidate is a commit ([`lineage`]); every evaluation a matrix of cells ([`eval`]).
//!
//! The record folder:
//!
//! ```text
//! OUT/evolve.json           the state: split, lineage, iterations, candidates, costs (atomic)
//! OUT/harnesses/COMMIT/     each evaluated version's files, as its cells ran them
//! OUT/evals/COMMIT/         search + validation matrix of a version (an ablation OUT)
//! OUT/evals/COMMIT-test/    the test split, at the end only
//! OUT/report.md             the human report
//! ```

pub mod compare;
pub mod edit;
pub mod eval;
pub mod leak;
pub mod lineage;
pub mod propose;
pub mod report;
pub mod split;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use compare::{Comparison, PredictionCheck, TaskScores};
use edit::{Edit, Files};
use eval::Context;
use lineage::Lineage;
use propose::Weakness;
use split::{Assignment, Split};

use crate::ablation::error::AblationError;
use crate::model::ModelSpec;
use crate::record::Usage;

pub const STATE_FILE: &str = "evolve.json";
pub const REPORT_FILE: &str = "report.md";
pub const SCHEMA: &str = "nlah.evolve/1";

#[derive(Debug, thiserror::Error)]
pub enum EvolveError {
    #[error("{0}")]
    Split(String),
    #[error("{0}")]
    Usage(String),
    #[error("git: {0}")]
    Git(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadState { path: PathBuf, message: String },
    #[error(
        "the test split may only run at the end of the search, on the starting and the accepted harness"
    )]
    TestSplitTouched,
    #[error(transparent)]
    Ablation(#[from] AblationError),
    #[error(transparent)]
    Task(#[from] crate::task::TaskError),
    #[error(transparent)]
    Diagnose(#[from] crate::diagnose::DiagnoseError),
}

impl EvolveError {
    /// Whether the user must fix the command or the input (exit 2) rather than the run failing.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            EvolveError::Split(_) | EvolveError::Usage(_) | EvolveError::Git(_)
        ) || matches!(self, EvolveError::Ablation(e) if e.is_usage())
    }
}

/// What the command line asks for.
pub struct Options {
    pub harness: PathBuf,
    pub tasks: PathBuf,
    pub model: String,
    /// The proposer's spec (default: the model's).
    pub proposer: String,
    pub iterations: usize,
    pub edits: usize,
    pub seeds: u64,
    pub split_seed: u64,
    pub out: PathBuf,
    /// The evolution's name: its branch is `nlah/evolve/NAME`.
    pub name: String,
}

/// One line of progress for the command line.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub event: &'static str,
    pub message: String,
}

/// Where a candidate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pending,
    /// Refused before any cell ran: outside its surface, broke `nlah check`, named or copied a
    /// task.
    Rejected,
    /// The one-seed screen on the search split saw it clearly worse.
    ScreenRejected,
    /// The paired rule accepted it and it was the iteration's best.
    Accepted,
    /// Evaluated in full and not accepted (or another candidate of its iteration did better).
    NotAccepted,
    /// Its cells ended in errors: no verdict.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Rejected => "rejected before running",
            Status::ScreenRejected => "rejected by the screen",
            Status::Accepted => "accepted",
            Status::NotAccepted => "not accepted",
            Status::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    /// `ITERATION-K`.
    pub label: String,
    pub edit: Edit,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Seed-0 search passes: (parent, candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<(u32, u32)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Comparison>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Comparison>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prediction: Vec<(Split, PredictionCheck)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProposerCall {
    /// `answered`, or what went wrong: `model error`, `malformed`, `no edit`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub usage: Usage,
    /// The answer as given (clipped), for the record.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub answer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Iteration {
    pub n: usize,
    /// The harness the iteration started from.
    pub parent: String,
    pub weaknesses: Vec<Weakness>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposer: Option<ProposerCall>,
    pub candidates: Vec<Candidate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
    pub done: bool,
    /// What the iteration spent: the proposer, and the evaluations it ran.
    pub cost_proposer: f64,
    pub cost_evaluation: f64,
}

/// The evaluation of one version on search + validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// Relative to OUT.
    pub dir: String,
    /// The iteration that ran it (0: before the first).
    pub owner: usize,
    pub cost: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Final {
    pub start: TaskScores,
    pub accepted: TaskScores,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    pub cost: f64,
    /// When the test split's first cell was scheduled: after every search decision.
    pub started: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Search,
    Final,
    Done,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub schema: String,
    pub name: String,
    pub harness: PathBuf,
    pub tasks: PathBuf,
    pub model: String,
    pub proposer: String,
    pub seeds: u64,
    pub edits: usize,
    pub iterations: usize,
    pub repo: PathBuf,
    /// The harness folder relative to the repository (what `nlah diff A B -- PATH` takes).
    pub harness_rel: String,
    pub branch: String,
    pub split: Assignment,
    pub start: String,
    pub current: String,
    pub evals: BTreeMap<String, Evaluation>,
    pub rounds: Vec<Iteration>,
    pub phase: Phase,
    /// Why the search stopped before its iterations were used, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_: Option<Final>,
    pub max_cost: Option<f64>,
    pub started: String,
}

impl State {
    pub fn spent(&self) -> f64 {
        self.evals.values().map(|e| e.cost).sum::<f64>()
            + self.rounds.iter().map(|r| r.cost_proposer).sum::<f64>()
            + self.final_.as_ref().map_or(0.0, |f| f.cost)
    }

    fn save(&self, out: &Path) -> Result<(), EvolveError> {
        let p = out.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| EvolveError::BadState {
            path: p.clone(),
            message: e.to_string(),
        })?;
        crate::atomic::write_durable(&p, &json)
            .map_err(|source| EvolveError::Io { path: p, source })
    }

    pub fn read(out: &Path) -> Result<Option<State>, EvolveError> {
        let p = out.join(STATE_FILE);
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(EvolveError::Io { path: p, source }),
        };
        let s: State = serde_json::from_slice(&bytes).map_err(|e| EvolveError::BadState {
            path: p.clone(),
            message: e.to_string(),
        })?;
        if s.schema != SCHEMA {
            return Err(EvolveError::BadState {
                path: p,
                message: format!("schema `{}`, but this nlah reads `{SCHEMA}`", s.schema),
            });
        }
        Ok(Some(s))
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The evolution in one place: options, context, lineage, task texts.
struct Evolution<'a> {
    out: PathBuf,
    ctx: &'a Context,
    lineage: Lineage,
    tasks: Vec<leak::TaskText>,
    proposer: ModelSpec,
    say: &'a (dyn Fn(Progress) + Sync),
}

/// Runs (or continues) the evolution recorded in `opts.out`.
pub async fn run(
    opts: &Options,
    ctx: &Context,
    max_cost: Option<f64>,
    say: &(dyn Fn(Progress) + Sync),
) -> Result<State, EvolveError> {
    std::fs::create_dir_all(&opts.out).map_err(|source| EvolveError::Io {
        path: opts.out.clone(),
        source,
    })?;
    let out = opts.out.canonicalize().map_err(|source| EvolveError::Io {
        path: opts.out.clone(),
        source,
    })?;
    let harness = opts
        .harness
        .canonicalize()
        .map_err(|source| EvolveError::Io {
            path: opts.harness.clone(),
            source,
        })?;
    let tasks = crate::task::load_set(&ctx.tasks)?;
    let proposer: ModelSpec = opts
        .proposer
        .parse()
        .map_err(|e: crate::model::spec::SpecError| EvolveError::Usage(e.to_string()))?;
    let lineage = Lineage::open(&harness, &opts.name)?;
    let mut state = match State::read(&out)? {
        Some(s) => {
            if s.harness != harness || s.model != opts.model || s.seeds != opts.seeds {
                return Err(EvolveError::Usage(format!(
                    "{} holds the evolution of {} with {} and {} seed(s); give another --out, or the same harness, model and seeds to continue it",
                    out.display(),
                    s.harness.display(),
                    s.model,
                    s.seeds
                )));
            }
            let mut s = s;
            // A rerun may raise the bounds.
            s.iterations = opts.iterations;
            s.max_cost = max_cost;
            if s.phase == Phase::Search {
                s.stop = None;
            }
            say(Progress {
                event: "resumed",
                message: format!(
                    "continuing the evolution in {} ({} iteration(s) recorded, ${:.4} spent)",
                    out.display(),
                    s.rounds.len(),
                    s.spent()
                ),
            });
            s
        }
        None => {
            let split = split::assign(&tasks, opts.split_seed)?;
            let files = lineage::files_on_disk(&harness)?;
            let start = lineage.commit(None, &files, "nlah evolve: the starting harness")?;
            lineage.advance(&start)?;
            say(Progress {
                event: "split",
                message: format!(
                    "split (seed {}): {} search, {} validation, {} test task(s); the test split runs only at the end",
                    split.seed,
                    split.search.len(),
                    split.validation.len(),
                    split.test.len()
                ),
            });
            State {
                schema: SCHEMA.into(),
                name: opts.name.clone(),
                harness: harness.clone(),
                tasks: ctx
                    .tasks
                    .canonicalize()
                    .unwrap_or_else(|_| ctx.tasks.clone()),
                model: opts.model.clone(),
                proposer: opts.proposer.clone(),
                seeds: opts.seeds,
                edits: opts.edits,
                iterations: opts.iterations,
                repo: lineage_repo(&harness, &lineage),
                harness_rel: lineage.rel.clone(),
                branch: lineage.branch.clone(),
                split,
                start: start.clone(),
                current: start,
                evals: BTreeMap::new(),
                rounds: Vec::new(),
                phase: Phase::Search,
                stop: None,
                final_: None,
                max_cost,
                started: now(),
            }
        }
    };
    state.save(&out)?;
    let ev = Evolution {
        out: out.clone(),
        ctx,
        lineage,
        tasks: tasks.iter().map(leak::task_text).collect(),
        proposer,
        say,
    };
    if state.phase == Phase::Search {
        ev.search(&mut state).await?;
    }
    if state.phase == Phase::Final {
        ev.finish(&mut state).await?;
    }
    let text = report::render(&state);
    let p = out.join(REPORT_FILE);
    crate::atomic::write(&p, text.as_bytes())
        .map_err(|source| EvolveError::Io { path: p, source })?;
    Ok(state)
}

fn lineage_repo(harness: &Path, l: &Lineage) -> PathBuf {
    let mut p = harness.to_path_buf();
    for _ in l.rel.split('/').filter(|s| !s.is_empty()) {
        p.pop();
    }
    p
}

/// How an evaluation ended.
enum Ran {
    Complete(eval::Results),
    /// `--max-cost` is spent.
    Budget,
    /// Cells ended in errors.
    Errors(usize),
}

impl Evolution<'_> {
    fn say(&self, event: &'static str, message: String) {
        (self.say)(Progress { event, message });
    }

    /// The search + validation matrix of `commit`, built on first use and owned by `owner`.
    fn matrix(
        &self,
        state: &mut State,
        commit: &str,
        owner: usize,
    ) -> Result<(PathBuf, crate::ablation::matrix::MatrixFile), EvolveError> {
        let harness = self.materialize(commit)?;
        let rel = format!("evals/{}", short(commit));
        let dir = self.out.join(&rel);
        let file = eval::prepare(
            self.ctx,
            &dir,
            &harness,
            &state.split,
            &[Split::Search, Split::Validation],
            false,
        )?;
        state.evals.entry(commit.to_string()).or_insert(Evaluation {
            dir: rel,
            owner,
            cost: 0.0,
        });
        Ok((dir, file))
    }

    fn materialize(&self, commit: &str) -> Result<PathBuf, EvolveError> {
        let dir = self.out.join("harnesses").join(short(commit));
        let files = self.lineage.files_at(commit)?;
        // Rewritten only when missing or different: running cells read it.
        if lineage::files_on_disk(&dir).ok().as_ref() != Some(&files) {
            lineage::materialize(&files, &dir)?;
        }
        Ok(dir)
    }

    /// Runs the cells of `commit`'s matrix that `only` selects, and reads all its results.
    async fn evaluate(
        &self,
        state: &mut State,
        commit: &str,
        owner: usize,
        only: impl Fn(&crate::ablation::Cell) -> bool,
    ) -> Result<Ran, EvolveError> {
        let (dir, file) = self.matrix(state, commit, owner)?;
        let budget = eval::run(self.ctx, &dir, &file, &only, state.spent()).await?;
        let r = eval::results(&dir, &file, &state.split)?;
        if let Some(e) = state.evals.get_mut(commit) {
            e.cost = r.cost;
        }
        state.save(&self.out)?;
        let missing = file
            .matrix
            .cells
            .iter()
            .filter(|c| only(c))
            .filter(|c| {
                !matches!(
                    crate::ablation::resume::state(&dir, &c.id),
                    crate::ablation::resume::CellState::Finished(_)
                )
            })
            .count();
        Ok(if missing == 0 {
            Ran::Complete(r)
        } else if budget {
            Ran::Budget
        } else {
            Ran::Errors(missing)
        })
    }

    async fn search(&self, state: &mut State) -> Result<(), EvolveError> {
        loop {
            let current = state.current.clone();
            let owner = state.rounds.len();
            self.say(
                "evaluate",
                format!(
                    "evaluating {} on search + validation ({} seed(s))",
                    short(&current),
                    state.seeds
                ),
            );
            let parent = match self.evaluate(state, &current, owner, |_| true).await? {
                Ran::Complete(r) => r,
                Ran::Budget => return self.stop(state, "--max-cost is spent".into()),
                Ran::Errors(n) => {
                    return self.stop(
                        state,
                        format!(
                            "{n} cell(s) of the current harness ended in errors; rerun to retry them"
                        ),
                    );
                }
            };
            let open = state.rounds.last().is_some_and(|r| !r.done);
            if !open && state.rounds.len() >= state.iterations {
                state.phase = Phase::Final;
                state.save(&self.out)?;
                return Ok(());
            }
            if !open {
                let (dir, file) = self.matrix(state, &current, owner)?;
                let failed = eval::failed_runs(&dir, &file, &state.split, Split::Search);
                if failed.is_empty() {
                    self.say(
                        "stop",
                        "the search split has no failures left to mine".into(),
                    );
                    state.stop = Some("the search split has no failures left to mine".into());
                    state.phase = Phase::Final;
                    state.save(&self.out)?;
                    return Ok(());
                }
                let weaknesses = propose::mine(&failed)?;
                state.rounds.push(Iteration {
                    n: state.rounds.len() + 1,
                    parent: current.clone(),
                    weaknesses,
                    proposer: None,
                    candidates: Vec::new(),
                    accepted: None,
                    done: false,
                    cost_proposer: 0.0,
                    cost_evaluation: 0.0,
                });
                state.save(&self.out)?;
            }
            if let Some(limit) = state.max_cost
                && state.spent() >= limit
            {
                return self.stop(state, "--max-cost is spent".into());
            }
            self.iterate(state, &parent).await?;
            if state.phase != Phase::Search || state.stop.is_some() {
                return Ok(());
            }
        }
    }

    fn stop(&self, state: &mut State, why: String) -> Result<(), EvolveError> {
        self.say("stop", format!("the search stopped: {why}"));
        state.stop = Some(why);
        state.save(&self.out)
    }

    /// The history the proposer sees: earlier edits and what became of them, without any
    /// task named.
    fn history(state: &State) -> Vec<String> {
        state
            .rounds
            .iter()
            .flat_map(|r| &r.candidates)
            .filter(|c| c.status != Status::Pending)
            .map(|c| {
                let what = match (c.status, &c.reason) {
                    (Status::Rejected, Some(r))
                        if r.starts_with("names") || r.starts_with("copies") =>
                    {
                        "rejected: it named or copied a task".to_string()
                    }
                    (Status::Rejected | Status::ScreenRejected | Status::Error, Some(r)) => {
                        format!("{}: {r}", c.status.as_str())
                    }
                    (s, _) => match (&c.search, &c.validation) {
                        (Some(a), Some(b)) => format!(
                            "{}: search Δ {:+.2}, validation Δ {:+.2}",
                            s.as_str(),
                            a.delta,
                            b.delta
                        ),
                        _ => s.as_str().to_string(),
                    },
                };
                format!("{} ({}) → {what}", c.edit.surface, c.edit.mechanism)
            })
            .collect()
    }

    async fn iterate(&self, state: &mut State, parent: &eval::Results) -> Result<(), EvolveError> {
        let i = state.rounds.len() - 1;
        let n = state.rounds[i].n;
        let parent_commit = state.rounds[i].parent.clone();
        let parent_files = self.lineage.files_at(&parent_commit)?;
        if state.rounds[i].proposer.is_none() {
            let search = parent.split(Split::Search);
            let passed: u32 = search.values().map(|v| v.0).sum();
            let total: u32 = search.values().map(|v| v.1).sum();
            let req = propose::request(
                &parent_files,
                &state.rounds[i].weaknesses,
                passed as usize,
                total as usize,
                &Self::history(state),
                state.edits,
            );
            self.say(
                "propose",
                format!(
                    "iteration {n}: {} failure cluster(s) on the search split; asking {} for {} edit(s)",
                    state.rounds[i].weaknesses.len(),
                    state.proposer,
                    state.edits
                ),
            );
            let mut call = ProposerCall::default();
            match propose::ask(&self.proposer, req, n).await {
                Err(e) => {
                    call.status = "model error".into();
                    call.error = Some(e.to_string());
                }
                Ok((text, usage)) => {
                    call.usage = usage;
                    call.answer = crate::agent::session::clip(&text, ANSWER_CHARS);
                    match edit::parse(&text) {
                        Ok(edits) => {
                            call.status = "answered".into();
                            for (k, e) in edits.into_iter().take(state.edits).enumerate() {
                                state.rounds[i].candidates.push(Candidate {
                                    label: format!("{n}-{}", k + 1),
                                    edit: e,
                                    status: Status::Pending,
                                    reason: None,
                                    commit: None,
                                    screen: None,
                                    search: None,
                                    validation: None,
                                    prediction: Vec::new(),
                                });
                            }
                        }
                        Err(why) => {
                            call.status = if why.contains("no edit") {
                                "no edit".into()
                            } else {
                                "malformed".into()
                            };
                            call.error = Some(why);
                        }
                    }
                }
            }
            state.rounds[i].cost_proposer = call.usage.cost_usd;
            if let Some(e) = &call.error {
                self.say(
                    "proposer-failed",
                    format!("iteration {n}: the proposer failed ({}): {e}", call.status),
                );
            }
            state.rounds[i].proposer = Some(call);
            state.save(&self.out)?;
        }

        for k in 0..state.rounds[i].candidates.len() {
            if state.rounds[i].candidates[k].status != Status::Pending {
                continue;
            }
            self.candidate(state, i, k, &parent_files, parent).await?;
            if state.stop.is_some() {
                return Ok(());
            }
        }

        // The iteration's best accepted candidate becomes the current harness.
        let best = state.rounds[i]
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.status == Status::Accepted)
            .max_by(|(_, a), (_, b)| gain(a).total_cmp(&gain(b)))
            .map(|(k, _)| k);
        for (k, c) in state.rounds[i].candidates.iter_mut().enumerate() {
            if c.status == Status::Accepted && Some(k) != best {
                c.status = Status::NotAccepted;
                c.reason = Some(
                    "the rule accepted it, but another candidate of this iteration gained more"
                        .into(),
                );
            }
        }
        if let Some(k) = best {
            let c = &state.rounds[i].candidates[k];
            let commit = c.commit.clone().unwrap_or_default();
            self.lineage.advance(&commit)?;
            self.say(
                "accepted",
                format!(
                    "iteration {n}: accepted {} ({}) as {}",
                    c.label,
                    c.edit.surface,
                    short(&commit)
                ),
            );
            state.rounds[i].accepted = Some(c.label.clone());
            state.current = commit;
        } else {
            self.say("iteration", format!("iteration {n}: nothing accepted"));
        }
        state.rounds[i].cost_evaluation = state
            .evals
            .values()
            .filter(|e| e.owner == i + 1)
            .map(|e| e.cost)
            .sum::<f64>()
            + 0.0;
        state.rounds[i].done = true;
        state.save(&self.out)
    }

    fn reject(
        &self,
        state: &mut State,
        i: usize,
        k: usize,
        status: Status,
        why: String,
    ) -> Result<(), EvolveError> {
        let c = &mut state.rounds[i].candidates[k];
        self.say(
            "rejected",
            format!(
                "candidate {} ({}): {}: {why}",
                c.label,
                c.edit.surface,
                status.as_str()
            ),
        );
        c.status = status;
        c.reason = Some(why);
        state.save(&self.out)
    }

    async fn candidate(
        &self,
        state: &mut State,
        i: usize,
        k: usize,
        parent_files: &Files,
        parent: &eval::Results,
    ) -> Result<(), EvolveError> {
        let owner = i + 1;
        let c = state.rounds[i].candidates[k].clone();
        let files = match edit::apply(parent_files, &c.edit) {
            Ok(f) => f,
            Err(why) => return self.reject(state, i, k, Status::Rejected, why),
        };
        let known: String = parent_files
            .values()
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        let added = edit::added_text(parent_files, &files);
        if let Some(why) = leak::check(&added, &known, &self.tasks) {
            return self.reject(state, i, k, Status::Rejected, why);
        }
        let commit = match &c.commit {
            Some(id) => id.clone(),
            None => {
                // `nlah check` on the files as they would be committed.
                let scratch = self
                    .out
                    .join("harnesses")
                    .join(format!("check-{}", c.label));
                lineage::materialize(&files, &scratch)?;
                let errors = check_errors(&scratch);
                let _ = std::fs::remove_dir_all(&scratch);
                if !errors.is_empty() {
                    return self.reject(
                        state,
                        i,
                        k,
                        Status::Rejected,
                        format!("it breaks `nlah check`: {}", errors.join("; ")),
                    );
                }
                let message = format!(
                    "nlah evolve {}: {}\n\nsurface: {}\n",
                    c.label,
                    first_line(&c.edit.mechanism),
                    c.edit.surface
                );
                let id = self
                    .lineage
                    .commit(Some(&state.rounds[i].parent), &files, &message)?;
                self.lineage.keep_candidate(&c.label, &id)?;
                state.rounds[i].candidates[k].commit = Some(id.clone());
                state.save(&self.out)?;
                id
            }
        };
        if commit == state.rounds[i].parent {
            return self.reject(
                state,
                i,
                k,
                Status::Rejected,
                "the edit changes nothing".into(),
            );
        }

        // The screen: seed 0 of the search split. It may only reject.
        self.say(
            "screen",
            format!(
                "candidate {}: screening on the search split, seed 0",
                c.label
            ),
        );
        let split = state.split.clone();
        let in_search = |cell: &crate::ablation::Cell| {
            cell.seed == 0 && split.of(&cell.task) == Some(Split::Search)
        };
        match self.evaluate(state, &commit, owner, in_search).await? {
            Ran::Complete(_) => {}
            Ran::Budget => return self.stop(state, "--max-cost is spent".into()),
            Ran::Errors(e) => {
                return self.reject(
                    state,
                    i,
                    k,
                    Status::Error,
                    format!("{e} screen cell(s) ended in errors"),
                );
            }
        }
        let seed0 = |dir_commit: &str, st: &State| -> Result<u32, EvolveError> {
            let e = &st.evals[dir_commit];
            let dir = self.out.join(&e.dir);
            let m = crate::ablation::matrix::read_matrix(
                &dir.join(crate::ablation::matrix::MATRIX_FILE),
            )?;
            Ok(m.cells
                .iter()
                .filter(|c| c.seed == 0 && st.split.of(&c.task) == Some(Split::Search))
                .filter(|c| {
                    crate::ablation::resume::state(&dir, &c.id)
                        == crate::ablation::resume::CellState::Finished(
                            crate::record::RunOutcome::Passed,
                        )
                })
                .count() as u32)
        };
        let p0 = seed0(&state.rounds[i].parent.clone(), state)?;
        let c0 = seed0(&commit, state)?;
        state.rounds[i].candidates[k].screen = Some((p0, c0));
        let n_search = state.split.search.len() as u32;
        let margin = (n_search as f64 * SCREEN_MARGIN).ceil().max(1.0) as u32;
        if c0 + margin <= p0 {
            return self.reject(
                state,
                i,
                k,
                Status::ScreenRejected,
                format!("seed 0 of the search split: {c0} passed against the parent's {p0} (rejects at a drop of {margin} or more)"),
            );
        }

        self.say(
            "evaluate",
            format!(
                "candidate {}: search + validation, {} seed(s)",
                c.label, state.seeds
            ),
        );
        let full = match self.evaluate(state, &commit, owner, |_| true).await? {
            Ran::Complete(r) => r,
            Ran::Budget => return self.stop(state, "--max-cost is spent".into()),
            Ran::Errors(e) => {
                return self.reject(
                    state,
                    i,
                    k,
                    Status::Error,
                    format!("{e} cell(s) ended in errors"),
                );
            }
        };
        let seed = state.split.seed ^ (i as u64) << 8 ^ k as u64;
        let s = compare::compare(
            &parent.split(Split::Search),
            &full.split(Split::Search),
            seed,
        );
        let v = compare::compare(
            &parent.split(Split::Validation),
            &full.split(Split::Validation),
            seed + 1,
        );
        let (Some(s), Some(v)) = (s, v) else {
            return self.reject(state, i, k, Status::Error, "no task to compare on".into());
        };
        let ok = compare::accepts(&s, &v);
        let cand = &mut state.rounds[i].candidates[k];
        cand.prediction = vec![
            (
                Split::Search,
                compare::check_prediction(cand.edit.predicted.search, &s),
            ),
            (
                Split::Validation,
                compare::check_prediction(cand.edit.predicted.validation, &v),
            ),
        ];
        cand.status = if ok {
            Status::Accepted
        } else {
            Status::NotAccepted
        };
        if !ok {
            cand.reason = Some(if !s.not_worse() || !v.not_worse() {
                "worse on a split".into()
            } else {
                "better on neither split beyond noise".into()
            });
        }
        cand.search = Some(s.clone());
        cand.validation = Some(v.clone());
        self.say(
            "evaluated",
            format!(
                "candidate {}: search {}; validation {}; {}",
                cand.label,
                s.sentence(),
                v.sentence(),
                if ok {
                    "passes the rule"
                } else {
                    "not accepted"
                }
            ),
        );
        let verdict = serde_json::json!({
            "label": cand.label, "status": cand.status, "reason": cand.reason,
            "surface": cand.edit.surface, "search": s, "validation": v,
            "prediction": cand.prediction, "parent": state.rounds[i].parent,
        });
        let dir = self.out.join(&state.evals[&commit].dir);
        self.lineage
            .note(&commit, &eval::note_lines(&dir)?, &verdict)?;
        state.save(&self.out)
    }

    async fn finish(&self, state: &mut State) -> Result<(), EvolveError> {
        let started = state.final_.as_ref().map_or_else(
            || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            |f| f.started.clone(),
        );
        self.say(
            "final",
            format!(
                "the search is over; running the test split ({} task(s), {} seed(s)) once, on the starting harness {} and the accepted {}",
                state.split.test.len(),
                state.seeds,
                short(&state.start),
                short(&state.current)
            ),
        );
        let mut scores = Vec::new();
        let mut cost = 0.0;
        let versions: Vec<String> = if state.start == state.current {
            vec![state.start.clone()]
        } else {
            vec![state.start.clone(), state.current.clone()]
        };
        for commit in &versions {
            let harness = self.materialize(commit)?;
            let dir = self.out.join(format!("evals/{}-test", short(commit)));
            let file = eval::prepare(self.ctx, &dir, &harness, &state.split, &[Split::Test], true)?;
            let spent = state.spent() + cost;
            let budget = eval::run(self.ctx, &dir, &file, |_| true, spent).await?;
            let r = eval::results(&dir, &file, &state.split)?;
            cost += r.cost;
            if r.missing > 0 {
                let why = if budget {
                    "--max-cost is spent before the test split finished".to_string()
                } else {
                    format!(
                        "{} test cell(s) ended in errors; rerun to retry them",
                        r.missing
                    )
                };
                state.final_ = Some(Final {
                    start: TaskScores::new(),
                    accepted: TaskScores::new(),
                    comparison: None,
                    cost,
                    started,
                });
                return self.stop(state, why);
            }
            let lines = eval::note_lines(&dir)?;
            self.lineage.note(
                commit,
                &lines,
                &serde_json::json!({"label": "test", "split": "test"}),
            )?;
            scores.push(r.split(Split::Test));
        }
        let start = scores[0].clone();
        let accepted = scores.last().cloned().unwrap_or_default();
        // Nothing accepted: one harness, nothing to compare.
        let comparison = (versions.len() > 1)
            .then(|| compare::compare(&start, &accepted, state.split.seed))
            .flatten();
        if let Some(c) = &comparison {
            self.say("test", format!("test split: {}", c.sentence()));
        }
        state.final_ = Some(Final {
            start,
            accepted,
            comparison,
            cost,
            started,
        });
        state.phase = Phase::Done;
        state.stop = state.stop.take().filter(|s| !s.contains("test"));
        state.save(&self.out)
    }
}

/// How much of the proposer's answer the record keeps.
const ANSWER_CHARS: usize = 4000;

/// A seed-0 drop of this share of the search tasks (at least one) rejects at the screen.
pub const SCREEN_MARGIN: f64 = 0.25;

fn gain(c: &Candidate) -> f64 {
    c.search.as_ref().map_or(0.0, |s| s.delta) + c.validation.as_ref().map_or(0.0, |v| v.delta)
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    crate::agent::session::clip(if l.is_empty() { "an edit" } else { l }, 72)
}

/// The error diagnostics `nlah check` gives for a folder.
fn check_errors(dir: &Path) -> Vec<String> {
    let targets = match crate::check::discover(dir) {
        Ok(t) => t,
        Err(e) => return vec![e.to_string()],
    };
    crate::check::check_all(&targets)
        .0
        .into_iter()
        .filter(crate::diag::Diagnostic::is_error)
        .take(3)
        .map(|d| {
            let file = d.pos.path.strip_prefix(dir).map_or_else(
                |_| d.pos.path.display().to_string(),
                |p| p.display().to_string(),
            );
            format!("{file}:{}: {}", d.pos.line, d.message)
        })
        .collect()
}

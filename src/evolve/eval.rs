//! Evaluations as ablation matrices: one matrix per harness version and purpose, in
//! `OUT/evals/NAME/`, over the tasks of the splits it may touch. Its cells run through the
//! ablation executors (the local pool, or Slurm job arrays), so an evaluation cut short by a
//! kill resumes cell by cell, and the same cell (same harness version, task, model and seed) is
//! never run twice.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::EvolveError;
use super::compare::TaskScores;
use super::split::{Assignment, Split};
use crate::ablation::design::Design;
use crate::ablation::executor::Sink;
use crate::ablation::executor::choice::{self, Budget, Choice};
use crate::ablation::index;
use crate::ablation::matrix::{self, MatrixFile};
use crate::ablation::resume::{self, CellState, is_result};
use crate::ablation::{Cell, MATRIX_SCHEMA};
use crate::charter::Charter;
use crate::engine::RunSettings;
use crate::record::RunOutcome;
use crate::versions::notes::NoteLine;

/// What every evaluation shares.
pub struct Context {
    pub tasks: PathBuf,
    pub model: String,
    pub seeds: u64,
    pub settings: RunSettings,
    pub charter: Charter,
    pub executor: Choice,
    pub max_cost: Option<f64>,
    pub sink: Sink,
}

/// Builds (or reads back) the matrix of `harness` over the tasks of `splits`, every seed.
/// Asking for the test split is refused unless `final_phase`: the search never touches it.
pub fn prepare(
    ctx: &Context,
    dir: &Path,
    harness: &Path,
    assignment: &Assignment,
    splits: &[Split],
    final_phase: bool,
) -> Result<MatrixFile, EvolveError> {
    if splits.contains(&Split::Test) && !final_phase {
        return Err(EvolveError::TestSplitTouched);
    }
    let tasks: BTreeSet<&String> = splits.iter().flat_map(|s| assignment.tasks(*s)).collect();
    let req = matrix::Request {
        harness,
        tasks: &ctx.tasks,
        design: &Design::Default,
        modules: &[],
        models: std::slice::from_ref(&ctx.model),
        seeds: ctx.seeds,
        baseline: None,
    };
    let mut m = matrix::build(&req)?;
    m.cells.retain(|c| tasks.contains(&c.task));
    for (i, c) in m.cells.iter_mut().enumerate() {
        c.index = i;
    }
    debug_assert_eq!(m.schema, MATRIX_SCHEMA);
    std::fs::create_dir_all(dir).map_err(|source| EvolveError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let file = matrix::install(
        dir,
        MatrixFile {
            matrix: m,
            settings: ctx.settings.clone(),
        },
    )?;
    Ok(file)
}

/// What an evaluation's cells came to.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Per split, per task: (passed, with a verdict).
    pub scores: Vec<(Split, TaskScores)>,
    /// Cells without a result (an error, stopped by the budget, never run).
    pub missing: usize,
    /// What every cell of the matrix cost, attempts that ended in errors included.
    pub cost: f64,
}

impl Results {
    pub fn split(&self, s: Split) -> TaskScores {
        self.scores
            .iter()
            .find(|(x, _)| *x == s)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    }
}

/// Runs the cells of `file` that `only` selects and have no result yet. `spent` is what the
/// whole evolution spent before: `--max-cost` bounds the sum. Returns whether the budget ran
/// out.
pub async fn run(
    ctx: &Context,
    dir: &Path,
    file: &MatrixFile,
    only: impl Fn(&Cell) -> bool,
    spent: f64,
) -> Result<bool, EvolveError> {
    let pending: Vec<Cell> = file
        .matrix
        .cells
        .iter()
        .filter(|c| only(c) && !matches!(resume::state(dir, &c.id), CellState::Finished(_)))
        .cloned()
        .collect();
    if pending.is_empty() {
        return Ok(false);
    }
    if let Some(limit) = ctx.max_cost
        && spent >= limit
    {
        return Ok(true);
    }
    Ok(choice::run_pending(
        dir,
        file,
        pending,
        ctx.charter.clone(),
        &ctx.executor,
        Budget {
            spent,
            max_cost: ctx.max_cost,
        },
        ctx.sink.clone(),
    )
    .await?)
}

/// Reads the results of `file`'s cells from their run.json files.
pub fn results(
    dir: &Path,
    file: &MatrixFile,
    assignment: &Assignment,
) -> Result<Results, EvolveError> {
    let entries = index::refresh(dir, &file.matrix, false)?;
    let mut out = Results::default();
    for (c, e) in file.matrix.cells.iter().zip(&entries) {
        let Some(split) = assignment.of(&c.task) else {
            continue;
        };
        if !out.scores.iter().any(|(s, _)| *s == split) {
            out.scores.push((split, TaskScores::new()));
        }
        let scores = out
            .scores
            .iter_mut()
            .find(|(s, _)| *s == split)
            .map(|(_, t)| t);
        match e.summary {
            Some(s) => {
                out.cost += s.cost_usd;
                if is_result(s.outcome) {
                    if let Some(t) = scores {
                        let v = t.entry(c.task.clone()).or_default();
                        v.1 += 1;
                        if s.outcome == RunOutcome::Passed {
                            v.0 += 1;
                        }
                    }
                } else {
                    out.missing += 1;
                }
            }
            None => out.missing += 1,
        }
    }
    out.scores.sort_by_key(|(s, _)| *s);
    Ok(out)
}

/// The failed cells of `split`, as run workspaces.
pub fn failed_runs(
    dir: &Path,
    file: &MatrixFile,
    assignment: &Assignment,
    split: Split,
) -> Vec<PathBuf> {
    file.matrix
        .cells
        .iter()
        .filter(|c| assignment.of(&c.task) == Some(split))
        .filter(|c| resume::state(dir, &c.id) == CellState::Finished(RunOutcome::Failed))
        .map(|c| resume::cell_dir(dir, &c.id))
        .collect()
}

/// Every finished cell as a note line for `nlah log`.
pub fn note_lines(dir: &Path) -> Result<Vec<NoteLine>, EvolveError> {
    Ok(index::load(dir)?
        .into_iter()
        .filter_map(|c| c.record)
        .filter(|r| is_result(r.outcome))
        .map(|r| NoteLine::from_record(&r))
        .collect())
}

//! A node's rollouts: an ablation matrix of one variant (the node's harness with the modules it
//! enables itself, the synthesized one among them) over the tasks, cycled, and seeds 0, 1, …
//! until `--rollouts` cells, written to `OUT/nodes/<n>/rollouts/`. Each is a cell of the
//! existing machinery: run by the local pool or as Slurm array tasks, resumed after a kill
//! (finished cells are kept), indexed and reported like any matrix. Every node runs the same
//! tasks and seeds, so their rates compare pairwise.

use std::path::{Path, PathBuf};

use super::critic::{self, FailedStep, MAX_FAILED};
use super::error::SynthError;
use crate::ablation::design::Design;
use crate::ablation::executor::choice::{self, Budget, Choice};
use crate::ablation::matrix::{self, MatrixFile, Request};
use crate::ablation::resume;
use crate::charter::Charter;
use crate::engine::RunSettings;
use crate::record::RunRecord;

/// A node's rollouts, counted.
#[derive(Debug, Clone, Default)]
pub struct Counted {
    pub legal: u64,
    pub illegal: u64,
    pub code_errors: u64,
    pub infra_errors: u64,
    pub done: usize,
    pub cost_usd: f64,
    pub failures: Vec<FailedStep>,
    pub records: Vec<RunRecord>,
    /// Cells that ended without a run.json (or were not run: the cost ceiling).
    pub missing: usize,
}

/// What a node's rollouts run with.
pub struct Plan<'a> {
    pub harness: &'a Path,
    pub tasks: &'a Path,
    pub model: &'a str,
    pub rollouts: usize,
    pub settings: RunSettings,
    pub charter: Charter,
    pub executor: &'a Choice,
    /// What the search may still spend (USD).
    pub budget: Option<f64>,
}

/// Builds (or finds) the matrix in `out` and runs its unfinished cells.
pub async fn run(out: &Path, plan: Plan<'_>) -> Result<Counted, SynthError> {
    std::fs::create_dir_all(out).map_err(SynthError::io(out))?;
    let design = Design::Default;
    let tasks =
        crate::task::load_set(plan.tasks).map_err(crate::ablation::error::AblationError::from)?;
    if tasks.is_empty() {
        return Err(SynthError::Input(format!(
            "{}: no tasks in this folder",
            plan.tasks.display()
        )));
    }
    let seeds = plan.rollouts.div_ceil(tasks.len()) as u64;
    let models = [plan.model.to_string()];
    let mut m = matrix::build(&Request {
        harness: plan.harness,
        tasks: plan.tasks,
        design: &design,
        modules: &[],
        models: &models,
        seeds,
        baseline: None,
    })?;
    m.cells.truncate(plan.rollouts);
    let file = matrix::install(
        out,
        MatrixFile {
            matrix: m,
            settings: plan.settings.clone(),
        },
    )?;
    let cells = file.matrix.cells.clone();
    let pending: Vec<_> = cells
        .iter()
        .filter(|c| !resume::state(out, &c.id).is_finished())
        .cloned()
        .collect();
    if !pending.is_empty() {
        choice::run_pending(
            out,
            &file,
            pending,
            plan.charter,
            plan.executor,
            Budget {
                spent: 0.0,
                max_cost: plan.budget,
            },
            crate::ablation::executor::quiet(),
        )
        .await?;
    }
    let mut c = Counted::default();
    for cell in &cells {
        let dir = resume::cell_dir(out, &cell.id);
        let Some((rec, r)) = critic::read(&dir, &cell.id, &cell.task) else {
            c.missing += 1;
            continue;
        };
        c.cost_usd += r.cost_usd;
        if r.infra_error {
            c.infra_errors += 1;
            c.records.push(rec);
            continue;
        }
        c.legal += r.legal;
        c.illegal += r.illegal;
        c.code_errors += u64::from(r.code_error);
        c.done += usize::from(r.episode_over);
        for f in r.failures {
            // A script that crashes the same way in every rollout is shown once.
            let repeat = f.check == super::critic::Check::Crashed
                && c.failures
                    .iter()
                    .any(|g| g.check == f.check && g.why == f.why);
            if c.failures.len() < MAX_FAILED && !repeat {
                c.failures.push(f);
            }
        }
        c.records.push(rec);
    }
    Ok(c)
}

/// The folder of node `id`'s harness copy (named as the harness, as Agent Skills require).
pub fn harness_dir(out: &Path, id: usize, name: &str) -> PathBuf {
    out.join("nodes").join(id.to_string()).join(name)
}

/// The folder of node `id`'s rollouts matrix.
pub fn matrix_dir(out: &Path, id: usize) -> PathBuf {
    out.join("nodes").join(id.to_string()).join("rollouts")
}

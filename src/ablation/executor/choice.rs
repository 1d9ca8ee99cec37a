//! Where the matrices of the learning loops run (`nlah synthesize`'s rollouts, `nlah evolve`'s
//! evaluations): the local pool or Slurm, exactly as `nlah ablate` runs its cells, so that a
//! loop's cells resume after a kill and scale out the same way.

use std::path::Path;
use std::sync::Arc;

use super::{Runner, Sink, local, slurm};
use crate::ablation::Cell;
use crate::ablation::error::AblationError;
use crate::ablation::matrix::MatrixFile;
use crate::charter::Charter;

/// The executor a loop's matrices run on.
#[derive(Debug, Clone)]
pub enum Choice {
    Local { concurrency: usize },
    Slurm(slurm::Slurm),
}

/// A loop's `--max-cost` as its matrices see it: what the loop spent before, and the limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    pub spent: f64,
    pub max_cost: Option<f64>,
}

/// Runs the `pending` cells of `file` (installed in `out`) to their end within `budget`.
/// Returns whether the budget left cells unstarted or stopped them.
pub async fn run_pending(
    out: &Path,
    file: &MatrixFile,
    pending: Vec<Cell>,
    charter: Charter,
    choice: &Choice,
    budget: Budget,
    sink: Sink,
) -> Result<bool, AblationError> {
    let Budget { spent, max_cost } = budget;
    match choice {
        Choice::Local { concurrency } => {
            let runner = Arc::new(Runner::new(out.to_path_buf(), file.clone(), charter)?);
            let opts = local::Local::new((*concurrency).max(1), max_cost);
            let r = local::run(
                runner,
                pending,
                spent,
                opts,
                sink,
                std::future::pending::<()>(),
            )
            .await;
            Ok(r.unscheduled > 0 || r.stopped > 0)
        }
        Choice::Slurm(s) => {
            let mut s = s.clone();
            s.max_cost = max_cost;
            let r = slurm::run(out, &file.matrix, pending, spent, &s, sink).await?;
            Ok(r.unscheduled > 0)
        }
    }
}

//! The local executor: a bounded pool of in-process runs.
//!
//! Each running cell is driven on an OS thread of its own, through the runtime's handle: a run
//! does blocking work (git commits, file copies) inside its async code, and on the runtime's few
//! worker threads that work would hold up every other cell's timers and model answers, adding
//! latency to all of them. Not tokio's blocking pool: with as many cells as that pool has threads,
//! the cells' own blocking calls (DNS lookups) would wait for a thread forever.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{CellRun, Event, Runner, Sink, run_cell};
use crate::ablation::Cell;
use crate::ablation::error::AblationError;
use crate::ablation::spend::{self, Decision, Finished};
use crate::agent::shared_budget::{SharedBudget, Spend};
use crate::record::RunOutcome;

/// How the pool runs.
#[derive(Debug, Clone, Copy)]
pub struct Local {
    /// Cells running at once (at least 1).
    pub concurrency: usize,
    /// The matrix's budget (USD), counted live per model call (see [`crate::ablation::spend`]).
    pub max_cost: Option<f64>,
    /// The cells that finished with a result before (their cost estimates a cell's).
    pub finished: Finished,
    /// How far apart cells start, on average ([`start_spacing`] by default).
    pub spacing: Duration,
}

impl Local {
    pub fn new(concurrency: usize, max_cost: Option<f64>) -> Local {
        Local {
            concurrency,
            max_cost,
            finished: Finished::default(),
            spacing: start_spacing(),
        }
    }
}

/// About what a cell's own work costs in CPU time: making its workspace, its commits, its
/// verifier (5 to 7 ms for a small task on the 2-core machines of the benchmarks).
const CELL_CPU: Duration = Duration::from_millis(5);

/// How far apart the pool starts cells: no faster than the machine's cores can do their work.
///
/// Cells started in the same instant do their work in the same instants for as long as their
/// model calls take the same time: every start and every end of a wave of cells queues for the
/// cores, and each wave's cells end only as the last of that queue. Spread by the time their work
/// takes, they stay spread. For a pool of 64 on 2 cores that is 160 ms once, against seconds or
/// minutes per cell; it also spares a provider 64 requests in the same millisecond.
pub fn start_spacing() -> Duration {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    CELL_CPU / u32::try_from(cores).unwrap_or(u32::MAX)
}

/// What one invocation of the pool did.
#[derive(Debug, Clone, Default)]
pub struct PoolSummary {
    /// Cells that ran to a result.
    pub results: usize,
    /// Cells that ended in `error`, or stopped without a run.json.
    pub errors: usize,
    /// Cells never started because the cost ceiling was reached.
    pub unscheduled: usize,
    /// Cells the budget stopped while they ran (outcome `budget`).
    pub stopped: usize,
    /// The summed cost of finished cells, those finished before included.
    pub spent: f64,
    /// With `--max-cost`: the shared budget at the end (every settled call counted).
    pub spend: Option<Spend>,
    /// The `stop` future resolved: the running cells were stopped (their run.json says
    /// `running`) and no further cell started.
    pub interrupted: bool,
}

/// Runs `pending` cells, at most `concurrency` at once. `spent` is what the matrix's finished
/// cells cost before. When `stop` resolves (Ctrl-C), the running cells are stopped and waited
/// for, and the report says so; their run.json keeps saying `running`, so a later invocation
/// runs them again. Dropping the future instead also stops them, without waiting. Must be called
/// within a tokio runtime.
pub async fn run(
    runner: Arc<Runner>,
    pending: Vec<Cell>,
    spent: f64,
    opts: Local,
    sink: Sink,
    stop: impl Future<Output = ()>,
) -> PoolSummary {
    let k = opts.concurrency.max(1);
    let mut report = PoolSummary {
        spent,
        ..PoolSummary::default()
    };
    let mut queue = pending.into_iter();
    let handle = tokio::runtime::Handle::current();
    // Setting the flag (or dropping this future, which drops `stop_tx`) tells every cell thread
    // to drop its run.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = StopOnDrop(stop_tx);
    let mut stop = std::pin::pin!(stop);
    let mut set: JoinSet<Ended> = JoinSet::new();
    // Which cell each task runs, so that even a panicking one is reported by name.
    let mut running: HashMap<tokio::task::Id, Cell> = HashMap::new();
    let mut stopped = false;
    let mut pace = Pace::new(opts.spacing, Instant::now());
    // Every cell's model calls count against the budget as they settle.
    let budget = opts.max_cost.map(|limit| SharedBudget::new(limit, spent));
    runner.share_budget(budget.clone());
    let mut finished = opts.finished;
    loop {
        while !stopped && set.len() < k {
            let now = Instant::now();
            if pace.wait(now).is_some() {
                break;
            }
            if queue.len() == 0 {
                break;
            }
            if let Some(b) = &budget {
                let indices: Vec<usize> = running.values().map(|c| c.index).collect();
                let (now_spent, each) = spend::snapshot(b, &indices);
                match spend::decide(&now_spent, &each, finished) {
                    Decision::Start => {}
                    Decision::Wait => break,
                    Decision::Stop => {
                        stopped = true;
                        report.unscheduled = queue.len();
                        sink(&Event::CostCeiling {
                            spent: now_spent.spent,
                            limit: now_spent.limit,
                            unscheduled: report.unscheduled,
                        });
                        break;
                    }
                }
            }
            let Some(cell) = queue.next() else {
                break;
            };
            pace.started(now);
            let runner = runner.clone();
            let cell_sink = sink.clone();
            let c = cell.clone();
            let rt = handle.clone();
            let mut stopping = stop_rx.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new()
                .name(format!("cell-{}", cell.index))
                // As much stack as the main thread that `nlah run` drives a run on.
                .stack_size(8 << 20)
                .spawn(move || {
                    let ended = rt.block_on(async move {
                        tokio::select! {
                            r = Box::pin(run_cell(&runner, &c, &cell_sink)) => Ended::Done(r),
                            // A dropped sender (Err) stops the cell too.
                            _ = stopping.wait_for(|s| *s) => Ended::Stopped,
                        }
                    });
                    let _ = tx.send(ended);
                });
            if let Err(e) = spawned {
                report.errors += 1;
                sink(&Event::Failed {
                    cell,
                    error: format!("cannot start a thread for the cell: {e}"),
                });
                continue;
            }
            // A thread that dies (a panic) drops its sender.
            let task = set.spawn(async move { rx.await.unwrap_or(Ended::Died) });
            running.insert(task.id(), cell);
        }
        // A cell to start, once its time has come.
        let next = (!stopped && set.len() < k && queue.len() > 0)
            .then(|| pace.wait(Instant::now()))
            .flatten();
        let joined = tokio::select! {
            // With nothing running but a cell to start, wait for its time rather than end.
            j = set.join_next_with_id(), if !(set.is_empty() && next.is_some()) => j,
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => continue,
            () = &mut stop, if !report.interrupted => {
                report.interrupted = true;
                stopped = true;
                let _ = stop_tx.0.send(true);
                continue;
            }
        };
        let Some(joined) = joined else {
            break;
        };
        match joined {
            Ok((id, ended)) => {
                let cell = running.remove(&id);
                match ended {
                    Ended::Done(Ok(CellRun::Ran(record))) => {
                        let cost = record.metrics.total.cost_usd;
                        report.spent += cost;
                        match record.outcome {
                            RunOutcome::Error => report.errors += 1,
                            RunOutcome::Budget => report.stopped += 1,
                            _ => {
                                report.results += 1;
                                finished.add(cost);
                            }
                        }
                    }
                    Ended::Done(Ok(CellRun::Skipped(_))) => report.results += 1,
                    // run_cell has reported the failure to the sink already.
                    Ended::Done(Err(_)) => report.errors += 1,
                    Ended::Stopped => {}
                    Ended::Died => {
                        report.errors += 1;
                        if let Some(cell) = cell {
                            sink(&Event::Failed {
                                cell,
                                error: "the cell's thread panicked".into(),
                            });
                        }
                    }
                }
            }
            Err(e) => {
                report.errors += 1;
                if let Some(cell) = running.remove(&e.id()) {
                    sink(&Event::Failed {
                        cell,
                        error: format!("the cell's task stopped: {e}"),
                    });
                }
            }
        }
    }
    report.spend = budget.map(|b| b.spend());
    runner.share_budget(None);
    report
}

/// When the pool may start its next cell: one start per `spacing`, on average.
#[derive(Debug)]
struct Pace {
    spacing: Duration,
    due: Instant,
}

impl Pace {
    fn new(spacing: Duration, now: Instant) -> Pace {
        Pace { spacing, due: now }
    }

    /// The time to wait for, if a start now would come too early.
    fn wait(&self, now: Instant) -> Option<Instant> {
        (now < self.due).then_some(self.due)
    }

    /// Records a start at `now`.
    fn started(&mut self, now: Instant) {
        // From the last due time, so that a timer's lateness (under one spacing) does not add
        // up; after an idle while, from one spacing ago, so that no burst is saved up beyond
        // a second start.
        let earliest = now.checked_sub(self.spacing).unwrap_or(now);
        self.due = self.due.max(earliest) + self.spacing;
    }
}

/// How a cell's thread ended.
enum Ended {
    Done(Result<CellRun, AblationError>),
    /// Told to stop before the cell ended.
    Stopped,
    /// The thread panicked.
    Died,
}

/// Sets the stop flag when dropped.
struct StopOnDrop(tokio::sync::watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn starts_are_paced_on_average_without_drift_or_a_saved_up_burst() {
        let t0 = Instant::now();
        let mut p = Pace::new(3 * MS, t0);
        // The first start is due at once.
        assert_eq!(p.wait(t0), None);
        p.started(t0);
        assert_eq!(p.wait(t0 + MS), Some(t0 + 3 * MS));
        // A timer that wakes 1 ms late does not push the later starts back.
        p.started(t0 + 4 * MS);
        assert_eq!(p.wait(t0 + 4 * MS), Some(t0 + 6 * MS));
        p.started(t0 + 6 * MS);
        assert_eq!(p.wait(t0 + 6 * MS), Some(t0 + 9 * MS));
        // After an idle second, two starts at most are due, then the pace again.
        let later = t0 + 1000 * MS;
        assert_eq!(p.wait(later), None);
        p.started(later);
        assert_eq!(p.wait(later), None);
        p.started(later);
        assert_eq!(p.wait(later), Some(later + 3 * MS));
    }

    #[test]
    fn no_spacing_starts_everything_at_once() {
        let t0 = Instant::now();
        let mut p = Pace::new(Duration::ZERO, t0);
        for _ in 0..64 {
            assert_eq!(p.wait(t0), None);
            p.started(t0);
        }
    }

    #[test]
    fn the_default_spacing_shares_a_cells_work_among_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        // Exact but for the nanoseconds an uneven division drops.
        let shared = start_spacing() * cores;
        assert!(shared <= CELL_CPU && CELL_CPU - shared < Duration::from_nanos(cores.into()));
        assert_eq!(Local::new(8, None).spacing, start_spacing());
    }
}

//! `--max-cost` for the local pool: which cells may start, and the record of what the matrix
//! spent (`OUT/spend.json`), which `nlah report` states.
//!
//! Spending is counted live, per model call, by a [`SharedBudget`] every running cell's meter
//! reports to (see `crate::agent::shared_budget`): once it is spent, running cells stop at
//! their next model or tool call with the `budget` outcome, which `--resume` runs again.
//!
//! Before starting a cell the pool estimates what a cell costs, `E`:
//! - the mean cost of the cells that finished with a result (in this invocation or before);
//! - before any has, twice the most a running cell has spent so far (a cell that has spent `x`
//!   is taken to be at most half done; 0 when nothing is spent yet, so the first cells start).
//!
//! A cell starts only if the budget left covers `E` on top of what the running cells are still
//! expected to spend (each `E` less what it has spent, at least 0). Otherwise the pool waits for
//! running cells to end and decides again; with none running, it stops and the cells left are
//! not started.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::AblationError;
use crate::agent::shared_budget::{SharedBudget, Spend};

/// The record's file in an output folder.
pub const SPEND_FILE: &str = "spend.json";
pub const SPEND_SCHEMA: &str = "nlah.spend/1";

/// What the pool does about the next cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Start,
    /// Not now: running cells may end cheaper than expected.
    Wait,
    /// Never: the budget is spent, or cannot cover a cell with nothing running.
    Stop,
}

/// The cost of the cells that finished with a result: how many, and their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Finished {
    pub cells: u64,
    pub cost: f64,
}

impl Finished {
    pub fn add(&mut self, cost: f64) {
        self.cells += 1;
        self.cost += cost;
    }
}

/// The expected cost of a cell (see the module's text); `running` is what each running cell
/// has spent so far.
pub fn expected_cell_cost(finished: Finished, running: &[f64]) -> f64 {
    if finished.cells > 0 {
        return finished.cost / finished.cells as f64;
    }
    2.0 * running.iter().copied().fold(0.0, f64::max)
}

/// Whether another cell may start, given the pool's spend, the running cells' spend so far and
/// the finished cells.
pub fn decide(spend: &Spend, running: &[f64], finished: Finished) -> Decision {
    let left = spend.limit - spend.spent;
    if left <= 0.0 {
        return Decision::Stop;
    }
    let e = expected_cell_cost(finished, running);
    let committed: f64 = running.iter().map(|s| (e - s).max(0.0)).sum();
    if left - committed >= e {
        Decision::Start
    } else if running.is_empty() {
        Decision::Stop
    } else {
        Decision::Wait
    }
}

/// What a matrix spent against its `--max-cost`, as of the last invocation that had one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendRecord {
    pub schema: String,
    pub max_cost_usd: f64,
    /// Settled cost of every cell's current run.json before the invocation and of every model
    /// call the invocation made.
    pub spent_usd: f64,
    /// How far the spend passed the limit (0 if it did not).
    pub overshoot_usd: f64,
    /// The mean cost of one model call in the invocation (the unit the overshoot is bounded by).
    pub mean_call_usd: f64,
    /// Cells the budget stopped while they ran (outcome `budget`).
    pub cells_stopped: u64,
    /// Cells never started because the budget could not cover them.
    pub cells_unscheduled: u64,
    /// Model and tool calls refused because the budget was spent.
    pub calls_refused: u64,
    pub updated: String,
}

impl SpendRecord {
    pub fn of(spend: &Spend, cells_stopped: u64, cells_unscheduled: u64) -> SpendRecord {
        SpendRecord {
            schema: SPEND_SCHEMA.into(),
            max_cost_usd: spend.limit,
            spent_usd: spend.spent,
            overshoot_usd: (spend.spent - spend.limit).max(0.0),
            mean_call_usd: spend.mean_call,
            cells_stopped,
            cells_unscheduled,
            calls_refused: spend.refused,
            updated: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

impl SpendRecord {
    /// "$0.0512 spent of --max-cost $0.0500 (overshoot $0.0012, 0.6 model calls); 2 cell(s)
    /// stopped by the budget, 3 not started."
    pub fn sentence(&self) -> String {
        let calls = if self.mean_call_usd > 0.0 {
            format!(
                ", {:.1} model calls",
                self.overshoot_usd / self.mean_call_usd
            )
        } else {
            String::new()
        };
        format!(
            "${:.4} spent of --max-cost ${:.4} (overshoot ${:.4}{calls}); {} cell(s) stopped by the budget, {} not started.",
            self.spent_usd,
            self.max_cost_usd,
            self.overshoot_usd,
            self.cells_stopped,
            self.cells_unscheduled
        )
    }
}

pub fn path(out: &Path) -> PathBuf {
    out.join(SPEND_FILE)
}

/// Writes the record atomically.
pub fn write(out: &Path, r: &SpendRecord) -> Result<(), AblationError> {
    let p = path(out);
    let json = serde_json::to_string_pretty(r).map_err(|e| AblationError::BadFile {
        path: p.clone(),
        message: e.to_string(),
    })?;
    crate::atomic::write(&p, format!("{json}\n").as_bytes()).map_err(AblationError::io(&p))
}

/// Removes a record an invocation without `--max-cost` made stale.
pub fn remove(out: &Path) -> Result<(), AblationError> {
    let p = path(out);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AblationError::io(&p)(e)),
        _ => Ok(()),
    }
}

/// The record, if the folder has one; a damaged one is an error naming it.
pub fn read(out: &Path) -> Result<Option<SpendRecord>, AblationError> {
    let p = path(out);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AblationError::io(&p)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AblationError::BadFile {
            path: p,
            message: e.to_string(),
        })
}

/// The pool's view of a budget while cells run.
pub fn snapshot(budget: &SharedBudget, running: &[usize]) -> (Spend, Vec<f64>) {
    let spend = budget.spend();
    let each = running.iter().map(|&i| budget.spent_by(i)).collect();
    (spend, each)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(limit: f64, spent: f64) -> Spend {
        Spend {
            limit,
            spent,
            in_flight: 0,
            refused: 0,
            mean_call: 0.0,
        }
    }

    #[test]
    fn cells_start_while_the_budget_covers_them_and_the_running_ones() {
        let none = Finished::default();
        // Nothing known, nothing spent: start.
        assert_eq!(decide(&spend(1.0, 0.0), &[], none), Decision::Start);
        assert_eq!(decide(&spend(1.0, 0.0), &[0.0, 0.0], none), Decision::Start);
        // Running cells spent 0.2 at most: E = 0.4; two running commit 0.2 + 0.3 more.
        assert_eq!(decide(&spend(1.0, 0.0), &[0.2, 0.1], none), Decision::Start);
        assert_eq!(decide(&spend(1.0, 0.5), &[0.2, 0.1], none), Decision::Wait);
        // Finished cells cost 0.3 on average.
        let fin = Finished {
            cells: 2,
            cost: 0.6,
        };
        assert_eq!(expected_cell_cost(fin, &[5.0]), 0.3);
        assert_eq!(decide(&spend(1.0, 0.7), &[], fin), Decision::Start);
        assert_eq!(decide(&spend(1.0, 0.75), &[], fin), Decision::Stop);
        assert_eq!(decide(&spend(1.0, 0.6), &[0.1], fin), Decision::Wait);
        // Spent: stop, whatever runs.
        assert_eq!(decide(&spend(1.0, 1.0), &[0.1], fin), Decision::Stop);
        assert_eq!(decide(&spend(0.0, 0.0), &[], none), Decision::Stop);
    }

    #[test]
    fn the_record_round_trips_and_states_the_overshoot() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let mut s = spend(0.5, 0.56);
        s.mean_call = 0.02;
        let r = SpendRecord::of(&s, 3, 4);
        assert!((r.overshoot_usd - 0.06).abs() < 1e-9);
        assert_eq!(
            r.sentence(),
            "$0.5600 spent of --max-cost $0.5000 (overshoot $0.0600, 3.0 model calls); 3 cell(s) stopped by the budget, 4 not started."
        );
        write(dir.path(), &r).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(r));
        remove(dir.path()).unwrap();
        remove(dir.path()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
    }
}

//! A cost budget shared by many runs: an ablation's `--max-cost`, counted as the cells' model
//! calls settle rather than as cells finish.
//!
//! Each running cell's meter ([`super::budget::Meter`]) asks [`CellBudget::admit`] before every
//! model call and reports the call's cost when it settles. A call is admitted while what the
//! matrix has spent, plus what the calls already in flight are expected to cost (each the mean
//! cost of the calls settled so far), stays below the limit; once it does not, every later call
//! of every cell is refused and the cells stop, each with a `budget` outcome. So the limit is
//! passed only by calls already in flight when it was reached, each of which was expected to
//! fit: at most one model call per call in flight (one per running cell, unless a harness runs
//! candidates in parallel), and usually much less.
//!
//! The pool also tells the scheduler what cells spend while they run ([`SharedBudget::spent_by`])
//! so that it can stop starting cells the remaining budget cannot cover.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::budget::Exhausted;

/// The budget name in events and messages.
pub const MAX_COST: &str = "max-cost";

#[derive(Debug, Default)]
struct State {
    /// Settled cost: cells of earlier invocations and every call settled since.
    spent: f64,
    /// What the settled calls of this invocation cost, and how many there were.
    calls_cost: f64,
    calls: u64,
    /// Calls admitted and not yet settled or released.
    in_flight: u64,
    /// Calls (model or tool) refused because the budget was spent.
    refused: u64,
    /// Settled cost per cell (by matrix index), this invocation.
    cells: HashMap<usize, f64>,
}

/// The matrix-wide meter: one per `nlah ablate` invocation with `--max-cost`.
#[derive(Debug)]
pub struct SharedBudget {
    limit: f64,
    state: Mutex<State>,
}

/// What the pool knows at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    pub limit: f64,
    pub spent: f64,
    pub in_flight: u64,
    /// Calls (model or tool) refused because the budget was spent.
    pub refused: u64,
    /// The mean cost of a settled model call (0 before any).
    pub mean_call: f64,
}

impl SharedBudget {
    /// A budget of `limit` USD of which `spent` went to cells before this invocation.
    pub fn new(limit: f64, spent: f64) -> Arc<SharedBudget> {
        Arc::new(SharedBudget {
            limit,
            state: Mutex::new(State {
                spent,
                ..State::default()
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is one statement or a few that keep the sums consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The meter of cell `index`.
    pub fn cell(self: &Arc<Self>, index: usize) -> CellBudget {
        CellBudget {
            pool: self.clone(),
            index,
        }
    }

    pub fn spend(&self) -> Spend {
        let s = self.lock();
        Spend {
            limit: self.limit,
            spent: s.spent,
            in_flight: s.in_flight,
            refused: s.refused,
            mean_call: mean(&s),
        }
    }

    /// What cell `index` has spent in this invocation so far (settled calls).
    pub fn spent_by(&self, index: usize) -> f64 {
        self.lock().cells.get(&index).copied().unwrap_or(0.0)
    }

    /// Whether the budget is spent: no further model call is admitted.
    pub fn is_spent(&self) -> bool {
        self.lock().spent >= self.limit
    }
}

fn mean(s: &State) -> f64 {
    if s.calls == 0 {
        0.0
    } else {
        s.calls_cost / s.calls as f64
    }
}

/// One cell's handle on the shared budget.
#[derive(Debug, Clone)]
pub struct CellBudget {
    pool: Arc<SharedBudget>,
    index: usize,
}

impl CellBudget {
    /// Admits a model call if the budget, less what the calls in flight are expected to cost,
    /// is not spent; the caller must [`CellBudget::settle`] or [`CellBudget::release`] it.
    pub fn admit(&self) -> Result<(), Exhausted> {
        let mut s = self.pool.lock();
        let expected = s.in_flight as f64 * mean(&s);
        if s.spent + expected >= self.pool.limit {
            s.refused += 1;
            return Err(self.exhausted(&s));
        }
        s.in_flight += 1;
        Ok(())
    }

    /// An admitted call returned and cost `cost`.
    pub fn settle(&self, cost: f64) {
        let mut s = self.pool.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.calls_cost += cost;
        s.calls += 1;
        self.count(&mut s, cost);
    }

    /// Cost spent without an admitted call (a `command:` agent's usage, known only when it
    /// ends); not a model call, so not in the mean.
    pub fn add(&self, cost: f64) {
        self.count(&mut self.pool.lock(), cost);
    }

    fn count(&self, s: &mut State, cost: f64) {
        s.spent += cost;
        *s.cells.entry(self.index).or_default() += cost;
    }

    /// An admitted call failed without costing anything.
    pub fn release(&self) {
        let mut s = self.pool.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
    }

    /// The budget is spent (for checks between model calls: a cell stops at its next tool call).
    pub fn check(&self) -> Result<(), Exhausted> {
        let mut s = self.pool.lock();
        if s.spent >= self.pool.limit {
            s.refused += 1;
            return Err(self.exhausted(&s));
        }
        Ok(())
    }

    fn exhausted(&self, s: &State) -> Exhausted {
        Exhausted {
            budget: MAX_COST,
            limit: format!("${:.4}", self.pool.limit),
            used: format!("${:.4}", s.spent),
            request: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_in_flight_reserve_the_mean_call_cost() {
        let pool = SharedBudget::new(1.0, 0.25);
        let (a, b) = (pool.cell(0), pool.cell(1));
        // Nothing is known of a call's cost yet: both cells may call.
        a.admit().unwrap();
        b.admit().unwrap();
        a.settle(0.25);
        b.settle(0.25);
        assert_eq!(pool.spend().spent, 0.75);
        // 0.25 left, a call costs 0.25 on average: one call in flight takes it all.
        a.admit().unwrap();
        assert_eq!(b.admit().unwrap_err().budget, MAX_COST);
        a.release();
        b.admit().unwrap();
        b.settle(0.3);
        assert!(pool.is_spent());
        assert!(a.check().is_err());
        assert!(a.admit().is_err());
        let s = pool.spend();
        assert_eq!((s.in_flight, s.refused), (0, 3));
        assert!((s.spent - 1.05).abs() < 1e-9);
        assert_eq!(pool.spent_by(1), 0.55);
        assert_eq!(pool.spent_by(7), 0.0);
    }
}

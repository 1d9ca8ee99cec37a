//! Budgets enforced in code: a meter shared by every child of a run.
//!
//! A model call is *reserved* before it is sent ([`Meter::reserve_model_call`]) and settled with
//! the provider's usage after: parallel children (candidates) each see the calls and prompt
//! tokens the others have in flight, so together they never exceed `llm calls`, and `tokens`
//! is overshot by at most the completions of the calls already in flight.
//!
//! A meter may also be held to a budget other runs spend too ([`Meter::sharing`], an
//! ablation's `--max-cost`, see [`super::shared_budget`]): asked last before every model call
//! and told every settled cost; a run it refuses reports [`Meter::stopped_by_shared`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::record::Usage;

use super::shared_budget::CellBudget;

/// The limits of one run; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub tokens: Option<u64>,
    pub tool_calls: Option<u64>,
    pub llm_calls: Option<u64>,
    pub wall_time: Option<Duration>,
    pub cost_usd: Option<f64>,
}

/// A budget that ran out: which, its limit, and what was used. `request` is set when the next
/// request alone (its estimated prompt tokens) cannot fit what is left.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", describe(self))]
pub struct Exhausted {
    pub budget: &'static str,
    pub limit: String,
    pub used: String,
    pub request: Option<u64>,
}

fn describe(e: &Exhausted) -> String {
    match e.request {
        Some(n) => format!(
            "{} budget cannot fit a request of about {n} tokens: used {} of {}",
            e.budget, e.used, e.limit
        ),
        None => format!("{} budget spent: used {} of {}", e.budget, e.used, e.limit),
    }
}

#[derive(Debug, Default, Clone)]
struct Spent {
    usage: Usage,
    tool_calls: u64,
    /// Model calls reserved and not yet settled, and their estimated prompt tokens.
    calls_in_flight: u64,
    tokens_in_flight: u64,
}

/// A model call the meter has counted before it is sent. [`Reservation::settle`] replaces it with
/// the call's real usage; dropping it unsettled (the call failed) releases it.
#[derive(Debug)]
#[must_use = "a reservation is released when dropped"]
pub struct Reservation<'a> {
    meter: &'a Meter,
    tokens: u64,
    settled: bool,
}

impl Reservation<'_> {
    /// The call returned `usage`: count it in place of the reservation, under one lock, so no
    /// other child sees the call twice or not at all.
    pub fn settle(mut self, usage: &Usage) {
        let mut s = self.meter.lock();
        release(&mut s, self.tokens);
        s.usage.add(usage);
        self.settled = true;
        drop(s);
        if let Some(shared) = &self.meter.shared {
            shared.settle(usage.cost_usd);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            release(&mut self.meter.lock(), self.tokens);
            if let Some(shared) = &self.meter.shared {
                shared.release();
            }
        }
    }
}

fn release(s: &mut Spent, tokens: u64) {
    s.calls_in_flight = s.calls_in_flight.saturating_sub(1);
    s.tokens_in_flight = s.tokens_in_flight.saturating_sub(tokens);
}

/// Counts what a run spends and says when a limit is reached.
#[derive(Debug)]
pub struct Meter {
    limits: Limits,
    started: Instant,
    spent: Mutex<Spent>,
    /// A budget shared with other runs (an ablation's `--max-cost`), and whether it stopped
    /// this run.
    shared: Option<CellBudget>,
    stopped_by_shared: AtomicBool,
}

impl Meter {
    pub fn new(limits: Limits) -> Meter {
        Meter {
            limits,
            started: Instant::now(),
            spent: Mutex::new(Spent::default()),
            shared: None,
            stopped_by_shared: AtomicBool::new(false),
        }
    }

    /// The meter also held to `shared`, a budget other runs spend too.
    pub fn sharing(mut self, shared: Option<CellBudget>) -> Meter {
        self.shared = shared;
        self
    }

    /// Whether the shared budget refused this run a call: it was stopped from outside, not by
    /// its own limits.
    pub fn stopped_by_shared(&self) -> bool {
        self.stopped_by_shared.load(Ordering::Relaxed)
    }

    fn shared_verdict(&self, r: Result<(), Exhausted>) -> Result<(), Exhausted> {
        if r.is_err() {
            self.stopped_by_shared.store(true, Ordering::Relaxed);
        }
        r
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spent> {
        // The counters stay consistent across a panic elsewhere: every update is one statement.
        self.spent.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spent(&self) -> Spent {
        self.lock().clone()
    }

    pub fn usage(&self) -> Usage {
        self.spent().usage
    }

    pub fn tool_calls(&self) -> u64 {
        self.spent().tool_calls
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn add_usage(&self, u: &Usage) {
        self.lock().usage.add(u);
        if let Some(shared) = &self.shared {
            shared.add(u.cost_usd);
        }
    }

    pub fn add_tool_call(&self) {
        self.lock().tool_calls += 1;
    }

    /// Reserves a model call whose prompt is estimated at `prompt_tokens`, if the budgets allow
    /// it counting the calls already in flight: check and reservation happen under one lock, so
    /// concurrent children cannot all pass the check before any of them is counted.
    pub fn reserve_model_call(&self, prompt_tokens: u64) -> Result<Reservation<'_>, Exhausted> {
        let mut s = self.lock();
        self.check_common(&s)?;
        let calls = s.usage.calls + s.calls_in_flight;
        if let Some(l) = self.limits.llm_calls.filter(|l| calls >= *l) {
            return Err(Exhausted {
                budget: "llm calls",
                limit: l.to_string(),
                used: calls.to_string(),
                request: None,
            });
        }
        let committed = s.usage.total_tokens() + s.tokens_in_flight;
        if let Some(l) = self
            .limits
            .tokens
            .filter(|l| committed.saturating_add(prompt_tokens) > *l)
        {
            return Err(Exhausted {
                budget: "tokens",
                limit: l.to_string(),
                used: committed.to_string(),
                request: Some(prompt_tokens),
            });
        }
        // Last, so that a refusal above does not count against the shared budget. Lock order:
        // this meter, then the shared one (which never takes a meter's lock).
        if let Some(shared) = &self.shared {
            self.shared_verdict(shared.admit())?;
        }
        s.calls_in_flight += 1;
        s.tokens_in_flight += prompt_tokens;
        drop(s);
        Ok(Reservation {
            meter: self,
            tokens: prompt_tokens,
            settled: false,
        })
    }

    /// Whether another tool call may run.
    pub fn check_tool_call(&self) -> Result<(), Exhausted> {
        let s = self.spent();
        self.check_common(&s)?;
        if let Some(shared) = &self.shared {
            self.shared_verdict(shared.check())?;
        }
        if let Some(l) = self.limits.tool_calls.filter(|l| s.tool_calls >= *l) {
            return Err(Exhausted {
                budget: "tool calls",
                limit: l.to_string(),
                used: s.tool_calls.to_string(),
                request: None,
            });
        }
        Ok(())
    }

    /// Tokens, cost and wall time: limits every step is held to.
    fn check_common(&self, s: &Spent) -> Result<(), Exhausted> {
        let usage = &s.usage;
        if let Some(l) = self.limits.tokens.filter(|l| usage.total_tokens() >= *l) {
            return Err(Exhausted {
                budget: "tokens",
                limit: l.to_string(),
                used: usage.total_tokens().to_string(),
                request: None,
            });
        }
        if let Some(l) = self.limits.cost_usd.filter(|l| usage.cost_usd >= *l) {
            return Err(Exhausted {
                budget: "cost",
                limit: format!("${l:.2}"),
                used: format!("${:.4}", usage.cost_usd),
                request: None,
            });
        }
        if let Some(l) = self
            .limits
            .wall_time
            .filter(|l| self.started.elapsed() >= *l)
        {
            return Err(Exhausted {
                budget: "wall time",
                limit: format!("{} s", l.as_secs()),
                used: format!("{} s", self.started.elapsed().as_secs()),
                request: None,
            });
        }
        Ok(())
    }

    /// Time left before the wall-time budget, if there is one.
    pub fn time_left(&self) -> Option<Duration> {
        self.limits
            .wall_time
            .map(|l| l.saturating_sub(self.started.elapsed()))
    }
}

impl Meter {
    /// Tokens, cost and wall time only.
    pub fn check(&self) -> Result<(), Exhausted> {
        self.check_common(&self.spent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            calls: 1,
            ..Usage::default()
        }
    }

    #[test]
    fn limits_bite() {
        let m = Meter::new(Limits {
            tokens: Some(100),
            llm_calls: Some(2),
            tool_calls: Some(1),
            ..Limits::default()
        });
        m.reserve_model_call(40).unwrap().settle(&call(40, 10));
        m.add_tool_call();
        assert_eq!(m.check_tool_call().unwrap_err().budget, "tool calls");
        m.reserve_model_call(40).unwrap().settle(&call(40, 10));
        assert_eq!(m.reserve_model_call(1).unwrap_err().budget, "tokens");
    }

    #[test]
    fn calls_in_flight_count_against_the_call_budget() {
        let m = Meter::new(Limits {
            llm_calls: Some(3),
            ..Limits::default()
        });
        let held: Vec<_> = (0..3).map(|_| m.reserve_model_call(10).unwrap()).collect();
        let refused = m.reserve_model_call(10).unwrap_err();
        assert_eq!((refused.budget, refused.used.as_str()), ("llm calls", "3"));
        // A failed call (dropped unsettled) gives its place back; a settled one keeps it.
        let mut held = held.into_iter();
        drop(held.next());
        held.next().unwrap().settle(&call(10, 1));
        assert_eq!(m.usage().calls, 1);
        let again = m.reserve_model_call(10).unwrap();
        assert!(m.reserve_model_call(10).is_err());
        drop((again, held));
        assert_eq!(m.usage().calls, 1);
    }

    #[test]
    fn a_request_that_cannot_fit_the_tokens_left_is_refused_before_it_is_sent() {
        let m = Meter::new(Limits {
            tokens: Some(1000),
            ..Limits::default()
        });
        let first = m.reserve_model_call(600).unwrap();
        // 600 are in flight: another 600 cannot fit, 400 can.
        let e = m.reserve_model_call(600).unwrap_err();
        assert_eq!(e.request, Some(600));
        assert_eq!(
            e.to_string(),
            "tokens budget cannot fit a request of about 600 tokens: used 600 of 1000"
        );
        m.reserve_model_call(400).unwrap().settle(&call(300, 20));
        first.settle(&call(550, 30));
        assert_eq!(m.usage().total_tokens(), 900);
        assert!(m.reserve_model_call(200).is_err());
        assert!(m.reserve_model_call(100).is_ok());
    }
}

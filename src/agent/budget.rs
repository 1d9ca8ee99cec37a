//! Budgets enforced in code: a meter shared by every child of a run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::record::Usage;

/// The limits of one run; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub tokens: Option<u64>,
    pub tool_calls: Option<u64>,
    pub llm_calls: Option<u64>,
    pub wall_time: Option<Duration>,
    pub cost_usd: Option<f64>,
}

/// A budget that ran out: which, its limit, and what was used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{budget} budget spent: used {used} of {limit}")]
pub struct Exhausted {
    pub budget: &'static str,
    pub limit: String,
    pub used: String,
}

#[derive(Debug, Default, Clone)]
struct Spent {
    usage: Usage,
    tool_calls: u64,
}

/// Counts what a run spends and says when a limit is reached.
#[derive(Debug)]
pub struct Meter {
    limits: Limits,
    started: Instant,
    spent: Mutex<Spent>,
}

impl Meter {
    pub fn new(limits: Limits) -> Meter {
        Meter {
            limits,
            started: Instant::now(),
            spent: Mutex::new(Spent::default()),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn spent(&self) -> Spent {
        self.spent.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
        self.spent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .usage
            .add(u);
    }

    pub fn add_tool_call(&self) {
        self.spent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tool_calls += 1;
    }

    /// Whether another model call may start.
    pub fn check_model_call(&self) -> Result<(), Exhausted> {
        let s = self.spent();
        self.check_common(&s)?;
        if let Some(l) = self.limits.llm_calls.filter(|l| s.usage.calls >= *l) {
            return Err(Exhausted {
                budget: "llm calls",
                limit: l.to_string(),
                used: s.usage.calls.to_string(),
            });
        }
        Ok(())
    }

    /// Whether another tool call may run.
    pub fn check_tool_call(&self) -> Result<(), Exhausted> {
        let s = self.spent();
        self.check_common(&s)?;
        if let Some(l) = self.limits.tool_calls.filter(|l| s.tool_calls >= *l) {
            return Err(Exhausted {
                budget: "tool calls",
                limit: l.to_string(),
                used: s.tool_calls.to_string(),
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
            });
        }
        if let Some(l) = self.limits.cost_usd.filter(|l| usage.cost_usd >= *l) {
            return Err(Exhausted {
                budget: "cost",
                limit: format!("${l:.2}"),
                used: format!("${:.4}", usage.cost_usd),
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

    #[test]
    fn limits_bite() {
        let m = Meter::new(Limits {
            tokens: Some(100),
            llm_calls: Some(2),
            tool_calls: Some(1),
            ..Limits::default()
        });
        assert!(m.check_model_call().is_ok());
        m.add_usage(&Usage {
            input_tokens: 40,
            output_tokens: 10,
            calls: 1,
            ..Usage::default()
        });
        m.add_tool_call();
        assert_eq!(m.check_tool_call().unwrap_err().budget, "tool calls");
        m.add_usage(&Usage {
            input_tokens: 40,
            output_tokens: 10,
            calls: 1,
            ..Usage::default()
        });
        assert_eq!(m.check_model_call().unwrap_err().budget, "tokens");
    }
}

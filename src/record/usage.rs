//! Tokens, time and money, per call and summed per child, stage and run.

use serde::{Deserialize, Serialize};

/// Tokens, time and money of one model call, normalised across providers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// All prompt tokens, cached ones included.
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    /// All completion tokens, reasoning ones included.
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: f64,
    pub latency_ms: u64,
    /// Model calls (1 for one response; sums count calls).
    pub calls: u64,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    pub fn add(&mut self, o: &Usage) {
        self.input_tokens += o.input_tokens;
        self.cached_input_tokens += o.cached_input_tokens;
        self.output_tokens += o.output_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.cost_usd += o.cost_usd;
        self.latency_ms += o.latency_ms;
        self.calls += o.calls;
    }
}

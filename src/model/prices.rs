//! What model calls cost: a table of public list prices (USD per million tokens) that a TOML
//! file can override, because prices change more often than releases do.
//!
//! ```toml
//! [models."gpt-4.1"]
//! input = 2.0
//! cached_input = 0.5
//! output = 8.0
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::ModelError;
use crate::record::Usage;

/// The environment variable naming a price override file.
pub const PRICES_ENV: &str = "NLAH_PRICES";

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    /// Cache reads. Cache writes (Anthropic) are billed at `input` here, which slightly
    /// undercounts them: usage does not report them separately.
    pub cached_input: f64,
    pub output: f64,
}

impl Price {
    const fn new(input: f64, cached_input: f64, output: f64) -> Self {
        Price {
            input,
            cached_input,
            output,
        }
    }
}

/// List prices as published by the providers (standard tier, no batch discount).
const LIST_PRICES: &[(&str, Price)] = &[
    ("gpt-4.1", Price::new(2.00, 0.50, 8.00)),
    ("gpt-4.1-mini", Price::new(0.40, 0.10, 1.60)),
    ("gpt-4.1-nano", Price::new(0.10, 0.025, 0.40)),
    ("gpt-4o", Price::new(2.50, 1.25, 10.00)),
    ("gpt-4o-mini", Price::new(0.15, 0.075, 0.60)),
    ("o4-mini", Price::new(1.10, 0.275, 4.40)),
    ("gpt-5", Price::new(1.25, 0.125, 10.00)),
    ("gpt-5-mini", Price::new(0.25, 0.025, 2.00)),
    ("gpt-5-nano", Price::new(0.05, 0.005, 0.40)),
    ("claude-sonnet-4-5", Price::new(3.00, 0.30, 15.00)),
    ("claude-sonnet-4", Price::new(3.00, 0.30, 15.00)),
    ("claude-opus-4-1", Price::new(15.00, 1.50, 75.00)),
    ("claude-opus-4", Price::new(15.00, 1.50, 75.00)),
    ("claude-haiku-4-5", Price::new(1.00, 0.10, 5.00)),
];

/// A price table. Unknown models are *unpriced*: [`Prices::cost`] returns `None` for them and
/// callers count them as free, flagging them through [`Prices::is_priced`].
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    models: HashMap<String, Price>,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            models: LIST_PRICES
                .iter()
                .map(|(name, p)| (name.to_string(), *p))
                .collect(),
        }
    }
}

/// One model in an override file; `cached_input` defaults to `input` (no cache discount).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    input: f64,
    cached_input: Option<f64>,
    output: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    models: HashMap<String, PriceEntry>,
}

impl Prices {
    /// An empty table: every model is unpriced.
    pub fn empty() -> Self {
        Prices {
            models: HashMap::new(),
        }
    }

    /// The default table plus the file named by `NLAH_PRICES`, if set.
    pub fn from_env() -> Result<Self, ModelError> {
        let mut prices = Prices::default();
        if let Some(path) = std::env::var_os(PRICES_ENV).filter(|p| !p.is_empty()) {
            prices.load_overrides(Path::new(&path))?;
        }
        Ok(prices)
    }

    /// Adds or replaces the models of a TOML override file.
    pub fn load_overrides(&mut self, path: &Path) -> Result<(), ModelError> {
        let bad = |why: String| ModelError::Config(format!("price file {}: {why}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: PriceFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        for (name, e) in file.models {
            let price = Price {
                input: e.input,
                cached_input: e.cached_input.unwrap_or(e.input),
                output: e.output,
            };
            if [price.input, price.cached_input, price.output]
                .iter()
                .any(|v| !v.is_finite() || *v < 0.0)
            {
                return Err(bad(format!(
                    "model `{name}` has a negative or non-finite price"
                )));
            }
            self.models.insert(name, price);
        }
        Ok(())
    }

    /// Adds or replaces one model's price.
    pub fn set(&mut self, model: impl Into<String>, price: Price) {
        self.models.insert(model.into(), price);
    }

    /// The price of `model`: exact name first, then the longest known prefix (dated snapshots
    /// such as `gpt-4o-2024-08-06`); a router's `vendor/` prefix (`openai/gpt-4o`) is ignored.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        let bare = model.rsplit('/').next().unwrap_or(model);
        for name in [model, bare] {
            if let Some(p) = self.models.get(name) {
                return Some(*p);
            }
        }
        [model, bare]
            .iter()
            .flat_map(|name| {
                self.models
                    .iter()
                    .filter(move |(k, _)| name.starts_with(k.as_str()))
            })
            .max_by_key(|(k, _)| k.len())
            .map(|(_, p)| *p)
    }

    pub fn is_priced(&self, model: &str) -> bool {
        self.lookup(model).is_some()
    }

    /// USD for one call's usage: cached input at the cached rate, the rest of the input at the
    /// input rate, all output (reasoning included) at the output rate. `None` when unpriced.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        let p = self.lookup(model)?;
        let cached = usage.cached_input_tokens.min(usage.input_tokens) as f64;
        let uncached = usage.input_tokens.saturating_sub(usage.cached_input_tokens) as f64;
        Some(
            (uncached * p.input + cached * p.cached_input + usage.output_tokens as f64 * p.output)
                / 1e6,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, cached: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            cached_input_tokens: cached,
            output_tokens: output,
            ..Usage::default()
        }
    }

    #[test]
    fn known_models_and_prefixes() {
        let p = Prices::default();
        let c = p.cost("gpt-4.1", &usage(1_000_000, 0, 1_000_000)).unwrap();
        assert!((c - 10.0).abs() < 1e-9);
        let c = p.cost("gpt-4.1", &usage(1_000_000, 500_000, 0)).unwrap();
        assert!((c - 1.25).abs() < 1e-9);
        assert_eq!(p.lookup("gpt-4o-mini-2024-07-18"), p.lookup("gpt-4o-mini"));
        assert_eq!(p.lookup("gpt-4o-2024-08-06"), p.lookup("gpt-4o"));
        assert_eq!(p.lookup("openai/gpt-4.1-mini"), p.lookup("gpt-4.1-mini"));
        assert_eq!(
            p.lookup("claude-sonnet-4-20250514"),
            p.lookup("claude-sonnet-4")
        );
        assert!(p.is_priced("claude-haiku-4-5-20251001"));
        assert!(!p.is_priced("smollm2"));
        assert_eq!(p.cost("smollm2", &usage(10, 0, 10)), None);
    }
}

//! Failed runs grouped by what their verifier said and how they were placed: the weaknesses a
//! learning loop (`nlah evolve`) mines. One call, runs in and clusters out:
//!
//! ```no_run
//! # fn main() -> Result<(), nlah::diagnose::DiagnoseError> {
//! let d = nlah::diagnose::diagnose(&["runs/out".into()])?;
//! // The most frequent failure first: its signature, category, count and pointers.
//! let worst = nlah::diagnose::clusters(&d.runs).into_iter().next();
//! # let _ = worst;
//! # Ok(()) }
//! ```
//!
//! Stability: a cluster's key is the verifier signature ([`super::signature`]: the line that
//! names the failure with numbers, hex ids and paths blanked) and the run's category, so the same
//! failure in another run, seed or machine falls in the same cluster. The order is fixed: most
//! runs first, then category in the taxonomy's order, then signature.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::{Category, RunDiagnosis};

/// The signature of a failed run whose verifier left no output (an infrastructure error, a run
/// cut off before its verdict).
pub const NO_SIGNATURE: &str = "(no verifier output)";

/// Examples kept per cluster.
pub const EXAMPLES: usize = 5;

/// Failed runs with the same verifier signature and category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    pub signature: String,
    pub category: Category,
    /// Runs in the cluster.
    pub count: usize,
    /// The first [`EXAMPLES`] runs, in the order they were given.
    pub examples: Vec<Example>,
}

/// A pointer that `nlah inspect` opens: the run, and the child and step that placed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    pub run: PathBuf,
    pub task: String,
    /// Empty when the run itself (not one child) was placed.
    pub child: String,
    pub step: Option<usize>,
    /// The detector or `elimination` or `judge`.
    pub method: String,
}

/// Clusters the failed runs among `runs` (runs that passed are left out).
pub fn clusters(runs: &[RunDiagnosis]) -> Vec<Cluster> {
    let mut map: BTreeMap<(Category, String), Cluster> = BTreeMap::new();
    for r in runs {
        let Some(category) = r.category else { continue };
        let signature = r
            .signature
            .clone()
            .unwrap_or_else(|| NO_SIGNATURE.to_string());
        let c = map
            .entry((category, signature.clone()))
            .or_insert_with(|| Cluster {
                signature,
                category,
                count: 0,
                examples: Vec::new(),
            });
        c.count += 1;
        if c.examples.len() < EXAMPLES {
            c.examples.push(Example {
                run: r.path.clone(),
                task: r.task.clone(),
                child: r
                    .cause
                    .as_ref()
                    .map(|f| f.child.clone())
                    .unwrap_or_default(),
                step: r.cause.as_ref().and_then(|f| f.step),
                method: r.method.clone().unwrap_or_default(),
            });
        }
    }
    let mut out: Vec<Cluster> = map.into_values().collect();
    // BTreeMap order (category, signature) breaks ties; the sort is stable.
    out.sort_by_key(|c| std::cmp::Reverse(c.count));
    out
}

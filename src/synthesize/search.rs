//! `OUT/search.json`: the search's record, rewritten atomically after every step, so that a
//! search killed at any point continues where it was when the same command runs again.
//!
//! ```text
//! OUT/search.json                  this record: the tree's nodes, the iterations, costs
//! OUT/nodes/<n>/<harness>/         node n's harness, written from its git tree
//! OUT/nodes/<n>/rollouts/          node n's rollouts: an ablation matrix (matrix.json, cells/)
//! OUT/iterations/<k>/prompt.md     what the refiner was sent in iteration k
//! OUT/iterations/<k>/answer.md     what it answered
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Target;
use super::critic::FailedStep;
use super::error::SynthError;

pub const SCHEMA: &str = "nlah.synthesize/1";
pub const FILE: &str = "search.json";

/// What makes two invocations the same search (rerunning continues it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub harness: PathBuf,
    pub tasks: PathBuf,
    pub target: Target,
    pub model: String,
    pub refiner: String,
    pub rollouts: usize,
    pub max_steps: u64,
    pub seed: u64,
}

impl Identity {
    pub fn describe(&self) -> String {
        format!(
            "target {} of {} on {} with {} (refiner {}), {} rollouts of at most {} actions, seed {}",
            self.target.name(),
            self.harness.display(),
            self.tasks.display(),
            self.model,
            self.refiner,
            self.rollouts,
            self.max_steps,
            self.seed
        )
    }
}

/// One node of the tree: a version of the script (and the proposer's guidance).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub id: usize,
    pub parent: Option<usize>,
    /// The iteration that made it.
    pub iteration: usize,
    /// The git tree of the repository with this node's harness, written when the node is made.
    pub tree: String,
    /// Its commit on the search's branch, made once its rollouts are counted (its message
    /// states the score).
    #[serde(default)]
    pub commit: Option<String>,
    /// SHA-256 of the script.
    pub script_sha: String,
    /// The proposer's guidance (empty for target `policy`, or before the refiner wrote one).
    #[serde(default)]
    pub guidance: String,
    /// Counted over the node's rollouts: actions the environment accepted and refused, code
    /// errors (a fault of the script, counted as refused), rollouts that ended in another
    /// infrastructure error (not counted).
    #[serde(default)]
    pub legal: u64,
    #[serde(default)]
    pub illegal: u64,
    #[serde(default)]
    pub code_errors: u64,
    #[serde(default)]
    pub infra_errors: u64,
    /// Rollouts whose episode the environment ended as won or lost.
    #[serde(default)]
    pub rollouts_done: usize,
    /// The cost of its rollouts (USD).
    #[serde(default)]
    pub cost_usd: f64,
    /// The failed steps its rollouts left, up to the critic's five.
    #[serde(default)]
    pub failures: Vec<FailedStep>,
}

impl Node {
    pub fn evaluated(&self) -> bool {
        self.commit.is_some()
    }

    /// The legal-action rate, when it took any action.
    pub fn rate(&self) -> Option<f64> {
        let n = self.legal + self.illegal;
        (n > 0).then(|| self.legal as f64 / n as f64)
    }
}

/// What an iteration's refiner call went wrong with (the iteration is recorded, no node made).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    /// `no-code` (no script in the answer), `syntax` (the script does not parse), `unchanged`
    /// (the script and guidance of a node already in the tree), `model` (the refiner's model
    /// failed).
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Iteration {
    pub index: usize,
    /// The node refined (none for the first script).
    pub refined: Option<usize>,
    /// Thompson draws, per node id.
    #[serde(default)]
    pub draws: Vec<(usize, f64)>,
    /// `new` (first script), `check and proposer` or `proposer`.
    pub what: String,
    /// Failed steps the refiner was shown.
    #[serde(default)]
    pub shown: usize,
    pub refiner_cost_usd: f64,
    #[serde(default)]
    pub refiner_tokens: u64,
    /// The node it made.
    pub node: Option<usize>,
    pub fault: Option<Fault>,
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// A node's legal-action rate is 1.0.
    Solved,
    /// `--iterations` are spent.
    Iterations,
    /// `--max-cost` is spent.
    MaxCost,
    /// The refiner's model failed: the search stops cleanly; rerunning continues it.
    ModelFailed,
}

impl Stop {
    pub fn words(self) -> &'static str {
        match self {
            Stop::Solved => "a node reached a legal-action rate of 1.0",
            Stop::Iterations => "the iterations are spent",
            Stop::MaxCost => "--max-cost is spent",
            Stop::ModelFailed => "the refiner's model failed (rerun the command to continue)",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Search {
    pub schema: String,
    #[serde(flatten)]
    pub id: Identity,
    /// The repository holding the harness, the harness's folder in it, the commit the search
    /// started from and its branch.
    pub repo: PathBuf,
    pub rel: String,
    pub base: String,
    pub branch: String,
    /// The role the proposer's guidance is written for.
    pub role: String,
    pub created: String,
    pub nodes: Vec<Node>,
    pub iterations: Vec<Iteration>,
    #[serde(default)]
    pub stop: Option<Stop>,
    /// The node written into the harness at the end.
    #[serde(default)]
    pub written: Option<usize>,
}

impl Search {
    /// Everything spent so far: refiner calls and rollouts.
    pub fn cost(&self) -> f64 {
        self.iterations
            .iter()
            .map(|i| i.refiner_cost_usd)
            .sum::<f64>()
            + self.nodes.iter().map(|n| n.cost_usd).sum::<f64>()
    }

    /// The evaluated node with the best rate (ties: the earlier one).
    pub fn best(&self) -> Option<&Node> {
        self.nodes
            .iter()
            .filter(|n| n.evaluated())
            .fold(None::<&Node>, |acc, n| match (acc, n.rate()) {
                (None, _) => Some(n),
                (Some(a), Some(r)) if r > a.rate().unwrap_or(-1.0) => Some(n),
                (a, _) => a,
            })
    }

    /// The node the branch points at: the last one committed.
    pub fn tip(&self) -> Option<&str> {
        self.nodes.iter().rev().find_map(|n| n.commit.as_deref())
    }
}

pub fn path(out: &Path) -> PathBuf {
    out.join(FILE)
}

pub fn read(out: &Path) -> Result<Option<Search>, SynthError> {
    let p = path(out);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SynthError::io(&p)(e)),
    };
    let s: Search = serde_json::from_slice(&bytes).map_err(|e| SynthError::BadRecord {
        path: p.clone(),
        message: e.to_string(),
    })?;
    if s.schema != SCHEMA {
        return Err(SynthError::BadRecord {
            path: p,
            message: format!("schema `{}`, but this nlah reads `{SCHEMA}`", s.schema),
        });
    }
    Ok(Some(s))
}

pub fn write(out: &Path, s: &Search) -> Result<(), SynthError> {
    let p = path(out);
    let json = serde_json::to_vec_pretty(s).map_err(|e| SynthError::BadRecord {
        path: p.clone(),
        message: e.to_string(),
    })?;
    crate::atomic::write_durable(&p, &json).map_err(SynthError::io(&p))
}

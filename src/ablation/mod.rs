//! Ablation matrices: designs of variants (module toggles), cells (variant × task × model ×
//! seed), executors that run cells (a local pool, or Slurm job arrays), and the index reports
//! read.
//!
//! The output folder of a matrix:
//!
//! ```text
//! OUT/matrix.json            the matrix: harness, variants, tasks, models, seeds, every cell
//! OUT/cells/<cell-id>/       one run workspace per cell (its run.json is the source of truth)
//! OUT/index.sqlite           an index over the cells' run.json files, rebuilt at will
//! OUT/spend.json             what the matrix spent against its --max-cost (see `spend`)
//! OUT/slurm/                 scripts and logs of Slurm submissions
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::record::RunRecord;

pub const MATRIX_SCHEMA: &str = "nlah.matrix/1";

/// One variant of the harness: a name and exactly which modules are on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// `basic`, `+verifier`, `full`, `-verifier`, or a name from a design file.
    pub name: String,
    /// The modules enabled in this variant (all others off), sorted.
    pub modules: Vec<String>,
    /// The composed harness's version id (SHA-256 of its bytes).
    pub version: String,
}

/// One run of the matrix. Its id hashes the composed harness, the task content, the model spec
/// and the seed, so a cell keeps its identity across resumes and machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub id: String,
    pub index: usize,
    pub variant: String,
    pub task: String,
    pub task_path: PathBuf,
    /// The task set's name: the folder given as TASKS (for a single task folder, its own name).
    /// Empty in matrices written before it was recorded; reports then use the task's parent.
    #[serde(default)]
    pub task_set: String,
    pub task_hash: String,
    pub model: String,
    pub seed: u64,
}

/// The whole design, written once to `OUT/matrix.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Matrix {
    pub schema: String,
    pub harness: PathBuf,
    pub harness_name: String,
    /// The design's name: `one-at-a-time`, `leave-one-out`, `factorial`, or a file's.
    pub design: String,
    /// The variant tables and charts compare against by default.
    pub baseline: String,
    pub variants: Vec<Variant>,
    pub models: Vec<String>,
    pub seeds: u64,
    pub cells: Vec<Cell>,
    pub created: String,
}

/// A cell and, when it has finished, its run record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    pub cell: Cell,
    pub record: Option<RunRecord>,
}

pub mod cassettes;
pub mod design;
pub mod error;
pub mod executor;
pub mod index;
pub mod matrix;
pub mod resume;
pub mod spend;

//! A cassette per cell (`OUT/cassettes/<cell id>.jsonl`): a matrix run on a real model records
//! every model call of each cell, and a later invocation answers each cell from its own cassette,
//! offline and deterministically. The matrix keeps its model specs, so a replayed matrix has the
//! same cell ids, and its report the same rows, as the recorded one.
//!
//! Cassettes live beside the cells, not inside them: a cell's folder is its workspace, and the
//! calls of one child (a verifier's, say) are not for the others to read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Cell;
use super::error::AblationError;
use crate::engine::RunOptions;
use crate::model::replay::ReplayBackend;

/// The folder of an output folder's cassettes.
pub const DIR: &str = "cassettes";

/// What an invocation does with cassettes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cassettes {
    /// Record each cell's calls into this folder.
    Record(PathBuf),
    /// Answer each cell's calls from this folder (a recorded `OUT/cassettes`).
    Replay(PathBuf),
}

/// The cassette of one cell in `dir`.
pub fn path(dir: &Path, cell_id: &str) -> PathBuf {
    dir.join(format!("{cell_id}.jsonl"))
}

impl Cassettes {
    /// Whether a cell can run under these cassettes: a replay runs only the cells that were
    /// recorded (a matrix recorded in pieces replays as far as it got).
    pub fn covers(&self, cell: &Cell) -> bool {
        match self {
            Cassettes::Record(_) => true,
            Cassettes::Replay(dir) => path(dir, &cell.id).is_file(),
        }
    }

    /// Points a cell's run at its cassette. A recording starts afresh: the calls of an earlier,
    /// unfinished attempt of the cell are not part of the run that counts.
    pub fn apply(&self, cell: &Cell, o: &mut RunOptions) -> Result<(), AblationError> {
        match self {
            Cassettes::Record(dir) => {
                let file = path(dir, &cell.id);
                let io = |source| AblationError::Io {
                    path: file.clone(),
                    source,
                };
                std::fs::create_dir_all(dir).map_err(io)?;
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
                o.record = Some(file);
            }
            Cassettes::Replay(dir) => {
                let file = path(dir, &cell.id);
                let backend = ReplayBackend::open(&file).map_err(|e| AblationError::BadFile {
                    path: file.clone(),
                    message: e.to_string(),
                })?;
                o.chat_backend = Some(Arc::new(backend));
            }
        }
        Ok(())
    }
}

//! What is left to do in an output folder, and making a cell's folder ready to run again.
//!
//! A cell is finished when `OUT/cells/<id>/run.json` says `passed`, `failed` or `unverified`;
//! run.json is written atomically, so it is either the old or the new one, never half. A cell
//! whose run.json says `error` or `running`, or that has none, runs again: its folder, if not
//! empty, is first moved aside to `OUT/cells/<id>.attempt-<n>` and kept for inspection; only the
//! latest attempt of a cell is kept (each holds a whole workspace: sixty cells interrupted a few
//! times grew 32 MB of attempts next to 5.6 MB of results).

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::AblationError;
use crate::record::RunOutcome;

pub const CELLS_DIR: &str = "cells";
pub const RUN_JSON: &str = "run.json";
const LOCK_FILE: &str = ".lock";

/// The workspace folder of a cell.
pub fn cell_dir(out: &Path, id: &str) -> PathBuf {
    out.join(CELLS_DIR).join(id)
}

/// The run.json of a cell.
pub fn run_json(out: &Path, id: &str) -> PathBuf {
    cell_dir(out, id).join(RUN_JSON)
}

/// Whether an outcome is a result (the cell is done) rather than unfinished or an infrastructure
/// failure.
pub fn is_result(o: RunOutcome) -> bool {
    matches!(
        o,
        RunOutcome::Passed | RunOutcome::Failed | RunOutcome::Unverified
    )
}

/// Where a cell stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellState {
    /// No folder, or an empty one: runs in place.
    Fresh,
    /// A result: skipped.
    Finished(RunOutcome),
    /// `error`, `running`, or a folder without a readable run.json: moved aside, then run.
    Unfinished(Option<RunOutcome>),
}

impl CellState {
    pub fn is_finished(self) -> bool {
        matches!(self, CellState::Finished(_))
    }
}

#[derive(Deserialize)]
struct Head {
    outcome: RunOutcome,
}

/// Reads just the outcome of a run.json.
pub fn outcome_of(path: &Path) -> Option<RunOutcome> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice::<Head>(&bytes)
        .ok()
        .map(|h| h.outcome)
}

/// The state of one cell, from its files.
pub fn state(out: &Path, id: &str) -> CellState {
    let dir = cell_dir(out, id);
    match outcome_of(&dir.join(RUN_JSON)) {
        Some(o) if is_result(o) => CellState::Finished(o),
        Some(o) => CellState::Unfinished(Some(o)),
        None if is_empty_or_missing(&dir) => CellState::Fresh,
        None => CellState::Unfinished(None),
    }
}

fn is_empty_or_missing(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => true,
    }
}

/// Makes a cell's folder ready for a new attempt: a folder with anything in it is moved aside to
/// `<id>.attempt-<n>`, `n` one more than the highest earlier attempt, and the earlier attempts
/// are removed. Returns where it went, if it moved.
pub fn clear(out: &Path, id: &str) -> Result<Option<PathBuf>, AblationError> {
    let dir = cell_dir(out, id);
    if is_empty_or_missing(&dir) {
        return Ok(None);
    }
    let parent = out.join(CELLS_DIR);
    let earlier = attempts(&parent, id)?;
    let n = earlier.iter().map(|(k, _)| *k).max().unwrap_or(0) + 1;
    let to = parent.join(format!("{id}.attempt-{n}"));
    // rename is atomic: an interruption leaves the folder either here or there.
    std::fs::rename(&dir, &to).map_err(AblationError::io(&dir))?;
    for (_, old) in earlier {
        // Best effort: an attempt that cannot be removed stays, as all did before, and the
        // cell still runs.
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(Some(to))
}

/// The `<id>.attempt-<n>` folders in `cells` and their numbers. Only cells that run again pay
/// for this listing; fresh and finished ones never reach it.
fn attempts(cells: &Path, id: &str) -> Result<Vec<(u32, PathBuf)>, AblationError> {
    let prefix = format!("{id}.attempt-");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(cells).map_err(AblationError::io(cells))? {
        let entry = entry.map_err(AblationError::io(cells))?;
        let name = entry.file_name();
        let n = name
            .to_str()
            .and_then(|s| s.strip_prefix(&prefix))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(n) = n {
            out.push((n, entry.path()));
        }
    }
    Ok(out)
}

/// An exclusive lock on an output folder, held while a process schedules its cells; the kernel
/// drops it when the process dies, even by kill -9.
pub struct OutLock {
    _file: File,
}

impl OutLock {
    pub fn acquire(out: &Path) -> Result<OutLock, AblationError> {
        std::fs::create_dir_all(out).map_err(AblationError::io(out))?;
        let path = out.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(AblationError::io(&path))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor this function owns; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(AblationError::Locked(out.to_path_buf()));
            }
            return Err(AblationError::Io { path, source: e });
        }
        Ok(OutLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_moving_aside() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        assert_eq!(state(out, "a"), CellState::Fresh);
        std::fs::create_dir_all(cell_dir(out, "a")).unwrap();
        assert_eq!(state(out, "a"), CellState::Fresh);
        std::fs::write(cell_dir(out, "a").join("TASK.md"), "x").unwrap();
        assert_eq!(state(out, "a"), CellState::Unfinished(None));
        std::fs::write(run_json(out, "a"), r#"{"outcome": "running", "x": 1}"#).unwrap();
        assert_eq!(
            state(out, "a"),
            CellState::Unfinished(Some(RunOutcome::Running))
        );
        let moved = clear(out, "a").unwrap().unwrap();
        assert!(moved.ends_with("a.attempt-1"));
        assert_eq!(state(out, "a"), CellState::Fresh);
        std::fs::create_dir_all(cell_dir(out, "a")).unwrap();
        std::fs::write(run_json(out, "a"), r#"{"outcome": "error"}"#).unwrap();
        assert!(clear(out, "a").unwrap().unwrap().ends_with("a.attempt-2"));
        assert!(
            !out.join("cells/a.attempt-1").exists(),
            "only the latest attempt is kept"
        );
        std::fs::create_dir_all(cell_dir(out, "a")).unwrap();
        std::fs::write(run_json(out, "a"), r#"{"outcome": "failed"}"#).unwrap();
        assert_eq!(state(out, "a"), CellState::Finished(RunOutcome::Failed));
    }

    #[test]
    fn only_the_latest_attempt_of_a_cell_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        // Another cell whose id starts alike keeps its attempts.
        for (cell, n) in [("ab", 1), ("a", 5)] {
            let old = out.join(format!("cells/{cell}.attempt-{n}"));
            std::fs::create_dir_all(&old).unwrap();
            std::fs::write(old.join("run.json"), r#"{"outcome": "error"}"#).unwrap();
        }
        for expect in 6..=8 {
            std::fs::create_dir_all(cell_dir(out, "a")).unwrap();
            std::fs::write(run_json(out, "a"), r#"{"outcome": "running"}"#).unwrap();
            let moved = clear(out, "a").unwrap().unwrap();
            assert!(moved.ends_with(format!("a.attempt-{expect}")), "{moved:?}");
        }
        let mut left: Vec<String> = std::fs::read_dir(out.join("cells"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["a.attempt-8", "ab.attempt-1"]);
    }

    #[test]
    fn one_scheduler_per_folder() {
        let dir = tempfile::tempdir().unwrap();
        let a = OutLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            OutLock::acquire(dir.path()),
            Err(AblationError::Locked(_))
        ));
        drop(a);
        assert!(OutLock::acquire(dir.path()).is_ok());
    }
}

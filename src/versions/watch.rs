//! Re-checking a harness on every save. The folder is watched, not its files: editors that
//! save by writing a temporary file and renaming it over the original, or by moving the
//! original aside first, replace the file the watch would otherwise follow.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::VersionsError;
use crate::check::{self, Target};
use crate::diag::Diagnostic;
use crate::harness::{self, Toggles};

#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub root: PathBuf,
    pub toggles: Toggles,
    /// Also compose the harness for the toggles, for `--show`.
    pub show: bool,
    /// Quiet time after the last change before checking: a save is often several events.
    pub debounce: Duration,
}

/// One check of the harness.
#[derive(Debug, Clone)]
pub struct CheckRound {
    pub at: DateTime<Local>,
    /// The harness folder's name.
    pub harness: String,
    /// Sorted, without duplicates.
    pub diags: Vec<Diagnostic>,
    pub errors: usize,
    pub warnings: usize,
    /// The composed version id for the toggles, when it composes.
    pub version: Option<String>,
    /// The modules the toggles enable.
    pub modules: Vec<String>,
    /// The composed SKILL.md (with `show`), when the composition has no errors.
    pub composed: Option<String>,
    /// The files whose change caused this check (empty for the first).
    pub changed: Vec<PathBuf>,
}

/// Checks the harness as `nlah check` does, plus the composition for the toggles.
pub fn check(opts: &WatchOptions, changed: Vec<PathBuf>) -> CheckRound {
    let root = &opts.root;
    let targets = check::discover(root).unwrap_or_else(|_| vec![Target::Skill(root.clone())]);
    let mut all = check::check_all(&targets);
    let mut version = None;
    let mut composed = None;
    let mut modules = Vec::new();
    if let Ok((c, _, diags)) = harness::build(root, &opts.toggles) {
        let clean = !diags.has_errors();
        // Toggle problems (an unknown `--with`) and what only this composition shows.
        all.extend(diags);
        version = Some(c.version().to_string());
        modules = c.modules.clone();
        if opts.show && clean {
            composed = Some(c.text.as_str().to_string());
        }
    }
    let mut diags = all.into_sorted();
    diags.dedup_by(|a, b| a.pos == b.pos && a.message == b.message);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    CheckRound {
        at: Local::now(),
        harness: root.file_name().map_or_else(
            || root.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        warnings: diags.len() - errors,
        errors,
        diags,
        version,
        modules,
        composed,
        changed,
    }
}

/// Files editors write beside the ones they save; their changes alone do not warrant a check.
fn is_noise(p: &Path) -> bool {
    if p.components().any(|c| c.as_os_str() == ".git") {
        return true;
    }
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.ends_with('~')
        || name.starts_with(".#")
        || name == "4913"
        || [".swp", ".swx", ".swo"].iter().any(|s| name.ends_with(s))
}

/// The inode of the folder, to notice when it was replaced.
fn identity(root: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(root).ok().map(|m| (m.dev(), m.ino()))
}

/// Checks once, then on every change until `on_report` returns `false` or the process is
/// interrupted.
pub fn watch(
    opts: &WatchOptions,
    mut on_report: impl FnMut(CheckRound) -> bool,
) -> Result<(), VersionsError> {
    let root = opts.root.clone();
    let werr = |e: notify::Error| VersionsError::Watch {
        path: root.clone(),
        message: e.to_string(),
    };
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher: RecommendedWatcher = notify::recommended_watcher(move |res| {
        let _ = tx.send(res);
    })
    .map_err(werr)?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(werr)?;
    let mut watched = identity(&root);
    if !on_report(check(opts, Vec::new())) {
        return Ok(());
    }
    let longest = opts.debounce * 3;
    loop {
        let mut changed: Vec<PathBuf> = Vec::new();
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(ev) => take(ev, &mut changed),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        // The folder itself was replaced or came back: follow the new one.
        let now = identity(&root);
        let replaced = now != watched;
        if replaced {
            let _ = watcher.unwatch(&root);
            if now.is_some() {
                watcher
                    .watch(&root, RecursiveMode::Recursive)
                    .map_err(werr)?;
            }
            watched = now;
        }
        if changed.is_empty() && !replaced {
            continue;
        }
        // Let the save finish: wait for a quiet moment, but not forever.
        let first = Instant::now();
        while first.elapsed() < longest {
            match rx.recv_timeout(opts.debounce) {
                Ok(ev) => take(ev, &mut changed),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
        changed.sort();
        changed.dedup();
        if !replaced && changed.iter().all(|p| is_noise(p)) {
            continue;
        }
        changed.retain(|p| !is_noise(p));
        if !on_report(check(opts, changed)) {
            return Ok(());
        }
    }
}

/// Collects the paths of an event that changed something (reads are not changes: the check
/// itself reads every file).
fn take(ev: notify::Result<notify::Event>, into: &mut Vec<PathBuf>) {
    let Ok(ev) = ev else {
        return;
    };
    use notify::EventKind as K;
    if matches!(ev.kind, K::Access(_) | K::Other) {
        return;
    }
    into.extend(ev.paths);
}

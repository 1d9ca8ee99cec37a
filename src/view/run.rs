//! A run's data for the page: its header and usage, one page of its events, one child's
//! conversation, and its workspace's commits, each with its diff (git2, read-only).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::ViewError;
use crate::inspect::{self, RunDir, timeline};
use crate::record::EventKind;

/// Runs read once and kept while their files stay the same: paging through 10,000 events
/// must not parse the log again for every page.
#[derive(Default)]
pub struct RunCache {
    runs: Mutex<HashMap<PathBuf, (Stamp, Arc<RunDir>)>>,
}

/// Size, mtime and inode of run.json and events.jsonl (an atomic rewrite makes a new inode).
type Stamp = [(u64, i64, u64); 2];

fn stamp(root: &Path) -> Stamp {
    let one = |p: PathBuf| {
        std::fs::metadata(p)
            .map(|m| {
                (
                    m.size(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000,
                    m.ino(),
                )
            })
            .unwrap_or_default()
    };
    [
        one(root.join("run.json")),
        one(root.join("history/events.jsonl")),
    ]
}

/// At most this many runs are kept.
const KEPT: usize = 16;

impl RunCache {
    pub fn open(&self, root: &Path) -> Result<Arc<RunDir>, ViewError> {
        let now = stamp(root);
        if let Ok(runs) = self.runs.lock()
            && let Some((s, run)) = runs.get(root)
            && *s == now
        {
            return Ok(run.clone());
        }
        let run = Arc::new(RunDir::open(root)?);
        if let Ok(mut runs) = self.runs.lock() {
            if runs.len() >= KEPT {
                runs.clear();
            }
            runs.insert(root.to_path_buf(), (now, run.clone()));
        }
        Ok(run)
    }
}

/// The child an event belongs to, if any.
fn child_of(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::ChildStarted { child, .. }
        | EventKind::ChildFinished { child, .. }
        | EventKind::ModelCall { child, .. }
        | EventKind::ToolCall { child, .. }
        | EventKind::GatePassed { child, .. }
        | EventKind::GateFailed { child, .. }
        | EventKind::Retry { child, .. }
        | EventKind::CandidateSelected { child, .. } => Some(child),
        _ => None,
    }
}

/// The header, the outcome, usage per stage and child, the children, and how many events of
/// each kind there are; the events themselves come a page at a time.
pub fn summary(cache: &RunCache, root: &Path) -> Result<Value, ViewError> {
    let run = cache.open(root)?;
    let tl = timeline::build(&run, timeline::Options::default());
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for e in &run.events {
        *kinds.entry(inspect::event_name(&e.kind)).or_default() += 1;
    }
    let note = match (&run.record, run.events.last().map(|e| &e.kind)) {
        (Some(_), _) => None,
        (None, Some(EventKind::RunFinished { .. })) => {
            Some("no run.json, though the history says the run finished")
        }
        (None, _) => Some(
            "no run.json yet: the run is still going, or it was stopped before it finished (the history below is what it wrote)",
        ),
    };
    Ok(json!({
        "path": root.display().to_string(),
        "header": tl.header,
        "record": run.record,
        "note": note,
        "events": run.events.len(),
        "kinds": kinds,
        "children": run.children(),
        "usage": tl.usage,
    }))
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Event names (`tool-call`, `gate-failed`, …); empty: all.
    pub kinds: Vec<String>,
    pub child: Option<String>,
}

/// One page of the events the filter keeps, with every field of each.
pub fn events(
    cache: &RunCache,
    root: &Path,
    f: &EventFilter,
    offset: usize,
    limit: usize,
) -> Result<Value, ViewError> {
    let run = cache.open(root)?;
    let mut total = 0usize;
    let mut rows = Vec::new();
    for e in &run.events {
        let name = inspect::event_name(&e.kind);
        if !f.kinds.is_empty() && !f.kinds.contains(&name) {
            continue;
        }
        if let Some(c) = &f.child
            && child_of(&e.kind) != Some(c.as_str())
        {
            continue;
        }
        if total >= offset && rows.len() < limit {
            rows.push(json!({
                "seq": e.seq,
                "t": e.t,
                "t_ms": run.offset_ms(e),
                "event": name,
                "child": child_of(&e.kind),
                "text": inspect::describe(&e.kind),
                "data": e.kind,
            }));
        }
        total += 1;
    }
    Ok(json!({ "total": total, "offset": offset, "events": rows }))
}

/// One child: what it was asked (TASK.md), its conversation (transcript.jsonl, one JSON value
/// per line), and what it answered (RESPONSE.md).
pub fn child(cache: &RunCache, root: &Path, id: &str) -> Result<Value, ViewError> {
    let run = cache.open(root)?;
    let Some(info) = run.children().into_iter().find(|c| c.id == id) else {
        return Err(ViewError::NotFound(format!(
            "{}: the run has no child `{id}`",
            root.display()
        )));
    };
    let transcript: Vec<Value> = run
        .child_file(id, "transcript.jsonl")
        .map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(json!({
        "info": info,
        "task": run.child_file(id, "TASK.md"),
        "response": run.child_file(id, "RESPONSE.md"),
        "transcript": transcript,
    }))
}

fn git(root: &Path) -> impl Fn(git2::Error) -> ViewError + '_ {
    move |source| ViewError::Git {
        path: root.to_path_buf(),
        source,
    }
}

/// The commits of the workspace's branch, oldest first, one page at a time.
pub fn commits(root: &Path, offset: usize, limit: usize) -> Result<Value, ViewError> {
    let repo = git2::Repository::open(root).map_err(git(root))?;
    let mut walk = repo.revwalk().map_err(git(root))?;
    walk.push_head().map_err(git(root))?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
        .map_err(git(root))?;
    let ids: Vec<git2::Oid> = walk.filter_map(Result::ok).collect();
    let mut rows = Vec::new();
    for oid in ids.iter().skip(offset).take(limit) {
        let c = repo.find_commit(*oid).map_err(git(root))?;
        rows.push(json!({
            "id": oid.to_string(),
            "short": oid.to_string()[..10].to_string(),
            "summary": c.summary().unwrap_or_default(),
            "time": c.time().seconds(),
        }));
    }
    Ok(json!({ "total": ids.len(), "offset": offset, "commits": rows }))
}

/// What one patch may hold before it is cut: the page shows diffs, not whole data files.
const PATCH_MAX: usize = 256 * 1024;

/// One commit and what it changed against its first parent, file by file.
pub fn commit(root: &Path, id: &str) -> Result<Value, ViewError> {
    let oid = git2::Oid::from_str(id)
        .map_err(|_| ViewError::BadRequest(format!("`{id}`: not a commit id")))?;
    let repo = git2::Repository::open(root).map_err(git(root))?;
    let c = repo
        .find_commit(oid)
        .map_err(|_| ViewError::NotFound(format!("{}: no commit {id}", root.display())))?;
    let tree = c.tree().map_err(git(root))?;
    let parent = c.parent(0).ok().and_then(|p| p.tree().ok());
    let diff = repo
        .diff_tree_to_tree(parent.as_ref(), Some(&tree), None)
        .map_err(git(root))?;
    let mut files = Vec::new();
    for i in 0..diff.deltas().len() {
        let Some(delta) = diff.get_delta(i) else {
            continue;
        };
        let path = delta
            .new_file()
            .path()
            .or_else(|| delta.old_file().path())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let status = format!("{:?}", delta.status()).to_lowercase();
        let (mut text, mut adds, mut dels, mut binary) = (String::new(), 0, 0, false);
        if let Ok(Some(mut patch)) = git2::Patch::from_diff(&diff, i) {
            if let Ok((_, a, d)) = patch.line_stats() {
                (adds, dels) = (a, d);
            }
            binary = delta.flags().is_binary();
            if let Ok(buf) = patch.to_buf() {
                text = String::from_utf8_lossy(&buf).into_owned();
            }
        }
        let cut = text.len() > PATCH_MAX;
        if cut {
            let mut at = PATCH_MAX;
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
        }
        files.push(json!({
            "path": path,
            "status": status,
            "additions": adds,
            "deletions": dels,
            "binary": binary,
            "patch": text,
            "cut": cut,
        }));
    }
    Ok(json!({
        "id": oid.to_string(),
        "summary": c.summary().unwrap_or_default(),
        "message": c.message().unwrap_or_default(),
        "parent": c.parent_id(0).ok().map(|p| p.to_string()),
        "time": c.time().seconds(),
        "files": files,
    }))
}

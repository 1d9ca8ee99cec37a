//! The run workspace: a git repository per run, one commit per state transition.
//!
//! Layout: `TASK.md`, `SKILL.md` (the composed harness), `RESPONSE.md`, `repo/` (the task's
//! files), `scripts/` (the harness's scripts), `artifacts/`, `children/<id>/`,
//! `history/events.jsonl`, `run.json`.

mod folder;
pub mod git_dirs;
pub mod history;
pub mod ignore_rules;
pub mod index_file;
pub mod objects;
pub mod refs;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::Repository;

use crate::atomic;
use crate::record::{Event, EventKind};
use git_dirs::GitDirs;
pub use history::EventLog;
use snapshot::Snapshot;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0}: the workspace folder exists and is not empty")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Files git never records: scratch space of tool commands.
const GITIGNORE: &str = ".tmp/\n.candidates/\n";

pub struct Workspace {
    pub root: PathBuf,
    git: Mutex<Git>,
    pub log: EventLog,
}

/// The repository and what its last commit recorded. A run writes its repository without
/// libgit2; the handle is opened when something reads the history (candidates, the story).
struct Git {
    dirs: GitDirs,
    repo: Option<Repository>,
    snapshot: Snapshot,
}

impl Git {
    fn repo(&mut self, root: &Path) -> Result<&Repository, WorkspaceError> {
        match &mut self.repo {
            Some(repo) => Ok(repo),
            empty => Ok(empty.insert(Repository::open(root)?)),
        }
    }
}

impl Workspace {
    /// Creates a fresh workspace at `root` (which must not exist or be empty).
    pub fn create(root: &Path) -> Result<Workspace, WorkspaceError> {
        if root.exists() && std::fs::read_dir(root).map_err(io(root))?.next().is_some() {
            return Err(WorkspaceError::Exists(root.to_path_buf()));
        }
        for dir in ["", "artifacts", "children", "history", "repo", ".tmp"] {
            let p = root.join(dir);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let root = root.canonicalize().map_err(io(root))?;
        let dirs = init_repo(&root)?;
        let gi = root.join(".gitignore");
        atomic::write(&gi, GITIGNORE.as_bytes()).map_err(io(&gi))?;
        let log = EventLog::open(&root.join("history/events.jsonl")).map_err(io(&root))?;
        Ok(Workspace {
            root,
            git: Mutex::new(Git {
                dirs,
                repo: None,
                snapshot: Snapshot::default(),
            }),
            log,
        })
    }

    /// The absolute path of a workspace-relative path.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes a workspace file atomically.
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> Result<(), WorkspaceError> {
        let p = self.path(rel);
        atomic::write(&p, bytes.as_ref()).map_err(io(&p))
    }

    /// Writes a workspace file atomically and durably (a finished run's record).
    pub fn write_durable(&self, rel: &str, bytes: impl AsRef<[u8]>) -> Result<(), WorkspaceError> {
        let p = self.path(rel);
        atomic::write_durable(&p, bytes.as_ref()).map_err(io(&p))
    }

    /// Appends an event to the history.
    pub fn event(&self, kind: EventKind) -> Result<Event, WorkspaceError> {
        self.log.append(kind).map_err(io(self.log.path()))
    }

    /// Records the whole workspace as one commit named for the transition it closes. Nothing is
    /// synced here: appended events survive a killed process as they are; [`Workspace::sync`]
    /// makes a finished run durable against losing the machine.
    pub fn commit(&self, message: &str) -> Result<git2::Oid, WorkspaceError> {
        let mut git = self.git.lock().unwrap_or_else(|p| p.into_inner());
        let Git { dirs, snapshot, .. } = &mut *git;
        snapshot.commit(dirs, &self.root, message)
    }

    /// The end of a run: the index is written to match the last commit (so `git status` in the
    /// workspace is clean) and the history is flushed to disk.
    pub fn sync(&self) -> Result<(), WorkspaceError> {
        {
            let git = self.git.lock().unwrap_or_else(|p| p.into_inner());
            git.snapshot.write_index(&git.dirs)?;
        }
        self.log.sync().map_err(io(self.log.path()))
    }

    /// The commit messages from the first to the last: the story of the run.
    pub fn story(&self) -> Result<Vec<String>, WorkspaceError> {
        let mut git = self.git.lock().unwrap_or_else(|p| p.into_inner());
        story(git.repo(&self.root)?)
    }

    /// Runs `f` with the repository (for branches of candidates).
    pub fn with_repo<T>(
        &self,
        f: impl FnOnce(&Repository) -> Result<T, WorkspaceError>,
    ) -> Result<T, WorkspaceError> {
        let mut git = self.git.lock().unwrap_or_else(|p| p.into_inner());
        f(git.repo(&self.root)?)
    }
}

/// The configuration of a workspace repository. Task files may carry CRLFs; the workspace
/// records bytes. The commits are the record of a run, so no reflog is kept beside them.
const CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = false\n\tautocrlf = false\n";

/// Makes the repository of a new workspace, on branch `main`: the folders and two files git
/// itself starts from. (libgit2's `init` also probes the file system and rewrites its config once
/// per setting, which costs more than all the commits of a short run.)
fn init_repo(root: &Path) -> Result<GitDirs, WorkspaceError> {
    let git = root.join(".git");
    for dir in ["objects/info", "objects/pack", "refs/heads", "refs/tags"] {
        let p = git.join(dir);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    for (name, text) in [("HEAD", "ref: refs/heads/main\n"), ("config", CONFIG)] {
        let p = git.join(name);
        std::fs::write(&p, text).map_err(io(&p))?;
    }
    Ok(GitDirs::plain(root))
}

/// Commits the whole work tree of `repo` (additions, edits, deletions) on HEAD, once (a
/// candidate's worktree); the index is left as it was.
pub fn commit_all(repo: &Repository, message: &str) -> Result<git2::Oid, WorkspaceError> {
    let root = repo
        .workdir()
        .ok_or_else(|| git2::Error::from_str("a bare repository has no files to commit"))?;
    Snapshot::default().commit(&GitDirs::of(repo), root, message)
}

/// The first lines of the commit messages on HEAD, oldest first.
pub fn story(repo: &Repository) -> Result<Vec<String>, WorkspaceError> {
    let mut walk = repo.revwalk()?;
    walk.push_head()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    let mut out = Vec::new();
    for oid in walk {
        let c = repo.find_commit(oid?)?;
        out.push(c.summary().unwrap_or_default().to_string());
    }
    Ok(out)
}

/// Runs the git command line in `dir`; its standard output, after asserting it succeeded.
#[cfg(test)]
pub(crate) fn git_cli(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_tell_the_story() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::create(&dir.path().join("w")).unwrap();
        ws.write("TASK.md", "do it").unwrap();
        ws.event(EventKind::Error {
            class: "x".into(),
            message: "y".into(),
        })
        .unwrap();
        ws.commit("run started").unwrap();
        ws.write("artifacts/a.txt", "a").unwrap();
        std::fs::remove_file(ws.path("TASK.md")).unwrap();
        ws.commit("stage plan passed").unwrap();
        assert_eq!(ws.story().unwrap(), ["run started", "stage plan passed"]);
        let events = history::read(&ws.path("history/events.jsonl")).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].seq, 1);
        assert!(
            Workspace::create(&ws.root).is_err(),
            "an existing workspace is never reused"
        );
        ws.with_repo(|r| {
            let head = r.head()?.peel_to_tree()?;
            assert!(
                head.get_path(Path::new("TASK.md")).is_err(),
                "deletions are committed"
            );
            assert!(head.get_path(Path::new(".tmp")).is_err());
            Ok(())
        })
        .unwrap();
    }
}

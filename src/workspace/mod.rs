//! The run workspace: a git repository per run, one commit per state transition.
//!
//! Layout: `TASK.md`, `SKILL.md` (the composed harness), `RESPONSE.md`, `repo/` (the task's
//! files), `scripts/` (the harness's scripts), `artifacts/`, `children/<id>/`,
//! `history/events.jsonl`, `run.json`.

pub mod beneath;
mod folder;
pub mod history;
pub mod ignore_rules;
pub mod objects;
pub mod refs;
pub mod snapshot;
mod stream_pack;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::Repository;

use crate::atomic;
use crate::record::{Event, EventKind};
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
    /// The branch a workspace commits on no longer holds the commit the workspace last put
    /// there: something else moved it, and a commit on top would hide or lose that move.
    #[error(
        "{branch} was moved behind the workspace's back: expected {}, found {}",
        commit_or_unborn(expected),
        commit_or_unborn(found)
    )]
    BranchMoved {
        branch: String,
        expected: Option<git2::Oid>,
        found: Option<git2::Oid>,
    },
    #[error("{0}: not a commit id")]
    BadRef(PathBuf),
    /// A link stands where the runtime writes: something in the workspace (a child's command)
    /// put it there. Nothing was written through it.
    #[error(
        "{path}: a symbolic link stands where the runtime writes; nothing was written through it"
    )]
    PlantedLink { path: PathBuf },
}

impl From<beneath::BeneathError> for WorkspaceError {
    fn from(e: beneath::BeneathError) -> Self {
        match e {
            beneath::BeneathError::Link { path } => WorkspaceError::PlantedLink { path },
            beneath::BeneathError::Outside { path } => WorkspaceError::Io {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a path inside the workspace",
                ),
            },
            beneath::BeneathError::Io { path, source } => WorkspaceError::Io { path, source },
        }
    }
}

impl WorkspaceError {
    /// Whether the error shows that something changed the workspace behind the runtime's back
    /// (a planted link, a moved branch): the run's record would not be the runtime's.
    pub fn is_tampering(&self) -> bool {
        matches!(
            self,
            WorkspaceError::PlantedLink { .. } | WorkspaceError::BranchMoved { .. }
        )
    }
}

fn commit_or_unborn(oid: &Option<git2::Oid>) -> String {
    oid.map_or_else(|| "no commit (unborn)".to_string(), |o| o.to_string())
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

/// The repository and what its last commit recorded.
struct Git {
    repo: Repository,
    snapshot: Snapshot,
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
        init_repo(&root)?;
        let repo = Repository::open(&root)?;
        let gi = root.join(".gitignore");
        atomic::write(&gi, GITIGNORE.as_bytes()).map_err(io(&gi))?;
        let log = EventLog::open(&root.join("history/events.jsonl")).map_err(io(&root))?;
        Ok(Workspace {
            root,
            git: Mutex::new(Git {
                repo,
                snapshot: Snapshot::default(),
            }),
            log,
        })
    }

    /// The absolute path of a workspace-relative path.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes a workspace file atomically, following no link a child could have planted on the
    /// way ([`beneath`]).
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> Result<(), WorkspaceError> {
        beneath::write(&self.root, Path::new(rel), bytes.as_ref(), false).map_err(Into::into)
    }

    /// Writes a workspace file atomically and durably (a finished run's record).
    pub fn write_durable(&self, rel: &str, bytes: impl AsRef<[u8]>) -> Result<(), WorkspaceError> {
        beneath::write(&self.root, Path::new(rel), bytes.as_ref(), true).map_err(Into::into)
    }

    /// Appends an event to the history.
    pub fn event(&self, kind: EventKind) -> Result<Event, WorkspaceError> {
        let _p = crate::profile::phase(crate::profile::Phase::Event);
        self.log.append(kind).map_err(io(self.log.path()))
    }

    /// Records the whole workspace as one commit named for the transition it closes. Nothing is
    /// synced here: appended events survive a killed process as they are; [`Workspace::sync`]
    /// makes a finished run durable against losing the machine.
    pub fn commit(&self, message: &str) -> Result<git2::Oid, WorkspaceError> {
        let _p = crate::profile::phase(crate::profile::Phase::Commit);
        let mut git = self.git.lock().unwrap_or_else(|p| p.into_inner());
        let Git { repo, snapshot } = &mut *git;
        let commit = snapshot.commit(repo, &self.root, message)?;
        if snapshot.take_repacked() {
            // libgit2 keeps the packs it has seen listed even once they are gone: a fresh handle
            // looks objects up in the consolidated pack only.
            *repo = Repository::open(&self.root)?;
        }
        Ok(commit)
    }

    /// The end of a run: packs are merged if other writers left more than git's limit, the index
    /// is written to match the last commit (so `git status` in the workspace is clean) and the
    /// history is flushed to disk.
    pub fn sync(&self) -> Result<(), WorkspaceError> {
        let _p = crate::profile::phase(crate::profile::Phase::Sync);
        {
            let mut git = self.git.lock().unwrap_or_else(|p| p.into_inner());
            let Git { repo, snapshot } = &mut *git;
            snapshot.consolidate_packs()?;
            if snapshot.take_repacked() {
                *repo = Repository::open(&self.root)?;
            }
            snapshot.write_index(repo)?;
        }
        self.log.sync().map_err(io(self.log.path()))
    }

    /// The commit messages from the first to the last: the story of the run.
    pub fn story(&self) -> Result<Vec<String>, WorkspaceError> {
        let git = self.git.lock().unwrap_or_else(|p| p.into_inner());
        story(&git.repo)
    }

    /// Runs `f` with the repository (for branches of candidates).
    pub fn with_repo<T>(
        &self,
        f: impl FnOnce(&Repository) -> Result<T, WorkspaceError>,
    ) -> Result<T, WorkspaceError> {
        let git = self.git.lock().unwrap_or_else(|p| p.into_inner());
        f(&git.repo)
    }
}

/// The configuration of a workspace repository. Task files may carry CRLFs; the workspace
/// records bytes. The commits are the record of a run, so no reflog is kept beside them.
const CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = false\n\tautocrlf = false\n";

/// Makes the repository of a new workspace, on branch `main`: the folders and two files git
/// itself starts from. (libgit2's `init` also probes the file system and rewrites its config once
/// per setting, which costs more than all the commits of a short run.)
fn init_repo(root: &Path) -> Result<(), WorkspaceError> {
    // Built under another name and renamed into place, so that a kill at any moment leaves
    // either no `.git` or a whole one, never a folder git calls "not a git repository".
    let partial = root.join(".git.partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    for dir in ["objects/info", "objects/pack", "refs/heads", "refs/tags"] {
        let p = partial.join(dir);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    for (name, text) in [("HEAD", "ref: refs/heads/main\n"), ("config", CONFIG)] {
        let p = partial.join(name);
        std::fs::write(&p, text).map_err(io(&p))?;
    }
    let git = root.join(".git");
    std::fs::rename(&partial, &git).map_err(io(&git))
}

/// Commits the whole work tree of `repo` (additions, edits, deletions) on HEAD, once (a
/// candidate's worktree); the index is left as it was.
pub fn commit_all(repo: &Repository, message: &str) -> Result<git2::Oid, WorkspaceError> {
    let root = repo
        .workdir()
        .ok_or_else(|| git2::Error::from_str("a bare repository has no files to commit"))?;
    Snapshot::default().commit(repo, root, message)
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

/// Asserts that git's strictest check of the repository of the work tree `dir` passes: every
/// object well formed and every object the refs, HEADs and index name present.
#[cfg(test)]
pub(crate) fn assert_fsck(dir: &Path) {
    git_cli(dir, &["fsck", "--strict", "--full", "--no-progress"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packs (`.pack` files) in the workspace's object store.
    fn packs(ws: &Workspace) -> Vec<String> {
        std::fs::read_dir(ws.path(".git/objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".pack"))
            .collect()
    }

    #[test]
    fn a_long_run_stays_within_the_auto_pack_limit() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::create(&dir.path().join("w")).unwrap();
        // A project big enough that its pack is kept while the small ones are merged.
        for i in 0..1000 {
            ws.write(&format!("repo/pkg{}/m{i}.py", i / 10), format!("x = {i}\n"))
                .unwrap();
        }
        ws.commit("the project").unwrap();
        let project = packs(&ws);
        assert_eq!(project.len(), 1);
        let mut most = 0;
        for i in 0..130 {
            ws.write("artifacts/step.txt", format!("step {i}\n"))
                .unwrap();
            ws.commit(&format!("step {i}")).unwrap();
            let n = packs(&ws).len();
            assert!(n <= 50, "{n} packs after commit {i}");
            most = most.max(n);
        }
        assert_eq!(most, 50, "the limit is reached before packs are merged");
        let now = packs(&ws);
        assert!(
            now.contains(&project[0]),
            "the large pack is not rewritten: {now:?}"
        );
        // Every commit still readable, by libgit2 and by git.
        let story = ws.story().unwrap();
        assert_eq!(story.len(), 131);
        assert_eq!(story[130], "step 129");
        ws.with_repo(|r| {
            let head = r.head()?.peel_to_tree()?;
            let entry = head.get_path(Path::new("artifacts/step.txt"))?;
            assert_eq!(r.find_blob(entry.id())?.content(), b"step 129\n");
            let entry = head.get_path(Path::new("repo/pkg0/m1.py"))?;
            assert_eq!(r.find_blob(entry.id())?.content(), b"x = 1\n");
            Ok(())
        })
        .unwrap();
        let count = git_cli(&ws.root, &["count-objects", "-v"]);
        assert!(count.starts_with("count: 0\n"), "nothing loose: {count}");
        ws.sync().unwrap();
        assert_eq!(git_cli(&ws.root, &["status", "--porcelain"]), "");
        assert_fsck(&ws.root);
    }

    #[test]
    fn the_configured_auto_pack_limit_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::create(&dir.path().join("w")).unwrap();
        git_cli(&ws.root, &["config", "gc.autoPackLimit", "4"]);
        for i in 0..20 {
            ws.write("artifacts/a.txt", format!("{i}\n")).unwrap();
            ws.commit(&format!("step {i}")).unwrap();
            assert!(packs(&ws).len() <= 4, "after commit {i}: {:?}", packs(&ws));
        }
        assert_eq!(ws.story().unwrap().len(), 20);
        assert_fsck(&ws.root);
    }

    #[test]
    fn a_branch_moved_behind_the_workspaces_back_fails_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::create(&dir.path().join("w")).unwrap();
        ws.write("a.txt", "1").unwrap();
        ws.commit("one").unwrap();
        ws.write("a.txt", "2").unwrap();
        let second = ws.commit("two").unwrap();
        git_cli(&ws.root, &["update-ref", "refs/heads/main", "HEAD~1"]);
        ws.write("a.txt", "3").unwrap();
        match ws.commit("three") {
            Err(WorkspaceError::BranchMoved {
                branch,
                expected,
                found,
            }) => {
                assert_eq!(branch, "refs/heads/main");
                assert_eq!(expected, Some(second));
                assert_ne!(found, Some(second));
            }
            other => panic!("expected BranchMoved, got {other:?}"),
        }
        assert_eq!(
            ws.story().unwrap(),
            ["one"],
            "the branch is left where it was moved"
        );
        assert_fsck(&ws.root);
    }

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
        ws.sync().unwrap();
        assert_fsck(&ws.root);
    }
}

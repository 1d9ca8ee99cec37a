//! Moving the branch a workspace commits on, the way git does: write `<ref>.lock`, rename it over
//! the ref. Done here rather than through libgit2, whose reference update rereads the
//! configuration and the packed refs and looks the new commit up in the object database, which
//! costs more than the commit it records.

use std::io::Write;
use std::path::PathBuf;

use git2::{Oid, Repository};

use super::{WorkspaceError, io};

/// The ref HEAD names (or HEAD itself, when detached) and the commit it points to.
pub struct Branch {
    /// The ref's file: branches live in the common folder, a detached HEAD in the worktree's.
    path: PathBuf,
    /// The ref's name, for libgit2 when the ref is not a loose file.
    name: String,
    tip: Option<Oid>,
}

impl Branch {
    /// The branch HEAD names in `repo`, with its current commit (none on an unborn branch).
    pub fn of(repo: &Repository) -> Result<Branch, WorkspaceError> {
        let head = repo.find_reference("HEAD")?;
        let name = head.symbolic_target().unwrap_or("HEAD").to_string();
        let path = if name == "HEAD" {
            repo.path().join("HEAD")
        } else {
            repo.commondir().join(&name)
        };
        let tip = repo.refname_to_id(&name).ok();
        Ok(Branch { path, name, tip })
    }

    /// The branch's commit: read again from its file, in case something else moved it.
    pub fn tip(&mut self, repo: &Repository) -> Option<Oid> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                if let Ok(oid) = Oid::from_str(text.trim()) {
                    self.tip = Some(oid);
                }
            }
            // Packed away, or gone: ask libgit2.
            Err(_) => self.tip = repo.refname_to_id(&self.name).ok(),
        }
        self.tip
    }

    /// Points the branch at `commit`.
    pub fn set(&mut self, commit: Oid) -> Result<(), WorkspaceError> {
        let mut lock = self.path.clone().into_os_string();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        // `create_new`: a lock someone holds (or a crashed writer left) is not taken over.
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The first branch of its folder (`refs/heads/a/b`).
                if let Some(parent) = lock.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&lock)
            }
            opened => opened,
        }
        .map_err(io(&lock))?;
        let written = file
            .write_all(format!("{commit}\n").as_bytes())
            .map_err(io(&lock))
            .and_then(|()| std::fs::rename(&lock, &self.path).map_err(io(&self.path)));
        if written.is_err() {
            let _ = std::fs::remove_file(&lock);
        }
        written?;
        self.tip = Some(commit);
        Ok(())
    }
}

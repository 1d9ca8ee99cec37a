//! Reading and moving the branch a workspace commits on, the way git does: HEAD names the
//! branch, the branch's file (or `packed-refs`) holds its commit, and a move writes `<ref>.lock`
//! and renames it over the ref. Done here rather than through libgit2, whose reference update
//! rereads the configuration and the packed refs and looks the new commit up in the object
//! database, which costs more than the commit it records.

use std::io::Write;
use std::path::PathBuf;

use git2::Oid;

use super::git_dirs::GitDirs;
use super::{WorkspaceError, io};

/// The ref HEAD names (or HEAD itself, when detached) and the commit it points to.
pub struct Branch {
    /// The ref's file: branches live in the common folder, a detached HEAD in the worktree's.
    path: PathBuf,
    /// The ref's full name (`refs/heads/main`), as `packed-refs` lists it.
    name: String,
    packed_refs: PathBuf,
    tip: Option<Oid>,
}

impl Branch {
    /// The branch HEAD names; [`Branch::tip`] reads its commit.
    pub fn of(dirs: &GitDirs) -> Result<Branch, WorkspaceError> {
        let head = dirs.git.join("HEAD");
        let text = std::fs::read_to_string(&head).map_err(io(&head))?;
        let (name, path) = match text.strip_prefix("ref:") {
            Some(target) => {
                let name = target.trim().to_string();
                let path = dirs.common.join(&name);
                (name, path)
            }
            None => ("HEAD".to_string(), head),
        };
        Ok(Branch {
            path,
            name,
            packed_refs: dirs.common.join("packed-refs"),
            tip: None,
        })
    }

    /// The branch's commit: read again from its file, in case something else moved it.
    pub fn tip(&mut self) -> Option<Oid> {
        self.tip = match std::fs::read_to_string(&self.path) {
            // Unreadable content keeps the commit known before.
            Ok(text) => Oid::from_str(text.trim()).ok().or(self.tip),
            // Packed away (`git pack-refs`), or unborn.
            Err(_) => self.packed(),
        };
        self.tip
    }

    /// The branch's line in `packed-refs` (`<oid> <name>`), if it has one.
    fn packed(&self) -> Option<Oid> {
        let text = std::fs::read_to_string(&self.packed_refs).ok()?;
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with('^'))
            .find_map(|l| match l.split_once(' ') {
                Some((oid, name)) if name == self.name => Oid::from_str(oid).ok(),
                _ => None,
            })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::git_cli;

    #[test]
    fn reads_a_packed_branch_and_moves_it_loose() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        git_cli(root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("f"), "f").unwrap();
        git_cli(root, &["add", "f"]);
        git_cli(
            root,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "one",
            ],
        );
        git_cli(root, &["pack-refs", "--all"]);
        assert!(!root.join(".git/refs/heads/main").exists());
        let head = Oid::from_str(git_cli(root, &["rev-parse", "HEAD"]).trim()).unwrap();

        let mut branch = Branch::of(&GitDirs::plain(root)).unwrap();
        assert_eq!(branch.tip(), Some(head), "found in packed-refs");
        let tree = git_cli(root, &["rev-parse", "HEAD^{tree}"]);
        let next = git_cli(
            root,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit-tree",
                tree.trim(),
                "-p",
                "HEAD",
                "-m",
                "two",
            ],
        );
        let next = Oid::from_str(next.trim()).unwrap();
        branch.set(next).unwrap();
        assert_eq!(branch.tip(), Some(next), "the loose ref wins");
        assert_eq!(
            git_cli(root, &["rev-parse", "main"]).trim(),
            next.to_string()
        );
    }

    #[test]
    fn a_detached_head_is_its_own_ref() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = GitDirs::plain(dir.path());
        std::fs::create_dir_all(&dirs.git).unwrap();
        let oid = "0123456789012345678901234567890123456789";
        std::fs::write(dirs.git.join("HEAD"), format!("{oid}\n")).unwrap();
        let mut branch = Branch::of(&dirs).unwrap();
        assert_eq!(branch.tip(), Some(Oid::from_str(oid).unwrap()));
    }
}

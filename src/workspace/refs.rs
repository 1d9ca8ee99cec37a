//! Reading and moving the branch a workspace commits on, the way git does: HEAD names the
//! branch, the branch's file (or `packed-refs`) holds its commit, and a move takes
//! `<ref>.lock`, checks under it that the branch still holds the commit it was last seen at, then
//! writes the new one and renames the lock over the ref. A branch moved behind the writer's back
//! is an error ([`WorkspaceError::BranchMoved`]), never silently built upon or overwritten.
//!
//! Done here rather than through libgit2 for its cost, timed in a release build (median of 200
//! moves, the repository's handle kept open): libgit2's `reference_matching`, which checks the
//! previous value the same way, 0.073 ms with or without its check that the new commit exists
//! (it also reloads `packed-refs` and decides about a reflog from the configuration); this
//! module 0.012 ms. A whole commit of a small workspace takes 0.04–0.07 ms (`cargo bench
//! --bench run_overhead`), so libgit2 would about double it.

use std::io::Write;
use std::path::{Path, PathBuf};

use git2::Oid;

use super::{WorkspaceError, io};

/// The ref HEAD names (or HEAD itself, when detached) and the commit it points to.
pub struct Branch {
    /// The ref's file: branches live in the common folder, a detached HEAD in the worktree's.
    path: PathBuf,
    /// The ref's full name (`refs/heads/main`), as `packed-refs` lists it.
    name: String,
    packed_refs: PathBuf,
    /// The commit the branch held when this writer last read or moved it (`Some(None)`: unborn);
    /// `None` until first read.
    tip: Option<Option<Oid>>,
}

impl Branch {
    /// The branch HEAD names, in the repository whose HEAD is in `git_dir` and whose refs are in
    /// `common_dir` (they differ for a linked worktree only); [`Branch::tip`] reads its commit.
    pub fn of(git_dir: &Path, common_dir: &Path) -> Result<Branch, WorkspaceError> {
        let head = git_dir.join("HEAD");
        let text = std::fs::read_to_string(&head).map_err(io(&head))?;
        let (name, path) = match text.strip_prefix("ref:") {
            Some(target) => {
                let name = target.trim().to_string();
                let path = common_dir.join(&name);
                (name, path)
            }
            None => ("HEAD".to_string(), head),
        };
        Ok(Branch {
            path,
            name,
            packed_refs: common_dir.join("packed-refs"),
            tip: None,
        })
    }

    /// The branch's commit, as this writer last saw it: read from disk the first time only, so
    /// that the next move can tell whether anything else moved the branch since.
    pub fn tip(&mut self) -> Result<Option<Oid>, WorkspaceError> {
        match self.tip {
            Some(tip) => Ok(tip),
            None => {
                let tip = self.read()?;
                self.tip = Some(tip);
                Ok(tip)
            }
        }
    }

    /// The branch's commit on disk now: its own file, else its line in `packed-refs` (`git
    /// pack-refs` moved it there), else none (unborn).
    fn read(&self) -> Result<Option<Oid>, WorkspaceError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Oid::from_str(text.trim())
                .map(Some)
                .map_err(|_| WorkspaceError::BadRef(self.path.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.packed(),
            Err(e) => Err(io(&self.path)(e)),
        }
    }

    /// The branch's line in `packed-refs` (`<oid> <name>`), if it has one.
    fn packed(&self) -> Result<Option<Oid>, WorkspaceError> {
        let text = match std::fs::read_to_string(&self.packed_refs) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&self.packed_refs)(e)),
        };
        let line = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with('^'))
            .find_map(|l| match l.split_once(' ') {
                Some((oid, name)) if name == self.name => Some(oid),
                _ => None,
            });
        line.map(|oid| {
            Oid::from_str(oid).map_err(|_| WorkspaceError::BadRef(self.packed_refs.clone()))
        })
        .transpose()
    }

    /// Points the branch at `commit`, if it still holds the commit [`Branch::tip`] returned.
    pub fn set(&mut self, commit: Oid) -> Result<(), WorkspaceError> {
        let expected = self.tip()?;
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
        // Read under the lock: no other git writer can move the branch between this check and
        // the rename.
        let written = self
            .read()
            .and_then(|found| {
                if found == expected {
                    Ok(())
                } else {
                    Err(WorkspaceError::BranchMoved {
                        branch: self.name.clone(),
                        expected,
                        found,
                    })
                }
            })
            .and_then(|()| {
                file.write_all(format!("{commit}\n").as_bytes())
                    .map_err(io(&lock))
            })
            .and_then(|()| std::fs::rename(&lock, &self.path).map_err(io(&self.path)));
        if written.is_err() {
            let _ = std::fs::remove_file(&lock);
        }
        written?;
        self.tip = Some(Some(commit));
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

        let git_dir = root.join(".git");
        let mut branch = Branch::of(&git_dir, &git_dir).unwrap();
        assert_eq!(branch.tip().unwrap(), Some(head), "found in packed-refs");
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
        assert_eq!(branch.read().unwrap(), Some(next), "the loose ref wins");
        assert_eq!(
            git_cli(root, &["rev-parse", "main"]).trim(),
            next.to_string()
        );
    }

    #[test]
    fn a_detached_head_is_its_own_ref() {
        let dir = tempfile::tempdir().unwrap();
        let git_dir = dir.path().join(".git");
        std::fs::create_dir_all(&git_dir).unwrap();
        let oid = "0123456789012345678901234567890123456789";
        std::fs::write(git_dir.join("HEAD"), format!("{oid}\n")).unwrap();
        let mut branch = Branch::of(&git_dir, &git_dir).unwrap();
        assert_eq!(branch.tip().unwrap(), Some(Oid::from_str(oid).unwrap()));
    }

    #[test]
    fn a_branch_moved_behind_the_writers_back_is_not_moved_again() {
        let dir = tempfile::tempdir().unwrap();
        let git_dir = dir.path().join(".git");
        std::fs::create_dir_all(git_dir.join("refs/heads")).unwrap();
        std::fs::write(git_dir.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let [a, b, c] = ["1", "2", "3"].map(|d| Oid::from_str(&d.repeat(40)).unwrap());
        let main = git_dir.join("refs/heads/main");

        let mut branch = Branch::of(&git_dir, &git_dir).unwrap();
        assert_eq!(branch.tip().unwrap(), None, "unborn");
        branch.set(a).unwrap();
        // Something else moves the branch.
        std::fs::write(&main, format!("{b}\n")).unwrap();
        match branch.set(c) {
            Err(WorkspaceError::BranchMoved {
                branch,
                expected,
                found,
            }) => {
                assert_eq!(branch, "refs/heads/main");
                assert_eq!((expected, found), (Some(a), Some(b)));
            }
            other => panic!("expected BranchMoved, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&main).unwrap(), format!("{b}\n"));
        assert!(
            !git_dir.join("refs/heads/main.lock").exists(),
            "lock released"
        );

        // A branch that appeared where none was expected is refused the same way.
        let other = dir.path().join("other");
        std::fs::create_dir_all(other.join("refs/heads")).unwrap();
        std::fs::write(other.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let mut unborn = Branch::of(&other, &other).unwrap();
        assert_eq!(unborn.tip().unwrap(), None);
        std::fs::write(other.join("refs/heads/main"), format!("{a}\n")).unwrap();
        assert!(matches!(
            unborn.set(b),
            Err(WorkspaceError::BranchMoved { expected: None, found: Some(f), .. }) if f == a
        ));
        // Content that is no commit id is an error of its own.
        std::fs::write(other.join("refs/heads/main"), "garbage\n").unwrap();
        let mut bad = Branch::of(&other, &other).unwrap();
        assert!(matches!(bad.tip(), Err(WorkspaceError::BadRef(_))));
    }
}

//! Where a work tree's repository keeps its parts, found without opening it through libgit2
//! (whose `open` reads every configuration file on the machine).

use std::path::{Path, PathBuf};

use git2::Repository;

/// The folders of a work tree's repository: HEAD and the index live in `git`; objects, branches,
/// `packed-refs` and `info/` in `common`. They differ for a linked worktree only.
#[derive(Debug, Clone)]
pub struct GitDirs {
    pub git: PathBuf,
    pub common: PathBuf,
}

impl GitDirs {
    /// The repository in `<work tree>/.git`, as a workspace creates it.
    pub fn plain(work_tree: &Path) -> GitDirs {
        let git = work_tree.join(".git");
        GitDirs {
            common: git.clone(),
            git,
        }
    }

    /// The folders of a repository already open (a candidate's worktree).
    pub fn of(repo: &Repository) -> GitDirs {
        GitDirs {
            git: repo.path().to_path_buf(),
            common: repo.commondir().to_path_buf(),
        }
    }
}

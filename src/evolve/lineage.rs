//! Candidates as commits in the repository that holds the harness, built from trees in memory:
//! the user's HEAD, index and working tree are never touched. The accepted lineage is the branch
//! `nlah/evolve/NAME`; every candidate keeps a ref `refs/nlah/evolve/NAME/ITER-K`, accepted or
//! not, so `nlah log --rev` and `nlah diff` reach all of them; scores and verdicts are git notes
//! under `refs/notes/nlah`.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{ObjectType, Oid, Repository, Signature, Tree, TreeWalkMode, TreeWalkResult};

use super::EvolveError;
use super::edit::{File, Files};
use crate::versions::notes::{self, NOTES_REF, NoteLine};
use crate::versions::{files::slash, gitread};

const BLOB: i32 = 0o100644;
const EXEC: i32 = 0o100755;
const TREE: i32 = 0o040000;

/// Folders never taken into a harness's files.
const SKIP: [&str; 3] = [".git", "target", "node_modules"];

pub struct Lineage {
    repo: Repository,
    /// The harness folder relative to the working tree (`""`: the repository's root).
    pub rel: String,
    /// The branch of the accepted lineage, without `refs/heads/`.
    pub branch: String,
    name: String,
}

fn git(e: git2::Error) -> EvolveError {
    EvolveError::Git(e.message().to_string())
}

/// Reads the harness folder on disk.
pub fn files_on_disk(root: &Path) -> Result<Files, EvolveError> {
    let mut out = Files::new();
    let walk = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !SKIP.iter().any(|s| e.file_name() == *s));
    for e in walk {
        let e = e.map_err(|e| EvolveError::Io {
            path: root.to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("loop")),
        })?;
        if !e.file_type().is_file() {
            continue;
        }
        let Ok(rel) = e.path().strip_prefix(root) else {
            continue;
        };
        let bytes = std::fs::read(e.path()).map_err(|source| EvolveError::Io {
            path: e.path().to_path_buf(),
            source,
        })?;
        let exec = std::os::unix::fs::PermissionsExt::mode(
            &e.metadata()
                .map_err(|e| EvolveError::Io {
                    path: root.to_path_buf(),
                    source: e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("stat")),
                })?
                .permissions(),
        ) & 0o111
            != 0;
        out.insert(slash(rel), File { bytes, exec });
    }
    Ok(out)
}

/// Writes `files` into `dir` (made anew): the folder a candidate's cells run.
pub fn materialize(files: &Files, dir: &Path) -> Result<(), EvolveError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvolveError::Io { path, source }
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    for (rel, f) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        crate::atomic::write_mode(&p, &f.bytes, if f.exec { 0o755 } else { 0o644 })
            .map_err(io(&p))?;
    }
    Ok(())
}

impl Lineage {
    /// The repository around `harness`; `name` names the evolution's branch.
    pub fn open(harness: &Path, name: &str) -> Result<Lineage, EvolveError> {
        let (repo, workdir) = gitread::discover(harness).map_err(|_| {
            EvolveError::Git(format!(
                "{} is not inside a git repository: nlah evolve keeps every candidate as a commit of the repository that holds the harness (run `git init` there and commit the harness first)",
                harness.display()
            ))
        })?;
        let rel =
            gitread::rel_path(&workdir, harness).map_err(|e| EvolveError::Git(e.to_string()))?;
        Ok(Lineage {
            repo,
            rel,
            branch: format!("nlah/evolve/{name}"),
            name: name.to_string(),
        })
    }

    fn sig(&self) -> Result<Signature<'static>, EvolveError> {
        self.repo
            .signature()
            .or_else(|_| Signature::now("nlah", "nlah@localhost"))
            .map_err(git)
    }

    /// The harness files at `commit`.
    pub fn files_at(&self, commit: &str) -> Result<Files, EvolveError> {
        let c = self.commit_of(commit)?;
        let tree = c.tree().map_err(git)?;
        let sub = match gitread::subtree_id(&tree, &self.rel) {
            Some(id) => self.repo.find_tree(id).map_err(git)?,
            None => {
                return Err(EvolveError::Git(format!(
                    "commit {commit} has no folder `{}`",
                    self.rel
                )));
            }
        };
        let mut out = Files::new();
        let mut failure = None;
        sub.walk(TreeWalkMode::PreOrder, |dir, e| {
            if e.kind() != Some(ObjectType::Blob) {
                return TreeWalkResult::Ok;
            }
            match self.repo.find_blob(e.id()) {
                Ok(b) => {
                    out.insert(
                        format!("{dir}{}", e.name().unwrap_or_default()),
                        File {
                            bytes: b.content().to_vec(),
                            exec: e.filemode() == EXEC,
                        },
                    );
                    TreeWalkResult::Ok
                }
                Err(err) => {
                    failure = Some(err);
                    TreeWalkResult::Abort
                }
            }
        })
        .map_err(git)?;
        if let Some(e) = failure {
            return Err(git(e));
        }
        Ok(out)
    }

    fn commit_of(&self, id: &str) -> Result<git2::Commit<'_>, EvolveError> {
        let oid = Oid::from_str(id).map_err(git)?;
        self.repo.find_commit(oid).map_err(git)
    }

    fn write_files(&self, files: &Files) -> Result<Oid, EvolveError> {
        // A nested map of the folders, written bottom-up.
        #[derive(Default)]
        struct Dir<'a> {
            files: BTreeMap<&'a str, &'a File>,
            dirs: BTreeMap<&'a str, Dir<'a>>,
        }
        let mut root = Dir::default();
        for (p, f) in files {
            let mut parts: Vec<&str> = p.split('/').collect();
            let Some(name) = parts.pop() else { continue };
            let mut d = &mut root;
            for part in parts {
                d = d.dirs.entry(part).or_default();
            }
            d.files.insert(name, f);
        }
        fn write(repo: &Repository, d: &Dir) -> Result<Oid, git2::Error> {
            let mut b = repo.treebuilder(None)?;
            for (name, f) in &d.files {
                let id = repo.blob(&f.bytes)?;
                b.insert(name, id, if f.exec { EXEC } else { BLOB })?;
            }
            for (name, sub) in &d.dirs {
                let id = write(repo, sub)?;
                b.insert(name, id, TREE)?;
            }
            b.write()
        }
        write(&self.repo, &root).map_err(git)
    }

    /// `base` with the folder at `parts` replaced by the tree `new`.
    fn graft(&self, base: Option<&Tree>, parts: &[&str], new: Oid) -> Result<Oid, git2::Error> {
        let Some((first, rest)) = parts.split_first() else {
            return Ok(new);
        };
        let mut b = self.repo.treebuilder(base)?;
        let child = base
            .and_then(|t| t.get_name(first))
            .filter(|e| e.kind() == Some(ObjectType::Tree))
            .map(|e| self.repo.find_tree(e.id()))
            .transpose()?;
        let id = self.graft(child.as_ref(), rest, new)?;
        b.insert(first, id, TREE)?;
        b.write()
    }

    /// A commit whose tree is `parent`'s (or HEAD's, for the first) with the harness folder
    /// holding `files`.
    pub fn commit(
        &self,
        parent: Option<&str>,
        files: &Files,
        message: &str,
    ) -> Result<String, EvolveError> {
        let parent = match parent {
            Some(p) => Some(self.commit_of(p)?),
            None => self.repo.head().ok().and_then(|h| h.peel_to_commit().ok()),
        };
        let base = parent.as_ref().map(|c| c.tree()).transpose().map_err(git)?;
        let sub = self.write_files(files)?;
        let parts: Vec<&str> = self.rel.split('/').filter(|s| !s.is_empty()).collect();
        let tree_id = self.graft(base.as_ref(), &parts, sub).map_err(git)?;
        if let (Some(p), Some(b)) = (&parent, &base)
            && b.id() == tree_id
        {
            return Ok(p.id().to_string());
        }
        let tree = self.repo.find_tree(tree_id).map_err(git)?;
        let sig = self.sig()?;
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let id = self
            .repo
            .commit(None, &sig, &sig, message, &tree, &parents)
            .map_err(git)?;
        Ok(id.to_string())
    }

    /// Points the ref of candidate `label` (`2-1`) at `commit`.
    pub fn keep_candidate(&self, label: &str, commit: &str) -> Result<(), EvolveError> {
        let name = format!("refs/nlah/evolve/{}/{label}", self.name);
        self.set_ref(&name, commit)
    }

    /// Moves the lineage's branch to `commit`.
    pub fn advance(&self, commit: &str) -> Result<(), EvolveError> {
        self.set_ref(&format!("refs/heads/{}", self.branch), commit)
    }

    fn set_ref(&self, name: &str, commit: &str) -> Result<(), EvolveError> {
        let oid = Oid::from_str(commit).map_err(git)?;
        self.repo
            .reference(name, oid, true, "nlah evolve")
            .map_err(git)?;
        Ok(())
    }

    /// Records the runs of an evaluation and the verdict on `commit`'s note: the runs as
    /// `nlah log` reads them, the verdict as one more JSON line (`{"evolve": …}`).
    pub fn note(
        &self,
        commit: &str,
        runs: &[NoteLine],
        verdict: &serde_json::Value,
    ) -> Result<(), EvolveError> {
        let oid = Oid::from_str(commit).map_err(git)?;
        let mut lines = notes::read(&self.repo, oid);
        for r in runs {
            match lines.iter_mut().find(|l| l.same_run(r)) {
                Some(l) => *l = r.clone(),
                None => lines.push(r.clone()),
            }
        }
        let mut text = String::new();
        for l in &lines {
            text.push_str(&serde_json::to_string(l).map_err(|e| EvolveError::Git(e.to_string()))?);
            text.push('\n');
        }
        // The verdicts recorded earlier are kept; one per evaluation label.
        if let Ok(note) = self.repo.find_note(Some(NOTES_REF), oid) {
            for l in note.message().unwrap_or_default().lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
                    continue;
                };
                if v.get("evolve").is_some() && v["evolve"]["label"] != verdict["label"] {
                    text.push_str(l);
                    text.push('\n');
                }
            }
        }
        text.push_str(&serde_json::json!({ "evolve": verdict }).to_string());
        text.push('\n');
        let sig = self.sig()?;
        self.repo
            .note(&sig, &sig, Some(NOTES_REF), oid, &text, true)
            .map_err(git)?;
        Ok(())
    }
}

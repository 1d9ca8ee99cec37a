//! The search's tree in git: every node is a commit of the repository holding the harness, made
//! from trees built in memory (the user's HEAD, index and working tree are never touched), on
//! the branch `nlah/synthesize/<harness>/<target>`. A node's first parent is the node it was
//! refined from (the first node's: the commit the search started from); its second, the
//! branch's previous tip, so that the branch reaches every node of the tree. Scores go in git
//! notes under `refs/notes/nlah`.

use std::path::Path;

use git2::{FileMode, ObjectType, Oid, Repository, Signature, Tree, TreeWalkMode, TreeWalkResult};

use super::error::SynthError;
use crate::versions::notes::{NOTES_REF, NoteLine};

/// The tree of a folder on disk (`.git` skipped), its files' executable bits kept.
pub fn folder_tree(repo: &Repository, dir: &Path) -> Result<Oid, SynthError> {
    let mut b = repo.treebuilder(None)?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(SynthError::io(dir))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if name == ".git" {
            continue;
        }
        let path = e.path();
        let meta = std::fs::metadata(&path).map_err(SynthError::io(&path))?;
        let name = name.to_string_lossy();
        if meta.is_dir() {
            let t = folder_tree(repo, &path)?;
            b.insert(name.as_ref(), t, FileMode::Tree.into())?;
        } else if meta.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let bytes = std::fs::read(&path).map_err(SynthError::io(&path))?;
            let blob = repo.blob(&bytes)?;
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                FileMode::BlobExecutable
            } else {
                FileMode::Blob
            };
            b.insert(name.as_ref(), blob, mode.into())?;
        }
    }
    Ok(b.write()?)
}

/// `base` with `entry` (of `mode`) put at `path` (slash-separated, folders made as needed).
pub fn put(
    repo: &Repository,
    base: Option<&Tree>,
    path: &str,
    entry: Oid,
    mode: FileMode,
) -> Result<Oid, SynthError> {
    let (head, rest) = match path.split_once('/') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let mut b = repo.treebuilder(base)?;
    let id = match rest {
        None => {
            b.insert(head, entry, mode.into())?;
            return Ok(b.write()?);
        }
        Some(rest) => {
            let sub = base
                .and_then(|t| t.get_name(head))
                .filter(|e| e.kind() == Some(ObjectType::Tree))
                .map(|e| repo.find_tree(e.id()))
                .transpose()?;
            put(repo, sub.as_ref(), rest, entry, mode)?
        }
    };
    b.insert(head, id, FileMode::Tree.into())?;
    Ok(b.write()?)
}

/// The root tree `root` with the harness at `rel` replaced by `harness`.
pub fn with_harness(
    repo: &Repository,
    root: Oid,
    rel: &str,
    harness: Oid,
) -> Result<Oid, SynthError> {
    if rel.is_empty() {
        return Ok(harness);
    }
    let t = repo.find_tree(root)?;
    put(repo, Some(&t), rel, harness, FileMode::Tree)
}

/// The root tree `root` with `files` (paths in the harness) written into the harness at `rel`.
pub fn with_files(
    repo: &Repository,
    root: Oid,
    rel: &str,
    files: &[(&str, &[u8])],
) -> Result<Oid, SynthError> {
    let mut id = root;
    for (path, bytes) in files {
        let blob = repo.blob(bytes)?;
        let t = repo.find_tree(id)?;
        let full = if rel.is_empty() {
            (*path).to_string()
        } else {
            format!("{rel}/{path}")
        };
        id = put(repo, Some(&t), &full, blob, FileMode::Blob)?;
    }
    Ok(id)
}

/// Writes the harness at `rel` of the root tree `root` into the folder `dest` (made fresh).
pub fn materialize(repo: &Repository, root: Oid, rel: &str, dest: &Path) -> Result<(), SynthError> {
    let t = repo.find_tree(root)?;
    let sub = if rel.is_empty() {
        t
    } else {
        let e = t.get_path(Path::new(rel))?;
        repo.find_tree(e.id())?
    };
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(SynthError::io(dest))?;
    }
    std::fs::create_dir_all(dest).map_err(SynthError::io(dest))?;
    let mut failed: Option<SynthError> = None;
    sub.walk(TreeWalkMode::PreOrder, |dir, e| {
        let Some(name) = e.name() else {
            return TreeWalkResult::Skip;
        };
        let path = dest.join(dir).join(name);
        let r = match e.kind() {
            Some(ObjectType::Tree) => std::fs::create_dir_all(&path).map_err(SynthError::io(&path)),
            Some(ObjectType::Blob) => (|| {
                let blob = repo.find_blob(e.id())?;
                std::fs::write(&path, blob.content()).map_err(SynthError::io(&path))?;
                if e.filemode() == i32::from(FileMode::BlobExecutable) {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                        .map_err(SynthError::io(&path))?;
                }
                Ok(())
            })(),
            _ => Ok(()),
        };
        match r {
            Ok(()) => TreeWalkResult::Ok,
            Err(err) => {
                failed = Some(err);
                TreeWalkResult::Abort
            }
        }
    })
    .or_else(|e| if failed.is_some() { Ok(()) } else { Err(e) })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn signature(repo: &Repository) -> Result<Signature<'static>, git2::Error> {
    repo.signature()
        .map(|s| s.to_owned())
        .or_else(|_| Signature::now("nlah", "nlah@localhost"))
}

/// A commit of `tree` with `parents`, referenced by nothing yet.
pub fn commit(
    repo: &Repository,
    tree: Oid,
    parents: &[Oid],
    message: &str,
) -> Result<Oid, SynthError> {
    let sig = signature(repo)?;
    let tree = repo.find_tree(tree)?;
    let mut ps = Vec::new();
    for p in parents {
        if !ps.iter().any(|c: &git2::Commit| c.id() == *p) {
            ps.push(repo.find_commit(*p)?);
        }
    }
    let refs: Vec<&git2::Commit> = ps.iter().collect();
    Ok(repo.commit(None, &sig, &sig, message, &tree, &refs)?)
}

/// Points `branch` (a name under `refs/heads/`) at `commit`.
pub fn move_branch(repo: &Repository, branch: &str, commit: Oid) -> Result<(), SynthError> {
    repo.reference(
        &format!("refs/heads/{branch}"),
        commit,
        true,
        "nlah synthesize: a node",
    )?;
    Ok(())
}

/// Notes `commit` with its rollouts (one line each, the `nlah log` format) and `extra` (one
/// JSON line of the search's own; readers of the runs skip it).
pub fn note(
    repo: &Repository,
    commit: Oid,
    runs: &[NoteLine],
    extra: &serde_json::Value,
) -> Result<(), SynthError> {
    let mut text = String::new();
    for l in runs {
        text.push_str(&serde_json::to_string(l).unwrap_or_default());
        text.push('\n');
    }
    text.push_str(&extra.to_string());
    text.push('\n');
    let sig = signature(repo)?;
    repo.note(&sig, &sig, Some(NOTES_REF), commit, &text, true)?;
    Ok(())
}

//! Copying a task's folders and hashing its contents.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use super::{CONFIG_FILE, Task, TaskError};

/// Copies the task's `files/` into `dest` (created if missing) and returns how many files and
/// symlinks were written; a task without `files/` copies nothing.
///
/// Executable bits are kept. A symlink stays a symlink when it points inside `files/`; one that
/// points outside is refused ([`TaskError::Symlink`] naming the link and its target), so the
/// workspace never links to, or copies from, the task folder's other parts or the host.
pub fn copy_files(task: &Task, dest: &Path) -> Result<u64, TaskError> {
    match &task.files {
        Some(files) => copy_tree(files, dest),
        None => {
            fs::create_dir_all(dest)
                .map_err(|e| TaskError::io(dest, "cannot create the folder", e))?;
            Ok(0)
        }
    }
}

/// Copies the contents of `src` into `dest` under the symlink rule of [`copy_files`].
pub(crate) fn copy_tree(src: &Path, dest: &Path) -> Result<u64, TaskError> {
    fs::create_dir_all(dest).map_err(|e| TaskError::io(dest, "cannot create the folder", e))?;
    let canonical_src =
        fs::canonicalize(src).map_err(|e| TaskError::io(src, "cannot resolve", e))?;
    let mut count = 0;
    for entry in WalkDir::new(src).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| walk_error(src, e))?;
        let path = entry.path();
        let rel = path.strip_prefix(src).unwrap_or(path);
        let target = dest.join(rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            fs::create_dir_all(&target)
                .map_err(|e| TaskError::io(&target, "cannot create the folder", e))?;
        } else if kind.is_file() {
            copy_file(path, &target)?;
            count += 1;
        } else if kind.is_symlink() {
            count += copy_symlink(&canonical_src, path, rel, &target)?;
        } else {
            return Err(TaskError::UnsupportedFile {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(count)
}

fn copy_file(from: &Path, to: &Path) -> Result<(), TaskError> {
    remove_stale_link(to)?;
    // fs::copy keeps the permission bits, executable ones included.
    fs::copy(from, to)
        .map_err(|e| TaskError::io(from, format!("cannot copy to {}", to.display()), e))?;
    Ok(())
}

/// fs::copy would write through a symlink already at the destination.
fn remove_stale_link(to: &Path) -> Result<(), TaskError> {
    if fs::symlink_metadata(to).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(to).map_err(|e| TaskError::io(to, "cannot replace", e))?;
    }
    Ok(())
}

fn copy_symlink(
    canonical_src: &Path,
    path: &Path,
    rel: &Path,
    target: &Path,
) -> Result<u64, TaskError> {
    let link = link_inside(canonical_src, path, rel)?;
    remove_stale_link(target)?;
    std::os::unix::fs::symlink(&link, target)
        .map_err(|e| TaskError::io(target, "cannot create the symlink", e))?;
    Ok(1)
}

/// The target of the symlink at `path` (`rel` inside the folder `canonical_src`), if it stays
/// inside that folder: by its text (so it survives the copy) and, when it resolves, by the real
/// path too. A link that leaves is refused, never followed: following it once put the host's
/// `/proc/self/environ` (API keys) into a workspace's git history.
fn link_inside(canonical_src: &Path, path: &Path, rel: &Path) -> Result<PathBuf, TaskError> {
    let link =
        fs::read_link(path).map_err(|e| TaskError::io(path, "cannot read the symlink", e))?;
    let lexically_inside = rel
        .parent()
        .is_some_and(|parent| stays_inside(&parent.join(&link)));
    let inside = lexically_inside
        && fs::canonicalize(path)
            .ok()
            .is_none_or(|r| r.starts_with(canonical_src));
    if inside {
        return Ok(link);
    }
    let folder = canonical_src.file_name().map_or_else(
        || canonical_src.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Err(TaskError::Symlink {
        path: path.to_path_buf(),
        reason: format!(
            "symlink to {} leaves the task's {folder}/ folder; links must stay inside it \
             (copy the file into the task instead)",
            link.display()
        ),
    })
}

/// Refuses a task whose `dir` (its `files/` or `tests/`) holds a symlink that leaves it, so
/// that the run stops before any workspace exists.
pub(crate) fn check_links(dir: &Path) -> Result<(), TaskError> {
    let canonical = fs::canonicalize(dir).map_err(|e| TaskError::io(dir, "cannot resolve", e))?;
    for entry in WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(|e| walk_error(dir, e))?;
        if entry.file_type().is_symlink() {
            let path = entry.path();
            link_inside(&canonical, path, path.strip_prefix(dir).unwrap_or(path))?;
        }
    }
    Ok(())
}

/// Whether a relative path stays under its starting folder once `..` is applied.
fn stays_inside(path: &Path) -> bool {
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

fn walk_error(root: &Path, e: walkdir::Error) -> TaskError {
    let path = e
        .path()
        .map_or_else(|| root.to_path_buf(), Path::to_path_buf);
    if e.loop_ancestor().is_some() {
        return TaskError::Symlink {
            path,
            reason: "symlink loop".to_string(),
        };
    }
    let source = e
        .into_io_error()
        .unwrap_or_else(|| std::io::Error::other("cannot walk the folder"));
    TaskError::io(&path, "cannot read", source)
}

/// One hashed entry: logical path, kind byte, contents.
struct Entry {
    path: Vec<u8>,
    kind: u8,
    bytes: Vec<u8>,
}

pub(crate) fn content_hash(task: &Task) -> Result<String, TaskError> {
    let mut entries = vec![Entry {
        // A logical name, so TASK.md and instruction.md with the same text hash alike.
        path: b"instruction".to_vec(),
        kind: b'f',
        bytes: task.instruction.as_bytes().to_vec(),
    }];
    let config = task.root.join(CONFIG_FILE);
    if config.is_file() {
        entries.push(Entry {
            path: CONFIG_FILE.as_bytes().to_vec(),
            kind: b'f',
            bytes: fs::read(&config).map_err(|e| TaskError::io(&config, "cannot read", e))?,
        });
    }
    for (name, dir) in [("files", &task.files), ("tests", &task.tests)] {
        if let Some(dir) = dir {
            collect_entries(name, dir, &mut entries)?;
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));

    let mut hasher = Sha256::new();
    hasher.update(b"nlah-task-v1\0");
    for e in &entries {
        // Length prefixes keep (path, bytes) boundaries unambiguous.
        hasher.update([e.kind]);
        hasher.update((e.path.len() as u64).to_le_bytes());
        hasher.update(&e.path);
        hasher.update((e.bytes.len() as u64).to_le_bytes());
        hasher.update(&e.bytes);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn collect_entries(name: &str, dir: &Path, out: &mut Vec<Entry>) -> Result<(), TaskError> {
    for entry in WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(|e| walk_error(dir, e))?;
        let path = entry.path();
        let rel = path.strip_prefix(dir).unwrap_or(path);
        let logical = logical_path(name, rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        } else if kind.is_symlink() {
            let link = fs::read_link(path)
                .map_err(|e| TaskError::io(path, "cannot read the symlink", e))?;
            out.push(Entry {
                path: logical,
                kind: b'l',
                bytes: link.as_os_str().as_bytes().to_vec(),
            });
        } else if kind.is_file() {
            let meta = entry.metadata().map_err(|e| walk_error(dir, e))?;
            // The executable bit changes what a task does, so it is part of its identity.
            let exec = meta.permissions().mode() & 0o111 != 0;
            out.push(Entry {
                path: logical,
                kind: if exec { b'x' } else { b'f' },
                bytes: fs::read(path).map_err(|e| TaskError::io(path, "cannot read", e))?,
            });
        } else {
            return Err(TaskError::UnsupportedFile {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn logical_path(prefix: &str, rel: &Path) -> Vec<u8> {
    let mut out = PathBuf::from(prefix);
    out.push(rel);
    // '/' separators on every platform nlah runs on (unix), so the bytes are stable.
    out.as_os_str().as_bytes().to_vec()
}

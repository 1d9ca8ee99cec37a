//! Writing inside a workspace without following a link a child could have planted.
//!
//! Children's commands write in `repo/`, `artifacts/` and their own folders, where they may
//! replace a folder with a symbolic link to anywhere. The runtime writes in those folders too
//! (gate records, briefs, restored state), so each of its writes walks from the workspace root one
//! component at a time with `O_NOFOLLOW`, creates its temporary file with `O_EXCL | O_NOFOLLOW`
//! in the folder it reached, and renames it into place there: a link on the way is refused, not
//! followed, and a link at the destination is replaced, not written through.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// Why a write beneath the root was not made.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    /// A component on the way is a symbolic link (or not a folder).
    #[error(
        "{path}: a symbolic link (or a file) stands where a folder should be; nlah does not write through it"
    )]
    Link { path: PathBuf },
    /// The path leaves the root (`..`, absolute) or names nothing.
    #[error("{path}: not a path inside the workspace")]
    Outside { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BeneathError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            BeneathError::Link { path }
            | BeneathError::Outside { path }
            | BeneathError::Io { path, .. } => path,
        }
    }
}

/// Writes `bytes` to `rel` beneath `root` atomically (temporary file, rename), making missing
/// folders; with `durable`, the file and its folder are synced.
pub fn write(root: &Path, rel: &Path, bytes: &[u8], durable: bool) -> Result<(), BeneathError> {
    let (dir, name) = open_parent(root, rel)?;
    let full = root.join(rel);
    let io = |source: std::io::Error| BeneathError::Io {
        path: full.clone(),
        source,
    };
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = format!(
        ".{}.nlah-tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let fd = rustix::fs::openat(
        &dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| io(e.into()))?;
    let mut file = std::fs::File::from(fd);
    let written = file
        .write_all(bytes)
        .and_then(|()| if durable { file.sync_all() } else { Ok(()) });
    drop(file);
    if let Err(e) = written {
        let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
        return Err(io(e));
    }
    if let Err(e) = rustix::fs::renameat_with(&dir, tmp.as_str(), &dir, name, RenameFlags::empty())
    {
        let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
        return Err(io(e.into()));
    }
    if durable {
        rustix::fs::fsync(&dir).map_err(|e| io(e.into()))?;
    }
    Ok(())
}

/// Makes the folder `rel` beneath `root` and every missing folder on the way, following no link.
pub fn create_dir_all(root: &Path, rel: &Path) -> Result<(), BeneathError> {
    open_dir(root, rel).map(drop)
}

/// Opens the folder that holds `rel` (made if missing) and names the last component.
fn open_parent<'a>(root: &Path, rel: &'a Path) -> Result<(OwnedFd, &'a OsStr), BeneathError> {
    let outside = || BeneathError::Outside {
        path: root.join(rel),
    };
    let name = match rel.components().next_back() {
        Some(Component::Normal(n)) => n,
        _ => return Err(outside()),
    };
    let parent = rel.parent().unwrap_or(Path::new(""));
    Ok((open_dir(root, parent)?, name))
}

/// Walks from `root` to the folder `rel`, one component at a time, making what is missing.
fn open_dir(root: &Path, rel: &Path) -> Result<OwnedFd, BeneathError> {
    let io = |path: PathBuf, e: Errno| BeneathError::Io {
        path,
        source: e.into(),
    };
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    // The root itself is nlah's: made by the runtime, in a folder no child may write.
    let mut dir =
        rustix::fs::open(root, dir_flags, Mode::empty()).map_err(|e| io(root.to_path_buf(), e))?;
    let mut here = root.to_path_buf();
    for c in rel.components() {
        let name = match c {
            Component::Normal(n) => n,
            Component::CurDir => continue,
            _ => {
                return Err(BeneathError::Outside {
                    path: root.join(rel),
                });
            }
        };
        here.push(name);
        match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(io(here, e)),
        }
        dir = match rustix::fs::openat(&dir, name, dir_flags, Mode::empty()) {
            Ok(fd) => fd,
            // O_NOFOLLOW on a link: ELOOP; a file where a folder should be: ENOTDIR.
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => return Err(BeneathError::Link { path: here }),
            Err(e) => return Err(io(here, e)),
        };
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_make_folders_and_replace_files_atomically() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), Path::new("a/b/c.txt"), b"one", false).unwrap();
        write(root.path(), Path::new("a/b/c.txt"), b"two", true).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("a/b/c.txt")).unwrap(),
            "two"
        );
        let leftovers: Vec<_> = std::fs::read_dir(root.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn a_planted_folder_link_is_refused_and_nothing_is_written_outside() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("artifacts")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("artifacts/gates")).unwrap();
        let err = write(root.path(), Path::new("artifacts/gates/g.md"), b"x", false).unwrap_err();
        assert!(matches!(err, BeneathError::Link { .. }), "{err}");
        assert!(err.path().ends_with("artifacts/gates"));
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_planted_file_link_is_replaced_not_written_through() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, root.path().join("run.json")).unwrap();
        write(root.path(), Path::new("run.json"), b"{}", false).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert!(!root.path().join("run.json").is_symlink());
    }

    #[test]
    fn paths_that_leave_the_root_are_refused() {
        let root = tempfile::tempdir().unwrap();
        for p in ["../x", "/etc/x", ""] {
            assert!(
                matches!(
                    write(root.path(), Path::new(p), b"x", false),
                    Err(BeneathError::Outside { .. })
                ),
                "{p}"
            );
        }
    }
}

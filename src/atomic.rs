//! Atomic file writes: a kill at any moment leaves either the old file or the new one.
//!
//! `write` survives a killed process (the rename is atomic and the page cache outlives the
//! process); `write_durable` also survives losing the machine, at the price of two fsyncs, and
//! is kept for results that must never be lost once reported (a finished run's `run.json`).

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder, renamed over the target.
/// Missing folders above it are created.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    in_folder(path, || replace(path, bytes, None, false))
}

/// Like [`write`], with the file and its folder synced so the result survives a crash.
pub fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    in_folder(path, || replace(path, bytes, None, true))
}

/// Runs `write`, and again after creating the file's folder if that was missing: the folder
/// almost always exists, and looking first would cost two system calls per write.
fn in_folder(path: &Path, write: impl Fn() -> std::io::Result<()>) -> std::io::Result<()> {
    match write() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(folder(path))?;
            write()
        }
        done => done,
    }
}

/// Like [`write`], the file given the permissions `mode` (git's packs are read-only, its index
/// is not); its folder must exist already.
pub fn write_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    replace(path, bytes, Some(mode), false)
}

/// Like [`write`], the file keeping the permissions of the file it replaces (a new file gets
/// 0644, as a program writing it in place would give it): for files someone else owns the mode
/// of, such as a child's edits to a script.
pub fn write_keeping_mode(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    in_folder(path, || replace(path, bytes, Some(mode), false))
}

fn folder(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

fn replace(path: &Path, bytes: &[u8], mode: Option<u32>, durable: bool) -> std::io::Result<()> {
    let dir = folder(path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    if let Some(mode) = mode {
        tmp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    }
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if durable && let Ok(d) = std::fs::File::open(dir) {
        d.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.json");
        super::write(&p, b"one").unwrap();
        super::write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn gives_the_mode_asked_for() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pack");
        super::write_mode(&p, b"x", 0o444).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o444);
        assert!(super::write_mode(&dir.path().join("no/such/folder"), b"x", 0o644).is_err());
    }

    #[test]
    fn keeps_the_mode_of_the_file_it_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let fresh = dir.path().join("new/file.txt");
        super::write_keeping_mode(&fresh, b"x").unwrap();
        assert_eq!(mode(&fresh), 0o644);
        let script = dir.path().join("run.sh");
        std::fs::write(&script, b"old").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        super::write_keeping_mode(&script, b"new").unwrap();
        assert_eq!(mode(&script), 0o755);
        assert_eq!(std::fs::read(&script).unwrap(), b"new");
    }
}

//! Writing git objects straight into a repository's loose object store.
//!
//! A run commits at every transition, a few new objects each time. libgit2's object database
//! spends more on each of them than the object itself costs: it asks every backend whether the
//! object exists, rescans the pack folder when it does not (a new object never does), sets up a
//! new zlib stream (a quarter megabyte of tables) and checks, for trees and commits, that every
//! object they name exists. This writer does what git does and nothing more: the object is
//! `"<kind> <size>\0" + bytes`, deflated, stored at `objects/<2 hex>/<38 hex>` through a temporary
//! file renamed into place, once per writer. Reading stays with libgit2.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use git2::{FileMode, ObjectType, Oid};

use super::{WorkspaceError, io};

/// The loose object store of one repository.
pub struct Objects {
    dir: PathBuf,
    /// Fan-out folders known to exist (`objects/00` … `objects/ff`).
    fanout: [bool; 256],
    /// Objects this writer stored. Others are written without looking first: a new object is
    /// the common case, and writing one that exists replaces it with the same bytes.
    stored: HashSet<Oid>,
}

thread_local! {
    /// A compressor per thread, reused: setting one up costs more than deflating a small object,
    /// and one per workspace would hold a quarter megabyte per concurrent run.
    static DEFLATE: RefCell<ZlibEncoder<Vec<u8>>> = RefCell::new(compressor());
}

/// At the level git and libgit2 use for loose objects.
fn compressor() -> ZlibEncoder<Vec<u8>> {
    ZlibEncoder::new(Vec::new(), Compression::fast())
}

/// One entry of a tree.
pub struct TreeEntry<'a> {
    pub name: &'a [u8],
    pub oid: Oid,
    pub mode: FileMode,
}

/// Who commits in a workspace.
pub const COMMITTER: &str = "nlah runtime <runtime@nlah.invalid>";

impl Objects {
    /// The store in `dir` (a repository's `objects` folder).
    pub fn new(dir: PathBuf) -> Objects {
        Objects {
            dir,
            fanout: [false; 256],
            stored: HashSet::new(),
        }
    }

    /// Stores `bytes` as an object of `kind` whose id is already known to be `oid`.
    pub fn store(
        &mut self,
        kind: ObjectType,
        oid: Oid,
        bytes: &[u8],
    ) -> Result<(), WorkspaceError> {
        let hex = oid.to_string();
        let (fan, rest) = hex.split_at(2);
        let folder = self.dir.join(fan);
        let path = folder.join(rest);
        if self.stored.contains(&oid) {
            return Ok(());
        }
        let slot = usize::from(oid.as_bytes()[0]);
        if !self.fanout[slot] {
            match std::fs::create_dir(&folder) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&folder)(e)),
            }
            self.fanout[slot] = true;
        }
        let header = format!("{} {}\0", kind_name(kind), bytes.len());
        let deflated = DEFLATE
            .with_borrow_mut(|z| {
                let done = z
                    .write_all(header.as_bytes())
                    .and_then(|()| z.write_all(bytes))
                    .and_then(|()| z.reset(Vec::new()));
                if done.is_err() {
                    // A half-written stream must not leak into the next object.
                    *z = compressor();
                }
                done
            })
            .map_err(io(&path))?;
        let mut tmp = tempfile::Builder::new()
            .prefix("tmp_obj_")
            .tempfile_in(&self.dir)
            .map_err(io(&self.dir))?;
        tmp.write_all(&deflated).map_err(io(tmp.path()))?;
        // Objects never change; git makes them read-only.
        tmp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o444))
            .map_err(io(tmp.path()))?;
        tmp.persist(&path).map_err(|e| io(&path)(e.error))?;
        self.stored.insert(oid);
        Ok(())
    }

    /// Stores `bytes` as an object of `kind`; returns its id.
    pub fn write(&mut self, kind: ObjectType, bytes: &[u8]) -> Result<Oid, WorkspaceError> {
        let oid = Oid::hash_object(kind, bytes)?;
        self.store(kind, oid, bytes)?;
        Ok(oid)
    }

    /// Stores a tree of `entries` (in any order; git's order is applied here).
    pub fn tree(&mut self, entries: &mut [TreeEntry<'_>]) -> Result<Oid, WorkspaceError> {
        // Git orders a folder's entries by name, a subfolder's name compared as if it ended in '/'.
        let key = |e: &TreeEntry<'_>| {
            let mut k = e.name.to_vec();
            if e.mode == FileMode::Tree {
                k.push(b'/');
            }
            k
        };
        entries.sort_by_cached_key(key);
        let mut bytes = Vec::with_capacity(entries.len() * 48);
        for e in entries.iter() {
            bytes.extend_from_slice(mode_text(e.mode).as_bytes());
            bytes.push(b' ');
            bytes.extend_from_slice(e.name);
            bytes.push(0);
            bytes.extend_from_slice(e.oid.as_bytes());
        }
        self.write(ObjectType::Tree, &bytes)
    }

    /// Stores a commit of `tree` on `parent`, by the runtime, now.
    pub fn commit(
        &mut self,
        tree: Oid,
        parent: Option<Oid>,
        message: &str,
    ) -> Result<Oid, WorkspaceError> {
        let now = chrono::Local::now();
        let offset = now.offset().local_minus_utc();
        let sign = if offset < 0 { '-' } else { '+' };
        let offset = offset.unsigned_abs() / 60;
        let when = format!(
            "{} {sign}{:02}{:02}",
            now.timestamp(),
            offset / 60,
            offset % 60
        );
        let mut text = format!("tree {tree}\n");
        if let Some(p) = parent {
            text.push_str(&format!("parent {p}\n"));
        }
        text.push_str(&format!(
            "author {COMMITTER} {when}\ncommitter {COMMITTER} {when}\n\n{message}"
        ));
        if !text.ends_with('\n') {
            text.push('\n');
        }
        self.write(ObjectType::Commit, text.as_bytes())
    }
}

fn kind_name(kind: ObjectType) -> &'static str {
    match kind {
        ObjectType::Commit => "commit",
        ObjectType::Tree => "tree",
        ObjectType::Tag => "tag",
        _ => "blob",
    }
}

fn mode_text(mode: FileMode) -> &'static str {
    match mode {
        FileMode::Tree => "40000",
        FileMode::BlobExecutable => "100755",
        FileMode::Link => "120000",
        FileMode::Commit => "160000",
        _ => "100644",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Repository;

    #[test]
    fn libgit2_reads_what_is_written_and_agrees_on_ids() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let mut objects = Objects::new(repo.path().join("objects"));
        let blob = objects.write(ObjectType::Blob, b"hello\n").unwrap();
        assert_eq!(blob, repo.blob(b"hello\n").unwrap());
        assert_eq!(repo.find_blob(blob).unwrap().content(), b"hello\n");
        // Written twice: still one object, no error.
        assert_eq!(objects.write(ObjectType::Blob, b"hello\n").unwrap(), blob);

        let sub = objects
            .tree(&mut [TreeEntry {
                name: b"f",
                oid: blob,
                mode: FileMode::Blob,
            }])
            .unwrap();
        // "a.txt" < "a/" < "a0": the folder sorts as "a/".
        let mut entries = [
            TreeEntry {
                name: b"a0",
                oid: blob,
                mode: FileMode::BlobExecutable,
            },
            TreeEntry {
                name: b"a",
                oid: sub,
                mode: FileMode::Tree,
            },
            TreeEntry {
                name: b"a.txt",
                oid: blob,
                mode: FileMode::Blob,
            },
            TreeEntry {
                name: b"l",
                oid: blob,
                mode: FileMode::Link,
            },
        ];
        let root = objects.tree(&mut entries).unwrap();
        let mut builder = repo.treebuilder(None).unwrap();
        builder.insert("a0", blob, 0o100755).unwrap();
        builder.insert("a", sub, 0o040000).unwrap();
        builder.insert("a.txt", blob, 0o100644).unwrap();
        builder.insert("l", blob, 0o120000).unwrap();
        assert_eq!(root, builder.write().unwrap());

        let first = objects.commit(root, None, "first").unwrap();
        let second = objects.commit(root, Some(first), "second\n").unwrap();
        let c = repo.find_commit(second).unwrap();
        assert_eq!(c.message(), Some("second\n"));
        assert_eq!(c.parent_id(0).unwrap(), first);
        assert_eq!(c.tree_id(), root);
        assert_eq!(c.author().name(), Some("nlah runtime"));
        assert_eq!(repo.find_commit(first).unwrap().message(), Some("first\n"));
        let mode = std::fs::metadata(
            repo.path()
                .join("objects")
                .join(&blob.to_string()[..2])
                .join(&blob.to_string()[2..]),
        )
        .unwrap()
        .permissions();
        assert!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o222 == 0);
    }
}

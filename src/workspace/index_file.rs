//! Writing git's index file (version 2) from stats already taken. A finished run writes its
//! index once, so that `git status` in the workspace is clean; libgit2 would first read and
//! check the old index and look each entry's path over, for a file this module writes in one go.

use std::path::Path;

use git2::Oid;
use sha1::{Digest, Sha1};

use super::{WorkspaceError, io};

/// One file as the index records it.
pub struct Entry {
    /// The path inside the work tree, `/`-separated.
    pub path: Vec<u8>,
    pub ctime: (i64, i64),
    pub mtime: (i64, i64),
    pub dev: u64,
    pub ino: u64,
    /// Git's mode: 0o100644, 0o100755 or 0o120000.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub oid: Oid,
}

/// Writes `entries` as the index at `path`, through a temporary file renamed into place.
pub fn write(path: &Path, mut entries: Vec<Entry>) -> Result<(), WorkspaceError> {
    // The index is sorted by path, byte by byte.
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Vec::with_capacity(12 + entries.len() * 96 + 20);
    out.extend_from_slice(b"DIRC");
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in &entries {
        let start = out.len();
        // Every field is 32 bits wide by format; git truncates larger values the same way.
        let fields = [
            e.ctime.0 as u32,
            e.ctime.1 as u32,
            e.mtime.0 as u32,
            e.mtime.1 as u32,
            e.dev as u32,
            e.ino as u32,
            e.mode,
            e.uid,
            e.gid,
            e.size as u32,
        ];
        for f in fields {
            out.extend_from_slice(&f.to_be_bytes());
        }
        out.extend_from_slice(e.oid.as_bytes());
        // Flags: the name's length, capped at 0xfff (longer names are found by their NUL).
        out.extend_from_slice(&(e.path.len().min(0xfff) as u16).to_be_bytes());
        out.extend_from_slice(&e.path);
        // One to eight NULs, ending the entry on a multiple of eight bytes.
        let padding = 8 - (out.len() - start) % 8;
        out.resize(out.len() + padding, 0);
    }
    let checksum: [u8; 20] = Sha1::digest(&out).into();
    out.extend_from_slice(&checksum);
    // As git leaves it under the usual umask.
    crate::atomic::write_mode(path, &out, 0o644).map_err(io(path))
}

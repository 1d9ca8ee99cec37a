//! Writing git objects straight into a repository's object store, one pack per commit, and
//! merging those packs before they pass git's auto-pack limit.
//!
//! A run commits at every transition, a few new objects each time. Stored loose, each object
//! costs a fan-out folder, a temporary file, a permission change and a rename, and libgit2's
//! object database adds more (it asks every backend whether the object exists, rescans the pack
//! folder when it does not, and sets up a new zlib stream each time). So this writer gathers the
//! objects of one commit and writes them as one pack with its index: two files per commit,
//! whatever the number of objects. Both files are written whole to temporary files and renamed
//! into place, the index last (git looks packs up through their index), so a reader never sees
//! half a pack and a killed process leaves at most an unused temporary file. Reading stays with
//! libgit2.
//!
//! Why by hand: the same objects written each way by a scratch program, timed in a release
//! build (medians; a commit of one new file is 5 objects, the first commit of a 2,000-file
//! project 2,203):
//!
//! | one commit's objects | this writer | libgit2 mempack + packbuilder + packwriter | libgit2 loose |
//! | --- | --- | --- | --- |
//! | 1 new file | 0.027 ms | 0.19 ms | 0.14 ms |
//! | 2,000 new files | 2.5–3.3 ms | 40–47 ms | 47–90 ms |
//!
//! (libgit2's packbuilder searches for deltas and deflates at zlib's default level, then its
//! indexer inflates and hashes every object again with the collision-detecting SHA-1.)
//!
//! Git reads a folder of many packs as it reads one, but `git gc --auto` repacks past
//! `gc.autoPackLimit` (50) packs, and every lookup of a missing object walks all of them. So
//! once a commit leaves more than that many packs, [`Objects::consolidate`] merges the small
//! ones, geometrically, so that a large pack (a big project's first commit) is not rewritten
//! each time. Packs this writer made hold whole objects only, so they are merged by copying
//! their entries as they are; a pack with deltas (written by git or libgit2) makes the merge go
//! through libgit2's packbuilder instead. Merging through libgit2 every time was measured first
//! and rejected: see [`copy_whole`].

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use git2::{FileMode, ObjectType, Odb, Oid, Repository};
use sha1::{Digest, Sha1};

use super::{WorkspaceError, io};

/// The object store of one repository, as far as this writer adds to it.
pub struct Objects {
    /// `objects/pack`.
    pack_dir: PathBuf,
    /// Objects this writer stored or holds for the next pack. Others are written without
    /// looking first: a new object is the common case, and a second copy in another pack is
    /// harmless.
    stored: HashSet<Oid>,
    /// Objects stored since the last [`Objects::flush`], as pack entries.
    pending: Vec<Entry>,
    /// The most packs (without a `.keep`) left in `pack_dir`; 0: no limit, as for git.
    pack_limit: usize,
    /// The packs in `pack_dir` when last counted, plus those written since; counted again when
    /// the folder's stat shows that another writer (a candidate's worktree, git) changed it.
    packs: Option<usize>,
    /// The pack folder's stat after this writer's last pack.
    stamp: Option<DirStamp>,
    /// Packs were consolidated since [`Objects::take_repacked`] last asked.
    repacked: bool,
}

/// A folder's modification and change times, seconds and nanoseconds.
type DirStamp = (i64, i64, i64, i64);

/// One object as a pack holds it: a type-and-size header, then the deflated content.
struct Entry {
    oid: Oid,
    bytes: Vec<u8>,
    crc: u32,
}

/// Compressors not in use, shared by the whole process: setting one up costs more than
/// deflating a small object, one per workspace would hold a quarter megabyte per concurrent run,
/// and one per thread would be set up again by every run an ablation starts on a new thread.
static DEFLATE: Mutex<Vec<ZlibEncoder<Vec<u8>>>> = Mutex::new(Vec::new());

/// `bytes` as a zlib stream, by a compressor from the pool.
fn deflate(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let pooled = DEFLATE.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let mut z = pooled.unwrap_or_else(compressor);
    let done = z.write_all(bytes).and_then(|()| z.reset(Vec::new()));
    // A half-written stream must not reach the next object: that compressor is dropped.
    if done.is_ok() {
        DEFLATE.lock().unwrap_or_else(|p| p.into_inner()).push(z);
    }
    done
}

/// Objects smaller than this are stored in zlib's uncompressed form: trees and commits, whose
/// hashes do not compress, and small files, where clearing the compressor's tables costs more
/// than the few bytes it would save.
const STORE_BELOW: usize = 1024;

/// A zlib stream of `bytes` in stored blocks: the header, blocks of up to 65,535 bytes with
/// their length and its complement, and the Adler-32 of the data.
fn stored_zlib(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&[0x78, 0x01]);
    let mut chunks = bytes.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = u8::from(chunks.peek().is_none());
        let len = chunk.len() as u16;
        out.push(last);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&simd_adler32::adler32(&bytes).to_be_bytes());
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
    /// The store in `dir` (a repository's `objects` folder), kept to at most `pack_limit` packs
    /// (0: no limit).
    pub fn new(dir: &Path, pack_limit: usize) -> Objects {
        Objects {
            pack_dir: dir.join("pack"),
            stored: HashSet::new(),
            pending: Vec::new(),
            pack_limit,
            packs: None,
            stamp: None,
            repacked: false,
        }
    }

    /// Stores `bytes` as an object of `kind` whose id is already known to be `oid`. It reaches
    /// the disk at the next [`Objects::flush`].
    pub fn store(
        &mut self,
        kind: ObjectType,
        oid: Oid,
        bytes: &[u8],
    ) -> Result<(), WorkspaceError> {
        if self.stored.contains(&oid) {
            return Ok(());
        }
        let mut entry = Vec::with_capacity(bytes.len() / 2 + 32);
        entry_header(&mut entry, kind, bytes.len() as u64);
        if bytes.len() < STORE_BELOW {
            stored_zlib(&mut entry, bytes);
        } else {
            let deflated = deflate(bytes).map_err(io(&self.pack_dir))?;
            entry.extend_from_slice(&deflated);
        }
        self.pending.push(Entry {
            oid,
            crc: crc32fast::hash(&entry),
            bytes: entry,
        });
        self.stored.insert(oid);
        Ok(())
    }

    /// Stores the blob of `size` bytes read from `input` by streaming it into a pack of its own
    /// (see `stream_pack.rs`), unless `keep` says its id is not wanted (the snapshot had
    /// it already) or this writer stored it before. Returns its id.
    pub fn store_stream(
        &mut self,
        input: &mut impl std::io::Read,
        size: u64,
        keep: impl FnOnce(Oid) -> bool,
    ) -> std::io::Result<Oid> {
        let s = super::stream_pack::stream(&self.pack_dir, ObjectType::Blob, input, size)?;
        let oid = s.oid;
        if self.stored.contains(&oid) || !keep(oid) {
            return Ok(oid); // the temporary file goes with `s`
        }
        s.install(&self.pack_dir)?;
        self.stored.insert(oid);
        Ok(oid)
    }

    /// Writes the objects stored since the last flush as one pack. After an error they are
    /// forgotten, so that the next commit stores them again.
    pub fn flush(&mut self) -> Result<(), WorkspaceError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        if self.pack_limit > 0 && (self.packs.is_none() || self.stamp != self.dir_stamp()) {
            self.packs = Some(list_packs(&self.pack_dir)?.len());
        }
        let written = write_pack(&self.pack_dir, &pending);
        if written.is_err() {
            for e in &pending {
                self.stored.remove(&e.oid);
            }
        }
        written?;
        self.packs = self.packs.map(|n| n + 1);
        if self.pack_limit > 0 {
            self.stamp = self.dir_stamp();
        }
        Ok(())
    }

    /// The pack folder's modification and change times: adding or removing a pack changes them.
    fn dir_stamp(&self) -> Option<DirStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&self.pack_dir).ok()?;
        Some((m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()))
    }

    /// Like [`Objects::consolidate`], with the packs counted again first (at the end of a run, in
    /// case another writer added some within the same clock tick as this writer's last).
    pub fn consolidate_counted(&mut self) -> Result<(), WorkspaceError> {
        if self.pack_limit > 0 {
            self.packs = Some(list_packs(&self.pack_dir)?.len());
        }
        self.consolidate()
    }

    /// Merges packs through libgit2 if there are more than the limit: all of them but the large
    /// ones that each hold at least twice the objects of all smaller packs together (git's
    /// `repack --geometric=2`), so each object is rewritten a logarithmic number of times. The
    /// merged pack is complete on disk before the packs it replaces are removed, each index
    /// before its pack, so no reader ever misses an object.
    pub fn consolidate(&mut self) -> Result<(), WorkspaceError> {
        if self.pack_limit == 0 || self.packs.is_none_or(|n| n <= self.pack_limit) {
            return Ok(());
        }
        let mut packs = list_packs(&self.pack_dir)?;
        self.packs = Some(packs.len());
        if packs.len() <= self.pack_limit {
            return Ok(());
        }
        packs.sort_by_key(|p| std::cmp::Reverse(p.objects));
        // Keep the longest prefix of large packs, each at least twice the rest; merge the rest
        // (all of them if that would still leave too many).
        let mut rest: u64 = packs.iter().map(|p| p.objects).sum();
        let mut keep = 0;
        for p in &packs {
            rest -= p.objects;
            if p.objects < 2 * rest {
                break;
            }
            keep += 1;
        }
        if keep + 1 > self.pack_limit {
            keep = 0;
        }
        let merged = &packs[keep..];
        if merged.len() < 2 {
            return Ok(());
        }
        let new = match copy_whole(merged)? {
            Some(entries) => Some(write_pack(&self.pack_dir, &entries)?),
            None => self.packbuild(merged)?,
        };
        for pack in merged {
            if new.as_deref() == Some(pack.stem.as_str()) {
                continue;
            }
            // The index first: a pack without one is invisible, an index without its pack is not.
            for ext in ["idx", "pack", "rev", "bitmap"] {
                let path = pack.path(ext);
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io(&path)(e));
                    }
                    _ => {}
                }
            }
        }
        self.packs = Some(keep + 1);
        self.repacked = true;
        Ok(())
    }

    /// Merges `packs` through libgit2's packbuilder (which resolves deltas, finds new ones and
    /// deflates everything again); the new pack's name.
    fn packbuild(&self, packs: &[Pack]) -> Result<Option<String>, WorkspaceError> {
        // A repository over the object store alone: the packbuilder reads objects through it,
        // and no configuration or references need loading.
        let odb = Odb::new()?;
        let objects_dir = self.pack_dir.parent().unwrap_or(&self.pack_dir);
        odb.add_disk_alternate(&objects_dir.to_string_lossy())?;
        let repo = Repository::from_odb(odb)?;
        let mut builder = repo.packbuilder()?;
        // The machine's cores belong to the runs.
        builder.set_threads(1);
        for pack in packs {
            let idx = pack.path("idx");
            let bytes = std::fs::read(&idx).map_err(io(&idx))?;
            for oid in IndexTable::of(&bytes).iter().flat_map(|t| t.ids()) {
                builder.insert_object(oid?, None)?;
            }
        }
        builder.write(&self.pack_dir, 0)?;
        Ok(builder.name().map(|hash| format!("pack-{hash}")))
    }

    /// Whether packs were consolidated since this was last asked.
    pub fn take_repacked(&mut self) -> bool {
        std::mem::take(&mut self.repacked)
    }

    /// Stores `bytes` as an object of `kind`; returns its id.
    pub fn write(&mut self, kind: ObjectType, bytes: &[u8]) -> Result<Oid, WorkspaceError> {
        let oid = object_id(kind, bytes)?;
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

/// The id git gives `bytes` as an object of `kind`: the SHA-1 of `"<kind> <size>\0"` and the
/// bytes. Computed here with the CPU's SHA instructions where it has them, several times faster
/// than libgit2's collision-detecting SHA-1. The price: two files crafted to collide (a published
/// pair) would be recorded as one object where git would refuse them; a workspace is the record
/// of a run, not a defence against its own files.
pub fn object_id(kind: ObjectType, bytes: &[u8]) -> Result<Oid, WorkspaceError> {
    let mut hash = Sha1::new();
    hash.update(format!("{} {}\0", kind_name(kind), bytes.len()));
    hash.update(bytes);
    let digest: [u8; 20] = hash.finalize().into();
    Ok(Oid::from_bytes(&digest)?)
}

pub(super) fn kind_name(kind: ObjectType) -> &'static str {
    match kind {
        ObjectType::Commit => "commit",
        ObjectType::Tree => "tree",
        ObjectType::Tag => "tag",
        _ => "blob",
    }
}

/// The pack entry header: the type in bits 4–6 of the first byte, the size in its low four bits
/// and then seven bits a byte, least significant first; a set top bit means more follows.
pub(super) fn entry_header(out: &mut Vec<u8>, kind: ObjectType, size: u64) {
    let code: u8 = match kind {
        ObjectType::Commit => 1,
        ObjectType::Tree => 2,
        ObjectType::Tag => 4,
        _ => 3,
    };
    let mut byte = (code << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

/// Writes `entries` as `pack-<checksum>.pack` and its version 2 index into `dir`; returns
/// `pack-<checksum>`.
fn write_pack(dir: &Path, entries: &[Entry]) -> Result<String, WorkspaceError> {
    let size: usize = entries.iter().map(|e| e.bytes.len()).sum();
    let mut pack = Vec::with_capacity(12 + size + 20);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    let mut offsets = Vec::with_capacity(entries.len());
    for e in entries {
        offsets.push(pack.len() as u64);
        pack.extend_from_slice(&e.bytes);
    }
    let checksum: [u8; 20] = Sha1::digest(&pack).into();
    pack.extend_from_slice(&checksum);
    let ids: Vec<(Oid, u32)> = entries.iter().map(|e| (e.oid, e.crc)).collect();
    let idx = pack_index(&ids, &offsets, &checksum);
    let name = format!("pack-{}", Oid::from_bytes(&checksum)?);
    persist(dir, &format!("{name}.pack"), &pack)?;
    persist(dir, &format!("{name}.idx"), &idx)?;
    Ok(name)
}

/// A version 2 pack index: a fan-out table of counts by first byte, the sorted ids, their
/// entries' CRC-32s, their offsets (those past 2 GiB in a table of their own), the pack's
/// checksum and the index's own.
pub(super) fn pack_index(
    entries: &[(Oid, u32)],
    offsets: &[u64],
    pack_checksum: &[u8; 20],
) -> Vec<u8> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].0);
    let mut idx = Vec::with_capacity(8 + 1024 + entries.len() * 28 + 40);
    idx.extend_from_slice(&IDX_V2_HEADER);
    let mut counts = [0u32; 256];
    for e in entries {
        counts[usize::from(e.0.as_bytes()[0])] += 1;
    }
    let mut total = 0u32;
    for c in counts {
        total += c;
        idx.extend_from_slice(&total.to_be_bytes());
    }
    for &i in &order {
        idx.extend_from_slice(entries[i].0.as_bytes());
    }
    for &i in &order {
        idx.extend_from_slice(&entries[i].1.to_be_bytes());
    }
    let mut large = Vec::new();
    for &i in &order {
        let offset = offsets[i];
        let field = match u32::try_from(offset) {
            Ok(small) if small < 0x8000_0000 => small,
            _ => {
                large.push(offset);
                0x8000_0000 | (large.len() as u32 - 1)
            }
        };
        idx.extend_from_slice(&field.to_be_bytes());
    }
    for offset in large {
        idx.extend_from_slice(&offset.to_be_bytes());
    }
    idx.extend_from_slice(pack_checksum);
    let own: [u8; 20] = Sha1::digest(&idx).into();
    idx.extend_from_slice(&own);
    idx
}

/// A pack in `objects/pack` that may be merged: its index and pack both present, no `.keep`.
struct Pack {
    dir: PathBuf,
    /// `pack-<hash>`.
    stem: String,
    /// The number of objects its index lists.
    objects: u64,
}

impl Pack {
    fn path(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.stem))
    }
}

/// The packs of `dir` git's auto-pack limit counts (those without a `.keep`), with their object
/// counts. An index git would not read (another version, cut short) leaves its pack out.
fn list_packs(dir: &Path) -> Result<Vec<Pack>, WorkspaceError> {
    let names: HashSet<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut packs = Vec::new();
    for name in &names {
        let Some(stem) = name.strip_suffix(".idx") else {
            continue;
        };
        if !stem.starts_with("pack-")
            || !names.contains(&format!("{stem}.pack"))
            || names.contains(&format!("{stem}.keep"))
        {
            continue;
        }
        let path = dir.join(name);
        let mut head = [0u8; 8 + 256 * 4];
        let read = std::fs::File::open(&path).and_then(|mut f| {
            use std::io::Read;
            f.read_exact(&mut head)
        });
        match read {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path)(e)),
        }
        if head[..8] != IDX_V2_HEADER {
            continue;
        }
        let total = u32::from_be_bytes([head[1028], head[1029], head[1030], head[1031]]);
        packs.push(Pack {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            objects: u64::from(total),
        });
    }
    Ok(packs)
}

/// The start of a version 2 pack index.
const IDX_V2_HEADER: [u8; 8] = [0xff, b't', b'O', b'c', 0, 0, 0, 2];

/// The tables of a version 2 pack index: after the header and the fan-out table (whose last
/// count is the total), the sorted ids, their entries' CRC-32s and their offsets (31 bits, or
/// with the top bit set an index into a table of 64-bit offsets).
struct IndexTable<'a> {
    ids: &'a [u8],
    crcs: &'a [u8],
    offsets: &'a [u8],
    large: &'a [u8],
}

impl<'a> IndexTable<'a> {
    /// `None` when `idx` is not a whole version 2 index.
    fn of(idx: &'a [u8]) -> Option<IndexTable<'a>> {
        if idx.get(..8)? != IDX_V2_HEADER {
            return None;
        }
        let total = u32::from_be_bytes(idx.get(8 + 255 * 4..8 + 256 * 4)?.try_into().ok()?);
        let n = total as usize;
        let ids_at = 8 + 256 * 4;
        let crcs_at = ids_at + 20 * n;
        let offsets_at = crcs_at + 4 * n;
        let large_at = offsets_at + 4 * n;
        // The pack's checksum and the index's own end the file.
        let end = idx.len().checked_sub(40)?;
        Some(IndexTable {
            ids: idx.get(ids_at..crcs_at)?,
            crcs: idx.get(crcs_at..offsets_at)?,
            offsets: idx.get(offsets_at..large_at)?,
            large: idx.get(large_at..end)?,
        })
    }

    fn ids(&self) -> impl Iterator<Item = Result<Oid, git2::Error>> + '_ {
        self.ids.chunks_exact(20).map(Oid::from_bytes)
    }

    /// Each object's id, CRC-32 and offset in the pack; `None` for an offset the large table
    /// lacks.
    fn entries(&self) -> Option<Vec<(Oid, u32, u64)>> {
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        self.ids
            .chunks_exact(20)
            .zip(self.crcs.chunks_exact(4))
            .zip(self.offsets.chunks_exact(4))
            .map(|((id, crc), offset)| {
                let offset = be32(offset);
                let offset = if offset & 0x8000_0000 == 0 {
                    u64::from(offset)
                } else {
                    let at = 8 * (offset & 0x7fff_ffff) as usize;
                    u64::from_be_bytes(self.large.get(at..at + 8)?.try_into().ok()?)
                };
                Some((Oid::from_bytes(id).ok()?, be32(crc), offset))
            })
            .collect()
    }
}

/// The entries of `packs`, each object once, copied as they are, if every one of them is a
/// whole object (as this writer stores them) whose bytes match the CRC-32 its index records;
/// `None` if any is a delta (a pack git or libgit2 wrote), or does not match.
///
/// Why by copy (`cargo bench --bench run_overhead`, 200 commits of one changed file, release
/// build): with every merge through libgit2's packbuilder, a small workspace's commits took
/// 0.042 ms at the median but 0.85 ms on average, the commits that merged up to 67 ms (its
/// packbuilder searches for deltas and deflates everything again, its indexer inflates and
/// hashes it all once more: 7–14 ms of CPU for the 250 objects of 50 small commits, 16–40 ms
/// with a 2,000-file project); merged by copy, 0.040–0.076 ms at the median, 0.075–0.129 ms on
/// average, the merging commits 1.9–2.9 ms.
fn copy_whole(packs: &[Pack]) -> Result<Option<Vec<Entry>>, WorkspaceError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for pack in packs {
        let (idx_path, pack_path) = (pack.path("idx"), pack.path("pack"));
        let idx = std::fs::read(&idx_path).map_err(io(&idx_path))?;
        let data = std::fs::read(&pack_path).map_err(io(&pack_path))?;
        let Some(mut entries) = IndexTable::of(&idx).and_then(|t| t.entries()) else {
            return Ok(None);
        };
        entries.sort_by_key(|&(_, _, offset)| offset);
        // Entries run from their offset to the next one's, the last to the pack's checksum.
        let Some(end) = data.len().checked_sub(20) else {
            return Ok(None);
        };
        let ends = entries
            .iter()
            .skip(1)
            .map(|&(_, _, o)| o)
            .chain([end as u64]);
        for (&(oid, crc, start), stop) in entries.iter().zip(ends) {
            let (Ok(start), Ok(stop)) = (usize::try_from(start), usize::try_from(stop)) else {
                return Ok(None);
            };
            let Some(bytes) = data.get(start..stop).filter(|b| !b.is_empty()) else {
                return Ok(None);
            };
            // Types 1–4 are whole commits, trees, blobs and tags; 6 and 7 are deltas.
            let kind = (bytes[0] >> 4) & 7;
            if !(1..=4).contains(&kind) || crc32fast::hash(bytes) != crc {
                return Ok(None);
            }
            if seen.insert(oid) {
                out.push(Entry {
                    oid,
                    bytes: bytes.to_vec(),
                    crc,
                });
            }
        }
    }
    Ok(Some(out))
}

/// Writes `bytes` to `dir/name` through a temporary file renamed into place, read-only as git
/// makes its packs.
fn persist(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), WorkspaceError> {
    let path = dir.join(name);
    crate::atomic::write_mode(&path, bytes, 0o444).map_err(io(&path))
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
    fn libgit2_and_git_read_what_is_written_and_agree_on_ids() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let mut objects = Objects::new(&repo.path().join("objects"), 50);
        let blob = objects.write(ObjectType::Blob, b"hello\n").unwrap();
        assert_eq!(blob, repo.blob(b"hello\n").unwrap());
        // Written twice: still one object, no error.
        assert_eq!(objects.write(ObjectType::Blob, b"hello\n").unwrap(), blob);
        // Big enough for a size header of several bytes.
        let big: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let big_blob = objects.write(ObjectType::Blob, &big).unwrap();

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
                oid: big_blob,
                mode: FileMode::Blob,
            },
            TreeEntry {
                name: b"l",
                oid: blob,
                mode: FileMode::Link,
            },
        ];
        let root = objects.tree(&mut entries).unwrap();
        let first = objects.commit(root, None, "first").unwrap();
        objects.flush().unwrap();
        let second = objects.commit(root, Some(first), "second\n").unwrap();
        objects.flush().unwrap();
        // Nothing pending: no empty pack.
        objects.flush().unwrap();

        let packs: Vec<_> = std::fs::read_dir(repo.path().join("objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(packs.len(), 4, "two packs with their indexes: {packs:?}");
        assert!(packs.iter().all(|p| p.starts_with("pack-")));

        let mut builder = repo.treebuilder(None).unwrap();
        builder.insert("a0", blob, 0o100755).unwrap();
        builder.insert("a", sub, 0o040000).unwrap();
        builder.insert("a.txt", big_blob, 0o100644).unwrap();
        builder.insert("l", blob, 0o120000).unwrap();
        assert_eq!(root, builder.write().unwrap());
        assert_eq!(repo.find_blob(big_blob).unwrap().content(), &big[..]);
        let c = repo.find_commit(second).unwrap();
        assert_eq!(c.message(), Some("second\n"));
        assert_eq!(c.parent_id(0).unwrap(), first);
        assert_eq!(c.tree_id(), root);
        assert_eq!(c.author().name(), Some("nlah runtime"));
        assert_eq!(repo.find_commit(first).unwrap().message(), Some("first\n"));

        // Git's own checks: every pack and index is well formed and the history is whole.
        repo.reference("refs/heads/main", second, true, "test")
            .unwrap();
        repo.set_head("refs/heads/main").unwrap();
        for p in packs.iter().filter(|p| p.ends_with(".idx")) {
            let idx = repo.path().join("objects/pack").join(p);
            crate::workspace::git_cli(dir.path(), &["verify-pack", &idx.to_string_lossy()]);
        }
        crate::workspace::git_cli(dir.path(), &["fsck", "--full", "--strict", "--no-dangling"]);
    }

    #[test]
    fn stored_zlib_streams_inflate_to_their_bytes() {
        use std::io::Read;
        let long: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        for bytes in [&b""[..], b"tree 1", &long[..]] {
            let mut z = Vec::new();
            stored_zlib(&mut z, bytes);
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, bytes);
        }
    }

    #[test]
    fn entry_headers_carry_type_and_size() {
        let mut out = Vec::new();
        entry_header(&mut out, ObjectType::Blob, 5);
        assert_eq!(out, [0x35]);
        out.clear();
        entry_header(&mut out, ObjectType::Commit, 100);
        // 100 = 0b110_0100: low four bits 0100 with the more-bit, then 110.
        assert_eq!(out, [0x94, 0x06]);
    }

    /// The `.pack` files of `repo`.
    fn pack_files(repo: &Repository) -> Vec<PathBuf> {
        std::fs::read_dir(repo.path().join("objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pack"))
            .collect()
    }

    /// `git verify-pack -v` of every pack of `repo` (which checks every entry and its CRC).
    fn verify_packs(repo: &Repository) -> String {
        let dir = repo.workdir().unwrap();
        pack_files(repo)
            .iter()
            .map(|p| {
                let idx = p.with_extension("idx");
                crate::workspace::git_cli(dir, &["verify-pack", "-v", &idx.to_string_lossy()])
            })
            .collect()
    }

    #[test]
    fn packs_past_the_limit_are_merged_by_copy_and_deltas_through_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let mut objects = Objects::new(&repo.path().join("objects"), 3);
        let mut ids = Vec::new();
        // Big enough to be deflated; more than 2 GiB of offsets is out of reach of a test.
        let big: Vec<u8> = (0..5000u32).flat_map(|i| i.to_le_bytes()).collect();
        for i in 0..4u8 {
            ids.push(objects.write(ObjectType::Blob, &[i; 10]).unwrap());
            ids.push(
                objects
                    .write(ObjectType::Blob, &[&big[..], &[i]].concat())
                    .unwrap(),
            );
            objects.flush().unwrap();
            objects.consolidate().unwrap();
        }
        // Four packs of two objects: all merged into one, by copy.
        assert_eq!(pack_files(&repo).len(), 1);
        assert!(objects.take_repacked());
        assert!(!objects.take_repacked(), "asked once");
        let listing = verify_packs(&repo);
        assert!(!listing.contains("chain length"), "no deltas: {listing}");
        for id in &ids {
            repo.find_blob(*id).unwrap();
        }

        // A pack of deltas, as git gc or libgit2 write them, joins the merge through libgit2.
        let mut builder = repo.packbuilder().unwrap();
        let a = repo.blob(&[&big[..], b"a"].concat()).unwrap();
        let b = repo.blob(&[&big[..], b"b"].concat()).unwrap();
        builder.insert_object(a, None).unwrap();
        builder.insert_object(b, None).unwrap();
        builder.write(&repo.path().join("objects/pack"), 0).unwrap();
        assert!(verify_packs(&repo).contains("chain length = 1"));
        ids.extend([a, b]);
        for i in 0..2u8 {
            ids.push(objects.write(ObjectType::Blob, &[i + 10; 10]).unwrap());
            objects.flush().unwrap();
            objects.consolidate().unwrap();
        }
        assert!(pack_files(&repo).len() <= 3, "{:?}", pack_files(&repo));
        let repo = Repository::open(dir.path()).unwrap();
        for id in &ids {
            repo.find_blob(*id).unwrap();
        }
        verify_packs(&repo);
    }
}

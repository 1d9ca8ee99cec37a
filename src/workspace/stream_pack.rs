//! Large files stored by streaming: a blob read in chunks, deflated straight into a pack of its
//! own on disk while the object's SHA-1, the entry's CRC-32 and the pack's checksum are computed
//! over the same stream. Memory stays at one chunk and the compressor's window whatever the
//! file's size (a 1 GB file read whole, as small files are, held the file and its deflated copy:
//! 3.2 GB of memory for one commit).
//!
//! The pack gets a `.keep`, as git's own packs of big objects often do: the auto-pack limit does
//! not count it and [`super::objects::Objects::consolidate`] never rewrites it, since merging
//! copies a pack's entries through memory.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use git2::{ObjectType, Oid};
use sha1::{Digest, Sha1};

use super::objects::{entry_header, kind_name, pack_index};

/// Files at least this large are streamed; smaller ones are read whole, which is faster (one
/// read, one compressor call, several objects per pack).
pub const STREAM_FROM: u64 = 8 << 20;

/// How much of the file is read at once.
const CHUNK: usize = 1 << 20;

/// A writer that counts what passes through it into the pack's checksum and the entry's CRC.
struct Tee<W: Write> {
    out: W,
    pack: Sha1,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.pack.update(&buf[..n]);
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A pack written to a temporary file in the pack folder, not yet visible to git.
pub struct Streamed {
    pub oid: Oid,
    tmp: tempfile::NamedTempFile,
    checksum: [u8; 20],
    crc: u32,
}

/// Streams `size` bytes of `input` into a one-object pack in `pack_dir` (a temporary file until
/// [`Streamed::install`]). Fails with `UnexpectedEof` if `input` ends before `size` bytes (the
/// file shrank while it was read); bytes past `size` are not read.
pub fn stream(
    pack_dir: &Path,
    kind: ObjectType,
    input: &mut impl Read,
    size: u64,
) -> std::io::Result<Streamed> {
    let tmp = tempfile::NamedTempFile::new_in(pack_dir)?;
    let mut tee = Tee {
        out: BufWriter::with_capacity(CHUNK, tmp.as_file()),
        pack: Sha1::new(),
        crc: crc32fast::Hasher::new(),
    };
    tee.write_all(b"PACK")?;
    tee.write_all(&2u32.to_be_bytes())?;
    tee.write_all(&1u32.to_be_bytes())?;
    // The entry's CRC covers its header and its deflated bytes only.
    tee.crc = crc32fast::Hasher::new();
    let mut header = Vec::with_capacity(10);
    entry_header(&mut header, kind, size);
    tee.write_all(&header)?;
    let mut object = Sha1::new();
    object.update(format!("{} {size}\0", kind_name(kind)));
    // The same level as small objects get.
    let mut z = ZlibEncoder::new(&mut tee, Compression::fast());
    let mut buf = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        let want = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        let n = read_some(input, &mut buf[..want], left, size)?;
        object.update(&buf[..n]);
        z.write_all(&buf[..n])?;
        left -= n as u64;
    }
    z.finish()?;
    let checksum: [u8; 20] = std::mem::replace(&mut tee.pack, Sha1::new())
        .finalize()
        .into();
    let crc = tee.crc.clone().finalize();
    tee.out.write_all(&checksum)?;
    tee.out.flush()?;
    drop(tee);
    let digest: [u8; 20] = object.finalize().into();
    let oid = Oid::from_bytes(&digest).map_err(std::io::Error::other)?;
    Ok(Streamed {
        oid,
        tmp,
        checksum,
        crc,
    })
}

/// The id of the blob of `size` bytes read from `input`, without storing it: a file seen before
/// whose stat changed is usually unchanged (touched, or too recent to trust), and hashing it
/// costs a fraction of deflating it. `UnexpectedEof` as for [`stream`].
pub fn blob_id(input: &mut impl Read, size: u64) -> std::io::Result<Oid> {
    let mut object = Sha1::new();
    object.update(format!("blob {size}\0"));
    let mut buf = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        let want = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        let n = read_some(input, &mut buf[..want], left, size)?;
        object.update(&buf[..n]);
        left -= n as u64;
    }
    let digest: [u8; 20] = object.finalize().into();
    Oid::from_bytes(&digest).map_err(std::io::Error::other)
}

/// One read of at most `buf.len()` bytes, retried when interrupted; the end of the input before
/// `left` more bytes is an `UnexpectedEof`.
fn read_some(
    input: &mut impl Read,
    buf: &mut [u8],
    left: u64,
    size: u64,
) -> std::io::Result<usize> {
    loop {
        match input.read(buf) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the file shrank while it was read ({left} of {size} bytes missing)"),
                ));
            }
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Streamed {
    /// Makes the pack visible: the pack read-only and renamed into place, its `.keep`, then its
    /// index last (git finds packs through their index, so a reader never sees half of one).
    pub fn install(self, pack_dir: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let checksum_oid = Oid::from_bytes(&self.checksum).map_err(std::io::Error::other)?;
        let name = format!("pack-{checksum_oid}");
        self.tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o444))?;
        self.tmp
            .persist(pack_dir.join(format!("{name}.pack")))
            .map_err(|e| e.error)?;
        crate::atomic::write_mode(
            &pack_dir.join(format!("{name}.keep")),
            b"nlah: a large file, stored by streaming\n",
            0o444,
        )?;
        let idx = pack_index(&[(self.oid, self.crc)], &[12], &self.checksum);
        crate::atomic::write_mode(&pack_dir.join(format!("{name}.idx")), &idx, 0o444)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_blob_reads_back_through_libgit2_with_gits_id() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let pack_dir = repo.path().join("objects/pack");
        std::fs::create_dir_all(&pack_dir).unwrap();
        // Bigger than a chunk, not a multiple of it.
        let bytes: Vec<u8> = (0..(CHUNK as u32 * 2 + 777) / 4)
            .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
            .collect();
        let s = stream(
            &pack_dir,
            ObjectType::Blob,
            &mut &bytes[..],
            bytes.len() as u64,
        )
        .unwrap();
        let oid = s.oid;
        assert_eq!(oid, Oid::hash_object(ObjectType::Blob, &bytes).unwrap());
        s.install(&pack_dir).unwrap();
        let repo = git2::Repository::open_bare(dir.path()).unwrap();
        assert_eq!(repo.find_blob(oid).unwrap().content(), &bytes[..]);
        let keeps = std::fs::read_dir(&pack_dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("keep".as_ref()))
            .count();
        assert_eq!(keeps, 1);
    }

    #[test]
    fn a_file_that_shrinks_while_read_is_an_error_not_a_wrong_object() {
        let dir = tempfile::tempdir().unwrap();
        let e = stream(dir.path(), ObjectType::Blob, &mut &b"short"[..], 10)
            .err()
            .unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        // Nothing is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

//! A folder opened once and read by name: the names it holds, and the stat, content or link
//! target of each, found relative to the open folder.
//!
//! A commit's walk looks at every recorded file. By absolute path, each look makes the kernel
//! resolve every folder from `/` down again (a workspace sits ten or so folders deep); relative
//! to an open folder it resolves one name.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, RawDir};

pub use rustix::fs::Stat;

/// What a name in a folder is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Sockets, fifos and devices: not content.
    Other,
}

impl Kind {
    fn of(t: FileType) -> Kind {
        match t {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    /// The kind a stat's mode gives.
    pub fn of_mode(mode: u32) -> Kind {
        Kind::of(FileType::from_raw_mode(mode as _))
    }
}

/// An open folder.
pub struct Folder(OwnedFd);

impl Folder {
    /// Opens the folder at `path` (a symlink to a folder is followed, as for the work tree a
    /// user names).
    pub fn open(path: &Path) -> std::io::Result<Folder> {
        open_dir(CWD, path.as_os_str(), OFlags::empty())
    }

    /// Opens the folder `name` inside this one; a symlink is not followed (git records it as a
    /// link, not as what it points to).
    pub fn open_sub(&self, name: &OsStr) -> std::io::Result<Folder> {
        open_dir(self.0.as_fd(), name, OFlags::NOFOLLOW)
    }

    /// The folder's own stat.
    pub fn stat(&self) -> std::io::Result<Stat> {
        Ok(rustix::fs::fstat(&self.0)?)
    }

    /// The stat of `name`, itself if it is a symlink.
    pub fn stat_at(&self, name: &OsStr) -> std::io::Result<Stat> {
        Ok(rustix::fs::statat(
            &self.0,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// The content of the file `name`; `size` is what its stat said, a hint.
    pub fn read_at(&self, name: &OsStr, size: u64) -> std::io::Result<Vec<u8>> {
        let fd = rustix::fs::openat(
            &self.0,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        std::fs::File::from(fd).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// The file `name` opened for reading, not through a symlink (one that replaced it since
    /// its stat was taken fails with `ELOOP`), and its size now.
    pub fn open_file_at(&self, name: &OsStr) -> std::io::Result<(std::fs::File, u64)> {
        let fd = rustix::fs::openat(
            &self.0,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        let size = rustix::fs::fstat(&fd)?.st_size;
        Ok((std::fs::File::from(fd), u64::try_from(size).unwrap_or(0)))
    }

    /// The target of the symlink `name`.
    pub fn link_at(&self, name: &OsStr) -> std::io::Result<Vec<u8>> {
        Ok(rustix::fs::readlinkat(&self.0, name, Vec::new())?.into_bytes())
    }

    /// The names in the folder (not `.` and `..`) and their kinds. Where the file system does
    /// not say a name's kind, its stat does; a name gone by then is left out.
    pub fn names(&self) -> std::io::Result<Vec<(OsString, Kind)>> {
        let mut buf: Vec<MaybeUninit<u8>> = Vec::with_capacity(8192);
        buf.resize(8192, MaybeUninit::uninit());
        let mut dir = RawDir::new(self.0.as_fd(), &mut buf);
        let mut out = Vec::new();
        while let Some(entry) = dir.next() {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => match self.stat_at(name) {
                    Ok(stat) => Kind::of_mode(stat.st_mode as _),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                },
                known => Kind::of(known),
            };
            out.push((name.to_os_string(), kind));
        }
        Ok(out)
    }
}

fn open_dir(at: impl AsFd, name: &OsStr, extra: OFlags) -> std::io::Result<Folder> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | extra;
    Ok(Folder(rustix::fs::openat(at, name, flags, Mode::empty())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_stats_contents_and_links_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/f"), "content").unwrap();
        std::os::unix::fs::symlink("f", root.join("sub/link")).unwrap();
        let top = Folder::open(root).unwrap();
        assert_eq!(top.names().unwrap(), [(OsString::from("sub"), Kind::Dir)]);
        let sub = top.open_sub(OsStr::new("sub")).unwrap();
        let mut names = sub.names().unwrap();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            names,
            [
                (OsString::from("f"), Kind::File),
                (OsString::from("link"), Kind::Symlink)
            ]
        );
        let f = sub.stat_at(OsStr::new("f")).unwrap();
        assert_eq!(f.st_size, 7);
        assert_eq!(Kind::of_mode(f.st_mode as _), Kind::File);
        let link = sub.stat_at(OsStr::new("link")).unwrap();
        assert_eq!(Kind::of_mode(link.st_mode as _), Kind::Symlink);
        assert_eq!(sub.read_at(OsStr::new("f"), 7).unwrap(), b"content");
        assert_eq!(sub.link_at(OsStr::new("link")).unwrap(), b"f");
        // A symlink to a folder is not opened as one.
        std::os::unix::fs::symlink("sub", root.join("to-sub")).unwrap();
        assert!(top.open_sub(OsStr::new("to-sub")).is_err());
        // The folder a user names may be a symlink.
        let named = Folder::open(&root.join("to-sub")).unwrap();
        assert_eq!(named.names().unwrap().len(), 2);
    }
}

//! What every confined command may read besides its own paths: the system's folders and the
//! toolchains on its `PATH`, and nothing else — not home folders, keys, task folders (the hidden
//! tests), `/tmp` or other runs.
//!
//! Found once per process and kept open (`O_PATH`), so that a command's Landlock ruleset is built
//! from borrowed descriptors without a path lookup each.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Folders of programs and libraries, read whole.
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/nix", "/proc", "/sys",
];

/// Device files a shell reads and writes (the rest of `/dev` holds raw disks). `/dev/fd` and
/// `/dev/stdout` lead into `/proc`, which is readable.
pub(super) const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
];

/// Toolchain managers kept in a home folder whose whole folder a program on `PATH` needs (a shim
/// reads its versions, a proxy its toolchains).
const TOOLCHAIN_HOMES: &[&str] = &[
    ".pyenv",
    ".rbenv",
    ".nodenv",
    ".nvm",
    ".volta",
    ".asdf",
    ".rustup",
    ".sdkman",
    ".bun",
    ".deno",
    ".elan",
    ".ghcup",
    ".opam",
    ".juliaup",
    ".local/share/mise",
    ".local/share/uv",
];

/// One of the system's readable paths, opened once.
pub(super) struct SystemPath {
    pub path: PathBuf,
    pub fd: OwnedFd,
    /// One of [`DEVICES`], which commands also write.
    pub device: bool,
    /// A folder, not a file: rights on a folder's entries apply (found once here, so that a
    /// ruleset need not ask `fstat` for every path each time it is built).
    pub folder: bool,
}

/// The system's readable paths, opened once.
pub(super) fn system() -> &'static [SystemPath] {
    static SET: OnceLock<Vec<SystemPath>> = OnceLock::new();
    SET.get_or_init(|| {
        let mut paths: Vec<PathBuf> = SYSTEM.iter().map(PathBuf::from).collect();
        paths.extend(DEVICES.iter().map(PathBuf::from));
        etc(Path::new("/etc"), &mut paths);
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        paths.extend(toolchains(&path_var));
        let mut out: Vec<SystemPath> = Vec::new();
        for p in paths {
            if out.iter().any(|q| p.starts_with(&q.path)) {
                continue;
            }
            let Ok(fd) = open_path(&p) else { continue };
            let Ok(stat) = rustix::fs::fstat(&fd) else {
                continue;
            };
            let folder = rustix::fs::FileType::from_raw_mode(stat.st_mode).is_dir();
            let device = DEVICES.iter().any(|d| p == Path::new(d));
            out.push(SystemPath {
                path: p,
                fd,
                device,
                folder,
            });
        }
        out
    })
}

/// `path` opened for naming only (`O_PATH`), as a Landlock rule takes it.
pub(super) fn open_path(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
}

/// `/etc` without what only its owner may read (`/etc/shadow`, private keys): a folder whose
/// whole tree everyone may read is allowed whole, else its parts that are.
fn etc(dir: &Path, out: &mut Vec<PathBuf>) {
    if world_readable_tree(dir) {
        out.push(dir.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if meta.permissions().mode() & 0o005 == 0o005 {
                etc(&p, out);
            }
        } else if !meta.file_type().is_symlink() && meta.permissions().mode() & 0o004 != 0 {
            out.push(p);
        }
    }
}

/// Whether everyone may read every file beneath `dir` and enter every folder. Links count as
/// readable: Landlock checks the file a link leads to where that file is.
fn world_readable_tree(dir: &Path) -> bool {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .all(|e| match e {
            Ok(e) => match e.metadata() {
                Ok(m) if m.file_type().is_symlink() => true,
                Ok(m) if m.is_dir() => m.permissions().mode() & 0o005 == 0o005,
                Ok(m) => m.permissions().mode() & 0o004 != 0,
                Err(_) => false,
            },
            Err(_) => false,
        })
}

/// The folders of `path` outside the system's, with the toolchain home each needs: `~/.cargo/bin`
/// itself (not `~/.cargo`, which may hold a registry token) and `~/.rustup` beside it, `~/.pyenv`
/// for `~/.pyenv/shims`. Homes are found in the folder's own path, not through `HOME`, which nlah
/// may have been given a different one.
fn toolchains(path: &OsString) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::env::split_paths(path) {
        if !dir.is_absolute() || SYSTEM.iter().any(|s| dir.starts_with(s)) {
            continue;
        }
        let dir = dir.canonicalize().unwrap_or(dir);
        for t in TOOLCHAIN_HOMES {
            if let Some(root) = dir.ancestors().find(|a| a.ends_with(t)) {
                out.push(root.to_path_buf());
            }
        }
        // A Python virtual environment: its root (`pyvenv.cfg`, `lib/`) and the installation
        // its interpreter comes from (`home = …/bin` in `pyvenv.cfg`: the standard library).
        if let Some(venv) = dir.parent().filter(|v| v.join("pyvenv.cfg").is_file()) {
            out.push(venv.to_path_buf());
            let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).unwrap_or_default();
            let home = cfg.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == "home").then(|| PathBuf::from(v.trim()))
            });
            if let Some(prefix) = home.as_deref().and_then(Path::parent)
                && prefix.is_absolute()
                && prefix.components().count() > 1
            {
                out.push(prefix.to_path_buf());
            }
        }
        if dir.ends_with(".cargo/bin")
            && let Some(home) = dir.parent().and_then(Path::parent)
            && home.join(".rustup").is_dir()
        {
            out.push(home.join(".rustup"));
        }
        out.push(dir);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolchain_homes_come_with_their_shims_but_not_cargo_tokens() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        for d in [".pyenv/shims", ".cargo/bin", ".rustup", ".local/bin"] {
            std::fs::create_dir_all(h.join(d)).unwrap();
        }
        let path = std::env::join_paths([
            h.join(".pyenv/shims"),
            h.join(".cargo/bin"),
            h.join(".local/bin"),
            PathBuf::from("/usr/bin"),
        ])
        .unwrap();
        let got = toolchains(&path);
        let h = h.canonicalize().unwrap_or(h.to_path_buf());
        let got: Vec<PathBuf> = got
            .into_iter()
            .map(|p| p.canonicalize().unwrap_or(p))
            .collect();
        assert!(got.contains(&h.join(".pyenv")), "{got:?}");
        assert!(got.contains(&h.join(".cargo/bin")), "{got:?}");
        assert!(got.contains(&h.join(".rustup")), "{got:?}");
        assert!(got.contains(&h.join(".local/bin")), "{got:?}");
        assert!(!got.contains(&h.join(".cargo")), "{got:?}");
        assert!(!got.iter().any(|p| p.starts_with("/usr")), "{got:?}");
    }

    #[test]
    fn a_virtual_environment_comes_whole_with_its_interpreter() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("venv/bin")).unwrap();
        std::fs::create_dir_all(r.join("python/bin")).unwrap();
        std::fs::write(
            r.join("venv/pyvenv.cfg"),
            format!("home = {}\n", r.join("python/bin").display()),
        )
        .unwrap();
        let got = toolchains(&std::env::join_paths([r.join("venv/bin")]).unwrap());
        let r = r.canonicalize().unwrap();
        let got: Vec<PathBuf> = got
            .into_iter()
            .map(|p| p.canonicalize().unwrap_or(p))
            .collect();
        assert!(got.contains(&r.join("venv")), "{got:?}");
        assert!(got.contains(&r.join("python")), "{got:?}");
    }

    #[test]
    fn etc_leaves_out_what_only_its_owner_reads() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("ssl/private")).unwrap();
        std::fs::create_dir_all(d.join("ssl/certs")).unwrap();
        std::fs::write(d.join("passwd"), "root:x:0:0").unwrap();
        std::fs::write(d.join("shadow"), "root:$6$").unwrap();
        std::fs::write(d.join("ssl/certs/ca.pem"), "pem").unwrap();
        std::fs::write(d.join("ssl/private/key.pem"), "key").unwrap();
        let mode = |p: &str, m| {
            std::fs::set_permissions(d.join(p), std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode("passwd", 0o644);
        mode("shadow", 0o640);
        mode("ssl/certs/ca.pem", 0o644);
        mode("ssl/private", 0o700);
        let mut got = Vec::new();
        etc(d, &mut got);
        assert!(got.contains(&d.join("passwd")), "{got:?}");
        assert!(got.contains(&d.join("ssl/certs")), "{got:?}");
        assert!(!got.iter().any(|p| p.ends_with("shadow")), "{got:?}");
        assert!(
            !got.iter().any(|p| p.starts_with(d.join("ssl/private"))),
            "{got:?}"
        );
        assert!(!got.contains(&d.to_path_buf()), "{got:?}");
    }
}

//! The network side of confinement: a private network namespace for the command.
//!
//! Making a namespace costs the kernel a loopback device and its tables, and tearing it down
//! afterwards costs more (a kernel worker, off the clock of the command but not of the machine).
//! Commands started from a thread as root therefore take a namespace from a pool of those whose
//! commands have ended, and make one only when the pool is empty. A namespace goes back to the
//! pool only once no process of its command's group is left, so a command never shares its
//! network with another command's processes — except a process that left its group on purpose
//! (`setsid`), which the pool cannot see.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

/// How a private network namespace is made on this system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NetMode {
    /// `unshare(CLONE_NEWNET)`: needs CAP_SYS_ADMIN (root).
    NetOnly,
    /// `unshare(CLONE_NEWUSER | CLONE_NEWNET)`, own uid and gid mapped to themselves.
    UserAndNet,
    /// Neither works.
    None,
}

impl NetMode {
    pub(super) fn describe(self) -> &'static str {
        match self {
            NetMode::NetOnly => "private network namespace",
            NetMode::UserAndNet => "private user and network namespace",
            NetMode::None => "no network namespace",
        }
    }
}

/// The child's namespace steps, with the id maps formatted before the fork.
pub(super) struct NetSetup {
    mode: NetMode,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl NetSetup {
    pub(super) fn new(mode: NetMode) -> Self {
        // SAFETY: these getters cannot fail and have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        NetSetup {
            mode,
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        }
    }

    pub(super) fn mode(&self) -> NetMode {
        self.mode
    }

    /// The namespaces to make, as `unshare` and `clone` flags.
    pub(super) fn flags(&self) -> libc::c_int {
        match self.mode {
            NetMode::None => 0,
            NetMode::NetOnly => libc::CLONE_NEWNET,
            NetMode::UserAndNet => libc::CLONE_NEWUSER | libc::CLONE_NEWNET,
        }
    }

    /// Runs in the child between fork and exec: system calls only, no allocation.
    pub(super) fn apply(&self) -> io::Result<()> {
        if self.mode == NetMode::None {
            return Ok(());
        }
        // SAFETY: unshare has no memory-safety preconditions.
        cvt(unsafe { libc::unshare(self.flags()) })?;
        self.inside()
    }

    /// In the new namespaces (made by `unshare` or `clone`): the id maps of a user namespace, and
    /// `lo` up. System calls only, no allocation, nothing written to memory.
    pub(super) fn inside(&self) -> io::Result<()> {
        if self.mode == NetMode::UserAndNet {
            // Unprivileged gid maps need setgroups denied first; kernels before 3.19 lack the
            // file.
            match write_file(c"/proc/self/setgroups", b"deny") {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                _ => {}
            }
            write_file(c"/proc/self/uid_map", &self.uid_map)?;
            write_file(c"/proc/self/gid_map", &self.gid_map)?;
        }
        loopback_up();
        Ok(())
    }
}

/// Namespaces whose commands have ended, ready to be entered again.
static POOL: Mutex<Vec<OwnedFd>> = Mutex::new(Vec::new());
/// More are closed (and so torn down) rather than kept. The pool never holds more than the
/// most commands that ran at once, whose namespaces existed then anyway (about 200 KB of kernel
/// memory each), so the bound only matters after a burst. Below it a matrix of 200 cells at once
/// makes namespaces (0.4 ms of CPU each, and the kernel's teardown later) in its first wave only:
/// the workload benchmark's two rounds of 50 and of 200 cells made 201 for 1,001 commands.
const POOL_MAX: usize = 256;

/// The network namespace a command started in, held until the command has ended.
pub(super) struct Lease(OwnedFd);

impl NetSetup {
    /// On a thread about to start a command: enters a pooled namespace or makes a new one. A
    /// lease comes back for a plain network namespace (root); a user namespace cannot be entered
    /// this way and is never pooled.
    pub(super) fn enter(&self) -> io::Result<Option<Lease>> {
        if self.mode != NetMode::NetOnly {
            self.apply()?;
            return Ok(None);
        }
        let pooled = POOL.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(fd) = pooled {
            // SAFETY: setns on a namespace fd this process owns; a failure leaves the thread where
            // it was, and a new namespace is made instead.
            if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
                return Ok(Some(Lease(fd)));
            }
        }
        self.apply()?;
        // SAFETY: a NUL-terminated path; a new descriptor nothing else owns.
        let fd = unsafe {
            libc::open(
                c"/proc/thread-self/ns/net".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        // Without /proc the namespace is simply not kept.
        // SAFETY: open returned a new descriptor (checked non-negative) that nothing else owns.
        Ok((fd >= 0).then(|| Lease(unsafe { OwnedFd::from_raw_fd(fd) })))
    }
}

impl Lease {
    /// Puts the namespace back in the pool if no process of the group `pgid` (the command's, now
    /// reaped) is left in it; otherwise lets it go.
    pub(super) fn release(self, pgid: libc::pid_t) {
        // SAFETY: signal 0 only checks whether the group has members.
        let empty = unsafe { libc::kill(-pgid, 0) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if !empty {
            return;
        }
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(self.0);
        }
    }
}

fn cvt(r: libc::c_int) -> io::Result<()> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn write_file(path: &CStr, data: &[u8]) -> io::Result<()> {
    // SAFETY: path is NUL-terminated; data outlives the call; the fd is closed on every path.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let err = io::Error::last_os_error();
        libc::close(fd);
        if n != data.len() as isize {
            return Err(err);
        }
    }
    Ok(())
}

/// Brings `lo` up in the new namespace so that a command can talk to servers it starts itself.
/// Best effort: a command without loopback still has no network.
fn loopback_up() {
    // SAFETY: ifreq is plain old data; the socket is closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd == -1 {
            return;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr) == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr);
        }
        libc::close(fd);
    }
}

/// Finds a namespace mode that works, by trying each in a short-lived `sh -c 'exit 0'` (never in
/// this process). Root tries a plain network namespace first: it keeps file ownership intact,
/// which a single-id user namespace does not.
pub(super) fn detect() -> (NetMode, Option<String>) {
    // SAFETY: no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let modes: &[NetMode] = if root {
        &[NetMode::NetOnly, NetMode::UserAndNet]
    } else {
        &[NetMode::UserAndNet]
    };
    let mut why = Vec::new();
    for &mode in modes {
        match try_mode(mode) {
            Ok(()) => return (mode, None),
            Err(e) => why.push(format!("{}: {e}", mode.describe())),
        }
    }
    (NetMode::None, Some(why.join("; ")))
}

/// Whether a namespace of `mode` can be made here (tried in a short-lived child).
pub(super) fn try_mode(mode: NetMode) -> Result<(), String> {
    let setup = NetSetup::new(mode);
    probe_child(move || setup.apply())
}

/// Runs a short-lived `sh -c 'exit 0'` whose child side runs `hook` before `exec`: whether
/// the steps work here, tried never in this process.
pub(super) fn probe_child(
    hook: impl FnMut() -> io::Result<()> + Send + Sync + 'static,
) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "exit 0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the hooks given make system calls only (see NetSetup::apply and pidns).
    unsafe {
        cmd.pre_exec(hook);
    }
    let status = cmd.status().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("probe command ended with {status}"))
    }
}

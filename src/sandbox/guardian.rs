//! The guardian: a small process that kills nlah's confined commands when nlah itself dies.
//!
//! A command's PID namespace dies with the command ([`super::pidns`]), but if nlah is killed
//! with SIGKILL, nothing of nlah runs to end the commands it started. The guardian does: forked
//! once per nlah process, in a session of its own (a signal to nlah's process group does not reach
//! it), it holds one end of a socket pair whose other end only nlah holds. Every confined command
//! is handed to it as a pidfd when it starts. When the socket reports end of file, nlah is gone,
//! and the guardian sends SIGKILL through every pidfd it holds, then exits. A pidfd names one
//! process for good, so an ended command's recycled pid is never hit; pidfds of ended commands
//! are dropped whenever the table fills.
//!
//! The guardian is forked from a process with many threads, so it runs only system calls on
//! memory prepared before the fork: no allocation, no locks.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

/// Commands watched at once (fewer where the guardian may open fewer files); when the table is
/// full, ended ones are swept out first.
const SLOTS: usize = 4096;

static GUARDIAN: OnceLock<Option<Mutex<OwnedFd>>> = OnceLock::new();

/// Whether a guardian watches this process's commands (started on first use).
pub(super) fn available() -> bool {
    socket().is_some()
}

/// Hands the process behind `pidfd` to the guardian, to be killed if nlah dies before it ends.
/// Best effort: without a guardian, nothing happens (the enforcement notes say so).
pub(super) fn watch(pidfd: BorrowedFd<'_>) {
    let Some(sock) = socket() else { return };
    let sock = sock.lock().unwrap_or_else(|p| p.into_inner());
    // SAFETY: msghdr, iovec and the control buffer are plain data that live across the call; the
    // control message carries one descriptor, sized by CMSG_SPACE.
    unsafe {
        let mut byte = [1u8];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = [0u64; 4];
        let space = libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) as usize;
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize;
        std::ptr::write_unaligned(
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
            pidfd.as_raw_fd(),
        );
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL);
    }
}

/// Hands the process `pid` (a child of ours, not yet reaped) to the guardian.
pub(super) fn watch_pid(pid: libc::pid_t) {
    if socket().is_none() {
        return;
    }
    // SAFETY: pidfd_open takes a pid and flags; the pid is our unreaped child, so it names it.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd >= 0 {
        // SAFETY: a new descriptor nothing else owns; closed when dropped after the send.
        let owned = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        use std::os::fd::AsFd;
        watch(owned.as_fd());
    }
}

fn socket() -> Option<&'static Mutex<OwnedFd>> {
    GUARDIAN.get_or_init(|| start().map(Mutex::new)).as_ref()
}

/// Forks the guardian; returns nlah's end of the socket pair.
fn start() -> Option<OwnedFd> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the array it is given.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return None;
    }
    // SAFETY: both are new descriptors that nothing else owns.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut table = vec![-1 as libc::c_int; SLOTS];
    // SAFETY: the child runs only `serve`, which makes system calls on the table and descriptor
    // prepared here, then exits without returning.
    match unsafe { libc::fork() } {
        -1 => None,
        0 => unsafe { serve(theirs.as_raw_fd(), &mut table) },
        _ => {
            drop(theirs);
            Some(ours)
        }
    }
}

/// The guardian's whole life. Never returns.
///
/// # Safety
/// Only in the child of `fork`: it closes every descriptor but `sock`.
unsafe fn serve(sock: libc::c_int, table: &mut [libc::c_int]) -> ! {
    unsafe {
        // Nothing of nlah's is kept open: a pipe or socket held here would never report its end.
        let s = sock as libc::c_uint;
        if s > 0 {
            libc::close_range(0, s - 1, 0);
        }
        libc::close_range(s + 1, libc::c_uint::MAX, 0);
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, c"nlah-guardian".as_ptr());
        // Ctrl-C and hang-ups are nlah's to act on; the guardian waits for nlah to be gone.
        for sig in [
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGTERM,
            libc::SIGQUIT,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // Every watched command is an open pidfd: as many as the hard limit allows, and a sweep
        // of ended ones well before the soft limit would drop a descriptor in transit.
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let room = usize::try_from(lim.rlim_cur)
            .unwrap_or(usize::MAX)
            .saturating_sub(64)
            .clamp(16, table.len());
        loop {
            let mut byte = [0u8];
            let mut iov = libc::iovec {
                iov_base: byte.as_mut_ptr().cast(),
                iov_len: 1,
            };
            let mut control = [0u64; 4];
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of_val(&control);
            let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n == -1 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if cmsg.is_null()
                || (*cmsg).cmsg_level != libc::SOL_SOCKET
                || (*cmsg).cmsg_type != libc::SCM_RIGHTS
            {
                continue;
            }
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            keep(&mut table[..room], fd);
        }
        for &fd in table.iter().filter(|fd| **fd >= 0) {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd,
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
        libc::_exit(0)
    }
}

/// Stores `fd` in a free slot, sweeping out pidfds of ended processes when none is free.
///
/// # Safety
/// System calls only; runs in the guardian.
unsafe fn keep(table: &mut [libc::c_int], fd: libc::c_int) {
    unsafe {
        if !table.contains(&-1) {
            // Full: drop the pidfds of commands that have ended.
            for slot in table.iter_mut() {
                // A pidfd polls readable once its process has ended.
                let mut p = libc::pollfd {
                    fd: *slot,
                    events: libc::POLLIN,
                    revents: 0,
                };
                if libc::poll(&mut p, 1, 0) == 1 {
                    libc::close(*slot);
                    *slot = -1;
                }
            }
        }
        match table.iter_mut().find(|s| **s == -1) {
            Some(slot) => *slot = fd,
            None => {
                libc::close(fd);
            }
        }
    }
}

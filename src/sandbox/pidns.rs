//! The process side of confinement: every command is the first process (PID 1) of a PID
//! namespace of its own, so that nothing it starts outlives it.
//!
//! When the first process of a PID namespace ends, the kernel kills every other process in the
//! namespace, whatever session or process group it moved to: a `setsid` background job, a
//! daemon, a server left listening on the command's loopback. The namespace is made differently
//! on the two ways a command starts:
//! - from a thread (root, [`super::spawn`]): the thread calls `unshare(CLONE_NEWPID)` and the
//!   command it then starts is the namespace's first process;
//! - by `clone` into a user namespace (unprivileged, [`super::spawn`]): `CLONE_NEWPID` makes the
//!   new process the namespace's first;
//! - after `fork` (a `pre_exec` hook, or no `pidfd_open`): the forked child unshares, then forks
//!   once more. The grandchild becomes the command; the child stays behind holding nothing but
//!   the wait for it, and ends as it ended. The grandchild dies with the child
//!   (`PR_SET_PDEATHSIG`), so killing the command's pid still kills the command.

use std::io;

use super::netns::{NetMode, NetSetup};

/// How a command gets a PID namespace of its own on this system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PidMode {
    /// `unshare(CLONE_NEWPID)` works on a thread and after fork (CAP_SYS_ADMIN: root).
    Root,
    /// Only inside a new user namespace (unprivileged, with [`NetMode::UserAndNet`]).
    InUserNamespace,
    /// Neither.
    None,
}

/// Finds the mode, given how network namespaces are made here.
pub(super) fn detect(net: NetMode) -> PidMode {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } == 0 && thread_can_unshare() {
        return PidMode::Root;
    }
    if net == NetMode::UserAndNet && after_user_namespace_works() {
        return PidMode::InUserNamespace;
    }
    PidMode::None
}

/// Tries a short-lived `sh -c 'exit 0'` as the first process of a PID namespace inside a user
/// namespace, as the fork path makes it.
fn after_user_namespace_works() -> bool {
    let setup = NetSetup::new(NetMode::UserAndNet);
    super::netns::probe_child(move || {
        setup.apply()?;
        unshare()?;
        // SAFETY: between fork and exec, in the probe's child.
        unsafe { fork_first_process() }
    })
    .is_ok()
}

/// Whether a thread of this process can make a PID namespace for the command it starts.
fn thread_can_unshare() -> bool {
    std::thread::Builder::new()
        .name("nlah-pidns-probe".into())
        .spawn(|| {
            // SAFETY: unshare has no memory-safety preconditions; the namespace is only a
            // setting for this thread's future children, and the thread ends here.
            unsafe { libc::unshare(libc::CLONE_NEWPID) == 0 }
        })
        .ok()
        .and_then(|h| h.join().ok())
        .unwrap_or(false)
}

/// Makes the calling thread's next child the first process of a new PID namespace.
pub(super) fn unshare() -> io::Result<()> {
    // SAFETY: as above.
    if unsafe { libc::unshare(libc::CLONE_NEWPID) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// After `fork`, before `exec`, once the new namespace is set for children: forks the process
/// that will exec the command (PID 1 of the namespace) and turns the caller into its keeper,
/// which never returns. System calls only.
///
/// # Safety
/// Only between `fork` and `exec` (the keeper closes every descriptor and exits).
pub(super) unsafe fn fork_first_process() -> io::Result<()> {
    // SAFETY: the caller is a single-threaded child between fork and exec.
    unsafe {
        match libc::fork() {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                // Dies with its keeper, which is what the caller's pid names.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            }
            pid => keep(pid),
        }
    }
}

/// The keeper: holds nothing open (pipes end when the command's copies close), waits for the
/// command and ends the same way.
unsafe fn keep(pid: libc::pid_t) -> ! {
    // SAFETY: system calls on our own child.
    unsafe {
        libc::close_range(0, libc::c_uint::MAX, 0);
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r == -1 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

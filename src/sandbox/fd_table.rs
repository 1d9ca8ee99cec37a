//! A spawning thread's own, small descriptor table.
//!
//! A new process starts with a copy of its parent's descriptor table, and `exec` then closes the
//! copies marked close-on-exec one by one. nlah keeps many descriptors open (the system folders
//! Landlock reads from, pooled network namespaces, a matrix's pipes, pidfds and sockets: over a
//! thousand at 200 cells), and copying and closing them was a third of the CPU of the thread
//! that starts a command. So that thread first takes a table of its own that holds only the
//! standard streams (`close_range` with `CLOSE_RANGE_UNSHARE`, which copies nothing above them),
//! and fetches the command's output and input from the process's table (`pidfd_getfd`, allowed
//! within one process whatever its confinement); the command then starts from a table of five.
//!
//! The `fork` path marks what it inherited close-on-exec instead, and the `clone` path does too,
//! in case its thread kept the process's table ([`close_on_exec_above_streams`]). Kernels before
//! 5.9 or a seccomp filter (Docker's refuses `pidfd_getfd` without `CAP_SYS_PTRACE`) leave the
//! copy as it was: [`available`] asks once, in a throwaway thread.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};

/// The descriptors a command starts with: stdout (and stderr, unless `error` is given), stdin
/// (`None`: `/dev/null`), and the Landlock ruleset a child made by `clone` enforces on itself.
pub(super) struct Streams {
    pub output: OwnedFd,
    pub error: Option<OwnedFd>,
    pub input: Option<OwnedFd>,
    pub ruleset: Option<OwnedFd>,
}

impl Streams {
    /// Only an output (stderr with it, stdin `/dev/null`, no ruleset).
    pub fn only_output(output: OwnedFd) -> Streams {
        Streams {
            output,
            error: None,
            input: None,
            ruleset: None,
        }
    }
}

/// Gives the calling thread a table of its own holding only descriptors 0–2, then copies the
/// descriptors of `s` (in the process's table) into it. After it returns `Ok`, the thread sees
/// none of the process's other descriptors: whatever it closes closes there only. On `Err` from
/// the first step the thread still shares the process's table.
pub(super) fn take(s: &Streams) -> Result<Streams, Step> {
    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map(AsRawFd::as_raw_fd);
    let (output, error, input, ruleset) = (
        s.output.as_raw_fd(),
        raw(&s.error),
        raw(&s.input),
        raw(&s.ruleset),
    );
    // SAFETY: close_range takes two numbers and flags; with CLOSE_RANGE_UNSHARE it closes only
    // in the calling thread's new copy of the table, which holds descriptors below 3 only.
    let r = unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_UNSHARE as libc::c_int) };
    if r != 0 {
        return Err(Step::Shared(io::Error::last_os_error()));
    }
    let own = || -> io::Result<Streams> {
        // The process's pidfd names its table; same-process access needs no ptrace right.
        let pid = Pid::from_raw(std::process::id().cast_signed())
            .ok_or_else(|| io::Error::other("this process has no pid"))?;
        let me = pidfd_open(pid, PidfdFlags::empty())?;
        let get = |fd: RawFd| pidfd_getfd(&me, fd, PidfdGetfdFlags::empty());
        Ok(Streams {
            output: get(output)?,
            error: error.map(get).transpose()?,
            input: input.map(get).transpose()?,
            ruleset: ruleset.map(get).transpose()?,
        })
    };
    own().map_err(Step::Own)
}

/// For the `fork` and `clone` paths, before exec: marks every descriptor above the standard
/// streams close-on-exec, so that none nlah inherited without the mark reaches the command
/// (Linux 5.11; before it they pass, as they used to). One system call, no allocation.
pub(super) fn close_on_exec_above_streams() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on the child's own copies.
    unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) };
}

/// Where [`take`] failed.
#[derive(Debug)]
pub(super) enum Step {
    /// Before unsharing: the thread still shares the process's table.
    Shared(io::Error),
    /// After: the thread has a table of its own but not the command's descriptors.
    Own(io::Error),
}

impl From<Step> for io::Error {
    fn from(s: Step) -> io::Error {
        match s {
            Step::Shared(e) | Step::Own(e) => e,
        }
    }
}

/// Whether [`take`] works here, found once in a throwaway thread (its table goes with it).
pub(super) fn available() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        let Ok(probe) = std::fs::File::open("/dev/null") else {
            return false;
        };
        let streams = Streams::only_output(OwnedFd::from(probe));
        let worked = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("nlah-fd-probe".into())
                .spawn_scoped(scope, || take(&streams).is_ok())
                .ok()
                .and_then(|h| h.join().ok())
                .unwrap_or(false)
        });
        // `streams` closes here, in the process's table, after the thread ended.
        drop(streams);
        worked
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_thread_with_its_own_table_sees_only_what_it_took() {
        assert!(
            available(),
            "needs close_range with CLOSE_RANGE_UNSHARE (Linux 5.9) and pidfd_getfd allowed"
        );
        let (mut reader, writer) = std::io::pipe().unwrap();
        let other = std::fs::File::open("/dev/null").unwrap();
        let o = other.as_raw_fd();
        let streams = Streams::only_output(OwnedFd::from(writer));
        let seen = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let own = take(&streams).unwrap();
                    // SAFETY: fcntl F_GETFD only asks whether the number is open in this
                    // thread's table.
                    let other_open = unsafe { libc::fcntl(o, libc::F_GETFD) } != -1;
                    let mut out = std::fs::File::from(own.output);
                    out.write_all(b"through the copy").unwrap();
                    other_open
                })
                .join()
                .unwrap()
        });
        assert!(
            !seen,
            "the process's other descriptors are not in the thread's table"
        );
        // The process's table still holds both, open.
        drop(streams);
        let mut s = String::new();
        reader.read_to_string(&mut s).unwrap();
        assert_eq!(s, "through the copy");
        // SAFETY: as above, in this thread, which shares the process's table.
        assert_ne!(unsafe { libc::fcntl(o, libc::F_GETFD) }, -1);
    }
}

//! Starting a command in new namespaces, user namespace included, without copying nlah's address
//! space: `clone(CLONE_VM | CLONE_VFORK | namespaces)`, the way glibc's `posix_spawn` starts a
//! child, with the confinement steps run in the child before `exec`.
//!
//! An unprivileged user gets a network (and PID) namespace only inside a user namespace, and
//! `unshare` refuses a user namespace to a process of more than one thread, so this path used to
//! `fork` nlah: with dozens of runs in the process, copying its page tables cost 10–30 ms per
//! command (2–3.6× root's CPU per cell). `clone` may make a user namespace for the new process
//! from any thread, since the new process has only the one. With `CLONE_VM` the child runs in
//! nlah's memory, on a stack of its own, while the thread that cloned it waits (`CLONE_VFORK`)
//! until it execs or exits; so the child only makes system calls on data prepared before, writes
//! nothing but its errno slot, and never returns.
//!
//! The child is the first process of its PID namespace (`CLONE_NEWPID`), as on root's path; no
//! keeper process stands between nlah and the command.

use std::ffi::{CString, c_int, c_void};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::sandbox::ChildHook;
use crate::sandbox::fd_table::Streams;

/// The child's stack: enough for the hook's calls (deep only in debug builds), with a guard page
/// below it. Untouched pages cost nothing.
const STACK: usize = 256 * 1024;

/// What the child reads: pointers into memory the cloning thread keeps alive and unchanged until
/// the child has exec'd or exited.
struct Shared<'a> {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    output: RawFd,
    error: RawFd,
    input: Option<RawFd>,
    ruleset: Option<RawFd>,
    hook: &'a ChildHook,
    /// The errno of the step that failed; 0 while none did.
    errno: AtomicI32,
}

/// What [`start`] runs: the program at `path` with `argv` and `envp` (NULL-terminated arrays of
/// C strings) in `cwd`.
pub(super) struct Exec<'a> {
    pub path: &'a CString,
    pub argv: &'a [*mut libc::c_char],
    pub envp: &'a [*mut libc::c_char],
    pub cwd: &'a CString,
}

/// Starts `exec` in the namespaces `hook` asks for, confined by it and by `s.ruleset`, in a new
/// session: stdin from `s.input` (or `/dev/null`), stdout to `s.output`, stderr to `s.error` (or
/// `s.output`), every other descriptor closed, default signal handling and an empty signal mask.
/// Returns the child's pid once it has exec'd; if a step failed, the child is reaped and its
/// errno returned.
pub(super) fn start(
    exec: &Exec<'_>,
    s: &Streams,
    hook: &ChildHook,
) -> std::io::Result<libc::pid_t> {
    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map(AsRawFd::as_raw_fd);
    let shared = Shared {
        path: exec.path.as_ptr(),
        argv: exec.argv.as_ptr().cast(),
        envp: exec.envp.as_ptr().cast(),
        cwd: exec.cwd.as_ptr(),
        output: s.output.as_raw_fd(),
        error: s.error.as_ref().unwrap_or(&s.output).as_raw_fd(),
        input: raw(&s.input),
        ruleset: raw(&s.ruleset),
        hook,
        errno: AtomicI32::new(0),
    };
    let stack = Stack::new()?;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD | hook.clone_flags();
    // No signal handler of nlah's may run in the child before it resets them: blocked here,
    // in the cloning thread, whose mask the child inherits.
    let _blocked = BlockSignals::new();
    // SAFETY: `child` runs on its own stack (the top of `stack`, which outlives the child's use
    // of it: CLONE_VFORK returns only once the child has exec'd or exited), reads `shared`,
    // which lives until then, and never returns.
    let pid = unsafe {
        libc::clone(
            child,
            stack.top(),
            flags,
            std::ptr::from_ref(&shared).cast_mut().cast(),
        )
    };
    if pid == -1 {
        return Err(std::io::Error::last_os_error());
    }
    match shared.errno.load(Ordering::Acquire) {
        0 => Ok(pid),
        errno => {
            // SAFETY: waitpid on our own child, which has exited.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            Err(std::io::Error::from_raw_os_error(errno))
        }
    }
}

/// The child: the hook's steps, then `exec`; on failure its errno is left for the parent.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `start` passes a pointer to its `Shared`, alive until this child execs or exits.
    let s = unsafe { &*arg.cast::<Shared<'_>>() };
    let err = steps(s);
    s.errno.store(
        err.raw_os_error().unwrap_or(libc::EINVAL),
        Ordering::Release,
    );
    // SAFETY: _exit ends this process without running anything of the parent's.
    unsafe { libc::_exit(127) }
}

/// Everything up to `exec`; returns only if a step failed.
fn steps(s: &Shared<'_>) -> std::io::Error {
    let last = std::io::Error::last_os_error;
    default_signal_handlers();
    // SAFETY: system calls on descriptors and NUL-terminated strings `start` keeps alive.
    unsafe {
        match s.input {
            Some(fd) => {
                if libc::dup2(fd, 0) == -1 {
                    return last();
                }
            }
            None => {
                let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                if fd == -1 || (fd != 0 && libc::dup2(fd, 0) == -1) {
                    return last();
                }
            }
        }
        if libc::dup2(s.output, 1) == -1 || libc::dup2(s.error, 2) == -1 {
            return last();
        }
        if libc::chdir(s.cwd) == -1 {
            return last();
        }
    }
    if let Err(e) = s.hook.apply_in_clone(s.ruleset) {
        return e;
    }
    // SAFETY: an empty set, then exec with arrays `start` keeps alive.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execve(s.path, s.argv, s.envp);
    }
    last()
}

/// Every signal nlah handles (and SIGPIPE, which Rust ignores) goes back to its default action in
/// the child, whose handler table is its own copy: a handler of nlah's must not run in it, and
/// ignored signals would stay ignored across `exec`.
fn default_signal_handlers() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: sigaction reads and writes the structs it is given; signals glibc keeps for
        // itself are refused (EINVAL) and left alone.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let handled = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if handled || sig == libc::SIGPIPE {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
    }
}

/// The child's stack, mapped for one start, with a guard page at its low end.
struct Stack {
    base: *mut c_void,
    /// The whole mapping: the guard page and [`STACK`], in whole pages.
    len: usize,
}

impl Stack {
    fn new() -> std::io::Result<Stack> {
        // SAFETY: sysconf has no preconditions; Linux always answers for the page size.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = page + STACK.div_ceil(page) * page;
        // SAFETY: a fresh anonymous mapping; the guard page is its first page.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            let stack = Stack { base, len };
            if libc::mprotect(base, page, libc::PROT_NONE) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(stack)
        }
    }

    /// Where the stack starts: its high end (it grows down on every architecture Linux runs
    /// Rust on but PA-RISC, where nlah does not build), page-aligned and so 16-byte aligned.
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping, never dereferenced as such.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer in use.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Blocks every signal in the calling thread until dropped, then restores its mask.
struct BlockSignals {
    old: libc::sigset_t,
}

impl BlockSignals {
    fn new() -> BlockSignals {
        // SAFETY: sigset_t is plain data; pthread_sigmask writes `old`.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            BlockSignals { old }
        }
    }
}

impl Drop for BlockSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

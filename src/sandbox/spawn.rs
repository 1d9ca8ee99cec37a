//! Starting a confined command without copying nlah's address space.
//!
//! `fork` copies the page tables of the whole process, and while it does, every other thread that
//! touches memory waits. With dozens of runs in one process that is milliseconds per command, paid
//! in series. `posix_spawn` does not copy them (glibc starts the child in the parent's memory and
//! execs at once), but it runs no code of ours in the child, and confinement needs some. It can
//! run in the parent instead, in a thread made for one spawn: a network namespace, the
//! capability sets, `no_new_privs` and a Landlock domain all belong to a thread, and a child
//! inherits those of the thread that started it. The thread confines itself, spawns (with
//! `POSIX_SPAWN_SETSID` for the new session) and ends.
//!
//! A user namespace (how an unprivileged user gets a network namespace) cannot be entered by a
//! thread of a process that has others, but a new process may be made in one: that case starts
//! the command with `clone` in new namespaces, sharing nlah's memory until it execs
//! ([`vfork`]). Kernels without `pidfd_open` (before 5.3) keep the `fork` path with the same
//! hook in the child ([`super::confine`]).

mod vfork;

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;

use tokio::io::unix::AsyncFd;

use super::fd_table::Streams;
use super::netns::{Lease, NetMode};
use super::{ChildHook, Confinement, Enforcement, Plan};

/// A command to start: stdout to `output`, stderr to `error` (or `output` too); stdin is
/// `input`, or `/dev/null`.
pub struct Launch<'a> {
    /// A program name looked up in the `PATH` of `env`, or a path.
    pub program: &'a str,
    pub args: Vec<OsString>,
    pub cwd: &'a Path,
    /// The whole environment of the command.
    pub env: Vec<(OsString, OsString)>,
    pub output: OwnedFd,
    /// Where stderr goes apart from stdout; `None`: to `output`.
    pub error: Option<OwnedFd>,
    /// What the command reads; `None`: `/dev/null`.
    pub input: Option<OwnedFd>,
    /// For a shell that reads its commands from `input`: where the resource limits it must set
    /// are written (`ulimit`s, for the caller to send first), where a start that runs no code of
    /// ours would otherwise put a second `bash` in front of it. Empty if they are set already.
    pub prelude: Option<&'a mut String>,
}

/// A started command. Killed (not waited for) when dropped before it ended.
pub enum Child {
    Spawned(Spawned),
    Forked(tokio::process::Child),
}

impl Child {
    /// The pid, which is also the process group id (the command leads a new session).
    pub fn id(&self) -> Option<u32> {
        match self {
            Child::Spawned(s) => (s.status.is_none()).then_some(s.pid.cast_unsigned()),
            Child::Forked(c) => c.id(),
        }
    }

    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Child::Spawned(s) => s.wait().await,
            Child::Forked(c) => c.wait().await,
        }
    }

    /// Sends SIGKILL to the command itself (its group is the caller's to kill).
    pub fn start_kill(&mut self) -> std::io::Result<()> {
        match self {
            Child::Spawned(s) => {
                if s.status.is_none() {
                    // SAFETY: kill has no memory-safety preconditions; the pid is not reaped yet,
                    // so it still names our child.
                    unsafe { libc::kill(s.pid, libc::SIGKILL) };
                }
                Ok(())
            }
            Child::Forked(c) => c.start_kill(),
        }
    }
}

/// A child started by `posix_spawn`, waited for through a pidfd.
pub struct Spawned {
    pid: libc::pid_t,
    pidfd: AsyncFd<OwnedFd>,
    status: Option<ExitStatus>,
    /// The pooled network namespace the command runs in.
    lease: Option<Lease>,
}

impl Spawned {
    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(s) = self.status {
                return Ok(s);
            }
            if let Some(s) = self.try_reap()? {
                return Ok(s);
            }
            // A pidfd turns readable when its process ends.
            self.pidfd.readable().await?.clear_ready();
        }
    }

    fn try_reap(&mut self) -> std::io::Result<Option<ExitStatus>> {
        let mut raw = 0;
        // SAFETY: waitpid writes only the status it is given.
        match unsafe { libc::waitpid(self.pid, &mut raw, libc::WNOHANG) } {
            0 => Ok(None),
            -1 => Err(std::io::Error::last_os_error()),
            _ => {
                let s = ExitStatus::from_raw(raw);
                self.status = Some(s);
                Ok(Some(s))
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.status.is_some() || matches!(self.try_reap(), Ok(Some(_))) {
            // Ended (and its group killed by the caller): the namespace may serve again.
            if let Some(lease) = self.lease.take() {
                lease.release(self.pid);
            }
            return;
        }
        let pid = self.pid;
        // SAFETY: as in start_kill.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // Reaped off the caller's thread, since a killed process still takes a moment to end;
        // then its network namespace may serve again (a child's shell ends this way, so without
        // it every cell made a namespace for its shell and threw it away).
        let lease = self.lease.take();
        let reap = move || {
            let mut raw = 0;
            // SAFETY: as in try_reap.
            unsafe { libc::waitpid(pid, &mut raw, 0) };
            if let Some(lease) = lease {
                lease.release(pid);
            }
        };
        match (
            tokio::runtime::Handle::try_current(),
            self.pidfd.get_ref().try_clone(),
        ) {
            // On the runtime: a task that wakes when the pidfd turns readable (the process
            // ended), rather than a thread per command.
            (Ok(rt), Ok(fd)) => {
                rt.spawn(async move {
                    // SAFETY: a duplicate of the pidfd, owned by the OwnedFd the AsyncFd keeps
                    // open and unchanged until it is dropped.
                    let registered = unsafe {
                        AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
                    };
                    match registered {
                        Ok(fd) => {
                            let _ = fd.readable().await;
                            reap();
                        }
                        Err(_) => drop(tokio::task::spawn_blocking(reap)),
                    }
                });
            }
            _ => {
                let _ = std::thread::Builder::new()
                    .name("nlah-reap".into())
                    .spawn(reap);
            }
        }
    }
}

/// Starts `launch` confined as `c`; says what holds for it.
pub async fn spawn(launch: Launch<'_>, c: &Confinement) -> (std::io::Result<Child>, Enforcement) {
    let Plan { hook, enforcement } = Plan::new(c);
    (start(launch, hook).await, enforcement)
}

/// How a command starts, given its hook: from a thread that confines itself (root), by `clone`
/// into a user namespace (unprivileged), or, without `pidfd_open` or when the hook refuses, by
/// `fork`.
async fn start(launch: Launch<'_>, hook: ChildHook) -> std::io::Result<Child> {
    if hook.refuse.is_some() || !pidfd_works() {
        return spawn_forked(launch, hook).map(Child::Forked);
    }
    let user_ns = hook
        .net
        .as_ref()
        .is_some_and(|n| n.mode() == NetMode::UserAndNet);
    let how = if user_ns { How::Clone } else { How::Thread };
    spawn_from_thread(launch, hook, how)
        .await
        .map(Child::Spawned)
}

/// What the spawning thread does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// Confines itself, then `posix_spawn`s.
    Thread,
    /// Stays as it is; the command is cloned into new namespaces and confines itself.
    Clone,
}

/// The `fork` path: the hook runs in the child before `exec`.
fn spawn_forked(launch: Launch<'_>, mut hook: ChildHook) -> std::io::Result<tokio::process::Child> {
    let err = match launch.error {
        Some(fd) => fd,
        None => launch.output.try_clone()?,
    };
    let mut cmd = tokio::process::Command::new(launch.program);
    cmd.args(&launch.args)
        .current_dir(launch.cwd)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(launch.input.map_or_else(Stdio::null, Stdio::from))
        .stdout(Stdio::from(launch.output))
        .stderr(Stdio::from(err))
        .kill_on_drop(true);
    // SAFETY: see `super::confine`: the hook makes system calls on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || hook.apply());
    }
    let child = cmd.spawn()?;
    if let Some(pid) = child.id() {
        super::guardian::watch_pid(pid.cast_signed());
    }
    Ok(child)
}

/// Starts the command from a thread made for it: the `posix_spawn` path, from a thread that
/// confines itself first, or the `clone` path, whose child confines itself.
async fn spawn_from_thread(
    mut launch: Launch<'_>,
    mut hook: ChildHook,
    how: How,
) -> std::io::Result<Spawned> {
    if how == How::Thread {
        // posix_spawn runs no code of ours in the command, so bash sets the limits first thing.
        let rlimits = std::mem::take(&mut hook.rlimits);
        match launch.prelude.take() {
            Some(prelude) => prelude.push_str(&super::limits::ulimits(&rlimits)),
            None => {
                let args = std::mem::take(&mut launch.args);
                let (program, args) = super::limits::through_bash(launch.program, args, &rlimits);
                launch.args = args;
                launch.program = program;
            }
        }
    }
    let args = Prepared::new(&launch)?;
    // On the clone path the child enforces the ruleset by its descriptor, which goes back with
    // the streams.
    let streams = Streams {
        output: launch.output,
        error: launch.error,
        input: launch.input,
        ruleset: match how {
            How::Clone => hook.ruleset.take(),
            How::Thread => None,
        },
    };
    // Asked here: the spawning thread, once in a PID namespace of its own, cannot start threads.
    let small = super::fd_table::available();
    let worker = std::thread::Builder::new()
        .name("nlah-spawn".into())
        .spawn(move || {
            let mut lease = None;
            let pid = match how {
                How::Thread => hook.apply_to_thread().and_then(|l| {
                    lease = l;
                    spawn_small(small, &streams, |s| args.spawn(s))
                }),
                How::Clone => spawn_small(small, &streams, |s| args.clone_into(s, &hook)),
            };
            // The thread keeps its confinement and ends here, touching no descriptor of the
            // process's: it may have a table of its own, where even a waker's eventfd is
            // another file. What came from the process's table goes back to be closed there.
            (pid, lease, streams)
        })?;
    // Joined on a thread of the blocking pool, which shares the process's table: it wakes this
    // task, or, if the caller gave up, kills the command, which must not outlive it unwatched.
    let (tx, rx) = tokio::sync::oneshot::channel();
    drop(tokio::task::spawn_blocking(move || {
        let Ok(started) = worker.join() else {
            return; // a panic: `tx` goes, and the caller hears of it
        };
        if let Err((pid, ..)) = tx.send(started)
            && let Ok(pid) = pid
        {
            kill_and_reap(pid);
        }
    }));
    let (pid, lease, streams) = rx
        .await
        .map_err(|_| std::io::Error::other("the spawning thread ended without a word"))?;
    // The command holds its own copies now.
    drop(streams);
    let pid = pid?;
    // A child whose start failed halfway must not outlive it.
    let abandon = |e: std::io::Error| {
        kill_and_reap(pid);
        e
    };
    // SAFETY: pidfd_open takes a pid and flags; the pid is our unreaped child.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(abandon(std::io::Error::last_os_error()));
    }
    // SAFETY: pidfd_open returned a new descriptor that nothing else owns; the OwnedFd keeps it
    // open, unchanged, for as long as the AsyncFd that owns it.
    let pidfd = unsafe {
        AsyncFd::register_with_interest(
            OwnedFd::from_raw_fd(fd as i32),
            tokio::io::Interest::READABLE,
        )
    }
    .map_err(|e| abandon(e.into()))?;
    super::guardian::watch(pidfd.get_ref().as_fd());
    Ok(Spawned {
        pid,
        pidfd,
        status: None,
        lease,
    })
}

/// Kills our unreaped child `pid` and waits for it.
fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: kill and waitpid on our own child, not yet reaped, so the pid still names it.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Whether this kernel has `pidfd_open` (Linux 5.3).
fn pidfd_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        // SAFETY: getpid cannot fail; pidfd_open of our own pid, closed at once.
        unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0);
            if fd >= 0 {
                libc::close(fd as i32);
            }
            fd >= 0
        }
    })
}

/// Starts the command with `start` from the calling thread with a descriptor table of its own
/// holding only what the command gets ([`super::fd_table`]) if `small`; else from the process's.
fn spawn_small(
    small: bool,
    streams: &Streams,
    start: impl FnOnce(&Streams) -> std::io::Result<libc::pid_t>,
) -> std::io::Result<libc::pid_t> {
    if !small {
        return start(streams);
    }
    match super::fd_table::take(streams) {
        Ok(own) => start(&own),
        Err(super::fd_table::Step::Shared(_)) => start(streams),
        Err(e) => Err(e.into()),
    }
}

/// Everything `posix_spawn` reads, as C strings, made before the thread starts.
struct Prepared {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
}

impl Prepared {
    fn new(l: &Launch<'_>) -> std::io::Result<Prepared> {
        let c = |b: &[u8]| {
            CString::new(b).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL byte in a command")
            })
        };
        let path_var = l.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v);
        let path = resolve(l.program, path_var).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not on the command's PATH", l.program),
            )
        })?;
        let mut argv = vec![c(l.program.as_bytes())?];
        for a in &l.args {
            argv.push(c(a.as_bytes())?);
        }
        let envp = l
            .env
            .iter()
            .map(|(k, v)| c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<Result<_, _>>()?;
        Ok(Prepared {
            path: c(path.as_os_str().as_bytes())?,
            argv,
            envp,
            cwd: c(l.cwd.as_os_str().as_bytes())?,
        })
    }

    /// `clone` into the namespaces `hook` asks for, the child confining itself ([`vfork`]).
    fn clone_into(&self, s: &Streams, hook: &ChildHook) -> std::io::Result<libc::pid_t> {
        let (argv, envp) = (pointers(&self.argv), pointers(&self.envp));
        let exec = vfork::Exec {
            path: &self.path,
            argv: &argv,
            envp: &envp,
            cwd: &self.cwd,
        };
        vfork::start(&exec, s, hook)
    }

    /// `posix_spawn` in a new session, stdin from `s.input` (or `/dev/null`), stdout to
    /// `s.output`, stderr to `s.error` (or `s.output`), default signal handling and an empty
    /// signal mask.
    fn spawn(&self, s: &Streams) -> std::io::Result<libc::pid_t> {
        let (argv, envp) = (pointers(&self.argv), pointers(&self.envp));
        let nz = |r: libc::c_int| {
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::from_raw_os_error(r))
            }
        };
        // SAFETY: the attribute and file-action objects are initialised before use and destroyed
        // on every path (the guards); every pointer handed over is a NUL-terminated string or a
        // NULL-terminated array of them that outlives the call.
        unsafe {
            let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
            nz(libc::posix_spawnattr_init(&mut attr))?;
            let attr = Guard(&mut attr, |a| {
                libc::posix_spawnattr_destroy(a);
            });
            let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
            nz(libc::posix_spawn_file_actions_init(&mut fa))?;
            let fa = Guard(&mut fa, |f| {
                libc::posix_spawn_file_actions_destroy(f);
            });

            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            let mut pipe: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pipe);
            libc::sigaddset(&mut pipe, libc::SIGPIPE);
            nz(libc::posix_spawnattr_setsigmask(attr.0, &empty))?;
            nz(libc::posix_spawnattr_setsigdefault(attr.0, &pipe))?;
            let flags = i32::from(libc::POSIX_SPAWN_SETSID)
                | libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF;
            nz(libc::posix_spawnattr_setflags(
                attr.0,
                flags as libc::c_short,
            ))?;

            match &s.input {
                Some(fd) => nz(libc::posix_spawn_file_actions_adddup2(
                    fa.0,
                    fd.as_raw_fd(),
                    0,
                ))?,
                None => nz(libc::posix_spawn_file_actions_addopen(
                    fa.0,
                    0,
                    c"/dev/null".as_ptr(),
                    libc::O_RDONLY,
                    0,
                ))?,
            }
            nz(libc::posix_spawn_file_actions_adddup2(
                fa.0,
                s.output.as_raw_fd(),
                1,
            ))?;
            nz(libc::posix_spawn_file_actions_adddup2(
                fa.0,
                s.error.as_ref().unwrap_or(&s.output).as_raw_fd(),
                2,
            ))?;
            nz(libc::posix_spawn_file_actions_addchdir_np(
                fa.0,
                self.cwd.as_ptr(),
            ))?;

            let mut pid = 0;
            nz(libc::posix_spawn(
                &mut pid,
                self.path.as_ptr(),
                fa.0,
                attr.0,
                argv.as_ptr(),
                envp.as_ptr(),
            ))?;
            Ok(pid)
        }
    }
}

/// The NULL-terminated array of pointers to `v`'s strings that `exec` takes.
fn pointers(v: &[CString]) -> Vec<*mut libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

/// Runs its cleanup on a raw libc object when dropped.
struct Guard<T>(*mut T, unsafe fn(*mut T));

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        // SAFETY: the object was initialised before the guard was made.
        unsafe { (self.1)(self.0) }
    }
}

/// `program` as an executable path: itself when it has a slash, else the first match on `path`.
fn resolve(program: &str, path: Option<&OsString>) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = path?;
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// `bash -c script` in `ws`, confined to it without network, its output on the pipe returned.
    fn bash_in(ws: &Path, script: String) -> (Launch<'_>, std::io::PipeReader, Confinement) {
        let (reader, writer) = std::io::pipe().unwrap();
        let launch = Launch {
            program: "bash",
            args: vec!["-c".into(), script.into()],
            cwd: ws,
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            output: OwnedFd::from(writer),
            error: None,
            input: None,
            prelude: None,
        };
        let c = Confinement::workspace(ws);
        (launch, reader, c)
    }

    /// Everything the command wrote, to its end.
    async fn read_all(reader: std::io::PipeReader) -> String {
        let mut out = String::new();
        tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn confinement_stays_with_the_child() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        // Fields 1 and 6 of /proc/self/stat, read by bash itself: its pid as the host sees it
        // and its session; `$$` is its pid in its own PID namespace.
        let script = format!(
            "read -r pid _ _ _ _ sid _ </proc/self/stat; echo pid=$pid sid=$sid ns_pid=$$; \
             touch {}/x 2>/dev/null && echo wrote; read -t 1 line; echo read=$?",
            outside.path().display()
        );
        let (launch, reader, c) = bash_in(ws.path(), script);
        let (child, enforcement) = spawn(launch, &c).await;
        let status = child.unwrap().wait().await.unwrap();
        assert!(status.success());
        let out = read_all(reader).await;
        let pid = out.split("pid=").nth(1).and_then(|s| s.split(' ').next());
        let sid = out.split("sid=").nth(1).and_then(|s| s.split(' ').next());
        assert_eq!(pid, sid, "the command leads its own session: {out}");
        if enforcement.processes == super::super::Level::Enforced {
            assert!(
                out.contains("ns_pid=1\n"),
                "the first of its PID namespace: {out}"
            );
        }
        assert!(out.contains("read=1"), "stdin is /dev/null: {out}");
        if enforcement.filesystem == super::super::Level::Enforced {
            assert!(!out.contains("wrote"), "{out}");
        }
        // The thread that confined itself is gone; this process is as free as before.
        std::fs::write(outside.path().join("y"), "y").unwrap();
    }

    /// On a runtime of one thread, nothing else wakes it: a start whose wake-up was lost (sent
    /// from the spawning thread's own descriptor table, where the runtime's eventfd is another
    /// file) returns only when a timer wakes the runtime, here after 4 s; a start takes
    /// milliseconds.
    #[tokio::test(flavor = "current_thread")]
    async fn a_start_wakes_a_runtime_of_one_thread() {
        let ws = tempfile::tempdir().unwrap();
        let (launch, _reader, c) = bash_in(ws.path(), "true".into());
        let t = std::time::Instant::now();
        let started = tokio::time::timeout(std::time::Duration::from_secs(4), spawn(launch, &c));
        let (child, _) = started.await.expect("started");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "the start's wake-up was lost: it returned after {:?}",
            t.elapsed()
        );
        assert!(child.unwrap().wait().await.unwrap().success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_holds_its_three_streams_and_nothing_else() {
        let ws = tempfile::tempdir().unwrap();
        // Descriptors nlah holds that the command must not: a pipe, and a file without
        // close-on-exec, as one nlah inherited would be.
        let _pipe = std::io::pipe().unwrap();
        let held = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: F_SETFD on a descriptor this test owns.
        assert_eq!(
            unsafe { libc::fcntl(held.as_raw_fd(), libc::F_SETFD, 0) },
            0
        );
        let (launch, reader, c) = bash_in(ws.path(), "echo /proc/self/fd/*".into());
        let (child, _) = spawn(launch, &c).await;
        assert!(child.unwrap().wait().await.unwrap().success());
        let out = read_all(reader).await;
        // bash's glob reads the folder through a descriptor of its own (3), closed by now.
        assert_eq!(
            out.trim(),
            "/proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2 /proc/self/fd/3"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bash_script_sees_its_own_name_arguments_and_limits() {
        // How the verifier starts `test.sh`: its limits set by the bash that runs it.
        let ws = tempfile::tempdir().unwrap();
        let script = ws.path().join("t.sh");
        std::fs::write(
            &script,
            "echo \"$0|$1|${BASH_SOURCE[0]}|$(ulimit -c)|$(ulimit -f)\"\nexit 3\n",
        )
        .unwrap();
        let (mut launch, reader, mut c) = bash_in(ws.path(), String::new());
        launch.args = vec![script.clone().into(), "one".into()];
        c.limits.file_bytes = Some(1 << 20);
        let (child, _) = spawn(launch, &c).await;
        let status = child.unwrap().wait().await.unwrap();
        assert_eq!(status.code(), Some(3));
        let out = read_all(reader).await;
        let s = script.display();
        assert_eq!(out, format!("{s}|one|{s}|0|1024\n"));
    }

    /// Starts `script` confined without network; returns the command's network namespace (as
    /// `/proc/self/ns/net` names it, read before the script), its process group and the child.
    async fn netns_started(script: &str) -> (String, i32, Child) {
        let ws = tempfile::tempdir().unwrap();
        let (launch, reader, c) =
            bash_in(ws.path(), format!("readlink /proc/self/ns/net; {script}"));
        let (child, _) = spawn(launch, &c).await;
        let child = child.unwrap();
        let pgid = child.id().unwrap() as i32;
        let mut first = String::new();
        let mut pipe =
            tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).unwrap();
        let mut byte = [0u8; 1];
        while pipe.read(&mut byte).await.unwrap() == 1 && byte[0] != b'\n' {
            first.push(char::from(byte[0]));
        }
        (first, pgid, child)
    }

    /// Fails, saying why, where commands' network namespaces are not pooled (not root, or no
    /// pidfd): the tests that need it are ignored unless asked for.
    fn assert_pooled_namespaces() {
        assert!(
            super::super::support().net == NetMode::NetOnly && pidfd_works(),
            "needs root and pidfd_open: only then are network namespaces pooled"
        );
    }

    /// As [`netns_started`], the child ended (successfully) but not yet dropped.
    async fn netns_of(script: &str) -> (String, i32, Child) {
        let (first, pgid, mut child) = netns_started(script).await;
        assert!(child.wait().await.unwrap().success());
        (first, pgid, child)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs root: only root's network namespaces are pooled (.ci/run runs as root)"]
    async fn a_network_namespace_serves_again_only_once_its_group_is_empty() {
        assert_pooled_namespaces();
        let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
        let (a, _, child) = netns_of("true").await;
        assert_ne!(
            a,
            mine.to_string_lossy(),
            "the command has a namespace of its own"
        );
        drop(child);
        let (b, _, child) = netns_of("true").await;
        assert_eq!(a, b, "an ended command's namespace is entered again");
        drop(child);
        // A background process, even one in a session of its own, ends with its command (the
        // PID namespace dies with its first process), so the namespace serves again.
        let (c, pgid, child) = netns_of("setsid sleep 30 >/dev/null 2>&1 &").await;
        assert_eq!(c, a);
        drop(child);
        // SAFETY: signal 0 only asks whether the group still has members.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while unsafe { libc::kill(-pgid, 0) } == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (d, _, child) = netns_of("true").await;
        assert_eq!(
            d, c,
            "nothing of the ended command is left in its namespace"
        );
        drop(child);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs root: only root's network namespaces are pooled (.ci/run runs as root)"]
    async fn a_command_dropped_while_it_runs_is_reaped_and_its_namespace_serves_again() {
        assert_pooled_namespaces();
        // A child's shell ends this way: dropped while it still runs, killed, reaped later.
        let (first, pgid, child) = netns_started("sleep 30").await;
        drop(child);
        // A zombie still counts in its group: the group is empty once the reaper waited for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // SAFETY: signal 0 only asks whether the group still has members.
        while unsafe { libc::kill(-pgid, 0) } == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the dropped command was not reaped"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let (again, _, child) = netns_of("true").await;
        assert_eq!(
            again, first,
            "the killed command's namespace is entered again"
        );
        drop(child);
    }

    /// Fails, saying why, where this user cannot make user namespaces (some distributions
    /// forbid unprivileged ones): the `clone` path needs them, as an unprivileged user's
    /// confinement does.
    fn assert_user_namespaces() {
        if let Err(why) = super::super::netns::try_mode(NetMode::UserAndNet) {
            panic!("needs user namespaces, which cannot be made here: {why}");
        }
    }

    /// Starts `script` as an unprivileged user's command starts, whoever runs the test: cloned
    /// into a user, network and PID namespace of its own, confining itself.
    async fn in_a_user_namespace(ws: &Path, script: String, c: &Confinement) -> (String, i32) {
        assert_user_namespaces();
        let (launch, reader, _) = bash_in(ws, script);
        let Plan { mut hook, .. } = Plan::new(c);
        hook.net = Some(super::super::netns::NetSetup::new(NetMode::UserAndNet));
        hook.pid_ns = true;
        let mut child = start(launch, hook).await.unwrap();
        assert!(matches!(child, Child::Spawned(_)), "started by clone");
        let status = child.wait().await.unwrap();
        (read_all(reader).await, status.code().unwrap_or(-1))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_cloned_into_a_user_namespace_is_confined_like_any_other() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let mut c = Confinement::workspace(ws.path());
        c.limits.file_bytes = Some(1 << 20);
        // SAFETY: no preconditions.
        let uid = unsafe { libc::geteuid() };
        let script = format!(
            "read -r pid _ _ _ _ sid _ </proc/self/stat; echo ns_pid=$$ leads=$((pid == sid)); \
             read -r inner outer count </proc/self/uid_map; echo map=$inner,$outer,$count; \
             echo interfaces=$(grep -c : /proc/net/dev); \
             (exec 3<>/dev/tcp/127.0.0.1/9) 2>&1 | grep -o 'Connection refused'; \
             touch {out}/x 2>/dev/null && echo wrote-outside; touch inside && echo wrote-inside; \
             echo fsize=$(ulimit -f); read -t 1 line; echo stdin=$?; echo fds=$(ls /proc/self/fd); \
             yes | head -c 0; echo pipe=${{PIPESTATUS[0]}}; \
             setsid sh -c 'echo $(cut -d\" \" -f1 /proc/self/stat) > {ws}/bg.pid; exec sleep 30' & \
             sleep 0.2; exit 3",
            out = outside.path().display(),
            ws = ws.path().display(),
        );
        let (out, code) = in_a_user_namespace(ws.path(), script, &c).await;
        assert_eq!(code, 3, "{out}");
        let expect = [
            "ns_pid=1 leads=1".to_string(),
            format!("map={uid},{uid},1"),
            // Only loopback, and it is up: a closed port refuses rather than being unreachable.
            "interfaces=1".to_string(),
            "Connection refused".to_string(),
            "wrote-inside".to_string(),
            "fsize=1024".to_string(),
            "stdin=1".to_string(),
            // SIGPIPE is back to its default action (Rust's parent ignores it): 128 + 13.
            "pipe=141".to_string(),
        ];
        for line in &expect {
            assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
        }
        assert!(!out.contains("wrote-outside"), "{out}");
        // ls's own descriptor for the folder is the fourth.
        assert!(
            out.contains("fds=0 1 2 3\n"),
            "only the three streams: {out}"
        );
        // The background process in a session of its own ended with the command.
        let bg = std::fs::read_to_string(ws.path().join("bg.pid")).unwrap();
        let proc = format!("/proc/{}", bg.trim());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while Path::new(&proc).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the background process outlived its command"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cloned_start_that_fails_says_why_and_leaks_nothing() {
        let ws = tempfile::tempdir().unwrap();
        let c = Confinement::workspace(ws.path());
        let rulesets = || {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|l| l.to_string_lossy().contains("landlock"))
                .count()
        };
        let before = rulesets();
        for _ in 0..20 {
            let (out, code) = in_a_user_namespace(ws.path(), "exit 0".into(), &c).await;
            assert_eq!((out.as_str(), code), ("", 0));
        }
        // Each start had a ruleset of its own; none is left open in nlah (tests running beside
        // this one in the same process may hold a few of theirs).
        assert!(rulesets() < before + 20, "the rulesets leak");

        // A working folder that does not exist: the child's chdir fails and the start says so.
        // (`in_a_user_namespace` checked above that user namespaces can be made.)
        let (launch, _reader, _) = bash_in(Path::new("/nonexistent-nlah"), "true".into());
        let Plan { mut hook, .. } = Plan::new(&c);
        hook.net = Some(super::super::netns::NetSetup::new(NetMode::UserAndNet));
        let err = start(launch, hook).await.err().expect("refused");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stderr_goes_apart_when_asked_on_either_path() {
        let ws = tempfile::tempdir().unwrap();
        let c = Confinement::workspace(ws.path());
        assert_user_namespaces();
        for user_ns in [false, true] {
            let (mut launch, out, _) = bash_in(ws.path(), "echo out; echo err >&2".into());
            let (err, err_w) = std::io::pipe().unwrap();
            launch.error = Some(OwnedFd::from(err_w));
            let Plan { mut hook, .. } = Plan::new(&c);
            if user_ns {
                hook.net = Some(super::super::netns::NetSetup::new(NetMode::UserAndNet));
            }
            let mut child = start(launch, hook).await.unwrap();
            assert!(child.wait().await.unwrap().success());
            let both = (read_all(out).await, read_all(err).await);
            assert_eq!(both, ("out\n".into(), "err\n".into()), "user_ns {user_ns}");
        }
    }

    #[test]
    fn programs_are_found_on_the_given_path() {
        let path = OsString::from("/nonexistent:/usr/bin:/bin");
        let bash = resolve("bash", Some(&path)).unwrap();
        assert!(bash.is_absolute() && bash.ends_with("bash"));
        assert_eq!(resolve("./x", None), Some(PathBuf::from("./x")));
        assert_eq!(resolve("no-such-program-here", Some(&path)), None);
    }
}

//! Confinement of tool commands: what a child's shell commands, MCP servers and gate commands may
//! touch.
//!
//! [`spawn::spawn`] starts a command confined and returns an [`Enforcement`] that says what
//! actually holds for it; [`confine`] installs the same steps as a `pre_exec` hook on a
//! `tokio::process::Command` (a `fork`); [`probe`] says what this kernel supports at all.
//! [`clean_env`] builds the command's environment from scratch; [`exec::run`] runs a confined
//! `bash -c` with a time limit and a capped capture.
//!
//! # What is enforced
//!
//! Every confined command starts a **new session** (`setsid`): it has no controlling terminal (so
//! it cannot push keystrokes into the user's terminal with `TIOCSTI`), and its process group id is
//! its pid, so the caller can kill the whole group. (If the caller set `process_group(0)`, the
//! command keeps that group and only gives up the terminal.)
//!
//! **Filesystem** (Landlock, best effort up to ABI 9): reading and executing as below; writing (opening for write, creating, deleting, renaming, linking, truncating)
//! only beneath [`Confinement::writable`] (device nodes nowhere) and on a few device files shells need
//! (`/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`, `/dev/urandom`, `/dev/tty`,
//! `/dev/ptmx`, `/dev/pts/`). A Landlock domain also keeps the command from ptracing processes
//! outside it (and so from opening `/proc/PID/ns/*` of them); from ABI 6 it may neither signal
//! outside processes nor connect to abstract Unix sockets outside its domain.
//! - Landlock ABI 3 or later: [`Level::Enforced`].
//! - ABI 1–2: [`Level::Partial`]: `truncate(2)` of files outside the writable paths is not
//!   restricted (ABI 1 also refuses every rename across directories, even inside them).
//! - No Landlock (old kernel, not enabled at boot, or blocked by seccomp): [`Level::Unavailable`]:
//!   commands can write wherever the user running nlah can.
//! - Before ABI 9, connecting to *pathname* Unix sockets outside the workspace (say
//!   `/var/run/docker.sock`) is not restricted; this is noted.
//!
//! **Network** (when [`Confinement::network`] is false):
//! - A private network namespace with only a loopback interface (brought up, so servers a command
//!   starts on `127.0.0.1` work for that command; the host's loopback is a different one):
//!   [`Level::Enforced`]. As root this is `unshare(CLONE_NEWNET)`; unprivileged it is
//!   `unshare(CLONE_NEWUSER | CLONE_NEWNET)` with the caller's uid and gid mapped to themselves
//!   (other users' files then show as `nobody`).
//! - No namespace, but Landlock ABI 4 or later: TCP `connect` and `bind` are denied;
//!   [`Level::Partial`] (UDP, and so DNS, still works).
//! - Neither: [`Level::Unavailable`]; the command has the host's network.
//!
//! Which mechanism works is found once per process by [`probe`] (in a forked child for the
//! namespace, in a throwaway thread for Landlock, which restricts only the calling thread), and
//! [`confine`] plans from that: a step that was planned but fails in the child makes the spawn
//! fail, so a command never runs with less than its [`Enforcement`] says.
//!
//! **How a command starts** ([`spawn::spawn`]): as root, a thread made for the one command
//! enters the network namespace, drops the capabilities and takes on the Landlock domain itself,
//! then starts the command with `posix_spawn` in a new session; the command inherits all three and
//! the thread ends. nlah's own address space is never copied, which keeps starting a command cheap
//! however many runs share the process. Unprivileged users need a user namespace, which a thread
//! of a multithreaded process cannot enter but a new process can be made in: the command is
//! started by `clone(CLONE_VM | CLONE_VFORK)` into new user, network and PID namespaces, and the
//! same steps run in the child (in nlah's memory, system calls only) before `exec`. On kernels
//! without `pidfd_open`, and for a command given to [`confine`] (which nlah itself no longer
//! uses), the command is forked and the steps run in the child before `exec`.
//!
//! **Capabilities**: a command started by root keeps only Docker's default capability set
//! without CAP_MKNOD (bounding, ambient and current sets), so it cannot load kernel modules,
//! reboot, mount, re-enter the host's network namespace with `setns`, make device nodes or open
//! files by handle, whether or not Landlock is there. It still runs as uid 0.
//!
//! **Reading** (the same Landlock ruleset): only beneath the system's folders
//! ([`readable`]: programs, libraries, `/proc`, `/sys`, the shell's devices, `/etc` without what
//! only its owner reads, the toolchains on `PATH`), [`Confinement::readable`] and the writable
//! paths. [`Enforcement::reading`] has the filesystem's level.
//!
//! **Processes**: a PID namespace per command ([`pidns`]) as root, or for an unprivileged user
//! inside the user namespace that its network namespace comes in; the [`guardian`] kills running
//! commands when nlah dies. `/proc` is still the host's mount, so a command sees the host's
//! processes (and cannot touch them: Landlock's scope and the capabilities forbid it).
//!
//! **Resources** ([`Limits`]): per-process rlimits for memory, CPU time, file size and core
//! files; the process count only where it is counted per command (a user namespace of its own).
//!
//! **Not enforced anywhere**: `stat` of paths outside the readable ones (Landlock does not
//! restrict it), memory per command rather than per process.

mod caps;
pub mod env;
pub mod exec;
mod fd_table;
mod guardian;
mod landlock_fs;
pub mod limits;
mod netns;
mod pidns;
mod readable;
pub mod session;
pub mod spawn;

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use env::{EnvAllowList, Scratch, clean_env, clean_env_with, clean_vars, is_secret_name};
pub use limits::Limits;

/// What a command may touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confinement {
    /// Directories (or files) beneath which writing is allowed: where a child works in the
    /// workspace, which also holds the command's scratch space (see [`Scratch`]).
    pub writable: Vec<PathBuf>,
    /// Directories (or files) beneath which reading is allowed besides the system's folders
    /// ([`readable::system`]) and the writable paths: the workspace.
    #[serde(default)]
    pub readable: Vec<PathBuf>,
    /// Whether the command may use the network.
    pub network: bool,
    /// Resource limits per process.
    #[serde(default)]
    pub limits: Limits,
}

impl Confinement {
    /// Reads and writes only inside `workspace` (and reads of the system's folders), no
    /// network, the default limits: what a command gets when nothing narrower is said.
    pub fn workspace(workspace: impl Into<PathBuf>) -> Self {
        let workspace = workspace.into();
        Confinement {
            writable: vec![workspace.clone()],
            readable: vec![workspace],
            network: false,
            limits: Limits::default(),
        }
    }
}

/// How far a restriction holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The restriction holds as requested. An allowance (`network: true`) counts as enforced.
    Enforced,
    /// Some of it holds; the notes say what does not.
    Partial,
    /// Nothing of it holds on this system.
    Unavailable,
}

impl Level {
    /// What records written before nlah enforced it say: nothing was.
    fn unknown() -> Level {
        Level::Unavailable
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Enforced => "enforced",
            Level::Partial => "partial",
            Level::Unavailable => "unavailable",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was actually enforced for a command, for the run's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforcement {
    /// Writing outside the writable paths.
    pub filesystem: Level,
    /// Reading outside the readable paths and the system's folders.
    #[serde(default = "Level::unknown")]
    pub reading: Level,
    pub network: Level,
    /// Processes outliving the command (a PID namespace of its own) and outliving nlah (the
    /// guardian).
    #[serde(default = "Level::unknown")]
    pub processes: Level,
    /// Mechanisms used and gaps, one short sentence each.
    pub notes: Vec<String>,
}

impl Enforcement {
    /// One line: `filesystem enforced, reading enforced, network enforced, processes enforced
    /// (Landlock ABI 7; private network namespace; …)`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "filesystem {}, reading {}, network {}, processes {}",
            self.filesystem, self.reading, self.network, self.processes
        );
        if !self.notes.is_empty() {
            s.push_str(" (");
            s.push_str(&self.notes.join("; "));
            s.push(')');
        }
        s
    }
}

/// Errors of the sandbox layer.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("environment variable {name} looks like a secret and is never passed to commands")]
    SecretVariable { name: String },
    #[error(
        "environment variable {name} is reserved by the sandbox (it sets it, or it would change \
         the locale the sandbox sets) and cannot be allow-listed"
    )]
    ReservedVariable { name: String },
    #[error("{name:?} is not a valid environment variable name")]
    InvalidVariableName { name: String },
    #[error("cannot start the command: {0}")]
    Spawn(std::io::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// What the kernel offers, found once per process.
#[derive(Debug, Clone)]
struct Support {
    /// The Landlock ABI version in use (the kernel's, as far as the landlock crate knows it).
    landlock_abi: Option<i32>,
    landlock_note: Option<String>,
    net: netns::NetMode,
    net_note: Option<String>,
    /// How a command gets a PID namespace of its own, if it can.
    pid: pidns::PidMode,
}

static SUPPORT: OnceLock<Support> = OnceLock::new();

fn support() -> &'static Support {
    SUPPORT.get_or_init(|| {
        let (landlock_abi, landlock_note) = match landlock_fs::detect() {
            Ok(abi) => (Some(abi), None),
            Err(why) => (None, Some(why)),
        };
        let (net, net_note) = netns::detect();
        let pid = pidns::detect(net);
        Support {
            landlock_abi,
            landlock_note,
            net,
            net_note,
            pid,
        }
    })
}

/// What this kernel and container support for a command confined to one workspace without
/// network. Cheap after the first call (the answer is cached for the process).
pub fn probe() -> Enforcement {
    static PROBED: OnceLock<Enforcement> = OnceLock::new();
    PROBED
        .get_or_init(|| {
            Plan::new(&Confinement {
                writable: Vec::new(),
                readable: Vec::new(),
                network: false,
                limits: Limits::default(),
            })
            .enforcement
        })
        .clone()
}

/// What [`confine`] would enforce for `c`, without a command.
pub fn assess(c: &Confinement) -> Enforcement {
    Plan::new(c).enforcement
}

/// Confines `cmd` as `c` says (see the module docs) and reports what holds. The hook runs in the
/// child between `fork` and `exec`; everything that allocates is prepared here, before the fork.
/// A confined command is meant to be spawned once: a second spawn fails rather than run without
/// its Landlock ruleset.
pub fn confine(cmd: &mut tokio::process::Command, c: &Confinement) -> Enforcement {
    let Plan {
        mut hook,
        enforcement,
    } = Plan::new(c);
    // SAFETY: the hook only makes system calls (setsid, unshare, open/write/close, ioctl,
    // prctl, landlock_restrict_self) on data prepared before the fork, and reports failures as
    // io::Error values built from errno, without allocating.
    unsafe {
        cmd.pre_exec(move || hook.apply());
    }
    enforcement
}

/// Hands a command started with [`confine`] (pid `pid`, not yet waited for) to the guardian,
/// which kills it if nlah dies first. Commands started by [`spawn::spawn`] are handed over
/// already.
pub fn guard(pid: u32) {
    guardian::watch_pid(pid.cast_signed());
}

/// The steps the child takes, prepared in the parent.
struct Plan {
    hook: ChildHook,
    enforcement: Enforcement,
}

struct ChildHook {
    net: Option<netns::NetSetup>,
    /// Make the command the first process of a PID namespace of its own.
    pid_ns: bool,
    /// Resource limits, set in the child (fork) or on it right after it starts (thread).
    rlimits: Vec<limits::Rlimit>,
    /// Started by root: drop the capabilities that get around Landlock.
    drop_caps: bool,
    /// The Landlock ruleset's descriptor ([`landlock_fs::build`]).
    ruleset: Option<std::os::fd::OwnedFd>,
    /// Landlock was planned: its absence at exec time (a second spawn) is an error.
    needs_ruleset: bool,
    /// Preparation failed in the parent: refuse to start with this errno.
    refuse: Option<i32>,
}

impl ChildHook {
    /// The network namespace (from the pool where it can be), the capabilities and Landlock,
    /// on the calling thread: each belongs to a thread and passes to the children it starts
    /// ([`spawn`]). The lease goes back once the command has ended.
    fn apply_to_thread(&mut self) -> std::io::Result<Option<netns::Lease>> {
        if let Some(errno) = self.refuse {
            return Err(std::io::Error::from_raw_os_error(errno));
        }
        let lease = match &self.net {
            Some(net) => net.enter()?,
            None => None,
        };
        if self.pid_ns {
            pidns::unshare()?;
        }
        self.after_namespace()?;
        Ok(lease)
    }

    /// The steps after the namespace: it needs CAP_SYS_ADMIN, and bringing `lo` up needs
    /// CAP_NET_ADMIN. Landlock last: the namespace setup writes /proc/self/*_map, outside the
    /// writable paths.
    fn after_namespace(&mut self) -> std::io::Result<()> {
        let ruleset = self.ruleset.take();
        self.caps_then_landlock(|| {
            ruleset.map(|fd| landlock_fs::restrict_fd(std::os::fd::AsRawFd::as_raw_fd(&fd)))
        })
    }

    /// The last steps: the capabilities root keeps, then Landlock by `restrict` (`None`: no
    /// ruleset, an error if one was planned).
    fn caps_then_landlock(
        &self,
        restrict: impl FnOnce() -> Option<std::io::Result<()>>,
    ) -> std::io::Result<()> {
        if self.drop_caps {
            caps::drop_dangerous()?;
        }
        match restrict() {
            Some(restricted) => restricted,
            None if self.needs_ruleset => Err(std::io::Error::from_raw_os_error(libc::EPERM)),
            None => Ok(()),
        }
    }

    /// Runs in a child made by `clone` in new namespaces ([`spawn`]'s user-namespace path), which
    /// shares nlah's memory until it execs: the same steps as [`ChildHook::apply`] without making
    /// a namespace, and without writing to memory (`&self`). `ruleset` is the descriptor of the
    /// Landlock ruleset in the child's table (taken out of [`ChildHook::ruleset`] before).
    fn apply_in_clone(&self, ruleset: Option<std::os::fd::RawFd>) -> std::io::Result<()> {
        self.first_steps_in_child()?;
        if let Some(net) = &self.net {
            net.inside()?;
        }
        limits::apply(0, &self.rlimits)?;
        self.caps_then_landlock(|| ruleset.map(landlock_fs::restrict_fd))
    }

    /// The first steps in a child before `exec`, however it was made: refused, or a new session
    /// in which no descriptor above the streams survives `exec`.
    fn first_steps_in_child(&self) -> std::io::Result<()> {
        if let Some(errno) = self.refuse {
            return Err(std::io::Error::from_raw_os_error(errno));
        }
        leave_session()?;
        fd_table::close_on_exec_above_streams();
        Ok(())
    }

    /// The namespaces a child made by `clone` starts in: the network's, and a PID namespace.
    fn clone_flags(&self) -> libc::c_int {
        let net = self.net.as_ref().map_or(0, netns::NetSetup::flags);
        net | if self.pid_ns { libc::CLONE_NEWPID } else { 0 }
    }

    /// Runs in the child between `fork` and `exec`: a new session, then the thread's steps.
    fn apply(&mut self) -> std::io::Result<()> {
        self.first_steps_in_child()?;
        // A fresh namespace: the pool's lock and allocations have no place between fork and
        // exec.
        if let Some(net) = &self.net {
            net.apply()?;
        }
        if self.pid_ns {
            pidns::unshare()?;
        }
        limits::apply(0, &self.rlimits)?;
        self.after_namespace()?;
        if self.pid_ns {
            // SAFETY: between fork and exec, as this hook is.
            unsafe { pidns::fork_first_process()? };
        }
        Ok(())
    }
}

/// Starts a new session, so the command has no controlling terminal and leads its own process
/// group. A caller that asked for `process_group(0)` made the child a group leader already, which
/// is what killing the whole tree needs, and a group leader cannot start a session: then the
/// child only gives up the terminal (`TIOCNOTTY`).
fn leave_session() -> std::io::Result<()> {
    // SAFETY: setsid has no memory-safety preconditions.
    if unsafe { libc::setsid() } != -1 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EPERM) {
        return Err(err);
    }
    // SAFETY: a NUL-terminated path; the fd is closed on every path.
    unsafe {
        let fd = libc::open(
            c"/dev/tty".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if fd != -1 {
            libc::ioctl(fd, libc::TIOCNOTTY as _);
            libc::close(fd);
        }
    }
    Ok(())
}

/// Whether a command gets a PID namespace of its own, how well that contains its processes, and
/// what to note about it; `user_ns`: the command's network namespace comes in a user namespace
/// of its own.
fn processes_plan(s: &Support, user_ns: bool) -> (bool, Level, Option<String>) {
    match s.pid {
        pidns::PidMode::None => (
            false,
            Level::Unavailable,
            Some("no PID namespace: processes that leave the command's group outlive it".into()),
        ),
        // Root makes one anywhere; an unprivileged user only inside the user namespace its
        // network namespace comes in.
        pidns::PidMode::Root => (
            true,
            Level::Enforced,
            Some("PID namespace of its own".into()),
        ),
        pidns::PidMode::InUserNamespace if user_ns => (
            true,
            Level::Enforced,
            Some("PID namespace of its own".into()),
        ),
        pidns::PidMode::InUserNamespace => (
            false,
            Level::Unavailable,
            Some(
                "no PID namespace (an unprivileged command with network has no user namespace): \
                 processes that leave the command's group outlive it"
                    .into(),
            ),
        ),
    }
}

/// What [`assess`] says of processes, without preparing the rest (a Landlock ruleset costs
/// system calls per path): whether commands confined as `c` run in a PID namespace of their own
/// that the guardian watches.
pub fn processes_enforced(c: &Confinement) -> bool {
    let s = support();
    let user_ns = !c.network && s.net == netns::NetMode::UserAndNet;
    processes_plan(s, user_ns).1 == Level::Enforced && guardian::available()
}

impl Plan {
    fn new(c: &Confinement) -> Plan {
        let s = support();
        let mut notes = Vec::new();
        let abi = s.landlock_abi.unwrap_or(0);

        // Network first: without a namespace, Landlock's TCP rules are the fallback.
        let mut deny_tcp = false;
        let (net, network) = if c.network {
            notes.push("network allowed".to_string());
            (None, Level::Enforced)
        } else {
            match s.net {
                netns::NetMode::UserAndNet | netns::NetMode::NetOnly => {
                    notes.push(s.net.describe().to_string());
                    (Some(netns::NetSetup::new(s.net)), Level::Enforced)
                }
                netns::NetMode::None if abi >= 4 => {
                    deny_tcp = true;
                    notes.push(format!(
                        "no network namespace ({}); Landlock denies TCP connect and bind, UDP \
                         still works",
                        s.net_note.as_deref().unwrap_or("unshare failed")
                    ));
                    (None, Level::Partial)
                }
                netns::NetMode::None => {
                    notes.push(format!(
                        "no network isolation ({})",
                        s.net_note.as_deref().unwrap_or("unshare failed")
                    ));
                    (None, Level::Unavailable)
                }
            }
        };

        // SAFETY: no preconditions.
        let drop_caps = unsafe { libc::geteuid() } == 0;
        if drop_caps {
            notes.push("root keeps Docker's default capabilities minus CAP_MKNOD".to_string());
        }
        let user_ns = net
            .as_ref()
            .is_some_and(|n| n.mode() == netns::NetMode::UserAndNet);
        let (pid_ns, processes, note) = processes_plan(s, user_ns);
        notes.extend(note);
        let processes = if processes == Level::Enforced && !guardian::available() {
            notes.push("no guardian: a command outlives nlah killed with SIGKILL".to_string());
            Level::Partial
        } else {
            processes
        };
        // RLIMIT_NPROC counts the user's processes across the machine unless the command has a
        // user namespace of its own.
        let own_users = net
            .as_ref()
            .is_some_and(|n| n.mode() == netns::NetMode::UserAndNet);
        notes.push(c.limits.describe(own_users));
        let mut hook = ChildHook {
            net,
            pid_ns,
            rlimits: c.limits.rlimits(own_users),
            drop_caps,
            ruleset: None,
            needs_ruleset: false,
            refuse: None,
        };
        let filesystem = if abi == 0 {
            notes.push(format!(
                "no Landlock ({}): writes are not confined",
                s.landlock_note.as_deref().unwrap_or("unsupported")
            ));
            Level::Unavailable
        } else {
            match landlock_fs::build(c, abi, deny_tcp, &mut notes) {
                Ok(rs) => {
                    hook.ruleset = Some(rs);
                    hook.needs_ruleset = true;
                    if abi >= 3 {
                        notes.push(format!("Landlock ABI {abi}"));
                        Level::Enforced
                    } else {
                        notes.push(format!(
                            "Landlock ABI {abi}: truncate(2) outside the writable paths is not \
                             restricted"
                        ));
                        Level::Partial
                    }
                }
                Err(why) => {
                    // Fail closed: the kernel has Landlock, so an unconfined run would be a surprise.
                    notes.push(format!(
                        "cannot prepare the Landlock ruleset ({why}); the command is refused"
                    ));
                    hook.refuse = Some(libc::EPERM);
                    Level::Unavailable
                }
            }
        };
        if abi > 0 && abi < 9 {
            notes.push("pathname Unix sockets outside the workspace stay reachable".to_string());
        }
        Plan {
            hook,
            enforcement: Enforcement {
                filesystem,
                // One ruleset confines both.
                reading: filesystem,
                network,
                processes,
                notes,
            },
        }
    }
}

//! Resource limits of a confined command, as kernel resource limits (`setrlimit`) that every
//! process of the command inherits and cannot raise (raising a hard limit needs
//! CAP_SYS_RESOURCE, which confined commands never have).

use serde::{Deserialize, Serialize};

/// A kernel resource limit to set: the resource, its soft and its hard value.
pub(super) type Rlimit = (libc::__rlimit_resource_t, u64, u64);

/// Limits per process of a command. `None` leaves a resource as nlah's own limit has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Writable memory per process (heap and private mappings: `RLIMIT_DATA`), bytes. An
    /// allocation beyond it fails (`MemoryError`, `ENOMEM`, `std::bad_alloc`).
    pub memory_bytes: Option<u64>,
    /// Processes and threads of the user running nlah while the command runs
    /// (`RLIMIT_NPROC`): applied only where they are counted per command (a command in a user
    /// namespace of its own); see [`super::Enforcement`].
    pub processes: Option<u64>,
    /// CPU time per process (`RLIMIT_CPU`), seconds: SIGXCPU, then SIGKILL a second later.
    pub cpu_seconds: Option<u64>,
    /// Size of any one file a process writes (`RLIMIT_FSIZE`), bytes: writing beyond it ends the
    /// process with SIGXFSZ (or fails with `EFBIG` where the process ignores that signal).
    pub file_bytes: Option<u64>,
}

impl Default for Limits {
    /// Generous for real work (a test suite, a compiler) and far below what would take down a
    /// 24 GiB machine running a dozen commands: 4 GiB of memory per process, 1,024 processes,
    /// 10 minutes of CPU per process, 4 GiB per file.
    fn default() -> Self {
        Limits {
            memory_bytes: Some(4 << 30),
            processes: Some(1024),
            cpu_seconds: Some(600),
            file_bytes: Some(4 << 30),
        }
    }
}

impl Limits {
    /// No limits at all (what nlah's own limits allow).
    pub fn none() -> Self {
        Limits {
            memory_bytes: None,
            processes: None,
            cpu_seconds: None,
            file_bytes: None,
        }
    }

    /// One line for the enforcement notes: `limits per process: memory 4 GiB, cpu 600 s, file
    /// 4 GiB; 1024 processes`.
    pub fn describe(&self, with_processes: bool) -> String {
        let gib = |b: u64| {
            if b.is_multiple_of(1 << 30) {
                format!("{} GiB", b >> 30)
            } else {
                format!("{} MiB", b >> 20)
            }
        };
        let mut parts = Vec::new();
        if let Some(b) = self.memory_bytes {
            parts.push(format!("memory {}", gib(b)));
        }
        if let Some(s) = self.cpu_seconds {
            parts.push(format!("cpu {s} s"));
        }
        if let Some(b) = self.file_bytes {
            parts.push(format!("file {}", gib(b)));
        }
        let count = match self.processes {
            Some(n) if with_processes => format!("; {n} processes"),
            _ => String::new(),
        };
        if parts.is_empty() {
            format!("no resource limits per process{count}")
        } else {
            format!("limits per process: {}{count}", parts.join(", "))
        }
    }

    /// The `(resource, soft, hard)` limits to set, prepared before a fork.
    pub(super) fn rlimits(&self, with_processes: bool) -> Vec<Rlimit> {
        let mut out = Vec::new();
        if let Some(b) = self.memory_bytes {
            out.push((libc::RLIMIT_DATA, b, b));
        }
        // SIGXCPU at the soft limit says what happened; SIGKILL a second later if ignored.
        if let Some(s) = self.cpu_seconds {
            out.push((libc::RLIMIT_CPU, s, s + 1));
        }
        if let Some(b) = self.file_bytes {
            out.push((libc::RLIMIT_FSIZE, b, b));
        }
        if with_processes && let Some(n) = self.processes {
            out.push((libc::RLIMIT_NPROC, n, n));
        }
        // No core files: a crashing command would otherwise leave its memory in the workspace.
        out.push((libc::RLIMIT_CORE, 0, 0));
        out
    }
}

/// Sets each limit on `pid` (0: the calling process), soft and hard. System calls only: safe
/// between fork (or clone) and exec.
pub(super) fn apply(pid: libc::pid_t, set: &[Rlimit]) -> std::io::Result<()> {
    for &(resource, soft, hard) in set {
        let lim = libc::rlimit64 {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: prlimit64 reads the limit it is given and writes nothing (old is NULL).
        if unsafe { libc::prlimit64(pid, resource, &lim, std::ptr::null_mut()) } != 0 {
            let err = std::io::Error::last_os_error();
            // A hard limit below ours already holds more tightly: keep it.
            if err.raw_os_error() != Some(libc::EPERM) {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// The `ulimit` commands that set `set` in a bash (soft and hard), each on the same line and
/// ending in `; `. A limit that cannot be set is already lower than asked (only raising needs a
/// privilege), so its failure is ignored.
pub(super) fn ulimits(set: &[Rlimit]) -> String {
    let mut prefix = String::new();
    for &(resource, soft, hard) in set {
        // bash counts data and file sizes in 1,024-byte blocks (512 only in POSIX mode).
        let (flag, unit) = match resource {
            libc::RLIMIT_DATA => ("d", 1024),
            libc::RLIMIT_CPU => ("t", 1),
            libc::RLIMIT_FSIZE => ("f", 1024),
            libc::RLIMIT_NPROC => ("u", 1),
            libc::RLIMIT_CORE => ("c", 1),
            _ => continue,
        };
        let (soft, hard) = (soft / unit, hard / unit);
        if soft == hard {
            prefix.push_str(&format!("ulimit -S -H -{flag} {soft} 2>/dev/null; "));
        } else {
            // Soft first: a hard limit below the current soft one is refused.
            prefix.push_str(&format!(
                "ulimit -S -{flag} {soft} 2>/dev/null; ulimit -H -{flag} {hard} 2>/dev/null; "
            ));
        }
    }
    prefix
}

/// `program args` started so that bash sets `set` first ([`ulimits`]), for a start that runs no
/// code of nlah's in the command (`posix_spawn`), with one `bash` where the command is one (a
/// second costs a millisecond of CPU): a `bash -c SCRIPT` gets the `ulimit`s in front of its
/// script, on the same line (line numbers in its messages stay what they were); `bash
/// PATH/SCRIPT ARGS` becomes `bash -c '…; . "$0"' PATH/SCRIPT ARGS`, which sees the same `$0`,
/// arguments, `BASH_SOURCE`, messages and exit status; anything else is started by a `bash -c`
/// that sets them and `exec`s it.
pub(super) fn through_bash<'a>(
    program: &'a str,
    args: Vec<std::ffi::OsString>,
    set: &[Rlimit],
) -> (&'a str, Vec<std::ffi::OsString>) {
    if set.is_empty() {
        return (program, args);
    }
    let prefix = ulimits(set);
    let mut args = args;
    if program == "bash" {
        if args.first().is_some_and(|a| a == "-c") && args.len() >= 2 {
            let mut script = std::ffi::OsString::from(prefix);
            script.push(&args[1]);
            args[1] = script;
            return ("bash", args);
        }
        // A script named by a path (`.` would look a bare name up on `PATH`), not an option.
        if args.first().is_some_and(|a| {
            let a = a.as_encoded_bytes();
            !a.starts_with(b"-") && a.contains(&b'/')
        }) {
            args.insert(0, format!("{prefix}. \"$0\"").into());
            args.insert(0, "-c".into());
            return ("bash", args);
        }
    }
    let mut wrapped: Vec<std::ffi::OsString> = vec![
        "-c".into(),
        format!("{prefix}exec \"$0\" \"$@\"").into(),
        program.into(),
    ];
    wrapped.extend(args);
    ("bash", wrapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_scripts_get_the_limits_in_front_and_other_programs_a_wrapper() {
        let set = Limits::default().rlimits(false);
        let (p, a) = through_bash("bash", vec!["-c".into(), "echo hi".into()], &set);
        assert_eq!(p, "bash");
        let script = a[1].to_string_lossy();
        assert!(
            script.starts_with("ulimit -S -H -d 4194304 2>/dev/null; "),
            "{script}"
        );
        assert!(
            script.ends_with("ulimit -S -H -c 0 2>/dev/null; echo hi"),
            "{script}"
        );
        let (p, a) = through_bash("bash", vec!["/t/test.sh".into(), "x".into()], &set);
        assert_eq!(p, "bash");
        assert_eq!(a[0], "-c");
        assert!(a[1].to_string_lossy().ends_with("0 2>/dev/null; . \"$0\""));
        assert_eq!(a[2..], ["/t/test.sh", "x"]);
        let (p, a) = through_bash("bash", vec!["-x".into(), "/t/test.sh".into()], &set);
        assert_eq!(p, "bash");
        assert!(a[1].to_string_lossy().ends_with("exec \"$0\" \"$@\""));
        assert_eq!(a[2..], ["bash", "-x", "/t/test.sh"]);
        let (_, a) = through_bash("bash", vec!["test.sh".into()], &set);
        assert_eq!(a[2..], ["bash", "test.sh"]);
        let (p, a) = through_bash("python3", vec!["t.py".into()], &set);
        assert_eq!(p, "bash");
        assert_eq!(a[2..], ["python3", "t.py"]);
        let (p, a) = through_bash("bash", vec!["-c".into(), "x".into()], &[]);
        assert_eq!((p, a.len()), ("bash", 2));
    }
}

//! Resource limits of a confined command, as kernel resource limits (`setrlimit`) that every
//! process of the command inherits and cannot raise (raising a hard limit needs
//! CAP_SYS_RESOURCE, which confined commands never have).

use serde::{Deserialize, Serialize};

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
    /// Size of any one file a process writes (`RLIMIT_FSIZE`), bytes: writing beyond it fails
    /// with `EFBIG` (SIGXFSZ is ignored by default here).
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

    /// One line for the enforcement notes: `memory 4 GiB, cpu 600 s, file 4 GiB per process`.
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
        if with_processes && let Some(n) = self.processes {
            parts.push(format!("{n} processes"));
        }
        if parts.is_empty() {
            "no resource limits".to_string()
        } else {
            format!("limits: {} per process", parts.join(", "))
        }
    }

    /// The `(resource, value)` pairs to set, prepared before a fork.
    pub(super) fn rlimits(&self, with_processes: bool) -> Vec<(libc::__rlimit_resource_t, u64)> {
        let mut out = Vec::new();
        if let Some(b) = self.memory_bytes {
            out.push((libc::RLIMIT_DATA, b));
        }
        if let Some(s) = self.cpu_seconds {
            out.push((libc::RLIMIT_CPU, s));
        }
        if let Some(b) = self.file_bytes {
            out.push((libc::RLIMIT_FSIZE, b));
        }
        if with_processes && let Some(n) = self.processes {
            out.push((libc::RLIMIT_NPROC, n));
        }
        // No core files: a crashing command would otherwise leave its memory in the workspace.
        out.push((libc::RLIMIT_CORE, 0));
        out
    }
}

/// Sets each limit on `pid` (0: the calling process), soft and hard. System calls only: safe
/// between fork and exec.
pub(super) fn apply(
    pid: libc::pid_t,
    set: &[(libc::__rlimit_resource_t, u64)],
) -> std::io::Result<()> {
    for &(resource, value) in set {
        let lim = libc::rlimit64 {
            rlim_cur: value,
            rlim_max: value,
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

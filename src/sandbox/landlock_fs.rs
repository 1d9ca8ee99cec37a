//! The Landlock side of confinement: detecting the ABI, building a ruleset in the parent and
//! enforcing it in the child.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::Confinement;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// The newest ABI whose rights we ask for; older kernels get what they support (best effort).
const TARGET: ABI = ABI::V9;

/// Finds the Landlock ABI by enforcing a harmless ruleset (read everywhere, nothing written by
/// this thread) in a throwaway thread: Landlock restricts only the calling thread, and the thread
/// ends right after.
pub(super) fn detect() -> Result<i32, String> {
    let worker = std::thread::Builder::new()
        .name("nlah-landlock-probe".into())
        .spawn(|| {
            let root = PathFd::new("/").map_err(|e| e.to_string())?;
            Ruleset::default()
                .set_compatibility(CompatLevel::BestEffort)
                .handle_access(AccessFs::from_all(TARGET))
                .and_then(|r| r.create())
                .and_then(|r| r.add_rule(PathBeneath::new(root, AccessFs::from_read(TARGET))))
                .and_then(|r| r.restrict_self())
                .map_err(|e| e.to_string())
        });
    let status = match worker.map(|h| h.join()) {
        Ok(Ok(Ok(status))) => status,
        Ok(Ok(Err(e))) => return Err(e),
        Ok(Err(_)) => return Err("the probe thread panicked".to_string()),
        Err(e) => return Err(format!("cannot start the probe thread: {e}")),
    };
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(match status.landlock {
            LandlockStatus::NotEnabled => "Landlock is built in but not enabled".to_string(),
            LandlockStatus::NotImplemented => "the kernel has no Landlock".to_string(),
            _ => "the ruleset was not enforced".to_string(),
        });
    }
    match status.landlock {
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => Ok(kernel_abi.unwrap_or_else(|| abi_number(effective_abi))),
        _ => Err("Landlock status unknown".to_string()),
    }
}

fn abi_number(abi: ABI) -> i32 {
    // ABI is non-exhaustive and cannot be cast from outside its crate.
    [
        ABI::V1,
        ABI::V2,
        ABI::V3,
        ABI::V4,
        ABI::V5,
        ABI::V6,
        ABI::V7,
        ABI::V8,
        ABI::V9,
    ]
    .iter()
    .position(|a| *a == abi)
    .map_or(0, |i| i as i32 + 1)
}

/// Builds the ruleset: read and execute beneath the system's folders ([`super::readable`]), the
/// readable paths and the writable ones; everything but device nodes beneath the writable paths;
/// writing on the device files a shell needs (one rule each with their reading); with
/// `deny_tcp`, TCP connect and bind nowhere. `abi` is the kernel's Landlock ABI. Returns the
/// ruleset's file descriptor, close-on-exec, so it does not leak into the command.
pub(super) fn build(
    c: &Confinement,
    abi: i32,
    deny_tcp: bool,
    notes: &mut Vec<String>,
) -> Result<OwnedFd, String> {
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET))
        .map_err(|e| e.to_string())?
        .scope(Scope::from_all(TARGET))
        .map_err(|e| e.to_string())?;
    if deny_tcp {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(TARGET))
            .map_err(|e| e.to_string())?;
    }
    let mut rs = ruleset.create().map_err(|e| e.to_string())?;
    let read = AccessFs::from_read(TARGET);
    let mut skipped = Vec::new();
    for r in &c.readable {
        rs = add(rs, r, read, &mut skipped)?;
    }
    // Device nodes nowhere: one made inside the workspace would open the raw disk.
    let write = AccessFs::from_all(TARGET) & !(AccessFs::MakeChar | AccessFs::MakeBlock);
    for w in &c.writable {
        rs = add(rs, w, write, &mut skipped)?;
    }
    if !skipped.is_empty() {
        notes.push(format!(
            "paths that do not exist were skipped: {}",
            skipped.join(", ")
        ));
    }
    let fd = Option::<OwnedFd>::from(rs).ok_or("the kernel made no ruleset")?;
    add_system(fd.as_fd(), ABI::from(abi))?;
    Ok(fd)
}

/// The rule attribute of `landlock_add_rule` for `LANDLOCK_RULE_PATH_BENEATH` (`linux/landlock.h`;
/// packed there too).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;

/// Adds the system's paths to the ruleset `fd` by the system call itself. The crate's `add_rule`
/// first asks `fstat` whether the path is a folder, and a command's ruleset has one rule per
/// file of `/etc` where that folder holds private files (about 160 here): those questions were
/// half the cost of building it, and the system's paths answered them once, when they were
/// opened. The rights are the crate's for the kernel's ABI (`abi`): those it supports, and on a
/// file only those a file takes, as its best-effort mode narrows them.
fn add_system(fd: BorrowedFd<'_>, abi: ABI) -> Result<(), String> {
    let read = AccessFs::from_read(TARGET) & AccessFs::from_all(abi);
    // Writing on the device files a shell needs; they are opened with the system's folders.
    let device =
        (AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev)
            & AccessFs::from_all(abi);
    for s in super::readable::system() {
        let mut access = if s.device { read | device } else { read };
        if !s.folder {
            access &= AccessFs::from_file(abi);
        }
        let attr = PathBeneathAttr {
            allowed_access: access.bits(),
            parent_fd: s.fd.as_raw_fd(),
        };
        // SAFETY: `attr` is the packed struct the kernel reads for this rule type, alive for the
        // call; both descriptors are open.
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                fd.as_raw_fd(),
                LANDLOCK_RULE_PATH_BENEATH,
                &raw const attr,
                0,
            )
        };
        if r != 0 {
            return Err(format!(
                "{}: {}",
                s.path.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Allows `access` beneath `path`; a path that does not exist is added to `skipped` instead.
fn add(
    rs: RulesetCreated,
    path: &Path,
    access: landlock::BitFlags<AccessFs>,
    skipped: &mut Vec<String>,
) -> Result<RulesetCreated, String> {
    let fd = match super::readable::open_path(path) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => {
            skipped.push(path.display().to_string());
            return Ok(rs);
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    rs.add_rule(PathBeneath::new(fd, access))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Enforces the ruleset `fd` on the calling thread (and the processes it starts): the crate's
/// `restrict_self`, its two system calls, on a descriptor. System calls only, no allocation, so
/// it runs between `fork` and `exec` and in a child made by `clone` that shares nlah's memory;
/// errors carry the errno of the failing call.
pub(super) fn restrict_fd(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments; landlock_restrict_self takes a descriptor and flags.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_that_does_not_exist_is_skipped_and_named() {
        let ws = tempfile::tempdir().unwrap();
        let mut c = Confinement::workspace(ws.path());
        c.readable.push("/nonexistent-nlah/x".into());
        // Beneath a file: not a folder, so nothing is there either.
        std::fs::write(ws.path().join("file.txt"), "").unwrap();
        c.writable.push(ws.path().join("file.txt/below"));
        let abi = detect().expect("this test builds a ruleset, which needs Landlock");
        let mut notes = Vec::new();
        build(&c, abi, false, &mut notes).unwrap();
        assert_eq!(
            notes,
            [format!(
                "paths that do not exist were skipped: /nonexistent-nlah/x, {}",
                ws.path().join("file.txt/below").display()
            )]
        );
    }
}

//! Running a task's hidden verifier against a repository.

use std::collections::VecDeque;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::files::copy_tree;
use super::{Task, TaskError};
use crate::sandbox::{self, Confinement, spawn::Child, spawn::Launch};

/// How the verifier is started.
#[derive(Debug, Clone, Copy)]
pub enum Launcher<'a> {
    /// With nlah's own environment, unconfined: for callers that trust the task.
    Plain,
    /// In the sandbox, with a clean environment whose `HOME` and `TMPDIR` are `home`.
    Confined {
        confinement: &'a Confinement,
        home: &'a Path,
    },
}

/// The command run when `task.toml` names none and `tests/test.sh` exists.
pub const DEFAULT_VERIFIER_COMMAND: &str = r#"bash "$NLAH_TESTS_DIR/test.sh""#;

/// Output kept in a [`Verdict`]: the first and last halves of this many bytes.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// How long output is still read after the verifier exits, for descendants that left its
/// process group while holding the pipe.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What the hidden verifier said about a repository.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// `reward > 0` when a reward was written, else exit code 0; never when timed out.
    pub passed: bool,
    /// The number written to `$NLAH_REWARD_FILE` (or Harbor's `$NLAH_LOGS_DIR/reward.txt`).
    pub reward: Option<f64>,
    /// `None` when the verifier was killed by a signal.
    pub exit_code: Option<i32>,
    /// stdout and stderr interleaved, capped at [`OUTPUT_CAP`] (head and tail kept); notes from
    /// nlah itself start with `[nlah]`.
    pub output: String,
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
    pub timed_out: bool,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Runs the task's verifier against `repo_dir` and reports a [`Verdict`].
///
/// `tests/` is copied into a fresh temporary folder outside the workspace, so the agent never sees
/// it and the verifier cannot be fooled by files planted in the repository. The command runs as
/// `bash -c <command>` in `repo_dir`, in its own process group (killed whole on timeout and on
/// exit), with stdin closed and these variables set:
///
/// - `NLAH_TESTS_DIR`: the copy of `tests/`;
/// - `NLAH_REWARD_FILE`: where the verifier may write a number (the reward);
/// - `NLAH_LOGS_DIR`: an empty folder, Harbor's `/logs/verifier/`; a `reward.txt` written there
///   counts when `NLAH_REWARD_FILE` was not written.
///
/// `launcher` says how the command starts: with nlah's own environment, or in the sandbox with a
/// clean one (see [`Launcher`]); the variables above are set either way.
///
/// Errors: [`TaskError::NoVerifier`] when the task has neither `tests/test.sh` nor a
/// `[verifier] command` (the engine records the run as unverified); I/O and spawn failures.
/// A failing or timed-out verifier is a `Verdict`, not an error.
pub async fn verify(
    task: &Task,
    repo_dir: &Path,
    launcher: Launcher<'_>,
) -> Result<Verdict, TaskError> {
    let _p = crate::profile::phase(crate::profile::Phase::Verifier);
    let command = task
        .verifier_command()
        .ok_or_else(|| TaskError::NoVerifier {
            id: task.id.clone(),
            root: task.root.clone(),
        })?;
    if !repo_dir.is_dir() {
        return Err(TaskError::NotADirectory {
            path: repo_dir.to_path_buf(),
        });
    }

    let scratch = tempfile::Builder::new()
        .prefix("nlah-verify-")
        .tempdir()
        .map_err(|e| TaskError::io(&std::env::temp_dir(), "cannot create a temporary folder", e))?;
    ensure_outside(scratch.path(), repo_dir)?;
    let tests_dir = scratch.path().join("tests");
    match &task.tests {
        Some(tests) => {
            copy_tree(tests, &tests_dir)?;
        }
        None => fs::create_dir_all(&tests_dir)
            .map_err(|e| TaskError::io(&tests_dir, "cannot create the folder", e))?,
    }
    let logs_dir = scratch.path().join("logs").join("verifier");
    fs::create_dir_all(&logs_dir)
        .map_err(|e| TaskError::io(&logs_dir, "cannot create the folder", e))?;
    let reward_file = scratch.path().join("reward.txt");
    let vars = [
        ("NLAH_TESTS_DIR", &tests_dir),
        ("NLAH_REWARD_FILE", &reward_file),
        ("NLAH_LOGS_DIR", &logs_dir),
    ];

    // One pipe for both streams keeps their interleaving, as a person would see it.
    let pipe_err = |e| TaskError::io(scratch.path(), "cannot create a pipe", e);
    let (reader, writer) = std::io::pipe().map_err(pipe_err)?;
    let spawn_err = |source| TaskError::Spawn {
        id: task.id.clone(),
        command: command.clone(),
        source,
    };
    // The default command is `bash "$NLAH_TESTS_DIR/test.sh"`: started as that, not through
    // `bash -c`, which would only exec a second bash.
    let args: Vec<std::ffi::OsString> = if task.config.verifier.command.is_none() {
        vec![tests_dir.join("test.sh").into()]
    } else {
        vec!["-c".into(), command.clone().into()]
    };
    let start = Instant::now();
    let mut child = match launcher {
        Launcher::Plain => {
            let writer2 = writer.try_clone().map_err(pipe_err)?;
            let mut cmd = Command::new("bash");
            cmd.args(&args)
                .current_dir(repo_dir)
                .envs(vars)
                .stdin(Stdio::null())
                .stdout(writer)
                .stderr(writer2)
                .process_group(0)
                .kill_on_drop(true);
            // The command holds our copies of the write end; reading only ends once they close.
            Child::Forked(cmd.spawn().map_err(spawn_err)?)
        }
        Launcher::Confined { confinement, home } => {
            // The copy of the tests and the reward file are the verifier's own.
            let mut confinement = confinement.clone();
            confinement.writable.push(scratch.path().to_path_buf());
            confinement.readable.push(scratch.path().to_path_buf());
            let mut env = sandbox::clean_vars(home, home, &sandbox::EnvAllowList::default());
            env.extend(vars.iter().map(|(k, v)| (k.into(), v.into())));
            let launch = Launch {
                program: "bash",
                args,
                cwd: repo_dir,
                env,
                output: OwnedFd::from(writer),
                error: None,
                input: None,
                prelude: None,
            };
            let (child, _enforcement) = sandbox::spawn::spawn(launch, &confinement).await;
            child.map_err(spawn_err)?
        }
    };
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    // Kills the group if this future is dropped mid-run (the caller gave up on the verdict).
    let _group = GroupGuard(pgid);
    let mut reader =
        tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(pipe_err)?;

    let mut out = Capped::new(OUTPUT_CAP);
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    let mut timed_out = false;
    let timeout = task.config.verifier.timeout();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let status = loop {
        tokio::select! {
            r = reader.read(&mut buf), if !eof => match r {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => out.push(&buf[..n]),
            },
            status = child.wait() => break status,
            () = &mut deadline, if !timed_out => {
                timed_out = true;
                kill_group(pgid);
                let _ = child.start_kill();
            }
        }
    };
    let duration = start.elapsed();
    // Background processes the verifier left behind would hold the pipe and outlive the run.
    kill_group(pgid);
    let status = status.map_err(|e| TaskError::io(repo_dir, "cannot wait for the verifier", e))?;
    let drain = async {
        while !eof {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => out.push(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_GRACE, drain).await;

    let mut output = out.into_string();
    let mut note = |s: String| {
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str("[nlah] ");
        output.push_str(&s);
        output.push('\n');
    };
    if timed_out {
        note(format!(
            "verifier timed out after {}s; its process group was killed",
            timeout.as_secs_f64()
        ));
    }
    let reward = match read_reward(&[&reward_file, &logs_dir.join("reward.txt")]) {
        Reward::Absent => None,
        Reward::Value(r) => Some(Ok(r)),
        Reward::Invalid(msg) => {
            note(msg);
            Some(Err(()))
        }
    };
    let exit_code = status.code();
    // A reward that is not a number fails even with exit code 0: the verifier is broken.
    let passed = !timed_out
        && match reward {
            Some(Ok(r)) => r > 0.0,
            Some(Err(())) => false,
            None => exit_code == Some(0),
        };
    Ok(Verdict {
        passed,
        reward: reward.and_then(Result::ok),
        exit_code,
        output,
        duration,
        timed_out,
    })
}

enum Reward {
    Absent,
    Value(f64),
    /// Written but not a finite number; the message explains.
    Invalid(String),
}

/// The first reward file written (and not blank), parsed.
fn read_reward(candidates: &[&PathBuf]) -> Reward {
    for path in candidates {
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        return match text.parse::<f64>() {
            Ok(r) if r.is_finite() => Reward::Value(r),
            _ => Reward::Invalid(format!(
                "reward file {} does not hold a number: {:?}",
                path.display(),
                text.chars().take(80).collect::<String>()
            )),
        };
    }
    Reward::Absent
}

fn ensure_outside(scratch: &Path, repo_dir: &Path) -> Result<(), TaskError> {
    let scratch = fs::canonicalize(scratch).unwrap_or_else(|_| scratch.to_path_buf());
    let repo =
        fs::canonicalize(repo_dir).map_err(|e| TaskError::io(repo_dir, "cannot resolve", e))?;
    if scratch.starts_with(&repo) {
        return Err(TaskError::io(
            &scratch,
            "the verifier's temporary folder",
            std::io::Error::other(format!(
                "it is inside the repository {}; point TMPDIR elsewhere",
                repo.display()
            )),
        ));
    }
    Ok(())
}

/// Kills the whole process group the verifier leads. The group id is the verifier's pid, which
/// the kernel does not reuse while any member of the group is alive.
fn kill_group(pgid: Option<i32>) {
    if let Some(pgid) = pgid.filter(|&p| p > 1) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// Keeps the first and the last `cap / 2` bytes of a stream.
struct Capped {
    half: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: usize,
}

impl Capped {
    fn new(cap: usize) -> Self {
        Capped {
            half: cap / 2,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len();
        let room = self.half - self.head.len();
        let take = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..take]);
        bytes = &bytes[take..];
        if bytes.len() >= self.half {
            bytes = &bytes[bytes.len() - self.half..];
            self.tail.clear();
        }
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(self.half);
        self.tail.drain(..excess);
    }

    fn into_string(self) -> String {
        let kept = self.head.len() + self.tail.len();
        let mut bytes = self.head;
        if self.total > kept {
            bytes.extend_from_slice(
                format!("\n[nlah] … {} bytes omitted …\n", self.total - kept).as_bytes(),
            );
        }
        bytes.extend(self.tail);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

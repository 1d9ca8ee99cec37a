//! Running one confined `bash -c` command with a time limit and a capped capture of its output:
//! what the `shell` tool and command gates share.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::spawn::Launch;
use super::{Confinement, Enforcement, EnvAllowList, SandboxError, Scratch};

/// How long to keep reading after the command ended (and its group was killed) before giving up
/// on a pipe some escaped process still holds open.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// One command to run.
#[derive(Debug, Clone)]
pub struct ShellCommand<'a> {
    pub command: &'a str,
    /// Working directory; also where the scratch space (`.tmp/`) is made.
    pub cwd: &'a Path,
    pub confinement: &'a Confinement,
    pub allow_env: &'a EnvAllowList,
    pub timeout: Duration,
    /// Bytes of output kept: the first and last halves.
    pub output_cap: usize,
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct ShellResult {
    /// stdout and stderr interleaved as written (one pipe), capped; lossy UTF-8.
    pub output: String,
    pub total_bytes: usize,
    /// Bytes cut from the middle; a note in `output` marks the place.
    pub omitted_bytes: usize,
    pub exit_code: Option<i32>,
    /// The signal that ended the command, when it was one.
    pub signal: Option<i32>,
    /// The time limit, when the command hit it and was killed.
    pub killed_after: Option<Duration>,
    /// Output still open after the command ended (an escaped background process) was abandoned.
    pub output_abandoned: bool,
    pub elapsed: Duration,
    pub enforcement: Enforcement,
}

impl ShellResult {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && self.killed_after.is_none()
    }
}

/// Runs `bash -c COMMAND` in `cwd`: stdin null, a clean environment (`HOME` and `TMPDIR` in the
/// scratch space), confined, in its own process group, which is killed at the time limit and
/// again when the command ends (background jobs do not outlive it).
pub async fn run(c: &ShellCommand<'_>) -> Result<ShellResult, SandboxError> {
    let scratch = Scratch::prepare(c.cwd)?;
    let (reader, writer) = std::io::pipe().map_err(|source| SandboxError::Io {
        context: "cannot create a pipe".to_string(),
        source,
    })?;
    let launch = Launch {
        program: "bash",
        args: vec!["-c".into(), c.command.into()],
        cwd: c.cwd,
        env: super::env::clean_vars(&scratch.home, &scratch.tmp, c.allow_env),
        // The only write end: it is gone once the command has started, so reading ends with it.
        output: OwnedFd::from(writer),
        error: None,
        input: None,
        prelude: None,
    };
    let started = Instant::now();
    let (spawned, enforcement) = super::spawn::spawn(launch, c.confinement).await;
    let mut child = spawned.map_err(SandboxError::Spawn)?;
    let mut group = GroupKill(child.id().and_then(|p| i32::try_from(p).ok()));

    let capture = Arc::new(Mutex::new(Capture::new(c.output_cap)));
    let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(
        |source| SandboxError::Io {
            context: "cannot read the pipe".to_string(),
            source,
        },
    )?;
    let mut reading = tokio::spawn(drain(pipe, Arc::clone(&capture)));

    let mut killed_after = None;
    let status = match tokio::time::timeout(c.timeout, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            group.kill();
            killed_after = Some(c.timeout);
            child.wait().await
        }
    }
    .map_err(|source| SandboxError::Io {
        context: "cannot wait for bash".to_string(),
        source,
    })?;
    let elapsed = started.elapsed();
    group.kill();
    let output_abandoned = match tokio::time::timeout(DRAIN_GRACE, &mut reading).await {
        Ok(_) => false,
        Err(_) => {
            reading.abort();
            true
        }
    };
    // Done with the group: a later kill could only hit a recycled id.
    group.0 = None;

    let (output, total_bytes, omitted_bytes) = match capture.lock() {
        Ok(mut cap) => std::mem::take(&mut *cap).finish(),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()).finish(),
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(ShellResult {
        output,
        total_bytes,
        omitted_bytes,
        exit_code: status.code(),
        signal: status.signal(),
        killed_after,
        output_abandoned,
        elapsed,
        enforcement,
    })
}

async fn drain(mut pipe: tokio::net::unix::pipe::Receiver, capture: Arc<Mutex<Capture>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => match capture.lock() {
                Ok(mut c) => c.push(&buf[..n]),
                Err(_) => break,
            },
        }
    }
}

/// Kills the command's process group (its pgid is its pid: `confine` starts a new session) when
/// asked and when dropped, so a cancelled call leaves nothing running.
struct GroupKill(Option<i32>);

impl GroupKill {
    fn kill(&self) {
        if let Some(pgid) = self.0.filter(|p| *p > 1) {
            // SAFETY: killpg has no memory-safety preconditions; ESRCH (group gone) is fine.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Keeps the first and the last bytes of a stream, up to `cap` in all.
#[derive(Debug, Default)]
pub struct Capture {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: usize,
}

impl Capture {
    pub fn new(cap: usize) -> Self {
        let head_cap = cap / 2;
        Capture {
            head_cap,
            tail_cap: cap - head_cap,
            ..Default::default()
        }
    }

    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len();
        let room = self.head_cap.saturating_sub(self.head.len());
        let (h, rest) = data.split_at(room.min(data.len()));
        self.head.extend_from_slice(h);
        data = rest;
        if data.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.tail_cap..]);
        } else {
            let over = (self.tail.len() + data.len()).saturating_sub(self.tail_cap);
            self.tail.drain(..over);
            self.tail.extend(data);
        }
    }

    /// The text (with `[… N bytes omitted …]` where the middle was cut), total bytes, omitted
    /// bytes.
    pub fn finish(self) -> (String, usize, usize) {
        let tail: Vec<u8> = self.tail.into_iter().collect();
        let omitted = self.total - self.head.len() - tail.len();
        if omitted == 0 {
            let mut all = self.head;
            all.extend_from_slice(&tail);
            return (String::from_utf8_lossy(&all).into_owned(), self.total, 0);
        }
        let text = format!(
            "{}\n[… {omitted} bytes omitted …]\n{}",
            String::from_utf8_lossy(trim_utf8_end(&self.head)),
            String::from_utf8_lossy(trim_utf8_start(&tail)),
        );
        (text, self.total, omitted)
    }
}

/// Drops a character cut in half at the end.
pub(crate) fn trim_utf8_end(b: &[u8]) -> &[u8] {
    match std::str::from_utf8(b) {
        Err(e) if e.error_len().is_none() => &b[..e.valid_up_to()],
        _ => b,
    }
}

/// Drops continuation bytes of a character cut in half at the start.
pub(crate) fn trim_utf8_start(b: &[u8]) -> &[u8] {
    let skip = b.iter().take(3).take_while(|&&x| x & 0xC0 == 0x80).count();
    &b[skip..]
}

#[cfg(test)]
mod tests {
    use super::Capture;

    #[test]
    fn capture_keeps_head_and_tail() {
        let mut c = Capture::new(10);
        for chunk in [&b"0123"[..], b"456789abcdef", b"ghij"] {
            c.push(chunk);
        }
        let (text, total, omitted) = c.finish();
        assert_eq!(total, 20);
        assert_eq!(omitted, 10);
        assert_eq!(text, "01234\n[… 10 bytes omitted …]\nfghij");
    }

    #[test]
    fn capture_under_cap_is_verbatim() {
        let mut c = Capture::new(100);
        c.push(b"hello ");
        c.push(b"world");
        assert_eq!(c.finish(), ("hello world".to_string(), 11, 0));
    }
}

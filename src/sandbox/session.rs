//! A long-lived confined shell: one `bash` per child, to which commands are sent one at a time,
//! so that a command costs no new process, namespace or Landlock domain, and the working folder
//! and variables persist between calls (`cd`, `export`), as in SWE-agent's and Inspect's shells.
//!
//! The shell is the first process of its own PID namespace ([`super::pidns`]); after each
//! command it kills every other process in the namespace (`kill -9 -1` from the namespace's first
//! process reaches all but itself), so nothing a command starts outlives it, as with one process
//! per command. Without a PID namespace there is no session: `kill -1` would reach every process
//! of the user ([`ShellSession::available`]).
//!
//! Each command is sent as one line: the command single-quoted into a function that `eval`s it
//! (so an unbalanced quote is a syntax error of that command, not a shell waiting for more
//! input), stdin from `/dev/null`, stderr into stdout, then a marker with a fresh random nonce
//! and the exit status.
//! A command that runs past its time limit, or ends the shell (`exit`), ends the session; the next
//! call starts a new one and says so.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::exec::{Capture, ShellResult};
use super::spawn::{Child, Launch};
use super::{Confinement, Enforcement, EnvAllowList, SandboxError, Scratch};

/// A running shell.
pub struct ShellSession {
    child: Child,
    input: tokio::net::unix::pipe::Sender,
    output: tokio::net::unix::pipe::Receiver,
    enforcement: Enforcement,
    /// A command was sent and its marker not read (a call was cancelled): unusable.
    busy: bool,
}

/// How a command sent to a session ended.
pub struct SessionRun {
    pub result: ShellResult,
    /// The shell is gone (time limit, `exit`, killed): the next command needs a new one.
    pub ended: bool,
}

fn io(context: &str) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        context: context.to_string(),
        source,
    }
}

impl ShellSession {
    /// Whether sessions can be used with `c`: only with a PID namespace of their own.
    pub fn available(c: &Confinement) -> bool {
        super::processes_enforced(c)
    }

    /// Starts `bash` reading commands from a pipe, in `cwd`, confined as `c`.
    pub async fn start(
        cwd: &Path,
        c: &Confinement,
        allow_env: &EnvAllowList,
    ) -> Result<ShellSession, SandboxError> {
        let _p = crate::profile::phase(crate::profile::Phase::ShellStart);
        let scratch = Scratch::prepare(cwd)?;
        let (out_reader, out_writer) = std::io::pipe().map_err(io("cannot create a pipe"))?;
        let (in_reader, in_writer) = std::io::pipe().map_err(io("cannot create a pipe"))?;
        // The shell's resource limits, if they are its to set: its first line, before any command.
        let mut first = String::new();
        let launch = Launch {
            program: "bash",
            args: vec!["--noprofile".into(), "--norc".into(), "-s".into()],
            cwd,
            env: super::env::clean_vars(&scratch.home, &scratch.tmp, allow_env),
            output: OwnedFd::from(out_writer),
            error: None,
            input: Some(OwnedFd::from(in_reader)),
            prelude: Some(&mut first),
        };
        let (spawned, enforcement) = super::spawn::spawn(launch, c).await;
        let child = spawned.map_err(SandboxError::Spawn)?;
        let input = tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(in_writer))
            .map_err(io("cannot write to the shell"))?;
        let output = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(out_reader))
            .map_err(io("cannot read the shell"))?;
        let mut input = input;
        // `eval` in a function: `cd` and variables persist, `return` ends only the command, and
        // a syntax error is the command's (status 2) while the shell reads on.
        first.push_str("__nlah_eval() { eval \"$1\" </dev/null 2>&1; }\n");
        input
            .write_all(first.as_bytes())
            .await
            .map_err(io("cannot write to the shell"))?;
        Ok(ShellSession {
            child,
            input,
            output,
            enforcement,
            busy: false,
        })
    }

    /// Whether the session can take another command.
    pub fn usable(&self) -> bool {
        !self.busy
    }

    /// Ends the shell (and everything in its namespace) and waits for it.
    pub async fn close(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Runs `command` in the shell, killed (with the shell) at `timeout`; keeps `cap` bytes of
    /// its output (head and tail).
    pub async fn run(
        &mut self,
        command: &str,
        timeout: Duration,
        cap: usize,
    ) -> Result<SessionRun, SandboxError> {
        let _p = crate::profile::phase(crate::profile::Phase::ShellRun);
        let nonce = nonce();
        let marker = format!("\n__NLAH_{nonce}_");
        let line = format!(
            "__nlah_eval {}; __nlah_rc=$?; disown -a 2>/dev/null; kill -9 -1 2>/dev/null; printf '{}%d\\n' \"$__nlah_rc\"\n",
            single_quoted(command),
            marker.replace('\n', "\\n"),
        );
        let started = Instant::now();
        self.busy = true;
        if let Err(e) = self.input.write_all(line.as_bytes()).await {
            // The shell is gone before the command: report it as a shell that ended.
            return Ok(self
                .ended(Capture::new(cap), started, None, Some(e.to_string()))
                .await);
        }
        let mut capture = Capture::new(cap);
        let mut window: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = self.output.read(&mut buf) => match r {
                    Ok(0) | Err(_) => {
                        capture.push(&window);
                        return Ok(self.ended(capture, started, None, None).await);
                    }
                    Ok(n) => {
                        window.extend_from_slice(&buf[..n]);
                        if let Some(code) = take_marker(&mut window, marker.as_bytes(), &mut capture) {
                            self.busy = false;
                            let (output, total_bytes, omitted_bytes) = capture.finish();
                            return Ok(SessionRun {
                                result: ShellResult {
                                    output,
                                    total_bytes,
                                    omitted_bytes,
                                    exit_code: Some(code),
                                    signal: None,
                                    killed_after: None,
                                    output_abandoned: false,
                                    elapsed: started.elapsed(),
                                    enforcement: self.enforcement.clone(),
                                },
                                ended: false,
                            });
                        }
                    }
                },
                () = &mut deadline => {
                    capture.push(&window);
                    return Ok(self.ended(capture, started, Some(timeout), None).await);
                }
            }
        }
    }

    /// Kills what is left of the shell and reports the command's end.
    async fn ended(
        &mut self,
        mut capture: Capture,
        started: Instant,
        killed_after: Option<Duration>,
        note: Option<String>,
    ) -> SessionRun {
        self.busy = true;
        let _ = self.child.start_kill();
        let status = self.child.wait().await.ok();
        if let Some(n) = note {
            capture.push(format!("(the shell was gone: {n})\n").as_bytes());
        }
        let (output, total_bytes, omitted_bytes) = capture.finish();
        use std::os::unix::process::ExitStatusExt;
        let (exit_code, signal) = match (killed_after, status) {
            (Some(_), _) | (None, None) => (None, None),
            (None, Some(s)) => (s.code(), s.signal()),
        };
        SessionRun {
            result: ShellResult {
                output,
                total_bytes,
                omitted_bytes,
                exit_code,
                signal,
                killed_after,
                output_abandoned: false,
                elapsed: started.elapsed(),
                enforcement: self.enforcement.clone(),
            },
            ended: true,
        }
    }
}

/// Moves what precedes the marker into `capture` and returns the status after it, once the
/// marker's line is complete; otherwise moves all but a marker's length (which may be a marker
/// in the making) and returns `None`.
fn take_marker(window: &mut Vec<u8>, marker: &[u8], capture: &mut Capture) -> Option<i32> {
    if let Some(at) = find(window, marker) {
        let rest = &window[at + marker.len()..];
        let end = rest.iter().position(|b| *b == b'\n')?;
        let code = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        capture.push(&window[..at]);
        window.clear();
        return Some(code);
    }
    let keep = marker.len() + 12;
    if window.len() > keep {
        let cut = window.len() - keep;
        capture.push(&window[..cut]);
        window.drain(..cut);
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `s` as one single-quoted shell word.
fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// 64 random bits as hex, from the kernel.
fn nonce() -> String {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most the buffer's length into it.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        // Unpredictability only guards against a command printing the marker by chance.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        b = t.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_across_reads_and_output_before_them_kept() {
        let marker = b"\n__NLAH_ab_";
        let mut cap = Capture::new(1000);
        let mut w = b"hello\nwor".to_vec();
        assert_eq!(take_marker(&mut w, marker, &mut cap), None);
        w.extend_from_slice(b"ld\n\n__NLAH_a");
        assert_eq!(take_marker(&mut w, marker, &mut cap), None);
        w.extend_from_slice(b"b_3");
        assert_eq!(
            take_marker(&mut w, marker, &mut cap),
            None,
            "line incomplete"
        );
        w.extend_from_slice(b"\n");
        assert_eq!(take_marker(&mut w, marker, &mut cap), Some(3));
        assert_eq!(cap.finish().0, "hello\nworld\n");
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(single_quoted("echo 'a' \"b\""), r#"'echo '\''a'\'' "b"'"#);
    }
}

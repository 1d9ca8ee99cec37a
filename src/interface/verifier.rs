//! A code verifier (AutoHarness): a harness script run once per child as a long-lived process,
//! confined like every tool command, answering one JSON object per line on stdout for each
//! request line on stdin:
//!
//! | request | answer |
//! | --- | --- |
//! | `{"id": 1, "method": "is_legal", "observation": "…", "tool": "…", "arguments": {…}, "action": "…"}` | `{"id": 1, "legal": true}` or `{"id": 1, "legal": false, "reason": "…"}` |
//! | `{"id": 2, "method": "legal_actions", "observation": "…"}` | `{"id": 2, "actions": ["…", …]}` |
//! | `{"id": 3, "method": "policy", "observation": "…"}` | `{"id": 3, "action": "…"}` |
//!
//! Each answer has a time limit; a script that cannot start, exits, hangs past the limit or
//! answers something else is a fault, which ends the child and the run as an infrastructure
//! error. The fault quotes the end of the script's stderr (a Python traceback says why).

use std::io::{BufRead, BufReader, Write, pipe};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::{Value, json};

use crate::sandbox::spawn::{Child, Launch};
use crate::sandbox::{Confinement, Scratch};

/// Added to the time limit of the first answer, for the script to start.
pub const STARTUP_GRACE: Duration = Duration::from_secs(5);

/// Why the verifier failed, in words naming the script.
pub type Fault = String;

struct Io {
    stdin: std::fs::File,
    lines: Receiver<String>,
    next: u64,
}

/// How much of the script's stderr a fault quotes: enough for a Python traceback's last lines,
/// which is what tells a refiner (or a person) why the script died.
const STDERR_TAIL: usize = 1500;

/// The end of the script's stderr, read by a thread of its own so that the script never blocks
/// on a full pipe; `closed` reports when the script has closed it.
struct StderrTail {
    text: std::sync::Arc<Mutex<String>>,
    closed: Mutex<Receiver<()>>,
    /// The workspace's path with a trailing slash, cut from what is quoted: paths read as the
    /// script knows them (`scripts/…`), and the same fault reads the same in every run.
    workspace: String,
}

impl StderrTail {
    fn read(stderr: std::fs::File, workspace: &Path) -> StderrTail {
        let text = std::sync::Arc::new(Mutex::new(String::new()));
        let (done, closed) = channel();
        let keep = text.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut buf = Vec::new();
            while let Ok(n) = r.read_until(b'\n', &mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = keep.lock().unwrap_or_else(|p| p.into_inner());
                t.push_str(&String::from_utf8_lossy(&buf));
                if t.len() > 2 * STDERR_TAIL {
                    let cut = t.len() - STDERR_TAIL;
                    let cut = (cut..t.len()).find(|&i| t.is_char_boundary(i)).unwrap_or(0);
                    t.drain(..cut);
                }
                buf.clear();
            }
            let _ = done.send(());
        });
        StderrTail {
            text,
            closed: Mutex::new(closed),
            workspace: format!("{}/", workspace.display()),
        }
    }

    /// What the script wrote last on stderr, after waiting briefly for it to close the pipe (a
    /// script that just exited may not have been read to the end yet).
    fn last(&self, wait: Duration) -> String {
        let _ = self
            .closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(wait);
        let t = self.text.lock().unwrap_or_else(|p| p.into_inner());
        let t = t.trim();
        let start = t.len().saturating_sub(STDERR_TAIL);
        let start = (start..t.len())
            .find(|&i| t.is_char_boundary(i))
            .unwrap_or(t.len());
        t[start..].replace(&self.workspace, "")
    }
}

/// The running verifier process.
pub struct VerifierProcess {
    script: String,
    timeout: Duration,
    io: Mutex<Option<Io>>,
    stderr: StderrTail,
    child: Mutex<Option<Child>>,
}

impl std::fmt::Debug for VerifierProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierProcess")
            .field("script", &self.script)
            .finish_non_exhaustive()
    }
}

impl VerifierProcess {
    /// Starts `script` (a path in the workspace, e.g. `scripts/verify.py`) in `cwd`: with
    /// `python3` for `.py`, `bash` for `.sh`, else as an executable. Needs a tokio runtime.
    pub async fn start(
        script: &str,
        cwd: &Path,
        confinement: &Confinement,
        timeout: Duration,
    ) -> Result<VerifierProcess, Fault> {
        let path = cwd.join(script);
        if !path.is_file() {
            return Err(format!(
                "code verifier `{script}`: no such file in the workspace"
            ));
        }
        let fault = |e: &dyn std::fmt::Display| format!("code verifier `{script}`: {e}");
        let scratch = Scratch::prepare(cwd).map_err(|e| fault(&e))?;
        let (program, args) = if script.ends_with(".py") {
            ("python3", vec![path.clone().into_os_string()])
        } else if script.ends_with(".sh") {
            ("bash", vec![path.clone().into_os_string()])
        } else {
            let exe = path
                .to_str()
                .ok_or_else(|| fault(&"its path is not UTF-8"))?;
            (exe, Vec::new())
        };
        let pipes = || -> std::io::Result<_> { Ok((pipe()?, pipe()?, pipe()?)) };
        let ((in_r, in_w), (out_r, out_w), (err_r, err_w)) = pipes().map_err(|e| fault(&e))?;
        // Started as every confined command is (no copy of nlah's address space); killed when
        // dropped.
        let launch = Launch {
            program,
            args,
            cwd,
            env: crate::sandbox::clean_vars(&scratch.home, &scratch.tmp, &Default::default()),
            output: OwnedFd::from(out_w),
            error: Some(OwnedFd::from(err_w)),
            input: Some(OwnedFd::from(in_r)),
            prelude: None,
        };
        let (child, _) = crate::sandbox::spawn::spawn(launch, confinement).await;
        let child = child.map_err(|e| format!("code verifier `{script}` did not start: {e}"))?;
        let (stdin, stdout, stderr) = (
            std::fs::File::from(OwnedFd::from(in_w)),
            std::fs::File::from(OwnedFd::from(out_r)),
            std::fs::File::from(OwnedFd::from(err_r)),
        );
        let (tx, rx) = channel();
        // A reader thread, so that a silent script is cut off by the time limit.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(VerifierProcess {
            script: script.to_string(),
            timeout,
            io: Mutex::new(Some(Io {
                stdin,
                lines: rx,
                next: 1,
            })),
            stderr: StderrTail::read(stderr, cwd),
            child: Mutex::new(Some(child)),
        })
    }

    /// Sends one request and waits for its answer (lines with another id are skipped).
    pub fn ask(&self, method: &str, mut params: Value) -> Result<Value, Fault> {
        let mut guard = self.io.lock().unwrap_or_else(|p| p.into_inner());
        let Some(io) = guard.as_mut() else {
            return Err(format!("code verifier `{}` failed earlier", self.script));
        };
        let id = io.next;
        io.next += 1;
        params["id"] = json!(id);
        params["method"] = json!(method);
        let mut line = params.to_string();
        line.push('\n');
        let fail = |guard: &mut Option<Io>, why: String| {
            *guard = None;
            let said = self.stderr.last(Duration::from_millis(200));
            if said.is_empty() {
                Err(format!("code verifier `{}` {why}", self.script))
            } else {
                Err(format!(
                    "code verifier `{}` {why}; its stderr ends:\n{said}",
                    self.script
                ))
            }
        };
        if io
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| io.stdin.flush())
            .is_err()
        {
            return fail(&mut guard, format!("exited before answering {method}"));
        }
        // The first answer also waits for the script to start (an interpreter on a loaded
        // machine can take seconds); the steady-state limit applies from then on.
        let limit = if id == 1 {
            self.timeout + STARTUP_GRACE
        } else {
            self.timeout
        };
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match io.lines.recv_timeout(left) {
                Ok(l) => match serde_json::from_str::<Value>(&l) {
                    Ok(v) if v.get("id") == Some(&json!(id)) => return Ok(v),
                    Ok(_) => continue,
                    Err(_) => {
                        let mut l = l;
                        l.truncate(200);
                        return fail(
                            &mut guard,
                            format!("answered {method} with a line that is not JSON: {l:?}"),
                        );
                    }
                },
                Err(RecvTimeoutError::Timeout) => {
                    return fail(
                        &mut guard,
                        format!("did not answer {method} within {} ms", limit.as_millis()),
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return fail(&mut guard, format!("exited before answering {method}"));
                }
            }
        }
    }

    /// `is_legal`: `Ok(None)` when legal, `Ok(Some(reason))` when not.
    pub fn is_legal(
        &self,
        observation: &str,
        tool: &str,
        arguments: &Value,
        action: Option<&str>,
    ) -> Result<Option<String>, Fault> {
        let v = self.ask(
            "is_legal",
            json!({"observation": observation, "tool": tool, "arguments": arguments, "action": action}),
        )?;
        match v.get("legal").and_then(Value::as_bool) {
            Some(true) => Ok(None),
            Some(false) => Ok(Some(
                v.get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("the verifier says it is illegal")
                    .to_string(),
            )),
            None => Err(format!(
                "code verifier `{}` answered is_legal without a boolean `legal`: {v}",
                self.script
            )),
        }
    }

    pub fn legal_actions(&self, observation: &str) -> Result<Vec<String>, Fault> {
        let v = self.ask("legal_actions", json!({"observation": observation}))?;
        v.get("actions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .ok_or_else(|| {
                format!(
                    "code verifier `{}` answered legal_actions without an `actions` list: {v}",
                    self.script
                )
            })
    }

    pub fn policy(&self, observation: &str) -> Result<String, Fault> {
        let v = self.ask("policy", json!({"observation": observation}))?;
        v.get("action")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "code verifier `{}` answered policy without an `action`: {v}",
                    self.script
                )
            })
    }
}

impl Drop for VerifierProcess {
    fn drop(&mut self) {
        // Closing stdin asks the script to end; the kill ends it if it does not.
        self.io.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut c) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = c.start_kill();
        }
    }
}

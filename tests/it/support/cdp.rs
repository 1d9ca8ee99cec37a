//! Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! commands on fd 3, answers and events on fd 4, each message ended by a NUL byte), so a test
//! can click through a page and read what it shows without a WebDriver or a WebSocket. Every
//! request the page makes is recorded (`Network.requestWillBeSent`).

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    child: Child,
    commands: std::fs::File,
    answers: Receiver<Value>,
    next: u64,
    session: String,
    /// Every URL the page asked for.
    pub requests: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills both descriptors, which are then owned here.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2");
    // SAFETY: both were just created and are not owned elsewhere.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts Chromium headless with an empty profile and opens one blank page.
    pub fn start() -> Browser {
        use std::os::fd::AsRawFd;
        let profile = tempfile::tempdir().unwrap();
        let (cmd_r, cmd_w) = pipe();
        let (ans_r, ans_w) = pipe();
        let (cr, aw) = (cmd_r.as_raw_fd(), ans_w.as_raw_fd());
        let mut cmd = Command::new(CHROMIUM);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--no-first-run",
            "--remote-debugging-pipe",
            // Belt and braces: no name resolves except loopback; the test checks the requests.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Moved out of the way first, in case either already sits on 3 or 4.
                let hi_r = libc::fcntl(cr, libc::F_DUPFD, 100);
                let hi_w = libc::fcntl(aw, libc::F_DUPFD, 100);
                if hi_r < 0 || hi_w < 0 || libc::dup2(hi_r, 3) < 0 || libc::dup2(hi_w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        drop((cmd_r, ans_w));
        let (tx, answers) = channel();
        let requests = Arc::new(Mutex::new(Vec::new()));
        {
            let mut input = std::fs::File::from(ans_r);
            let requests = requests.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                while let Ok(n) = input.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.iter().position(|b| *b == 0) {
                        let msg: Vec<u8> = buf.drain(..=end).collect();
                        let Ok(v) = serde_json::from_slice::<Value>(&msg[..end]) else {
                            continue;
                        };
                        if v["method"] == "Network.requestWillBeSent" {
                            let url = v["params"]["request"]["url"].as_str().unwrap_or_default();
                            requests.lock().unwrap().push(url.to_string());
                        }
                        if v.get("id").is_some() && tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            });
        }
        let mut b = Browser {
            child,
            commands: std::fs::File::from(cmd_w),
            answers,
            next: 0,
            session: String::new(),
            requests,
            _profile: profile,
        };
        let t = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = t["targetId"].as_str().unwrap().to_string();
        let s = b.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        b.session = s["sessionId"].as_str().unwrap().to_string();
        b.call("Network.enable", json!({}));
        b.call("Page.enable", json!({}));
        b
    }

    /// Sends one command (to the page once attached) and waits for its answer's result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .expect("chromium reads commands");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok(v) if v["id"] == id => {
                    if let Some(e) = v.get("error") {
                        panic!("{method}: {e}");
                    }
                    return v["result"].clone();
                }
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer in a minute"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium went away"),
            }
        }
    }

    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// Evaluates a JavaScript expression in the page; its value as JSON.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{js}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits (up to 30 s) until `js` is truthy in the page.
    pub fn wait(&mut self, js: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.eval(&format!(
                "(() => {{ try {{ return !!({js}); }} catch (e) {{ return false; }} }})()"
            ));
            if v == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body.innerText");
                panic!("waited 30 s for {js}; the page shows:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the first element `selector` matches, and waits until the page has shown `hash`.
    pub fn click(&mut self, selector: &str, hash: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return false; e.click(); return true; }})()"
        ));
        assert_eq!(found, json!(true), "nothing matches {selector}");
        self.wait_ready(hash);
    }

    /// Waits until the page finished drawing the route `hash`.
    pub fn wait_ready(&mut self, hash: &str) {
        let h = serde_json::to_string(hash).unwrap();
        self.wait(&format!(
            "document.body.dataset.ready === {h} && location.hash.replace(/^$/, '#/') === {h}"
        ));
    }

    /// A PNG of what the page shows now, for people reading a failed run's output folder.
    pub fn screenshot(&mut self, path: &std::path::Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let data = r["data"].as_str().unwrap_or_default();
        let bytes = base64(data);
        std::fs::write(path, bytes).unwrap();
    }

    /// Text content of the first element `selector` matches (null when none).
    pub fn text(&mut self, selector: &str) -> Value {
        let sel = serde_json::to_string(selector).unwrap();
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); return e ? e.textContent : null; }})()"
        ))
    }

    /// How many elements `selector` matches.
    pub fn count(&mut self, selector: &str) -> u64 {
        let sel = serde_json::to_string(selector).unwrap();
        self.eval(&format!("document.querySelectorAll({sel}).length"))
            .as_u64()
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 decoding (the protocol sends screenshots so).
fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

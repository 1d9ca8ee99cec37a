//! `nlah view` as a user starts it: the binary on a free port of 127.0.0.1, its address read
//! from its first line, its terminal output kept, and the process killed when the test ends.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::TestEnv;

pub struct Viewer {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Viewer {
    /// `nlah view PATHS --no-open`; waits for the address it prints.
    pub fn start(env: &TestEnv, paths: &[&Path]) -> Viewer {
        let mut cmd = env.nlah();
        cmd.arg("view").args(paths).arg("--no-open");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nlah view starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut err = child.stderr.take().unwrap();
            let keep = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    keep.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| {
                panic!(
                    "no address in {first:?}; stderr: {}",
                    stderr.lock().unwrap()
                )
            })
            .trim_end_matches('/')
            .to_string();
        Viewer { url, child, stderr }
    }

    /// What the server printed on its terminal (stderr) so far.
    pub fn terminal(&self) -> String {
        // The reader thread may still be copying the last lines.
        std::thread::sleep(Duration::from_millis(100));
        self.stderr.lock().unwrap().clone()
    }

    /// GET a path; returns the status and the body as JSON.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = reqwest::get(format!("{}{path}", self.url)).await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        (status, v)
    }

    /// GET a path that must answer 200 with JSON.
    pub async fn ok(&self, path: &str) -> serde_json::Value {
        let (status, v) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {v}");
        v
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The test environment: a temporary folder (the runs' workspaces, a private `HOME`), an
//! optional scripted model on 127.0.0.1, and the `nlah` binary with a clean environment that
//! points at them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::fsck::assert_fsck;
use super::model::{self, Answer, MockModel, Turn};

/// A base URL where nothing answers: the discard port of loopback.
pub const NOWHERE: &str = "http://127.0.0.1:9/v1";

/// One test's world. The folder lives as long as the environment or any [`Ran`] made in it.
pub struct TestEnv {
    root: Arc<tempfile::TempDir>,
    base_url: String,
    model: Option<MockModel>,
    runs: AtomicUsize,
}

impl TestEnv {
    /// No model server: `OPENAI_BASE_URL` points where nothing answers.
    pub fn new() -> TestEnv {
        TestEnv::with_base_url(NOWHERE)
    }

    /// `OPENAI_BASE_URL` is `url` (a proxy, an unreachable or a remote endpoint).
    pub fn with_base_url(url: &str) -> TestEnv {
        let root = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir(root.path().join("home")).expect("home");
        TestEnv {
            root: Arc::new(root),
            base_url: url.to_string(),
            model: None,
            runs: AtomicUsize::new(0),
        }
    }

    /// The scripted model (a real HTTP server on 127.0.0.1) answering with `policy`; nlah's
    /// `OPENAI_BASE_URL` points at it.
    pub async fn with_model(policy: impl Fn(&Turn) -> Answer + Send + Sync + 'static) -> TestEnv {
        let model = model::start(policy).await;
        let mut env = TestEnv::with_base_url(&model.base_url);
        env.model = Some(model);
        env
    }

    /// The scripted model; only environments made by [`TestEnv::with_model`] have one.
    pub fn model(&self) -> &MockModel {
        self.model.as_ref().expect("a TestEnv made with_model")
    }

    /// The test's temporary folder, for its own files and output folders.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The `nlah` binary, run from the crate's root (fixture paths are relative to it), with a
    /// private `HOME`, `NO_COLOR` and `OPENAI_BASE_URL` set and little else: nothing of the
    /// caller's keys, models, prices or settings reaches it.
    pub fn nlah(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nlah"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_clear()
            .env("HOME", self.root().join("home"))
            .env("NO_COLOR", "1")
            .env("OPENAI_BASE_URL", &self.base_url);
        // What finds programs and scratch space, and what debugging and coverage tools need.
        for var in ["PATH", "TMPDIR", "RUST_BACKTRACE", "LLVM_PROFILE_FILE"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        cmd
    }

    /// Runs `nlah ARGS` from the crate's root; returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
    }

    /// Runs `nlah ARGS` in `cwd`; returns (exit code, stdout, stderr).
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> (i32, String, String) {
        let out = self
            .nlah()
            .args(args)
            .current_dir(cwd)
            .output()
            .expect("nlah runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `nlah run ARGS --workspace WS --retries 2` in a fresh workspace folder, off the async
    /// workers (the scripted model answers on them). A workspace the run leaves must pass
    /// `git fsck --strict`.
    pub async fn nlah_run(&self, args: &[&str]) -> Ran {
        // The folder's name is the run's id, which snapshots show: the first is `ws`.
        let ws = match self.runs.fetch_add(1, Ordering::SeqCst) {
            0 => self.root().join("ws"),
            n => self.root().join(format!("ws-{}", n + 1)),
        };
        let mut cmd = self.nlah();
        cmd.arg("run")
            .args(args)
            .arg("--workspace")
            .arg(&ws)
            .args(["--retries", "2"]);
        let out = output(cmd).await;
        let ran = Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            ws,
            _root: self.root.clone(),
        };
        if ran.ws.join(".git").exists() {
            assert_fsck(&ran.ws);
        }
        ran
    }

    /// `nlah run harness-skills/basic tests/fixtures/tasks/write-result --model MODEL`: the basic
    /// harness on the task that asks for `artifacts/result.txt`.
    pub async fn run_basic(&self, model: &str) -> Ran {
        self.nlah_run(&[
            "harness-skills/basic",
            "tests/fixtures/tasks/write-result",
            "--model",
            model,
        ])
        .await
    }

    /// `nlah ablate tests/fixtures/mini TASKS --module reviewer --seeds 2 --model openai:mock-1`:
    /// two variants, two seeds per task; the caller adds the rest.
    pub fn ablate_design(&self, tasks: &str) -> Command {
        let mut cmd = self.nlah();
        cmd.args([
            "ablate",
            "tests/fixtures/mini",
            tasks,
            "--module",
            "reviewer",
            "--seeds",
            "2",
            "--model",
            "openai:mock-1",
        ]);
        cmd
    }

    /// [`TestEnv::ablate_design`] with `--retries 1 --json`: what most suites run.
    pub fn ablate_mini(&self, tasks: &str) -> Command {
        let mut cmd = self.ablate_design(tasks);
        cmd.args(["--retries", "1", "--json"]);
        cmd
    }
}

/// Runs `cmd` to the end off the async workers (the scripted model answers on them).
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("nlah runs"))
        .await
        .expect("join")
}

/// What `nlah run` did: its exit, its output, and its workspace.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub ws: PathBuf,
    _root: Arc<tempfile::TempDir>,
}

impl Ran {
    /// A workspace that a command made by hand (not `nlah_run`) left in `env`.
    pub fn at(env: &TestEnv, ws: PathBuf) -> Ran {
        Ran {
            code: 0,
            stdout: String::new(),
            stderr: String::new(),
            ws,
            _root: env.root.clone(),
        }
    }

    pub fn record(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.ws.join("run.json")).expect("run.json"))
            .expect("json")
    }

    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.ws.join("history/events.jsonl"))
            .expect("events")
            .lines()
            .map(|l| serde_json::from_str(l).expect("event json"))
            .collect()
    }

    pub fn kinds(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// The workspace's commit summaries, first to last.
    pub fn story(&self) -> Vec<String> {
        self.messages()
            .iter()
            .map(|m| m.lines().next().unwrap_or_default().to_string())
            .collect()
    }

    /// The whole commit messages of the workspace's branch, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let repo = git2::Repository::open(&self.ws).expect("a git workspace");
        let mut walk = repo.revwalk().unwrap();
        walk.push_head().unwrap();
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
            .unwrap();
        walk.map(|o| {
            repo.find_commit(o.unwrap())
                .unwrap()
                .message()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.ws.join(rel).exists()
    }
}

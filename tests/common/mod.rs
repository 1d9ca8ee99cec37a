//! A scripted model behind a real OpenAI-compatible HTTP server on 127.0.0.1.
//!
//! The engine talks to it exactly as to a provider; the test's `policy` decides each answer
//! from what the child's request says (its id, role and stage are in its TASK.md), so tests can
//! drive every path of the runtime deterministically.

#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// What the policy sees of a request.
#[derive(Debug, Clone)]
pub struct Turn {
    pub child: String,
    pub role: String,
    pub stage: String,
    /// Assistant messages already in the conversation (0 for the first call).
    pub turn: usize,
    pub task: String,
    /// The content of the last message (a tool result after the first turn).
    pub last: String,
}

/// One answer: tool calls (name, JSON arguments) and/or text.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub text: String,
    pub calls: Vec<(String, Value)>,
}

impl Answer {
    pub fn text(t: &str) -> Answer {
        Answer {
            text: t.into(),
            calls: vec![],
        }
    }
    pub fn call(name: &str, args: Value) -> Answer {
        Answer {
            text: String::new(),
            calls: vec![(name.into(), args)],
        }
    }
    pub fn write(path: &str, content: &str) -> Answer {
        Answer::call("write", json!({"path": path, "content": content}))
    }
    pub fn shell(cmd: &str) -> Answer {
        Answer::call("shell", json!({"command": cmd}))
    }
}

pub type Policy = Arc<dyn Fn(&Turn) -> Answer + Send + Sync>;

/// Usage the server reported, summed: what run.json must equal.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Served {
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Clone)]
struct AppState {
    policy: Policy,
    served: Arc<Mutex<Served>>,
    requests: Arc<Mutex<Vec<Value>>>,
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
}

pub struct MockModel {
    pub base_url: String,
    served: Arc<Mutex<Served>>,
    requests: Arc<Mutex<Vec<Value>>>,
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl MockModel {
    pub fn served(&self) -> Served {
        *self.served.lock().unwrap()
    }
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
    /// How many TCP connections the requests came over.
    pub fn connections(&self) -> usize {
        self.peers.lock().unwrap().len()
    }
}

fn field<'a>(task: &'a str, prefix: &str) -> &'a str {
    task.split(prefix)
        .nth(1)
        .and_then(|r| {
            r.split(|c: char| c == '*' || c == '`' || c.is_whitespace())
                .find(|s| !s.is_empty())
        })
        .unwrap_or("")
}

async fn completions(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<Value>,
) -> Json<Value> {
    st.peers.lock().unwrap().insert(peer);
    st.requests.lock().unwrap().push(body.clone());
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let task = msgs
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let turn = Turn {
        child: field(&task, "# Child task: ").to_string(),
        role: field(&task, "acting as the **").to_string(),
        stage: field(&task, "role for stage `").to_string(),
        turn: msgs.iter().filter(|m| m["role"] == "assistant").count(),
        last: msgs
            .last()
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string(),
        task,
    };
    let answer = (st.policy)(&turn);
    let prompt_chars: usize = msgs
        .iter()
        .map(|m| m["content"].as_str().map_or(0, str::len))
        .sum();
    let prompt_tokens = (prompt_chars / 4) as u64 + 7;
    let completion_tokens = 5 + answer.text.len() as u64 / 4 + 12 * answer.calls.len() as u64;
    {
        let mut s = st.served.lock().unwrap();
        s.calls += 1;
        s.prompt_tokens += prompt_tokens;
        s.completion_tokens += completion_tokens;
    }
    let calls: Vec<Value> = answer
        .calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| json!({"id": format!("call_{}_{i}", turn.turn), "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
        .collect();
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let mut message = json!({"role": "assistant", "content": answer.text});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Json(json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    }))
}

/// Starts the server on 127.0.0.1 (an ephemeral port) with a policy.
pub async fn start(policy: impl Fn(&Turn) -> Answer + Send + Sync + 'static) -> MockModel {
    let served = Arc::new(Mutex::new(Served::default()));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let peers = Arc::new(Mutex::new(HashSet::new()));
    let st = AppState {
        policy: Arc::new(policy),
        served: served.clone(),
        requests: requests.clone(),
        peers: peers.clone(),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(st);
    let (origin, task) = serve(app).await;
    MockModel {
        base_url: format!("{origin}/v1"),
        served,
        requests,
        peers,
        _task: task,
    }
}

/// Serves `app` on an ephemeral port of 127.0.0.1; returns `http://127.0.0.1:PORT` and the task.
/// Handlers may ask for the client's address (`ConnectInfo<SocketAddr>`).
pub async fn serve(app: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (format!("http://{addr}"), task)
}

/// A scripted endpoint's memory: the requests it received (headers and JSON body), and the
/// replies it has still to give, in order.
pub struct Script<R> {
    received: Arc<Mutex<Vec<(axum::http::HeaderMap, Value)>>>,
    replies: Arc<Mutex<std::collections::VecDeque<R>>>,
}

impl<R> Clone for Script<R> {
    fn clone(&self) -> Self {
        Script {
            received: self.received.clone(),
            replies: self.replies.clone(),
        }
    }
}

impl<R> Script<R> {
    pub fn new(replies: Vec<R>) -> Self {
        Script {
            received: Arc::default(),
            replies: Arc::new(Mutex::new(replies.into())),
        }
    }

    /// Records a request; the next reply, if one is left.
    pub fn next(&self, headers: axum::http::HeaderMap, body: &[u8]) -> Option<R> {
        let json = serde_json::from_slice(body).unwrap_or(Value::Null);
        self.received.lock().unwrap().push((headers, json));
        self.replies.lock().unwrap().pop_front()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    pub fn headers(&self, i: usize) -> axum::http::HeaderMap {
        self.received.lock().unwrap()[i].0.clone()
    }
}

/// The nlah binary, talking to the model at `base_url`, with none of the caller's model settings.
pub fn nlah(base_url: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nlah"));
    cmd.env("OPENAI_BASE_URL", base_url)
        .env_remove("OPENAI_API_KEY")
        .env_remove("NLAH_MODEL")
        .env_remove("NLAH_PRICES")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs `cmd` to the end off the async workers (the mock model answers on them).
pub async fn output(mut cmd: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("nlah runs"))
        .await
        .expect("join")
}

/// `nlah ablate tests/fixtures/mini TASKS --module reviewer --seeds 2 --model openai:mock-1`:
/// two variants, two seeds per task; the caller adds the rest.
pub fn ablate_design(base_url: &str, tasks: &str) -> std::process::Command {
    let mut cmd = nlah(base_url);
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

/// [`ablate_design`] with `--retries 1 --json`: what most suites run.
pub fn ablate_mini(base_url: &str, tasks: &str) -> std::process::Command {
    let mut cmd = ablate_design(base_url, tasks);
    cmd.args(["--retries", "1", "--json"]);
    cmd
}

/// A chat request for `model` with these messages and nothing else set.
pub fn chat_request(model: &str, messages: Vec<nlah::model::Message>) -> nlah::model::ChatRequest {
    nlah::model::ChatRequest {
        model: model.into(),
        messages,
        tools: vec![],
        tool_choice: nlah::model::ToolChoice::Auto,
        max_tokens: None,
        temperature: None,
        seed: None,
        trace: None,
    }
}

/// A diligent agent: produces every artifact its stage asks for, gives the verdict/ranking/
/// choice its role needs, then reports `status: done`.
pub fn diligent(t: &Turn) -> Answer {
    let own = format!("children/{}/RESPONSE.md", t.child);
    let produces: Vec<String> = t
        .task
        .lines()
        .find(|l| l.starts_with("- You must produce"))
        .map(|l| {
            l.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let step = t.turn;
    if step < produces.len() {
        let p = &produces[step];
        return Answer::write(
            p,
            &format!("Work of {} for {}: see `TASK.md`.\n", t.child, p),
        );
    }
    if step == produces.len() {
        let mut head = String::from("status: done\n");
        if t.task.contains("# Your job: verify") || t.task.contains("`verdict: pass`") {
            head.push_str("verdict: pass\n");
        }
        if t.task.contains("# Your job: rank") {
            let ids: Vec<&str> = t
                .task
                .lines()
                .filter_map(|l| l.strip_prefix("## "))
                .filter(|l| l.contains("-c"))
                .collect();
            head.push_str(&format!(
                "ranking: {}\n",
                ids.iter().rev().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if t.task.contains("# Your job: choose what happens next") {
            head.push_str("next: finish\n");
        }
        head.push_str("\nDone; evidence in `TASK.md`.\n");
        return Answer::write(&own, &head);
    }
    Answer::text("Finished.")
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub ws: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ran {
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
    pub fn story(&self) -> Vec<String> {
        let repo = git2::Repository::open(&self.ws).expect("a git workspace");
        let mut walk = repo.revwalk().unwrap();
        walk.push_head().unwrap();
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
            .unwrap();
        walk.map(|o| {
            repo.find_commit(o.unwrap())
                .unwrap()
                .summary()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
    }
}

/// Runs the CLI in a fresh temporary workspace with the given model base URL.
pub async fn nlah_run(base_url: &str, args: &[&str]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let mut cmd = nlah(base_url);
    cmd.arg("run")
        .args(args)
        .arg("--workspace")
        .arg(&ws)
        .arg("--retries")
        .arg("2");
    let out = output(cmd).await;
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        ws,
        _dir: dir,
    }
}

pub fn exists(ws: &Path, rel: &str) -> bool {
    ws.join(rel).exists()
}

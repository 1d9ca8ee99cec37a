//! A scripted model behind a real OpenAI-compatible HTTP server on 127.0.0.1.
//!
//! The engine talks to it exactly as to a provider; the test's `policy` decides each answer
//! from what the child's request says (its id and role are in its TASK.md), so tests can
//! drive every path of the runtime deterministically.

use std::collections::HashSet;
use std::net::SocketAddr;
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
pub(crate) async fn start(policy: impl Fn(&Turn) -> Answer + Send + Sync + 'static) -> MockModel {
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
    let (origin, task) = super::serve(app).await;
    MockModel {
        base_url: format!("{origin}/v1"),
        served,
        requests,
        peers,
        _task: task,
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

//! An MCP client over the stdio transport: the server is a confined `bash -c COMMAND` child, and
//! the two speak JSON-RPC 2.0 as one JSON object per line on the server's stdin and stdout.
//!
//! The client initializes (protocol `2025-06-18`), lists the server's tools (following
//! `nextCursor`), and exposes each as a model tool named `<server>__<tool>`. Every request has a
//! time limit; the server's stderr is drained and its last few KiB quoted when the server fails.
//! Requests the server sends to the client are answered: `ping` with `{}`, anything else with
//! "method not found" (this client offers no sampling, roots or elicitation).

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::tools::{DEFAULT_OUTPUT_CAP, ToolOutput};
use crate::model::ToolSpec;
use crate::sandbox::exec::Capture;
use crate::sandbox::spawn::{Child, Launch};
use crate::sandbox::{Confinement, Enforcement, EnvAllowList, Scratch};

/// The MCP revision this client speaks.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// Time limit of one request unless the options say otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of the server's stderr kept for error messages.
const STDERR_KEEP: usize = 8 * 1024;
/// Model tool names: `^[a-zA-Z0-9_-]{1,64}$` (OpenAI's rule, the strictest).
const MAX_TOOL_NAME: usize = 64;
/// Pages of `tools/list` followed at most (a server that loops on cursors is cut off).
const MAX_PAGES: usize = 100;

/// Why talking to an MCP server failed.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("MCP server `{server}`: cannot start `{command}`: {message}")]
    Spawn {
        server: String,
        command: String,
        message: String,
    },
    #[error("MCP server `{server}` exited ({status}) while answering {method}{}", quote_stderr(.stderr))]
    Exited {
        server: String,
        method: String,
        status: String,
        stderr: String,
    },
    #[error("MCP server `{server}` did not answer {method} within {secs} s{}", quote_stderr(.stderr))]
    Timeout {
        server: String,
        method: String,
        secs: u64,
        stderr: String,
    },
    #[error("MCP server `{server}` answered {method} with error {code}: {message}")]
    Rpc {
        server: String,
        method: String,
        code: i64,
        message: String,
    },
    #[error("MCP server `{server}`: {message}")]
    Protocol { server: String, message: String },
    #[error("MCP server `{server}` has no tool {tool:?} (it has: {available})")]
    UnknownTool {
        server: String,
        tool: String,
        available: String,
    },
}

fn quote_stderr(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        "; it wrote nothing to stderr".to_string()
    } else {
        format!("; its stderr ends with:\n{}", stderr.trim_end())
    }
}

/// How to run a server.
#[derive(Debug, Clone)]
pub struct McpOptions {
    pub request_timeout: Duration,
    /// Bytes of a tool result kept (head and tail).
    pub output_cap: usize,
    /// Parent variables the server may inherit (secrets are refused by [`EnvAllowList`]).
    pub allow_env: EnvAllowList,
}

impl Default for McpOptions {
    fn default() -> Self {
        McpOptions {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            output_cap: DEFAULT_OUTPUT_CAP,
            allow_env: EnvAllowList::default(),
        }
    }
}

/// One tool of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    /// The server's name for it.
    pub name: String,
    /// The model's name for it: `<server>__<tool>`, sanitised and unique.
    pub exposed: String,
    pub description: String,
    pub input_schema: std::sync::Arc<Value>,
}

/// A request's outcome as the reader task delivers it.
enum Reply {
    Result(Value),
    Error { code: i64, message: String },
    Closed,
}

/// What the reader tasks and the client share.
struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    /// The server's stdout ended: no reply will come.
    closed: AtomicBool,
    stderr: Mutex<VecDeque<u8>>,
}

impl Shared {
    fn push_stderr(&self, data: &[u8]) {
        if let Ok(mut buf) = self.stderr.lock() {
            buf.extend(data);
            let over = buf.len().saturating_sub(STDERR_KEEP);
            buf.drain(..over);
        }
    }

    fn stderr_text(&self) -> String {
        match self.stderr.lock() {
            Ok(buf) => {
                let bytes: Vec<u8> = buf.iter().copied().collect();
                String::from_utf8_lossy(crate::sandbox::exec::trim_utf8_start(&bytes)).into_owned()
            }
            Err(_) => String::new(),
        }
    }
}

type Stdin = Arc<tokio::sync::Mutex<Option<pipe::Sender>>>;

/// A running MCP server.
pub struct McpClient {
    name: String,
    shared: Arc<Shared>,
    stdin: Stdin,
    child: tokio::sync::Mutex<Option<Child>>,
    /// The server's process group (its pid: confined commands start a new session).
    pgid: Option<i32>,
    stdout_task: JoinHandle<()>,
    stderr_task: Mutex<Option<JoinHandle<()>>>,
    next_id: AtomicU64,
    options: McpOptions,
    tools: Vec<McpTool>,
    server_info: Value,
    /// The `capabilities` of the initialize result.
    capabilities: Value,
    protocol_version: String,
    instructions: Option<String>,
    enforcement: Enforcement,
}

impl std::fmt::Debug for McpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpClient")
            .field("name", &self.name)
            .field("tools", &self.tools.len())
            .field("protocol_version", &self.protocol_version)
            .finish_non_exhaustive()
    }
}

impl McpClient {
    /// Starts `bash -c command_line` in `cwd` (clean environment, confined), initializes it and
    /// lists its tools.
    pub async fn spawn(
        name: &str,
        command_line: &str,
        cwd: &Path,
        confinement: &Confinement,
    ) -> Result<McpClient, McpError> {
        Self::spawn_with(name, command_line, cwd, confinement, McpOptions::default()).await
    }

    pub async fn spawn_with(
        name: &str,
        command_line: &str,
        cwd: &Path,
        confinement: &Confinement,
        options: McpOptions,
    ) -> Result<McpClient, McpError> {
        let spawn_err = |message: String| McpError::Spawn {
            server: name.to_string(),
            command: command_line.to_string(),
            message,
        };
        let scratch = Scratch::prepare(cwd).map_err(|e| spawn_err(e.to_string()))?;
        let pipes =
            || -> std::io::Result<_> { Ok((std::io::pipe()?, std::io::pipe()?, std::io::pipe()?)) };
        let ((in_r, in_w), (out_r, out_w), (err_r, err_w)) =
            pipes().map_err(|e| spawn_err(format!("cannot create its pipes: {e}")))?;
        // Started as every confined command is (no copy of nlah's address space); killed when
        // dropped, like the child's shell.
        let launch = Launch {
            program: "bash",
            args: vec!["-c".into(), command_line.into()],
            cwd,
            env: crate::sandbox::clean_vars(&scratch.home, &scratch.tmp, &options.allow_env),
            output: OwnedFd::from(out_w),
            error: Some(OwnedFd::from(err_w)),
            input: Some(OwnedFd::from(in_r)),
            prelude: None,
        };
        let (child, enforcement) = crate::sandbox::spawn::spawn(launch, confinement).await;
        let child = child.map_err(|e| spawn_err(e.to_string()))?;
        let pgid = child.id().and_then(|p| i32::try_from(p).ok());
        let ends = || -> std::io::Result<_> {
            Ok((
                pipe::Sender::from_owned_fd(OwnedFd::from(in_w))?,
                pipe::Receiver::from_owned_fd(OwnedFd::from(out_r))?,
                pipe::Receiver::from_owned_fd(OwnedFd::from(err_r))?,
            ))
        };
        let (stdin, stdout, stderr) =
            ends().map_err(|e| spawn_err(format!("cannot use its pipes: {e}")))?;

        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            stderr: Mutex::new(VecDeque::new()),
        });
        let stdin: Stdin = Arc::new(tokio::sync::Mutex::new(Some(stdin)));
        let stdout_task =
            tokio::spawn(read_stdout(stdout, Arc::clone(&shared), Arc::clone(&stdin)));
        let stderr_task = tokio::spawn(read_stderr(stderr, Arc::clone(&shared)));

        let mut client = McpClient {
            name: name.to_string(),
            shared,
            stdin,
            child: tokio::sync::Mutex::new(Some(child)),
            pgid,
            stdout_task,
            stderr_task: Mutex::new(Some(stderr_task)),
            next_id: AtomicU64::new(1),
            options,
            tools: Vec::new(),
            server_info: Value::Null,
            capabilities: Value::Null,
            protocol_version: String::new(),
            instructions: None,
            enforcement,
        };
        // On failure the client is dropped, which kills the server's process group.
        client.initialize().await?;
        client.tools = client.list_tools().await?;
        Ok(client)
    }

    async fn initialize(&mut self) -> Result<(), McpError> {
        let init = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "nlah", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
            .await?;
        self.protocol_version = init
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| self.protocol_error("the initialize result has no protocolVersion"))?
            .to_string();
        self.server_info = init.get("serverInfo").cloned().unwrap_or(Value::Null);
        self.capabilities = init.get("capabilities").cloned().unwrap_or(Value::Null);
        self.instructions = init
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_string);
        self.notify("notifications/initialized", json!({})).await
    }

    async fn list_tools(&self) -> Result<Vec<McpTool>, McpError> {
        let mut raw = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request("tools/list", params).await?;
            let tools = page
                .get("tools")
                .and_then(Value::as_array)
                .ok_or_else(|| self.protocol_error("the tools/list result has no tools array"))?;
            raw.extend(tools.iter().cloned());
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) if seen.insert(next.to_string()) => cursor = Some(next.to_string()),
                Some(next) => {
                    return Err(self.protocol_error(&format!("tools/list repeats cursor {next:?}")));
                }
                None => break,
            }
        }
        let mut taken = HashSet::new();
        let mut out = Vec::new();
        for t in raw {
            let Some(tool) = t.get("name").and_then(Value::as_str) else {
                return Err(self.protocol_error("a tool in tools/list has no name"));
            };
            let exposed = exposed_name(&self.name, tool, &taken);
            taken.insert(exposed.clone());
            let description = t
                .get("description")
                .and_then(Value::as_str)
                .or_else(|| t.get("title").and_then(Value::as_str))
                .map(str::to_string)
                .unwrap_or_else(|| format!("Tool {tool} of the MCP server {}.", self.name));
            out.push(McpTool {
                name: tool.to_string(),
                exposed,
                description,
                input_schema: object_schema(t.get("inputSchema")).into(),
            });
        }
        Ok(out)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tools(&self) -> &[McpTool] {
        &self.tools
    }

    /// The `serverInfo` of the initialize result.
    pub fn server_info(&self) -> &Value {
        &self.server_info
    }

    /// The `capabilities` the server declared (`experimental` carries conventions such as
    /// docs/ENVIRONMENTS.md's `nlah/env`).
    pub fn capabilities(&self) -> &Value {
        &self.capabilities
    }

    /// Changes the time limit of later requests (an environment allows its start more time than
    /// its steps).
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.options.request_timeout = timeout;
    }

    /// Sends a request outside the tool calls (a convention's method such as `env/reset`).
    pub async fn request_value(&self, method: &str, params: Value) -> Result<Value, McpError> {
        self.request(method, params).await
    }

    /// The protocol version the server chose.
    pub fn protocol_version(&self) -> &str {
        &self.protocol_version
    }

    /// The server's usage instructions, if it gave any.
    pub fn instructions(&self) -> Option<&str> {
        self.instructions.as_deref()
    }

    /// What confined the server.
    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }

    /// The last few KiB the server wrote to stderr (and non-protocol lines from its stdout).
    pub fn stderr_tail(&self) -> String {
        self.shared.stderr_text()
    }

    /// The tools as the model sees them: `<server>__<tool>` with the server's input schema.
    pub fn tool_specs(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .map(|t| ToolSpec {
                name: t.exposed.clone(),
                description: t.description.clone(),
                parameters: t.input_schema.clone(),
            })
            .collect()
    }

    /// Calls a tool, named as exposed (`<server>__<tool>`) or as the server names it. Errors the
    /// model caused (the tool's `isError`, JSON-RPC errors such as invalid arguments) come back
    /// as `Ok` outputs with `is_error`; `Err` means the server itself failed.
    pub async fn call(&self, tool: &str, arguments: Value) -> Result<ToolOutput, McpError> {
        self.call_with_result(tool, arguments)
            .await
            .map(|(out, _)| out)
    }

    /// [`McpClient::call`], also returning the raw result (`Null` after a JSON-RPC error), whose
    /// `_meta` and `structuredContent` carry what conventions beyond MCP add.
    pub async fn call_with_result(
        &self,
        tool: &str,
        arguments: Value,
    ) -> Result<(ToolOutput, Value), McpError> {
        let Some(t) = self
            .tools
            .iter()
            .find(|t| t.exposed == tool)
            .or_else(|| self.tools.iter().find(|t| t.name == tool))
        else {
            return Err(McpError::UnknownTool {
                server: self.name.clone(),
                tool: tool.to_string(),
                available: self
                    .tools
                    .iter()
                    .map(|t| t.exposed.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let arguments = if arguments.is_null() {
            json!({})
        } else {
            arguments
        };
        let result = match self
            .request(
                "tools/call",
                json!({"name": t.name, "arguments": arguments}),
            )
            .await
        {
            Ok(r) => r,
            Err(McpError::Rpc { code, message, .. }) => {
                return Ok((
                    ToolOutput::error(format!("{} failed: MCP error {code}: {message}", t.exposed)),
                    Value::Null,
                ));
            }
            Err(e) => return Err(e),
        };
        Ok((self.render_result(&result), result))
    }

    /// Joins the text items of a `tools/call` result; other items become short notes.
    fn render_result(&self, result: &Value) -> ToolOutput {
        let mut parts: Vec<String> = Vec::new();
        for item in result
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = item.get("type").and_then(Value::as_str).unwrap_or("?");
            let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("");
            parts.push(match kind {
                "text" => s("text").to_string(),
                "image" | "audio" => format!(
                    "[{kind} content omitted: {}, {} bytes of base64]",
                    s("mimeType"),
                    s("data").len()
                ),
                "resource_link" => format!("[resource link: {} {}]", s("uri"), s("name")),
                "resource" => {
                    let r = item.get("resource").cloned().unwrap_or(Value::Null);
                    match r.get("text").and_then(Value::as_str) {
                        Some(text) => text.to_string(),
                        None => format!(
                            "[binary resource omitted: {}]",
                            r.get("uri").and_then(Value::as_str).unwrap_or("?")
                        ),
                    }
                }
                other => format!("[{other} content omitted]"),
            });
        }
        if parts.is_empty()
            && let Some(structured) = result.get("structuredContent")
        {
            parts.push(structured.to_string());
        }
        let text = parts.join("\n");
        let mut cap = Capture::new(self.options.output_cap);
        cap.push(text.as_bytes());
        let (content, _, omitted) = cap.finish();
        ToolOutput {
            content,
            is_error: result
                .get("isError")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            exit_code: None,
            truncated: omitted > 0,
        }
    }

    /// Closes the server's stdin, gives it a moment to exit, then kills its process group.
    pub async fn shutdown(self) {
        self.stdin.lock().await.take();
        let child = self.child.lock().await.take();
        if let Some(mut child) = child {
            let waited = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            if waited.is_err() {
                self.kill_group();
                let _ = child.wait().await;
            }
        }
        // Stray children of the server go too; Drop does the rest.
    }

    fn kill_group(&self) {
        if let Some(pgid) = self.pgid.filter(|p| *p > 1) {
            // SAFETY: killpg has no memory-safety preconditions; ESRCH (group gone) is fine.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }

    fn protocol_error(&self, message: &str) -> McpError {
        McpError::Protocol {
            server: self.name.clone(),
            message: message.to_string(),
        }
    }

    async fn send(&self, msg: &Value) -> Result<(), ()> {
        let mut line = msg.to_string();
        line.push('\n');
        let mut guard = self.stdin.lock().await;
        let Some(stdin) = guard.as_mut() else {
            return Err(());
        };
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            return Err(());
        }
        Ok(())
    }

    async fn notify(&self, method: &str, params: Value) -> Result<(), McpError> {
        let msg = json!({"jsonrpc": "2.0", "method": method, "params": params});
        match self.send(&msg).await {
            Ok(()) => Ok(()),
            Err(()) => Err(self.exited(method).await),
        }
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, McpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let registered = match self.shared.pending.lock() {
            // Checked under the lock the reader takes to close, so no request waits forever.
            Ok(mut pending) if !self.shared.closed.load(Ordering::SeqCst) => {
                pending.insert(id, tx);
                true
            }
            _ => false,
        };
        if !registered {
            return Err(self.exited(method).await);
        }
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if self.send(&msg).await.is_err() {
            self.forget(id);
            return Err(self.exited(method).await);
        }
        let timeout = self.options.request_timeout;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Reply::Result(v))) => Ok(v),
            Ok(Ok(Reply::Error { code, message })) => Err(McpError::Rpc {
                server: self.name.clone(),
                method: method.to_string(),
                code,
                message,
            }),
            Ok(Ok(Reply::Closed)) | Ok(Err(_)) => Err(self.exited(method).await),
            Err(_) => {
                self.forget(id);
                let cancel = json!({"requestId": id, "reason": format!("timed out after {} s", timeout.as_secs())});
                let _ = self.notify("notifications/cancelled", cancel).await;
                Err(McpError::Timeout {
                    server: self.name.clone(),
                    method: method.to_string(),
                    secs: timeout.as_secs(),
                    stderr: self.shared.stderr_text(),
                })
            }
        }
    }

    fn forget(&self, id: u64) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.remove(&id);
        }
    }

    /// The error for a server that went away: its exit status and the end of its stderr, both
    /// awaited briefly since they trail the closed stdout.
    async fn exited(&self, method: &str) -> McpError {
        let task = self.stderr_task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
        let status = match self.child.lock().await.as_mut() {
            Some(child) => match tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
                Ok(Ok(s)) => s.to_string(),
                Ok(Err(e)) => format!("status unknown: {e}"),
                Err(_) => "still running, stdout closed".to_string(),
            },
            None => "shut down".to_string(),
        };
        McpError::Exited {
            server: self.name.clone(),
            method: method.to_string(),
            status,
            stderr: self.shared.stderr_text(),
        }
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        self.stdout_task.abort();
        self.kill_group();
    }
}

async fn read_stdout(stdout: pipe::Receiver, shared: Arc<Shared>, stdin: Stdin) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            // Servers must not print anything else on stdout; keep it for diagnosis.
            shared.push_stderr(format!("[stdout] {line}\n").as_bytes());
            continue;
        };
        let method = msg.get("method").and_then(Value::as_str);
        match (method, msg.get("id")) {
            (None, Some(id)) => {
                let Some(id) = id.as_u64() else { continue };
                let reply = match msg.get("error") {
                    Some(err) => Reply::Error {
                        code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                        message: err
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("(no message)")
                            .to_string(),
                    },
                    None => Reply::Result(msg.get("result").cloned().unwrap_or(Value::Null)),
                };
                let waiter = shared.pending.lock().ok().and_then(|mut p| p.remove(&id));
                if let Some(tx) = waiter {
                    let _ = tx.send(reply);
                }
            }
            (Some(method), Some(id)) => {
                let answer = if method == "ping" {
                    json!({"jsonrpc": "2.0", "id": id, "result": {}})
                } else {
                    json!({"jsonrpc": "2.0", "id": id, "error": {
                        "code": -32601, "message": format!("method not found: {method}")}})
                };
                let mut text = answer.to_string();
                text.push('\n');
                if let Some(w) = stdin.lock().await.as_mut() {
                    let _ = w.write_all(text.as_bytes()).await;
                    let _ = w.flush().await;
                }
            }
            // Notifications (progress, logging, list changes) need no answer.
            _ => {}
        }
    }
    if let Ok(mut pending) = shared.pending.lock() {
        shared.closed.store(true, Ordering::SeqCst);
        for (_, tx) in pending.drain() {
            let _ = tx.send(Reply::Closed);
        }
    }
}

async fn read_stderr(mut stderr: pipe::Receiver, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        shared.push_stderr(&buf[..n]);
    }
}

/// A server's input schema as a model accepts it: an object schema (`{"type": "object"}` at
/// least).
fn object_schema(schema: Option<&Value>) -> Value {
    match schema {
        Some(Value::Object(m)) => {
            let mut m = m.clone();
            m.entry("type").or_insert_with(|| json!("object"));
            if m.get("type") == Some(&json!("object")) {
                m.entry("properties").or_insert_with(|| json!({}));
            }
            Value::Object(m)
        }
        _ => json!({"type": "object", "properties": {}}),
    }
}

fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() { "_".to_string() } else { out }
}

/// FNV-1a: a stable short hash to keep cut names distinct.
fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// `<server>__<tool>`, sanitised to `[a-zA-Z0-9_-]`, at most 64 characters (long names are cut
/// and given a hash), distinct from the names in `taken`.
pub fn exposed_name(server: &str, tool: &str, taken: &HashSet<String>) -> String {
    let mut base = format!("{}__{}", sanitize(server), sanitize(tool));
    if base.len() > MAX_TOOL_NAME {
        let tag = format!("_{:08x}", fnv(&format!("{server}\u{0}{tool}")));
        base.truncate(MAX_TOOL_NAME - tag.len());
        base.push_str(&tag);
    }
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        let suffix = format!("_{n}");
        let mut b = base.clone();
        b.truncate(MAX_TOOL_NAME - suffix.len());
        name = b + &suffix;
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised_bounded_and_distinct() {
        let mut taken = HashSet::new();
        let a = exposed_name("my server", "do.thing", &taken);
        assert_eq!(a, "my_server__do_thing");
        taken.insert(a);
        assert_eq!(
            exposed_name("my server", "do thing", &taken),
            "my_server__do_thing_2"
        );
        let long = exposed_name("s", &"x".repeat(100), &HashSet::new());
        assert_eq!(long.len(), 64);
        let re = regex::Regex::new("^[a-zA-Z0-9_-]{1,64}$").ok();
        assert!(re.is_some_and(|r| r.is_match(&long)));
    }

    #[test]
    fn schemas_become_objects() {
        assert_eq!(
            object_schema(None),
            json!({"type": "object", "properties": {}})
        );
        assert_eq!(
            object_schema(Some(&json!({"properties": {"a": {"type": "string"}}}))),
            json!({"type": "object", "properties": {"a": {"type": "string"}}})
        );
    }
}

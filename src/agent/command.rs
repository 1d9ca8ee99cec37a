//! The `command:` backend: an external agent CLI (`codex exec --json -`, `claude -p …`, any
//! script) runs one whole child. It starts in the child's folder with the child's TASK.md on
//! standard input and must leave RESPONSE.md there.
//!
//! Placeholders in the template: `{task_file}`, `{response_file}`, `{child_dir}`,
//! `{workspace}` (absolute paths). The same are in the environment as `NLAH_TASK_FILE`,
//! `NLAH_RESPONSE_FILE`, `NLAH_CHILD_DIR`, `NLAH_WORKSPACE`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::record::Usage;
use crate::sandbox;

pub struct CommandChild<'a> {
    pub template: &'a str,
    pub workspace: &'a Path,
    pub child_dir: &'a Path,
    pub task_text: &'a str,
    pub timeout: Duration,
    /// Environment variables passed through on purpose (an agent CLI needs its own API key;
    /// nothing else of the parent's environment reaches it).
    pub pass_env: &'a [String],
}

#[derive(Debug, Default)]
pub struct CommandOutcome {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub usage: Usage,
    pub tool_calls: u64,
    pub stdout: PathBuf,
}

fn fill(template: &str, c: &CommandChild<'_>) -> String {
    let q = |p: &Path| shell_quote(&p.display().to_string());
    template
        .replace("{task_file}", &q(&c.child_dir.join("TASK.md")))
        .replace("{response_file}", &q(&c.child_dir.join("RESPONSE.md")))
        .replace("{child_dir}", &q(c.child_dir))
        .replace("{workspace}", &q(c.workspace))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs the agent CLI to completion (or its time limit) and reads what usage it reported.
pub async fn run(c: &CommandChild<'_>) -> std::io::Result<CommandOutcome> {
    let stdout_path = c.child_dir.join("transcript.jsonl");
    let stderr_path = c.child_dir.join("stderr.log");
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg("-c")
        .arg(fill(c.template, c))
        .current_dir(c.child_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(std::fs::File::create(&stdout_path)?))
        .stderr(Stdio::from(std::fs::File::create(&stderr_path)?))
        .kill_on_drop(true)
        .process_group(0);
    let home = sandbox::Scratch::prepare(c.workspace)
        .map(|s| s.home)
        .unwrap_or_else(|_| c.workspace.join(".tmp"));
    sandbox::clean_env(&mut cmd, &home);
    for var in c.pass_env {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd.env("NLAH_WORKSPACE", c.workspace)
        .env("NLAH_CHILD_DIR", c.child_dir)
        .env("NLAH_TASK_FILE", c.child_dir.join("TASK.md"))
        .env("NLAH_RESPONSE_FILE", c.child_dir.join("RESPONSE.md"));
    let mut child = cmd.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // An agent that does not read its input must not block the run.
        let _ = stdin.write_all(c.task_text.as_bytes()).await;
    }
    let pid = child.id();
    let (exit_code, timed_out) = match tokio::time::timeout(c.timeout, child.wait()).await {
        Ok(status) => (status?.code(), false),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: signalling the process group we created; no memory is touched.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = child.wait().await;
            (None, true)
        }
    };
    let text = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let (usage, tool_calls) = parse_usage(&text);
    Ok(CommandOutcome {
        exit_code,
        timed_out,
        usage,
        tool_calls,
        stdout: stdout_path,
    })
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Usage an agent CLI reported on its JSON output: codex `exec --json` events
/// (`turn.completed` usage is cumulative per thread: the last one counts; tool-like items are
/// counted) and Claude Code's `--output-format json|stream-json` result object.
pub fn parse_usage(stdout: &str) -> (Usage, u64) {
    let mut usage = Usage::default();
    let mut turns = 0;
    let mut tools = 0;
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        match v.get("type").and_then(Value::as_str) {
            Some("turn.completed") => {
                turns += 1;
                if let Some(u) = v.get("usage") {
                    usage.input_tokens = num(u, "input_tokens");
                    usage.cached_input_tokens = num(u, "cached_input_tokens");
                    usage.output_tokens = num(u, "output_tokens");
                    usage.reasoning_tokens = num(u, "reasoning_output_tokens");
                }
            }
            Some("item.completed") => {
                let kind = v
                    .pointer("/item/type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if matches!(
                    kind,
                    "command_execution" | "file_change" | "mcp_tool_call" | "web_search"
                ) {
                    tools += 1;
                }
            }
            Some("result") => {
                if let Some(u) = v.get("usage") {
                    let cache_read = num(u, "cache_read_input_tokens");
                    usage.input_tokens =
                        num(u, "input_tokens") + num(u, "cache_creation_input_tokens") + cache_read;
                    usage.cached_input_tokens = cache_read;
                    usage.output_tokens = num(u, "output_tokens");
                }
                usage.cost_usd = v
                    .get("total_cost_usd")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                turns = turns.max(num(&v, "num_turns"));
            }
            Some("assistant") => {
                let content = v.pointer("/message/content").and_then(Value::as_array);
                tools += content.map_or(0, |c| {
                    c.iter()
                        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
                        .count() as u64
                });
            }
            _ => {}
        }
    }
    usage.calls = turns;
    (usage, tools)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_events() {
        let out = r#"{"type":"thread.started","thread_id":"t"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"1","type":"command_execution","command":"ls","exit_code":0}}
{"type":"item.completed","item":{"id":"2","type":"agent_message","text":"done"}}
{"type":"turn.completed","usage":{"input_tokens":1200,"cached_input_tokens":200,"output_tokens":80}}
not json
{"type":"turn.completed","usage":{"input_tokens":2500,"cached_input_tokens":900,"output_tokens":150,"reasoning_output_tokens":40}}"#;
        let (u, tools) = parse_usage(out);
        assert_eq!(
            (
                u.input_tokens,
                u.cached_input_tokens,
                u.output_tokens,
                u.reasoning_tokens
            ),
            (2500, 900, 150, 40)
        );
        assert_eq!((u.calls, tools), (2, 1));
    }

    #[test]
    fn claude_result() {
        let out = r#"{"type":"result","num_turns":3,"total_cost_usd":0.0123,"usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":50}}"#;
        let (u, _) = parse_usage(out);
        assert_eq!(
            (
                u.input_tokens,
                u.cached_input_tokens,
                u.output_tokens,
                u.calls
            ),
            (1110, 1000, 50, 3)
        );
    }
}

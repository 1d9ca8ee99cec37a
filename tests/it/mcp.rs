//! The MCP stdio client against a real server (tests/fixtures/mcp/echo_server.py, plain Python).

use std::path::PathBuf;
use std::time::Duration;

use nlah::agent::mcp::{McpClient, McpError, McpOptions};
use nlah::sandbox::Confinement;
use serde_json::json;

fn server_command() -> String {
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "mcp",
        "echo_server.py",
    ]
    .iter()
    .collect();
    format!("exec python3 '{}'", script.display())
}

fn workspace() -> (tempfile::TempDir, Confinement) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Confinement::workspace(dir.path());
    // The servers' scripts are the fixtures: readable, as a harness folder is to its servers.
    c.readable
        .push(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"));
    (dir, c)
}

#[tokio::test]
async fn lists_tools_across_pages_and_calls_them() {
    let (ws, conf) = workspace();
    let client = McpClient::spawn("echo", &server_command(), ws.path(), &conf)
        .await
        .expect("server starts");
    assert_eq!(client.protocol_version(), "2025-06-18");
    assert_eq!(client.server_info()["name"], "echo-server");

    let names: Vec<String> = client.tool_specs().into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "echo__echo",
            "echo__add",
            "echo__fail",
            "echo__slow",
            "echo__picture"
        ]
    );
    let echo = &client.tool_specs()[0];
    assert_eq!(echo.parameters["required"], json!(["text"]));
    assert_eq!(echo.description, "Return the given text unchanged.");

    let out = client
        .call("echo__echo", json!({"text": "hello, world"}))
        .await
        .expect("echo");
    assert_eq!(out.content, "hello, world");
    assert!(!out.is_error);

    // The server's own name works too.
    let out = client
        .call("add", json!({"a": 2, "b": 40}))
        .await
        .expect("add");
    assert_eq!(out.content, "42");
    assert!(!out.is_error);

    let out = client
        .call("echo__picture", json!({}))
        .await
        .expect("picture");
    assert!(
        out.content
            .starts_with("a red dot\n[image content omitted: image/png"),
        "{}",
        out.content
    );

    client.shutdown().await;
}

#[tokio::test]
async fn failures_come_back_as_error_outputs() {
    let (ws, conf) = workspace();
    let client = McpClient::spawn("echo", &server_command(), ws.path(), &conf)
        .await
        .expect("start");

    let out = client
        .call("echo__fail", json!({}))
        .await
        .expect("fail answers");
    assert!(out.is_error);
    assert_eq!(out.content, "this tool always fails");

    // A JSON-RPC error caused by the arguments is the model's to fix: an error output.
    let out = client
        .call("echo__add", json!({"a": "two"}))
        .await
        .expect("rpc error is an output");
    assert!(out.is_error);
    assert!(
        out.content.contains("-32602") && out.content.contains("add needs numbers"),
        "{}",
        out.content
    );

    let err = client
        .call("echo__nope", json!({}))
        .await
        .expect_err("unknown tool");
    assert!(matches!(err, McpError::UnknownTool { .. }), "{err}");
    assert!(err.to_string().contains("echo__echo"), "{err}");

    // The server logs to stderr; the client keeps the tail.
    assert!(
        client.stderr_tail().contains("echo_server: call fail"),
        "{}",
        client.stderr_tail()
    );
    client.shutdown().await;
}

#[tokio::test]
async fn requests_time_out() {
    let (ws, conf) = workspace();
    let options = McpOptions {
        request_timeout: Duration::from_millis(700),
        ..McpOptions::default()
    };
    let client = McpClient::spawn_with("echo", &server_command(), ws.path(), &conf, options)
        .await
        .expect("start");
    let started = std::time::Instant::now();
    let err = client
        .call("echo__slow", json!({"seconds": 10}))
        .await
        .expect_err("times out");
    assert!(matches!(err, McpError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Dropping kills the server (still sleeping) without waiting for it.
    drop(client);
}

#[tokio::test]
async fn a_server_that_exits_at_once_reports_its_stderr() {
    let (ws, conf) = workspace();
    let err = McpClient::spawn(
        "broken",
        "echo 'fatal: no config file found' >&2; exit 3",
        ws.path(),
        &conf,
    )
    .await
    .expect_err("the server exits");
    let msg = err.to_string();
    assert!(matches!(err, McpError::Exited { .. }), "{msg}");
    assert!(msg.contains("fatal: no config file found"), "{msg}");
    assert!(msg.contains("exit status: 3"), "{msg}");
    assert!(msg.contains("initialize"), "{msg}");
}

#[tokio::test]
async fn a_server_that_is_not_found_fails_clearly() {
    let (ws, conf) = workspace();
    let err = McpClient::spawn("ghost", "no-such-mcp-server --stdio", ws.path(), &conf)
        .await
        .expect_err("no such command");
    let msg = err.to_string();
    assert!(msg.contains("command not found"), "{msg}");
}

#[tokio::test]
async fn servers_do_not_inherit_secrets() {
    // The server runs with a clean environment: print it through a tiny inline server.
    let (ws, conf) = workspace();
    let script = r#"exec python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m: continue
    if m["method"] == "initialize":
        r = {"protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {"name": "env"}}
    elif m["method"] == "tools/list":
        r = {"tools": [{"name": "env", "inputSchema": {"type": "object"}}]}
    else:
        r = {"content": [{"type": "text", "text": "\n".join(sorted(os.environ))}]}
    print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}), flush=True)
'"#;
    let client = McpClient::spawn("env", script, ws.path(), &conf)
        .await
        .expect("start");
    let out = client.call("env__env", json!({})).await.expect("env");
    let names: Vec<&str> = out.content.lines().collect();
    assert!(
        names.contains(&"HOME") && names.contains(&"PATH"),
        "{names:?}"
    );
    for n in &names {
        assert!(
            !nlah::sandbox::is_secret_name(n),
            "secret-like variable {n} reached the server"
        );
    }
    client.shutdown().await;
}

//! The built-in tools and the sandbox they run in, in a temporary workspace.

use std::path::Path;
use std::time::{Duration, Instant};

use nlah::agent::tools::{self, ToolContext, ToolOutput};
use nlah::sandbox::{self, Level};

fn context(ws: &Path) -> ToolContext {
    let mut ctx = ToolContext::new(ws, "children/execute-1");
    ctx.shell_timeout = Duration::from_secs(20);
    ctx
}

async fn shell(ctx: &ToolContext, command: &str) -> ToolOutput {
    let args = serde_json::json!({ "command": command }).to_string();
    tools::call(ctx, "shell", &args).await
}

async fn call(ctx: &ToolContext, name: &str, args: serde_json::Value) -> ToolOutput {
    tools::call(ctx, name, &args.to_string()).await
}

#[tokio::test]
async fn shell_captures_output_and_exit_codes() {
    let ws = tempfile::tempdir().expect("tempdir");
    let ctx = context(ws.path());

    let out = shell(&ctx, "echo out; echo err >&2; echo more; exit 3").await;
    assert_eq!(out.content, "out\nerr\nmore\nexit code: 3");
    assert_eq!(out.exit_code, Some(3));
    assert!(out.is_error);
    assert!(!out.truncated);

    // `exit` ended the child's shell; the next call says that it runs in a new one.
    let out = shell(&ctx, "true").await;
    let fresh = if sandbox::session::ShellSession::available(&ctx.confinement) {
        "[a new shell: the working folder and variables of the previous one are gone]\n"
    } else {
        ""
    };
    assert_eq!(out.content, format!("{fresh}(no output)\nexit code: 0"));
    assert!(!out.is_error);

    // The working directory is the workspace; stdin is empty.
    std::fs::write(ws.path().join("marker.txt"), "here").expect("write");
    let out = shell(&ctx, "cat marker.txt; echo; cat; echo read-stdin-done").await;
    assert_eq!(out.content, "here\nread-stdin-done\nexit code: 0");
}

#[tokio::test]
async fn shell_is_killed_at_the_time_limit() {
    let ws = tempfile::tempdir().expect("tempdir");
    let mut ctx = context(ws.path());
    ctx.shell_timeout = Duration::from_secs(1);

    let started = Instant::now();
    let out = shell(
        &ctx,
        // The background job writes its pid as the host sees it (`$!` counts in the command's
        // own PID namespace).
        "echo before; sh -c 'read -r p _ </proc/self/stat; echo $p > bg.pid; exec sleep 30' & \
         sleep 30; echo after",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert!(out.content.starts_with("before\n"), "{}", out.content);
    assert!(
        out.content.contains("[killed after 1 s]"),
        "{}",
        out.content
    );
    assert!(!out.content.contains("after\n"));
    assert!(out.is_error);
    assert_eq!(out.exit_code, None);

    // The whole process group went, the background sleep included.
    let pid = std::fs::read_to_string(ws.path().join("bg.pid")).expect("pid file");
    let proc_dir = format!("/proc/{}", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(&proc_dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(&proc_dir),
        "background process {} survived",
        pid.trim()
    );
}

/// A process that exists and is not a zombie.
fn alive(proc_dir: &str) -> bool {
    std::fs::read_to_string(format!("{proc_dir}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn background_jobs_do_not_hold_the_call() {
    let ws = tempfile::tempdir().expect("tempdir");
    let ctx = context(ws.path());
    let started = Instant::now();
    let out = shell(&ctx, "sleep 30 & echo started").await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.content, "started\nexit code: 0");
}

#[tokio::test]
async fn output_is_capped_keeping_head_and_tail() {
    let ws = tempfile::tempdir().expect("tempdir");
    let mut ctx = context(ws.path());
    ctx.output_cap = 2000;
    let out = shell(&ctx, "echo HEAD-MARK; seq 1 100000; echo TAIL-MARK").await;
    assert!(out.truncated);
    assert!(
        out.content.starts_with("HEAD-MARK\n1\n2\n"),
        "{}",
        out.content
    );
    assert!(
        out.content.contains("TAIL-MARK\nexit code: 0"),
        "{}",
        out.content
    );
    assert!(out.content.contains(" bytes omitted …]"), "{}", out.content);
    assert!(out.content.len() < 2200, "{} bytes", out.content.len());
    assert_eq!(out.exit_code, Some(0));
}

#[tokio::test]
async fn write_read_edit_round_trip() {
    let ws = tempfile::tempdir().expect("tempdir");
    let ctx = context(ws.path());

    let out = call(
        &ctx,
        "write",
        serde_json::json!({"path": "notes/a.txt", "content": "one\ntwo\nthree\n"}),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert!(
        out.content.contains("created `notes/a.txt`"),
        "{}",
        out.content
    );

    let out = call(&ctx, "read", serde_json::json!({"path": "notes/a.txt"})).await;
    assert_eq!(out.content, "one\ntwo\nthree\n");
    assert!(!out.is_error);

    let out = call(
        &ctx,
        "read",
        serde_json::json!({"path": "./notes/a.txt", "start_line": 2, "end_line": 2}),
    )
    .await;
    assert_eq!(out.content, "two\n");

    let out = call(
        &ctx,
        "read",
        serde_json::json!({"path": "notes/a.txt", "start_line": 9}),
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("has 3 lines"), "{}", out.content);

    // Absolute paths inside the workspace are accepted; permissions survive an edit.
    let abs = ws.path().join("notes/a.txt");
    std::fs::set_permissions(&abs, std::os::unix::fs::PermissionsExt::from_mode(0o750))
        .expect("chmod");
    let out = call(
        &ctx,
        "edit",
        serde_json::json!({"path": abs.to_str(), "old": "two\n", "new": "2\n"}),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert!(
        out.content.contains("starting at line 2"),
        "{}",
        out.content
    );
    assert_eq!(
        std::fs::read_to_string(&abs).expect("read"),
        "one\n2\nthree\n"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&abs).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o750);

    // Reading a folder lists it.
    let out = call(&ctx, "read", serde_json::json!({"path": "notes"})).await;
    assert_eq!(out.content, "a.txt\n");

    // Binary files are refused.
    std::fs::write(ws.path().join("blob.bin"), [0u8, 1, 2, 3, 0, 255]).expect("write");
    let out = call(&ctx, "read", serde_json::json!({"path": "blob.bin"})).await;
    assert!(out.is_error);
    assert!(out.content.contains("binary file"), "{}", out.content);

    // A long file is capped with a pointer to the omitted lines.
    let long: String = (1..=5000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(ws.path().join("long.txt"), &long).expect("write");
    let out = call(&ctx, "read", serde_json::json!({"path": "long.txt"})).await;
    assert!(out.truncated);
    assert!(out.content.starts_with("line 1\n"));
    assert!(out.content.ends_with("line 5000\n"));
    assert!(
        out.content
            .contains("read them with start_line and end_line"),
        "{}",
        &out.content[..200]
    );
}

#[tokio::test]
async fn edit_needs_exactly_one_match() {
    let ws = tempfile::tempdir().expect("tempdir");
    let ctx = context(ws.path());
    std::fs::write(
        ws.path().join("f.py"),
        "a = 1\nb = 2\na = 1\n    indented()\n",
    )
    .expect("write");

    let out = call(
        &ctx,
        "edit",
        serde_json::json!({"path": "f.py", "old": "a = 1", "new": "a = 3"}),
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("occurs 2 times"), "{}", out.content);
    assert!(out.content.contains("lines 1, 3"), "{}", out.content);

    let out = call(
        &ctx,
        "edit",
        serde_json::json!({"path": "f.py", "old": "c = 9", "new": "c = 1"}),
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("not found"), "{}", out.content);

    let out = call(
        &ctx,
        "edit",
        serde_json::json!({"path": "f.py", "old": "  indented()", "new": "x"}),
    )
    .await;
    assert!(!out.is_error, "a substring match is fine: {}", out.content);
    let out = call(
        &ctx,
        "edit",
        serde_json::json!({"path": "f.py", "old": "b  =  2", "new": "b = 4"}),
    )
    .await;
    assert!(out.content.contains("whitespace"), "{}", out.content);

    assert_eq!(
        std::fs::read_to_string(ws.path().join("f.py")).expect("read"),
        "a = 1\nb = 2\na = 1\n  x\n"
    );
}

#[tokio::test]
async fn escapes_from_the_workspace_are_refused() {
    let parent = tempfile::tempdir().expect("tempdir");
    let ws = parent.path().join("ws");
    std::fs::create_dir(&ws).expect("mkdir");
    std::fs::write(parent.path().join("secret.txt"), "outside").expect("write");
    let ctx = context(&ws);

    for path in ["../secret.txt", "a/../../secret.txt", "/etc/passwd"] {
        let out = call(&ctx, "read", serde_json::json!({"path": path})).await;
        assert!(out.is_error, "{path}: {}", out.content);
        assert!(out.content.contains("workspace"), "{}", out.content);
    }
    let out = call(
        &ctx,
        "write",
        serde_json::json!({"path": "../escape.txt", "content": "x"}),
    )
    .await;
    assert!(out.is_error);
    assert!(!parent.path().join("escape.txt").exists());

    // A symlink out of the workspace is refused for reading and writing; one inside is fine.
    std::os::unix::fs::symlink("/etc", ws.join("etc-link")).expect("symlink");
    let out = call(&ctx, "read", serde_json::json!({"path": "etc-link/passwd"})).await;
    assert!(out.is_error);
    assert!(
        out.content
            .contains("symlink to /etc, outside the workspace"),
        "{}",
        out.content
    );
    let out = call(
        &ctx,
        "write",
        serde_json::json!({"path": "etc-link/nlah-test", "content": "x"}),
    )
    .await;
    assert!(out.is_error);
    std::os::unix::fs::symlink(parent.path().join("secret.txt"), ws.join("leak")).expect("symlink");
    let out = call(
        &ctx,
        "edit",
        serde_json::json!({"path": "leak", "old": "outside", "new": "pwned"}),
    )
    .await;
    assert!(out.is_error);
    assert_eq!(
        std::fs::read_to_string(parent.path().join("secret.txt")).expect("read"),
        "outside"
    );
    // A dangling symlink cannot be used to create a file elsewhere.
    std::os::unix::fs::symlink(parent.path().join("new.txt"), ws.join("dangling"))
        .expect("symlink");
    let out = call(
        &ctx,
        "write",
        serde_json::json!({"path": "dangling", "content": "x"}),
    )
    .await;
    assert!(out.is_error, "{}", out.content);
    assert!(!parent.path().join("new.txt").exists());

    std::fs::write(ws.join("real.txt"), "inside").expect("write");
    std::os::unix::fs::symlink("real.txt", ws.join("alias.txt")).expect("symlink");
    let out = call(&ctx, "read", serde_json::json!({"path": "alias.txt"})).await;
    assert_eq!(out.content, "inside");
}

#[tokio::test]
async fn hidden_and_unseen_paths_are_refused() {
    let ws = tempfile::tempdir().expect("tempdir");
    let root = ws.path();
    for (p, text) in [
        ("history/events.jsonl", "{}"),
        ("tests/test_x.py", "assert True"),
        ("TASK.md", "do it"),
        ("src/main.py", "print()"),
        ("artifacts/plan.md", "plan"),
    ] {
        std::fs::create_dir_all(root.join(p).parent().expect("parent")).expect("mkdir");
        std::fs::write(root.join(p), text).expect("write");
    }
    let mut ctx = context(root);
    ctx.hidden = vec!["history/".into(), "tests/".into()];

    let out = call(
        &ctx,
        "read",
        serde_json::json!({"path": "history/events.jsonl"}),
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("hidden"), "{}", out.content);
    let out = call(&ctx, "read", serde_json::json!({"path": "tests"})).await;
    assert!(out.is_error);
    let out = call(
        &ctx,
        "write",
        serde_json::json!({"path": "tests/new.py", "content": "x"}),
    )
    .await;
    assert!(out.is_error);
    // Through a symlink as well.
    std::os::unix::fs::symlink("history", root.join("h")).expect("symlink");
    let out = call(&ctx, "read", serde_json::json!({"path": "h/events.jsonl"})).await;
    assert!(out.is_error, "{}", out.content);
    // Listings leave hidden entries out.
    let out = call(&ctx, "read", serde_json::json!({"path": "."})).await;
    assert!(
        !out.content.contains("history") && !out.content.contains("tests"),
        "{}",
        out.content
    );
    assert!(out.content.contains("TASK.md"));

    // `ROLE sees`: only the listed paths and the child's own folder.
    ctx.visible_only = Some(vec!["TASK.md".into(), "artifacts/".into()]);
    let out = call(&ctx, "read", serde_json::json!({"path": "TASK.md"})).await;
    assert_eq!(out.content, "do it");
    let out = call(&ctx, "read", serde_json::json!({"path": "src/main.py"})).await;
    assert!(out.is_error);
    assert!(
        out.content.contains("outside what this role sees"),
        "{}",
        out.content
    );
    let out = call(
        &ctx,
        "write",
        serde_json::json!({"path": "children/execute-1/notes.md", "content": "n"}),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    let out = call(
        &ctx,
        "write",
        serde_json::json!({"path": "src/new.py", "content": "x"}),
    )
    .await;
    assert!(out.is_error);
    let out = call(&ctx, "read", serde_json::json!({"path": "."})).await;
    assert_eq!(out.content, "TASK.md\nartifacts/\nchildren/\n");
}

#[tokio::test]
async fn malformed_calls_get_corrections() {
    let ws = tempfile::tempdir().expect("tempdir");
    let ctx = context(ws.path());

    let out = tools::call(&ctx, "shell", r#"{"cmd": "ls"}"#).await;
    assert!(out.is_error);
    assert!(
        out.content
            .contains(r#"shell expects {"command": "<bash command>"}; got {"cmd": "ls"}"#),
        "{}",
        out.content
    );
    assert!(
        out.content.contains(r#"did you mean "command"?"#),
        "{}",
        out.content
    );

    let out = tools::call(&ctx, "shell", r#"{"command": "ls""#).await;
    assert!(out.is_error);
    assert!(out.content.contains("not valid JSON"), "{}", out.content);

    let out = tools::call(&ctx, "read", r#"{"path": "a", "start_line": "10"}"#).await;
    assert!(out.is_error);
    assert!(
        out.content.contains(r#""start_line" must be an integer"#),
        "{}",
        out.content
    );

    let out = tools::call(&ctx, "write", r#"{"path": "a"}"#).await;
    assert!(out.is_error);
    assert!(
        out.content
            .contains(r#"missing required argument "content""#),
        "{}",
        out.content
    );

    let out = tools::call(&ctx, "edit", r#"["a", "b"]"#).await;
    assert!(out.is_error);
    assert!(
        out.content.contains("must be a JSON object"),
        "{}",
        out.content
    );

    let out = tools::call(&ctx, "bash", r#"{"command": "ls"}"#).await;
    assert!(out.is_error);
    assert!(
        out.content
            .contains(r#"unknown tool "bash" (did you mean "shell"?)"#),
        "{}",
        out.content
    );

    // Null for an optional argument is the same as leaving it out.
    std::fs::write(ws.path().join("a"), "x\n").expect("write");
    let out = tools::call(&ctx, "read", r#"{"path": "a", "start_line": null}"#).await;
    assert_eq!(out.content, "x\n");
}

#[test]
fn specs_describe_the_tools() {
    let specs = tools::builtin_specs(None);
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["shell", "read", "write", "edit"]);
    for s in &specs {
        assert_eq!(s.parameters["type"], "object");
        assert_eq!(s.parameters["additionalProperties"], false);
        assert!(
            s.description.len() > 80,
            "{}: describe it for the model",
            s.name
        );
    }
    assert_eq!(
        specs[0].parameters["required"],
        serde_json::json!(["command"])
    );
    let allowed = vec![
        "edit".to_string(),
        "shell".to_string(),
        "mcp-thing".to_string(),
    ];
    let names: Vec<String> = tools::builtin_specs(Some(&allowed))
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["shell", "edit"]);
}

/// The half of `api_keys_never_reach_the_shell` that runs in a child process whose
/// environment holds fake keys.
async fn env_probe_child() {
    assert!(
        std::env::var("OPENAI_API_KEY").is_ok_and(|k| k.starts_with("sk-test-")),
        "no fake key set"
    );
    let ws = tempfile::tempdir().expect("tempdir");
    let ctx = context(ws.path());
    let out = shell(&ctx, "env").await;
    assert_eq!(out.exit_code, Some(0), "{}", out.content);
    for needle in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GITHUB_TOKEN",
        "MY_SECRET_THING",
        "sk-test-",
    ] {
        assert!(
            !out.content.contains(needle),
            "{needle} reached the shell:\n{}",
            out.content
        );
    }
    assert!(out.content.contains("LC_CTYPE=C.UTF-8"), "{}", out.content);
    assert!(!out.content.contains("LANG="), "{}", out.content);
    assert!(out.content.contains("TERM=dumb"), "{}", out.content);
    assert!(out.content.contains("SHELL=/bin/sh"), "{}", out.content);
    let home = ws.path().join(".tmp/home");
    assert!(
        out.content.contains(&format!("HOME={}", home.display())),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn commands_count_utf8_text_in_characters() {
    let ws = tempfile::tempdir().expect("tempdir");
    let ctx = context(ws.path());
    // Two characters in five bytes, counted as two only under a UTF-8 character set: by the
    // shell itself and by a program it starts.
    let out = shell(&ctx, "v='é€'; echo ${#v}; printf %s \"$v\" | wc -m").await;
    assert_eq!(out.exit_code, Some(0), "{}", out.content);
    let lines: Vec<&str> = out.content.lines().map(str::trim).collect();
    assert_eq!(lines[..2], ["2", "2"], "{}", out.content);
}

/// Set in the child process of `api_keys_never_reach_the_shell`.
const PROBE: &str = "NLAH_TEST_ENV_PROBE";

#[tokio::test]
async fn api_keys_never_reach_the_shell() {
    // The keys must be in the process's own environment, which a test cannot change safely
    // while others run: the test runs itself again, alone, in a child process that has them.
    if std::env::var_os(PROBE).is_some() {
        return env_probe_child().await;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "sandbox_tools::api_keys_never_reach_the_shell",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE, "1")
        .env("OPENAI_API_KEY", "sk-test-0123456789")
        .env("ANTHROPIC_API_KEY", "sk-test-ant-0123")
        .env("GITHUB_TOKEN", "sk-test-ghp")
        .env("MY_SECRET_THING", "sk-test-secret")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run:\n{stdout}"
    );
}

#[tokio::test]
async fn network_is_cut_off_when_isolation_is_available() {
    let probe = sandbox::probe();
    eprintln!("sandbox probe: {}", probe.summary());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let connect = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");

    let outside = std::process::Command::new("bash")
        .args(["-c", &connect])
        .output()
        .expect("bash");
    assert!(
        outside.status.success(),
        "the listener must be reachable outside the sandbox"
    );

    if probe.network == Level::Unavailable {
        eprintln!(
            "SKIPPED: network isolation is unavailable here ({})",
            probe.summary()
        );
        return;
    }
    let ws = tempfile::tempdir().expect("tempdir");
    let ctx = context(ws.path());
    let out = shell(&ctx, &connect).await;
    assert_ne!(
        out.exit_code,
        Some(0),
        "connected from inside the sandbox: {}",
        out.content
    );
    assert!(!out.content.contains("connected\n"), "{}", out.content);

    if probe
        .notes
        .iter()
        .any(|n| n.starts_with("private") && n.ends_with("network namespace"))
    {
        // The sandbox's own loopback works: a command can test a server it starts itself.
        let own = "python3 -c \"import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); \
                   s.listen(); socket.create_connection(s.getsockname()); print('own loopback ok')\"";
        let out = shell(&ctx, own).await;
        assert!(out.content.contains("own loopback ok"), "{}", out.content);
    }

    // With network allowed, the listener is reachable again.
    let mut open = context(ws.path());
    open.confinement.network = true;
    let out = shell(&open, &connect).await;
    assert_eq!(out.exit_code, Some(0), "{}", out.content);
}

#[tokio::test]
async fn writes_outside_the_workspace_fail_when_landlock_is_available() {
    let probe = sandbox::probe();
    let ws = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let ctx = context(ws.path());

    if probe.filesystem == Level::Unavailable {
        eprintln!(
            "SKIPPED: Landlock is unavailable here ({})",
            probe.summary()
        );
        return;
    }
    let target = outside.path().join("f.txt");
    let out = shell(&ctx, &format!("echo x > '{}'", target.display())).await;
    assert_ne!(out.exit_code, Some(0), "{}", out.content);
    assert!(out.content.contains("Permission denied"), "{}", out.content);
    assert!(!target.exists());
    let out = shell(
        &ctx,
        &format!(
            "mkdir '{}/d' || touch /tmp/nlah-sandbox-probe",
            outside.path().display()
        ),
    )
    .await;
    assert_ne!(out.exit_code, Some(0), "{}", out.content);

    // What a shell needs still works: the workspace, its scratch TMPDIR, /dev/null, stderr.
    let out = shell(
        &ctx,
        "echo ok > inside.txt && t=$(mktemp) && echo tmp > \"$t\" && echo quiet > /dev/null \
         && : > /dev/null && echo loud > /dev/stderr && mkdir -p a/b && mv inside.txt a/b/ \
         && cat a/b/inside.txt",
    )
    .await;
    assert_eq!(out.content, "loud\nok\nexit code: 0");
    assert!(ws.path().join("a/b/inside.txt").exists());
    // The scratch space ignores itself in git.
    assert_eq!(
        std::fs::read_to_string(ws.path().join(".tmp/.gitignore")).expect("gitignore"),
        "*\n"
    );
}

#[test]
fn probe_reports_what_holds() {
    let probe = sandbox::probe();
    let summary = probe.summary();
    eprintln!("sandbox probe: {summary}");
    assert!(summary.starts_with("filesystem "), "{summary}");
    assert!(!summary.contains('\n'));
    // The same answer every time (cached).
    assert_eq!(sandbox::probe(), probe);
    // An allowance is reported as such.
    let open = sandbox::assess(&sandbox::Confinement {
        network: true,
        ..sandbox::Confinement::workspace("/nonexistent")
    });
    assert_eq!(open.network, Level::Enforced);
    assert!(open.notes.iter().any(|n| n == "network allowed"));
}

#[tokio::test]
async fn a_forked_confined_command_gets_no_descriptor_nlah_inherited() {
    use std::os::fd::AsRawFd;
    let ws = tempfile::tempdir().expect("tempdir");
    // As one nlah inherited from its parent would be: open, without close-on-exec.
    let held = std::fs::File::open("/dev/null").expect("open");
    // SAFETY: F_SETFD on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::fcntl(held.as_raw_fd(), libc::F_SETFD, 0) },
        0
    );
    let mut cmd = tokio::process::Command::new("bash");
    cmd.args(["-c", "echo /proc/self/fd/*"])
        .current_dir(ws.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    sandbox::clean_env(&mut cmd, ws.path());
    sandbox::confine(&mut cmd, &sandbox::Confinement::workspace(ws.path()));
    let out = cmd.output().await.expect("runs");
    assert!(out.status.success());
    // bash's glob reads the folder through a descriptor of its own (3).
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "/proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2 /proc/self/fd/3"
    );
}

#[tokio::test]
async fn confine_works_with_a_process_group_set_by_the_caller() {
    let ws = tempfile::tempdir().expect("tempdir");
    let mut cmd = tokio::process::Command::new("bash");
    // Fields 5 and 6 of /proc/self/stat (read by bash itself): its process group and session.
    cmd.args([
        "-c",
        "read -r _ _ _ _ pgrp _ </proc/self/stat; echo $pgrp; ! : 2>/dev/null </dev/tty",
    ])
    .current_dir(ws.path())
    .stdout(std::process::Stdio::piped())
    .process_group(0);
    sandbox::clean_env(&mut cmd, ws.path());
    sandbox::confine(&mut cmd, &sandbox::Confinement::workspace(ws.path()));
    let child = cmd.spawn().expect("spawns although setsid is impossible");
    let group = child.id().expect("pid");
    let out = child.wait_with_output().await.expect("waits");
    assert!(out.status.success(), "the command has no terminal");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        group.to_string(),
        "the command is in the group the caller made"
    );
}

#[tokio::test]
async fn resource_limits_bound_memory_cpu_and_file_size_and_say_which_was_hit() {
    let ws = tempfile::tempdir().expect("tempdir");
    let mut ctx = context(ws.path());
    ctx.confinement.limits = sandbox::Limits {
        memory_bytes: Some(256 << 20),
        processes: None,
        cpu_seconds: Some(1),
        file_bytes: Some(1 << 20),
    };
    // 1 GiB of memory in one allocation fails inside the program.
    let out = shell(
        &ctx,
        "python3 -c 'b = bytearray(1 << 30)' 2>&1 | tail -1; python3 -c 'b = bytearray(64 << 20); print(len(b))'",
    )
    .await;
    assert!(out.content.contains("MemoryError"), "{}", out.content);
    assert!(
        out.content.contains("67108864"),
        "what fits still works: {}",
        out.content
    );
    // A file past the limit.
    let out = shell(&ctx, "head -c 2M /dev/zero > big.bin").await;
    assert!(out.is_error, "{}", out.content);
    assert!(
        out.content
            .contains("the file size limit (1 MiB per file) was hit"),
        "{}",
        out.content
    );
    assert!(std::fs::metadata(ws.path().join("big.bin")).unwrap().len() <= 1 << 20);
    // A busy loop past its CPU time (not the command's first process, which the kernel
    // spares SIGXCPU: it is killed a second later, at the hard limit).
    let out = shell(&ctx, "python3 -c 'while True: pass'; exit $?").await;
    assert!(
        out.content
            .contains("the CPU time limit (1 s per process) was hit"),
        "{}",
        out.content
    );
    let out = shell(&ctx, "exec python3 -c 'while True: pass'").await;
    assert!(
        out.content
            .contains("killed by SIGKILL: the CPU time limit (1 s per process"),
        "{}",
        out.content
    );
    // And the limits are stated with the command's enforcement.
    let e = sandbox::assess(&ctx.confinement);
    assert!(
        e.notes.iter().any(|n| n.contains("memory 256 MiB")),
        "{:?}",
        e.notes
    );
}

#[tokio::test]
async fn the_shell_keeps_its_folder_and_variables_but_no_process_outlives_a_command() {
    let ws = tempfile::tempdir().expect("tempdir");
    let ctx = context(ws.path());
    assert!(
        sandbox::session::ShellSession::available(&ctx.confinement),
        "no PID namespace here, so every command gets a shell of its own: {}",
        sandbox::probe().summary()
    );
    let out = shell(&ctx, "mkdir -p sub && cd sub && export GREETING=hi; X=1").await;
    assert_eq!(out.exit_code, Some(0), "{}", out.content);
    let out = shell(&ctx, "pwd; echo \"$GREETING $X\"").await;
    let here = ws.path().canonicalize().unwrap().join("sub");
    assert_eq!(
        out.content,
        format!("{}\nhi 1\nexit code: 0", here.display())
    );
    // A quote left open is that command's syntax error, not a shell waiting for more.
    let out = shell(&ctx, "echo 'unterminated").await;
    assert_eq!(out.exit_code, Some(2), "{}", out.content);
    assert!(out.content.contains("unexpected EOF"), "{}", out.content);
    // A background job ends with the command that started it, even in a session of its own.
    let out = shell(
        &ctx,
        "setsid sh -c 'read -r p _ </proc/self/stat; echo $p > ../bg.pid; exec sleep 60' & sleep 0.3",
    )
    .await;
    assert_eq!(out.exit_code, Some(0), "{}", out.content);
    let pid = std::fs::read_to_string(ws.path().join("bg.pid")).expect("pid");
    let proc_dir = format!("/proc/{}", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(&proc_dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(&proc_dir), "the background job outlived its command");
    // The shell itself is still the same one.
    let out = shell(&ctx, "echo $GREETING").await;
    assert_eq!(out.content, "hi\nexit code: 0");
    // A time limit ends the shell; the next command runs in a new one, and says so.
    let mut short = ctx.clone();
    short.shell_timeout = Duration::from_millis(300);
    let out = shell(&short, "sleep 5").await;
    assert!(
        out.content.contains("[killed after 0.3 s]"),
        "{}",
        out.content
    );
    let out = shell(&ctx, "echo \"[$GREETING]\"; pwd").await;
    assert_eq!(
        out.content,
        format!(
            "[a new shell: the working folder and variables of the previous one are gone]\n[]\n{}\nexit code: 0",
            ws.path().canonicalize().unwrap().display()
        )
    );
}

/// No shell starts ahead of the first call while a writable path is missing: its rules would
/// leave out a declared output file the child writes first (with `write`) and then changes with
/// a command. Once the file is there, a shell started ahead may write it.
#[tokio::test]
async fn no_shell_starts_ahead_while_a_writable_path_is_missing() {
    let ws = tempfile::tempdir().unwrap();
    let mut ctx = context(ws.path());
    assert!(
        sandbox::session::ShellSession::available(&ctx.confinement),
        "this test needs shell sessions, which need PID namespaces (root, or user namespaces)"
    );
    ctx.confinement.writable.push(ws.path().join("report.md"));
    assert!(tools::warm_shell(&ctx).is_none());

    // The child writes it (as its `write` tool would).
    std::fs::write(ws.path().join("report.md"), "draft\n").unwrap();
    tools::warm_shell(&ctx)
        .expect("a shell started ahead once every writable path is there")
        .await;
    let out = shell(&ctx, "echo more >> report.md && cat report.md").await;
    assert_eq!(out.content, "draft\nmore\nexit code: 0");
}

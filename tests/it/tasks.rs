//! Task folders: loading, hashing, copying and the hidden verifier, on the shipped examples and
//! on small tasks written into temporary folders.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nlah::task::{self, Task, TaskError};

use crate::support::TestEnv;
use tempfile::TempDir;

const EXAMPLES: [&str; 5] = [
    "fix-csv-quoting",
    "fix-median",
    "hello-greeting",
    "shell-word-count",
    "write-config",
];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tasks")
}

fn example(name: &str) -> Task {
    task::load(examples_dir().join(name)).unwrap()
}

/// Writes `files` (relative path, contents) under a fresh temporary folder.
fn write_tree(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for (rel, text) in files {
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

fn set_exec(path: &Path) {
    let mut perms = fs::metadata(path).unwrap().permissions();
    perms.set_mode(0o755);
    fs::set_permissions(path, perms).unwrap();
}

async fn verify(task: &Task, repo: &Path) -> task::Verdict {
    task::verify(task, repo, task::Launcher::Plain)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Loading

#[test]
fn every_example_loads() {
    for name in EXAMPLES {
        let t = example(name);
        assert_eq!(t.id, name);
        assert!(t.instruction_path.ends_with("TASK.md"), "{name}");
        assert!(t.instruction.starts_with("# "), "{name}");
        assert!(t.root.is_absolute());
        assert!(t.files.as_ref().is_some_and(|p| p.is_dir()), "{name}");
        assert!(t.tests.as_ref().is_some_and(|p| p.is_dir()), "{name}");
        assert!(matches!(
            t.config.split.as_deref(),
            Some("train" | "validation" | "test")
        ));
        assert!(t.config.agent.timeout().is_some(), "{name}");
        assert!(t.config.verifier.timeout() <= Duration::from_secs(120));
        assert_eq!(
            t.verifier_command().as_deref(),
            Some(task::DEFAULT_VERIFIER_COMMAND)
        );
        assert!(t.config.metadata.contains_key("difficulty"), "{name}");
        // The reference solution ships with the task but is not part of what nlah reads.
        assert!(t.root.join("solution/solve.sh").is_file(), "{name}");
    }
}

#[test]
fn example_set_loads_sorted() {
    let set = task::load_set(examples_dir()).unwrap();
    let ids: Vec<_> = set.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, EXAMPLES);
}

#[test]
fn a_task_folder_is_a_set_of_one() {
    let set = task::load_set(examples_dir().join("fix-median")).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].id, "fix-median");
}

#[test]
fn set_skips_non_task_folders_and_sorts_by_id() {
    let dir = write_tree(&[
        ("b/TASK.md", "B"),
        ("a/instruction.md", "A"),
        ("z/task.toml", "id = \"aa\"\n"),
        ("z/TASK.md", "Z"),
        ("notes/README.md", "not a task"),
        ("loose.md", "not a task either"),
    ]);
    let ids: Vec<_> = task::load_set(dir.path())
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["a", "aa", "b"]);
}

#[test]
fn duplicate_ids_in_a_set_are_an_error() {
    let dir = write_tree(&[
        ("one/TASK.md", "1"),
        ("one/task.toml", "id = \"same\"\n"),
        ("two/TASK.md", "2"),
        ("two/task.toml", "id = \"same\"\n"),
    ]);
    let err = task::load_set(dir.path()).unwrap_err();
    assert!(matches!(err, TaskError::DuplicateId { ref id, .. } if id == "same"));
    let msg = err.to_string();
    assert!(msg.contains("one") && msg.contains("two"), "{msg}");
}

#[test]
fn empty_set_is_an_error() {
    let dir = write_tree(&[("notes/README.md", "x")]);
    let err = task::load_set(dir.path()).unwrap_err();
    assert!(matches!(err, TaskError::EmptySet { .. }), "{err}");
}

#[test]
fn instruction_md_and_harbor_task_toml_are_accepted() {
    let harbor_toml = r#"version = "1.0"

[metadata]
author_name = "Someone"
author_email = "someone@example.com"
difficulty = "medium"
category = "software-engineering"
tags = ["git", "bash"]

[verifier]
timeout_sec = 120.0

[agent]
timeout_sec = 900.0

[environment]
build_timeout_sec = 600.0
cpus = 1
memory_mb = 2048
"#;
    let dir = write_tree(&[
        (
            "hello-world/instruction.md",
            "Create hello.txt containing Hello, world!\n",
        ),
        ("hello-world/task.toml", harbor_toml),
        (
            "hello-world/tests/test.sh",
            "#!/bin/bash\ngrep -q 'Hello, world!' hello.txt\n",
        ),
        (
            "hello-world/solution/solve.sh",
            "echo 'Hello, world!' > hello.txt\n",
        ),
        ("hello-world/environment/Dockerfile", "FROM ubuntu:24.04\n"),
    ]);
    let t = task::load(dir.path().join("hello-world")).unwrap();
    assert_eq!(t.id, "hello-world");
    assert!(t.instruction_path.ends_with("instruction.md"));
    assert_eq!(t.config.verifier.timeout(), Duration::from_secs(120));
    assert_eq!(t.config.agent.timeout(), Some(Duration::from_secs(900)));
    assert_eq!(t.config.metadata["difficulty"].as_str(), Some("medium"));
    assert_eq!(t.config.extra["version"].as_str(), Some("1.0"));
    assert!(t.config.extra["environment"].is_table());
    assert!(t.files.is_none());
    assert_eq!(
        t.verifier_command().as_deref(),
        Some(task::DEFAULT_VERIFIER_COMMAND)
    );
}

#[test]
fn task_md_wins_over_instruction_md() {
    let dir = write_tree(&[("t/TASK.md", "ours"), ("t/instruction.md", "harbor's")]);
    let t = task::load(dir.path().join("t")).unwrap();
    assert_eq!(t.instruction, "ours");
}

#[test]
fn config_defaults_and_budgets() {
    let dir = write_tree(&[("plain/TASK.md", "x")]);
    let t = task::load(dir.path().join("plain")).unwrap();
    assert_eq!(t.config, task::TaskConfig::default());
    assert_eq!(t.config.verifier.timeout(), Duration::from_secs(600));
    assert!(t.config.budgets.is_empty());
    assert_eq!(t.verifier_command(), None);

    let dir = write_tree(&[
        ("b/TASK.md", "x"),
        (
            "b/task.toml",
            "[budgets]\ntokens = 50000\ntool_calls = 40\nllm_calls = 12\nwall_time_sec = 90\ncost_usd = 0.5\n\
             [verifier]\ncommand = \"test -f done\"\n",
        ),
    ]);
    let t = task::load(dir.path().join("b")).unwrap();
    let b = &t.config.budgets;
    assert_eq!(
        (b.tokens, b.tool_calls, b.llm_calls),
        (Some(50000), Some(40), Some(12))
    );
    assert_eq!(b.wall_time(), Some(Duration::from_secs(90)));
    assert_eq!(b.cost_usd, Some(0.5));
    assert_eq!(t.verifier_command().as_deref(), Some("test -f done"));
}

fn config_error(toml: &str) -> (TaskError, String) {
    let dir = write_tree(&[("t/TASK.md", "x"), ("t/task.toml", toml)]);
    let err = task::load(dir.path().join("t")).unwrap_err();
    let msg = err.to_string();
    (err, msg)
}

#[test]
fn malformed_task_toml_names_file_line_and_column() {
    let (err, msg) = config_error("id = \"t\"\n\n[verifier\ntimeout_sec = 5\n");
    let TaskError::Config {
        path, line, col, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(path.ends_with("t/task.toml"), "{msg}");
    assert_eq!((*line, *col), (3, 10), "{msg}");
    assert!(msg.contains("task.toml:3:10: "), "{msg}");
}

#[test]
fn wrong_types_and_values_in_task_toml_have_positions() {
    let (_, msg) = config_error("[verifier]\ntimeout_sec = \"soon\"\n");
    assert!(msg.contains("task.toml:2:15: "), "{msg}");

    let (_, msg) = config_error("split = \"x\"\n[agent]\ntimeout_sec = -5\n");
    assert!(msg.contains("task.toml:3:15: "), "{msg}");
    assert!(msg.contains("agent.timeout_sec"), "{msg}");

    let (_, msg) = config_error("[budgets]\ntokens = -1\n");
    assert!(msg.contains("task.toml:2:"), "{msg}");

    let (_, msg) = config_error("id = \"../escape\"\n");
    assert!(msg.contains("task.toml:1:6: invalid id"), "{msg}");

    let (_, msg) = config_error("[verifier]\ncommand = \"  \"\n");
    assert!(msg.contains("task.toml:2:11: "), "{msg}");
}

#[test]
fn missing_instruction_and_missing_folder_are_clear() {
    let dir = write_tree(&[("t/files/a.txt", "a")]);
    let err = task::load(dir.path().join("t")).unwrap_err();
    assert!(matches!(err, TaskError::NoInstruction { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains(&dir.path().join("t").display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains("TASK.md") && msg.contains("instruction.md"),
        "{msg}"
    );

    let err = task::load(dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, TaskError::NotFound { .. }));
    assert!(err.to_string().contains("nope"));

    let err = task::load(dir.path().join("t/files/a.txt")).unwrap_err();
    assert!(matches!(err, TaskError::NotADirectory { .. }));
}

#[test]
fn folder_names_that_are_not_ids_need_an_id() {
    let dir = write_tree(&[("has space/TASK.md", "x")]);
    let err = task::load(dir.path().join("has space")).unwrap_err();
    assert!(matches!(err, TaskError::InvalidId { .. }), "{err}");

    let dir = write_tree(&[
        ("has space/TASK.md", "x"),
        ("has space/task.toml", "id = \"has-space\""),
    ]);
    assert_eq!(
        task::load(dir.path().join("has space")).unwrap().id,
        "has-space"
    );
}

// ---------------------------------------------------------------------------------------------
// Content hash

#[test]
fn content_hash_is_stable_and_tracks_every_part() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("fix-median");
    copy_dir(&examples_dir().join("fix-median"), &root);
    let hash = || task::load(&root).unwrap().content_hash().unwrap();

    let original = hash();
    assert_eq!(original.len(), 64);
    assert!(original.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(hash(), original);
    // Location-independent: the copy hashes like the shipped example.
    assert_eq!(example("fix-median").content_hash().unwrap(), original);

    // The reference solution is not part of the task's identity.
    fs::write(root.join("solution/solve.sh"), "exit 0\n").unwrap();
    assert_eq!(hash(), original);

    // Neither is the instruction's file name.
    fs::rename(root.join("TASK.md"), root.join("instruction.md")).unwrap();
    assert_eq!(hash(), original);

    let mut seen = vec![original.clone()];
    let mut changed = |what: &str| {
        let h = hash();
        assert!(!seen.contains(&h), "hash did not change after {what}");
        seen.push(h);
    };
    fs::write(root.join("files/stats.py"), "def median(v): return 0\n").unwrap();
    changed("editing files/");
    fs::write(root.join("tests/extra.txt"), "more").unwrap();
    changed("adding to tests/");
    set_exec(&root.join("files/test_stats.py"));
    changed("chmod +x");
    fs::write(root.join("task.toml"), "id = \"fix-median\"\n").unwrap();
    changed("editing task.toml");
    fs::write(root.join("instruction.md"), "Different words.\n").unwrap();
    changed("editing the instruction");
    fs::rename(root.join("files/stats.py"), root.join("files/stats2.py")).unwrap();
    changed("renaming a file");
}

#[test]
fn every_example_has_a_distinct_hash() {
    let mut hashes: Vec<_> = EXAMPLES
        .iter()
        .map(|n| example(n).content_hash().unwrap())
        .collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), EXAMPLES.len());
}

// ---------------------------------------------------------------------------------------------
// copy_files

#[test]
fn copy_files_copies_the_starting_state_only() {
    let t = example("fix-median");
    let dest = TempDir::new().unwrap();
    let repo = dest.path().join("repo");
    assert_eq!(task::copy_files(&t, &repo).unwrap(), 2);
    assert_eq!(
        fs::read(repo.join("stats.py")).unwrap(),
        fs::read(t.root.join("files/stats.py")).unwrap()
    );
    assert!(repo.join("test_stats.py").is_file());
    let names: Vec<_> = fs::read_dir(&repo)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(!repo.join("tests").exists() && !repo.join("solve.sh").exists());
}

#[test]
fn copy_files_keeps_exec_bits_and_inside_symlinks() {
    let dir = write_tree(&[
        ("t/TASK.md", "x"),
        ("t/files/run.sh", "#!/bin/sh\necho hi\n"),
        ("t/files/data/a.txt", "a"),
        ("t/files/plain.txt", "p"),
    ]);
    let files = dir.path().join("t/files");
    set_exec(&files.join("run.sh"));
    std::os::unix::fs::symlink("data/a.txt", files.join("link-in")).unwrap();
    std::os::unix::fs::symlink("../plain.txt", files.join("data/up-in")).unwrap();

    let t = task::load(dir.path().join("t")).unwrap();
    let repo = TempDir::new().unwrap();
    let n = task::copy_files(&t, repo.path()).unwrap();
    let r = repo.path();
    assert_eq!(n, 5);

    let mode = fs::metadata(r.join("run.sh")).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111);
    let mode = fs::metadata(r.join("plain.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0);

    for (link, target) in [("link-in", "data/a.txt"), ("data/up-in", "../plain.txt")] {
        let meta = fs::symlink_metadata(r.join(link)).unwrap();
        assert!(meta.file_type().is_symlink(), "{link}");
        assert_eq!(fs::read_link(r.join(link)).unwrap(), Path::new(target));
    }
    assert_eq!(fs::read_to_string(r.join("link-in")).unwrap(), "a");
}

#[test]
fn links_that_leave_the_task_folder_are_refused_when_the_task_loads() {
    // Following them once copied the host's environment (API keys) into `repo/` and git.
    let outside = write_tree(&[("secret.txt", "outside content"), ("dir/x.txt", "x")]);
    let cases = [
        ("environ", Path::new("/proc/self/environ").to_path_buf()),
        ("link-out", outside.path().join("secret.txt")),
        ("dir-out", outside.path().join("dir")),
        ("up", Path::new("../TASK.md").to_path_buf()),
        (
            "dangling",
            Path::new("/nonexistent/nlah/target").to_path_buf(),
        ),
    ];
    for (name, target) in cases {
        let dir = write_tree(&[("t/TASK.md", "x"), ("t/files/a.txt", "a")]);
        std::os::unix::fs::symlink(&target, dir.path().join("t/files").join(name)).unwrap();
        let err = task::load(dir.path().join("t")).unwrap_err();
        assert!(matches!(err, TaskError::Symlink { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("files/{name}: symlink to {}", target.display()))
                && msg.contains("leaves the task's files/ folder"),
            "{msg}"
        );
    }
    // Hidden tests are held to the same rule: they are copied for the verifier.
    let dir = write_tree(&[("t/TASK.md", "x"), ("t/tests/test.sh", "exit 0")]);
    std::os::unix::fs::symlink("/proc/self/environ", dir.path().join("t/tests/env")).unwrap();
    let err = task::load(dir.path().join("t")).unwrap_err();
    assert!(
        err.to_string().contains("leaves the task's tests/ folder"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_with_a_link_out_of_the_task_stops_before_its_workspace() {
    let env = TestEnv::new();
    let task = env.root().join("leaky");
    fs::create_dir_all(task.join("files")).unwrap();
    fs::write(task.join("TASK.md"), "Read the environment.\n").unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", task.join("files/env")).unwrap();
    let ran = env
        .nlah_run(&[
            "harness-skills/basic",
            task.to_str().unwrap(),
            "--model",
            "openai:m",
        ])
        .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("files/env: symlink to /proc/self/environ leaves"),
        "{}",
        ran.stderr
    );
    assert!(!ran.ws.exists(), "no workspace for a task that cannot load");
}

#[test]
fn copy_files_without_files_folder_copies_nothing() {
    let dir = write_tree(&[("t/TASK.md", "x")]);
    let t = task::load(dir.path().join("t")).unwrap();
    let repo = TempDir::new().unwrap();
    assert_eq!(task::copy_files(&t, &repo.path().join("repo")).unwrap(), 0);
    assert!(repo.path().join("repo").is_dir());
}

// ---------------------------------------------------------------------------------------------
// verify on the examples

async fn check_example(name: &str) {
    let t = example(name);
    let tmp = TempDir::new().unwrap();
    let repo = tmp.path().join("repo");
    task::copy_files(&t, &repo).unwrap();

    let before = verify(&t, &repo).await;
    assert!(
        !before.passed,
        "{name} passes unmodified:\n{}",
        before.output
    );
    assert!(!before.timed_out, "{name}");
    assert!(!before.output.is_empty(), "{name}");

    let status = std::process::Command::new("bash")
        .arg(t.root.join("solution/solve.sh"))
        .current_dir(&repo)
        .status()
        .unwrap();
    assert!(status.success(), "{name}: solve.sh failed");

    let after = verify(&t, &repo).await;
    assert!(
        after.passed,
        "{name} fails after the fix:\n{}",
        after.output
    );
    assert_eq!(after.exit_code, Some(0), "{name}");
    // The verifier leaves no trace of the hidden tests in the repository.
    assert!(!repo.join("tests").exists(), "{name}");
    assert!(!repo.join("__pycache__").exists(), "{name}");
}

#[tokio::test]
async fn fix_median_fails_then_passes() {
    check_example("fix-median").await;
}

#[tokio::test]
async fn fix_csv_quoting_fails_then_passes() {
    check_example("fix-csv-quoting").await;
}

#[tokio::test]
async fn write_config_fails_then_passes() {
    check_example("write-config").await;
}

#[tokio::test]
async fn shell_word_count_fails_then_passes() {
    check_example("shell-word-count").await;
}

#[tokio::test]
async fn write_config_reports_a_reward() {
    let t = example("write-config");
    let tmp = TempDir::new().unwrap();
    task::copy_files(&t, tmp.path()).unwrap();
    let v = verify(&t, tmp.path()).await;
    assert_eq!(v.reward, Some(0.0));
    assert!(
        v.output.contains("config.json does not exist"),
        "{}",
        v.output
    );
}

// ---------------------------------------------------------------------------------------------
// verify mechanics on small tasks

/// A task whose hidden `tests/test.sh` is `script`, plus extra files.
fn script_task(script: &str, toml: &str) -> (TempDir, Task, PathBuf) {
    let dir = write_tree(&[
        ("t/TASK.md", "x"),
        ("t/task.toml", toml),
        ("t/tests/test.sh", script),
        ("t/tests/data.txt", "hidden data\n"),
        ("repo/.keep", ""),
    ]);
    let t = task::load(dir.path().join("t")).unwrap();
    let repo = dir.path().join("repo");
    (dir, t, repo)
}

fn process_alive(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[tokio::test]
async fn verifier_past_its_timeout_is_killed_with_its_group() {
    let (_dir, t, repo) = script_task(
        "echo started\nsleep 30 &\necho $! > bg.pid\nsleep 30\necho never\n",
        "[verifier]\ntimeout_sec = 1\n",
    );
    let start = Instant::now();
    let v = verify(&t, &repo).await;
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(v.timed_out);
    assert!(!v.passed);
    assert_eq!(v.exit_code, None);
    assert!(v.duration >= Duration::from_secs(1));
    assert!(v.output.starts_with("started\n"), "{}", v.output);
    assert!(!v.output.contains("never"));
    assert!(
        v.output.contains("[nlah] verifier timed out"),
        "{}",
        v.output
    );

    let pid = fs::read_to_string(repo.join("bg.pid")).unwrap();
    let pid = pid.trim();
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!process_alive(pid), "background process {pid} survived");
}

#[tokio::test]
async fn background_processes_do_not_hold_the_verdict() {
    // One stays in the group (killed at exit); one escapes with setsid (bounded drain).
    let (_dir, t, repo) = script_task(
        "sleep 30 &\necho $! > bg.pid\n(setsid sleep 4 &)\necho done\nexit 0\n",
        "",
    );
    let start = Instant::now();
    let v = verify(&t, &repo).await;
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    assert!(v.passed && !v.timed_out, "{}", v.output);
    assert!(v.output.contains("done"));
    let pid = fs::read_to_string(repo.join("bg.pid")).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!process_alive(pid.trim()));
}

#[tokio::test]
async fn reward_file_decides_when_written() {
    let cases = [
        (
            "echo 0.25 > \"$NLAH_REWARD_FILE\"\nexit 1\n",
            true,
            Some(0.25),
            Some(1),
        ),
        (
            "echo 0 > \"$NLAH_REWARD_FILE\"\nexit 0\n",
            false,
            Some(0.0),
            Some(0),
        ),
        (
            "printf '1\\n' > \"$NLAH_REWARD_FILE\"\nexit 3\n",
            true,
            Some(1.0),
            Some(3),
        ),
        // Harbor's place for it.
        (
            "echo 1 > \"$NLAH_LOGS_DIR/reward.txt\"\nexit 2\n",
            true,
            Some(1.0),
            Some(2),
        ),
        // No reward: the exit code decides.
        ("exit 0\n", true, None, Some(0)),
        ("exit 4\n", false, None, Some(4)),
        // A reward that is not a number never passes.
        (
            "echo great > \"$NLAH_REWARD_FILE\"\nexit 0\n",
            false,
            None,
            Some(0),
        ),
    ];
    for (script, passed, reward, exit_code) in cases {
        let (_dir, t, repo) = script_task(script, "");
        let v = verify(&t, &repo).await;
        assert_eq!(
            (v.passed, v.reward, v.exit_code),
            (passed, reward, exit_code),
            "{script}: {}",
            v.output
        );
    }
    let (_dir, t, repo) = script_task("echo great > \"$NLAH_REWARD_FILE\"\n", "");
    let v = verify(&t, &repo).await;
    assert!(v.output.contains("does not hold a number"), "{}", v.output);
}

#[tokio::test]
async fn confined_verifier_gets_a_clean_environment_and_stays_outside_the_repo() {
    let script = r#"
echo "cwd=$PWD"
echo "tests=$NLAH_TESTS_DIR"
echo "reward=$NLAH_REWARD_FILE"
echo "logs=$NLAH_LOGS_DIR"
echo "home=${HOME:-unset}"
echo "secret=${NLAH_TEST_SECRET_TOKEN:-unset}"
cat "$NLAH_TESTS_DIR/data.txt"
test -d "$NLAH_LOGS_DIR" && echo logs-ok
"#;
    let (_dir, t, repo) = script_task(script, "");
    // The workspace folder of a run: the verifier may write there and in its temporary folder.
    let ws = tempfile::tempdir().unwrap();
    let home = ws.path().join(".tmp/home");
    fs::create_dir_all(&home).unwrap();
    let mut confinement = nlah::sandbox::Confinement::workspace(ws.path());
    confinement.writable.push(repo.clone());
    confinement.readable.push(repo.clone());
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("NLAH_TEST_SECRET_TOKEN", "leak") };
    let v = task::verify(
        &t,
        &repo,
        task::Launcher::Confined {
            confinement: &confinement,
            home: &home,
        },
    )
    .await
    .unwrap();
    assert!(v.passed, "{}", v.output);
    let field = |k: &str| {
        v.output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_string()
    };
    let repo_real = fs::canonicalize(&repo).unwrap();
    assert_eq!(Path::new(&field("cwd")), repo_real);
    let tests = PathBuf::from(field("tests"));
    assert!(!tests.starts_with(&repo_real) && !tests.starts_with(&repo));
    assert!(tests.ends_with("tests"));
    assert_eq!(
        Path::new(&field("reward")).parent(),
        tests.parent(),
        "{}",
        v.output
    );
    assert_eq!(Path::new(&field("home")), home);
    assert_eq!(field("secret"), "unset", "nlah's own variables stay out");
    assert!(v.output.contains("hidden data\nlogs-ok"), "{}", v.output);
    // The temporary copy is gone afterwards.
    assert!(!tests.exists());
}

#[tokio::test]
async fn custom_command_runs_without_tests_folder() {
    let dir = write_tree(&[
        ("t/TASK.md", "x"),
        (
            "t/task.toml",
            "[verifier]\ncommand = \"test -f done.txt && echo found\"\n",
        ),
        ("repo/.keep", ""),
    ]);
    let t = task::load(dir.path().join("t")).unwrap();
    let repo = dir.path().join("repo");
    let v = verify(&t, &repo).await;
    assert!(!v.passed);
    assert_eq!(v.exit_code, Some(1));
    fs::write(repo.join("done.txt"), "").unwrap();
    let v = verify(&t, &repo).await;
    assert!(v.passed);
    assert_eq!(v.output, "found\n");
}

#[tokio::test]
async fn task_without_verifier_is_a_distinct_error() {
    let dir = write_tree(&[("t/TASK.md", "x"), ("t/tests/readme.txt", "no script")]);
    let t = task::load(dir.path().join("t")).unwrap();
    let err = task::verify(&t, dir.path(), task::Launcher::Plain)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::NoVerifier { .. }), "{err}");
    assert!(err.to_string().contains("no verifier"));
}

#[tokio::test]
async fn output_is_capped_keeping_head_and_tail() {
    let script = "echo HEAD-MARK\nfor i in $(seq 1 20000); do echo \"line $i of filler text\"; done\necho TAIL-MARK >&2\n";
    let (_dir, t, repo) = script_task(script, "");
    let v = verify(&t, &repo).await;
    assert!(v.passed);
    assert!(
        v.output.len() <= task::OUTPUT_CAP + 100,
        "{}",
        v.output.len()
    );
    assert!(v.output.starts_with("HEAD-MARK\n"));
    assert!(v.output.ends_with("TAIL-MARK\n"));
    assert!(v.output.contains("bytes omitted"));
}

#[tokio::test]
async fn verify_needs_an_existing_repo() {
    let (dir, t, _repo) = script_task("exit 0\n", "");
    let err = task::verify(&t, &dir.path().join("missing"), task::Launcher::Plain)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

//! Tasks that run in an environment (docs/ENVIRONMENTS.md): the deterministic Tower of Hanoi
//! server of `examples/environments/toy/hanoi.py` (Python's standard library only), driven by
//! the scripted model through `nlah run`: episodes, rewards, invalid moves, faults.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Answer, TestEnv, Turn};

fn hanoi_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/environments/toy/hanoi.py")
}

/// A task folder in the environment's root running the toy Hanoi with `config` (TOML inline
/// table) and `extra` lines appended to `task.toml`.
fn hanoi_task(env: &TestEnv, name: &str, config: &str, extra: &str) -> String {
    let dir = env.root().join("tasks").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("TASK.md"), "# Hanoi\n\nSolve the tower.\n").unwrap();
    std::fs::write(
        dir.join("task.toml"),
        format!(
            "[env]\nname = \"hanoi\"\ncommand = \"exec python3 '{}'\"\nconfig = {config}\n{extra}",
            hanoi_py().display()
        ),
    )
    .unwrap();
    dir.display().to_string()
}

/// The pegs (start, target) and disks the observation in a child's brief names.
fn puzzle(task: &str) -> (char, char, u32) {
    let line = task
        .lines()
        .find(|l| l.starts_with("Tower of Hanoi with "))
        .expect("the brief quotes the observation");
    let n: u32 = line["Tower of Hanoi with ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let from = line
        .split("from peg ")
        .nth(1)
        .unwrap()
        .chars()
        .next()
        .unwrap();
    let to = line
        .split("to peg ")
        .nth(1)
        .unwrap()
        .chars()
        .next()
        .unwrap();
    (from, to, n)
}

/// The optimal moves of an n-disk tower.
fn solution(n: u32, from: char, to: char) -> Vec<(char, char)> {
    fn rec(n: u32, a: char, b: char, c: char, out: &mut Vec<(char, char)>) {
        if n == 0 {
            return;
        }
        rec(n - 1, a, c, b, out);
        out.push((a, c));
        rec(n - 1, b, a, c, out);
    }
    let via = ['A', 'B', 'C']
        .into_iter()
        .find(|p| *p != from && *p != to)
        .unwrap();
    let mut out = Vec::new();
    rec(n, from, via, to, &mut out);
    out
}

pub(crate) fn report(t: &Turn) -> Answer {
    Answer::write(
        &format!("children/{}/RESPONSE.md", t.child),
        "status: done\n\nThe episode is over.\n",
    )
}

/// A player that solves the tower, then reports.
pub(crate) fn solver(t: &Turn) -> Answer {
    let (from, to, n) = puzzle(&t.task);
    let moves = solution(n, from, to);
    match moves.get(t.turn) {
        Some((a, b)) => Answer::call(
            "hanoi__move",
            json!({"from": a.to_string(), "to": b.to_string()}),
        ),
        None => report(t),
    }
}

fn steps(ran: &crate::support::Ran) -> Vec<Value> {
    ran.kinds("environment-step")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_solved_tower_passes_by_its_reward_and_records_the_episode() {
    let env = TestEnv::with_model(solver).await;
    let ran = env
        .nlah_run(&[
            "harness-skills/arena",
            "examples/hanoi/hanoi-3-seed1",
            "--model",
            "openai:mock-1",
        ])
        .await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let r = ran.record();
    assert_eq!(r["outcome"], "passed");
    assert_eq!(r["verifier"]["reward"], 1.0);
    let ep = &r["episode"];
    assert_eq!(ep["environment"], "hanoi");
    assert_eq!(ep["config"], json!({"disks": 3, "seed": 1}));
    assert_eq!(ep["convention"], true);
    assert_eq!(ep["steps"], 7);
    assert_eq!(ep["invalid_actions"], 0);
    assert_eq!(ep["reward"], 1.0);
    assert_eq!(ep["done"], true);
    assert_eq!(ep["end"], "done");
    let s = steps(&ran);
    assert_eq!(s.len(), 7);
    assert_eq!(s[6]["done"], true);
    assert!(
        s.iter()
            .all(|e| e["child"] == "play-1" && e["invalid"] == false)
    );
    // The child was told the environment's tools and its first observation.
    let brief = std::fs::read_to_string(ran.ws.join("children/play-1/TASK.md")).unwrap();
    assert!(brief.contains("## Environment"), "{brief}");
    assert!(brief.contains("`hanoi__move`"), "{brief}");
    assert!(brief.contains("Legal actions now: move "), "{brief}");
    let verdict = std::fs::read_to_string(ran.ws.join("history/verifier-output.txt")).unwrap();
    assert!(verdict.contains("reward 1 >= 1"), "{verdict}");
    let kinds: Vec<String> = ran
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    let started = kinds
        .iter()
        .position(|k| k == "environment-started")
        .unwrap();
    let ended = kinds.iter().position(|k| k == "environment-ended").unwrap();
    let first_stage = kinds.iter().position(|k| k == "stage-started").unwrap();
    assert!(started < first_stage && ended > first_stage);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_invalid_move_in_a_row_ends_the_episode_and_one_does_not() {
    // Turn 0 is illegal (the third peg is empty, so moving from it fails), turn 1 legal, turns 2
    // and 3 illegal: the episode ends at turn 3 with partial reward.
    let env = TestEnv::with_model(|t: &Turn| {
        let (from, to, _) = puzzle(&t.task);
        let empty = ['A', 'B', 'C']
            .into_iter()
            .find(|p| *p != from && *p != to)
            .unwrap();
        let bad = json!({"from": empty.to_string(), "to": from.to_string()});
        match t.turn {
            0 | 2 | 3 => Answer::call("hanoi__move", bad),
            1 => Answer::call("hanoi__act", json!({"action": format!("move {from} {to}")})),
            _ => report(t),
        }
    })
    .await;
    let task = hanoi_task(
        &env,
        "invalid",
        "{ disks = 3, seed = 0 }",
        "[verifier]\nreward_at_least = 1.0\n",
    );
    let ran = env
        .nlah_run(&["harness-skills/arena", &task, "--model", "openai:mock-1"])
        .await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    let r = ran.record();
    assert_eq!(r["outcome"], "failed");
    let ep = &r["episode"];
    assert_eq!(ep["steps"], 4);
    assert_eq!(ep["invalid_actions"], 3);
    assert_eq!(ep["end"], "done");
    let reward = ep["reward"].as_f64().unwrap();
    assert!(reward < 1.0, "{reward}");
    let s = steps(&ran);
    let invalid: Vec<bool> = s.iter().map(|e| e["invalid"].as_bool().unwrap()).collect();
    assert_eq!(invalid, [true, false, true, true]);
    // The first invalid move leaves the episode going; the second in a row ends it.
    assert_eq!(s[0]["done"], false);
    assert_eq!(s[2]["done"], false);
    assert_eq!(s[3]["done"], true);
    assert!(
        s[3]["reason"]
            .as_str()
            .unwrap()
            .contains("second invalid move"),
        "{}",
        s[3]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_after_the_end_are_refused_without_reaching_the_environment() {
    let env = TestEnv::with_model(|t: &Turn| {
        let (from, to, _) = puzzle(&t.task);
        match t.turn {
            0 => Answer::call(
                "hanoi__move",
                json!({"from": from.to_string(), "to": to.to_string()}),
            ),
            1 => Answer::call("hanoi__look", json!({})),
            _ => report(t),
        }
    })
    .await;
    // One disk: the first move solves it.
    let task = hanoi_task(&env, "over", "{ disks = 1, seed = 4 }", "");
    let ran = env
        .nlah_run(&["harness-skills/arena", &task, "--model", "openai:mock-1"])
        .await;
    let r = ran.record();
    // Without `reward_at_least` and hidden tests, the run is unverified.
    assert_eq!(r["outcome"], "unverified", "{}", ran.stderr);
    assert_eq!(r["episode"]["steps"], 1);
    assert_eq!(r["episode"]["reward"], 1.0);
    let transcript =
        std::fs::read_to_string(ran.ws.join("children/play-1/transcript.jsonl")).unwrap();
    assert!(
        transcript.contains("the episode is over: reward 1"),
        "{transcript}"
    );
    assert!(transcript.contains("no action is taken"), "{transcript}");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_steps_ends_the_episode() {
    let env = TestEnv::with_model(|t: &Turn| {
        if t.turn < 5 {
            Answer::call("hanoi__look", json!({}))
        } else {
            report(t)
        }
    })
    .await;
    let task = hanoi_task(&env, "steps", "{ disks = 2 }", "max_steps = 3\n");
    let ran = env
        .nlah_run(&["harness-skills/arena", &task, "--model", "openai:mock-1"])
        .await;
    let ep = &ran.record()["episode"];
    assert_eq!(ep["steps"], 3);
    assert_eq!(ep["end"], "max-steps");
    assert_eq!(steps(&ran).len(), 3);
}

async fn faulty(config: &str, extra: &str) -> (crate::support::Ran, Duration) {
    let env = TestEnv::with_model(|t: &Turn| {
        if t.turn < 4 {
            Answer::call("hanoi__look", json!({}))
        } else {
            report(t)
        }
    })
    .await;
    let task = hanoi_task(&env, "fault", config, extra);
    let started = Instant::now();
    let ran = env
        .nlah_run(&["harness-skills/arena", &task, "--model", "openai:mock-1"])
        .await;
    (ran, started.elapsed())
}

fn assert_fault(ran: &crate::support::Ran, words: &str) {
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    let r = ran.record();
    assert_eq!(r["outcome"], "error");
    assert_eq!(r["error_class"], "environment");
    assert!(
        r["reason"].as_str().unwrap().contains("environment fault"),
        "{}",
        r["reason"]
    );
    let ep = &r["episode"];
    assert_eq!(ep["end"], "fault");
    assert!(
        ep["fault"].as_str().unwrap().contains(words),
        "{}",
        ep["fault"]
    );
    // What was recorded before the fault is kept: the step that went through, then the error.
    assert_eq!(steps(ran).len(), 1);
    let errors = ran.kinds("error");
    assert!(
        errors.iter().any(|e| e["class"] == "environment"),
        "{errors:?}"
    );
    assert!(
        ran.story()
            .last()
            .unwrap()
            .starts_with("run finished: error")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_that_dies_mid_episode_ends_the_run_as_an_infrastructure_error() {
    let (ran, _) = faulty("{ disks = 2, crash_at_step = 2 }", "").await;
    assert_fault(&ran, "crashing at action 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_that_never_answers_is_cut_off_by_its_time_limit() {
    let (ran, took) = faulty("{ disks = 2, hang_at_step = 2 }", "timeout_sec = 1\n").await;
    assert_fault(&ran, "did not answer tools/call within 1 s");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_that_answers_garbage_is_a_fault() {
    let (ran, _) = faulty("{ disks = 2, garbage_at_step = 2 }", "timeout_sec = 1\n").await;
    assert_fault(&ran, "this is not JSON-RPC");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_that_does_not_start_is_an_infrastructure_error() {
    let env = TestEnv::with_model(report).await;
    let dir = env.root().join("tasks/nostart");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("TASK.md"), "# x\n").unwrap();
    std::fs::write(
        dir.join("task.toml"),
        "[env]\ncommand = \"echo starting; exit 7\"\n",
    )
    .unwrap();
    let ran = env
        .nlah_run(&[
            "harness-skills/arena",
            &dir.display().to_string(),
            "--model",
            "openai:mock-1",
        ])
        .await;
    let r = ran.record();
    assert_eq!(r["outcome"], "error");
    assert_eq!(r["error_class"], "environment");
    assert!(
        r["reason"].as_str().unwrap().contains("did not start"),
        "{}",
        r["reason"]
    );
    // No child ran: no model call was made.
    assert_eq!(env.model().served().calls, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_mcp_server_is_an_environment_too() {
    let env = TestEnv::with_model(|t: &Turn| match t.turn {
        0 => Answer::call("tools__echo", json!({"text": "hi"})),
        1 => Answer::call("tools__fail", json!({})),
        _ => report(t),
    })
    .await;
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp/echo_server.py");
    let dir = env.root().join("tasks/plain");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("TASK.md"), "# x\n").unwrap();
    std::fs::write(
        dir.join("task.toml"),
        format!(
            "[env]\nname = \"tools\"\ncommand = \"exec python3 '{}'\"\n\n[verifier]\nreward_at_least = 0.5\n",
            server.display()
        ),
    )
    .unwrap();
    let ran = env
        .nlah_run(&[
            "harness-skills/arena",
            &dir.display().to_string(),
            "--model",
            "openai:mock-1",
        ])
        .await;
    let r = ran.record();
    let ep = &r["episode"];
    assert_eq!(ep["convention"], false);
    assert_eq!(ep["steps"], 2);
    // Without the convention an error result is an invalid action; no reward is reported.
    assert_eq!(ep["invalid_actions"], 1);
    assert_eq!(ep["reward"], Value::Null);
    assert_eq!(ep["end"], "open");
    assert_eq!(r["outcome"], "failed");
    let verdict = std::fs::read_to_string(ran.ws.join("history/verifier-output.txt")).unwrap();
    assert!(verdict.contains("reported no reward"), "{verdict}");
}

#[test]
fn bad_environment_settings_are_reported_at_their_line() {
    let env = TestEnv::new();
    for (toml, words) in [
        (
            "[verifier]\nreward_at_least = 1.0\n",
            "task.toml:2:19: verifier.reward_at_least judges an environment's reward, but the task has no [env]",
        ),
        (
            "[env]\ncommand = \"x\"\nname = \"a b\"\n",
            "task.toml:3:8: env.name \"a b\" must be 1-32 ASCII letters, digits and '-'",
        ),
        (
            "[env]\ncommand = \"  \"\n",
            "task.toml:2:11: env.command is empty",
        ),
        (
            "[env]\ncommand = \"x\"\ntimeout_sec = 0\n",
            "task.toml:3:15: env.timeout_sec must be a positive number of seconds",
        ),
        (
            "[env]\ncommand = \"x\"\nmax_steps = 0\n",
            "task.toml:3:13: env.max_steps must be at least 1",
        ),
        ("[env]\ncommand = \"x\"\nseed = 3\n", "unknown field `seed`"),
    ] {
        let dir = env.root().join("bad");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("TASK.md"), "# x\n").unwrap();
        std::fs::write(dir.join("task.toml"), toml).unwrap();
        let (code, _, stderr) = env.run(&[
            "run",
            "harness-skills/arena",
            &dir.display().to_string(),
            "--model",
            "openai:mock-1",
        ]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(words), "{toml}: {stderr}");
    }
}

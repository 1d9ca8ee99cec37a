//! `nlah synthesize` end to end: the scripted model plays the deterministic toy Tower of Hanoi
//! and, as the refiner, answers with scripts chosen by the test; the search runs real rollouts
//! (ablation cells), commits its nodes in a real repository and writes the best one into the
//! harness.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::env::output;
use crate::support::fsck::assert_fsck;
use crate::support::gitrepo::Repo;
use crate::support::{Answer, TestEnv, Turn};

/// A check that lets every action through.
const ACCEPT_ALL: &str = "import json, sys\nfor line in sys.stdin:\n    req = json.loads(line)\n    print(json.dumps({\"id\": req[\"id\"], \"legal\": True}), flush=True)\n";
/// A script that exits at once.
const CRASHES: &str = "import sys\nraise RuntimeError(\"no check here\")\n";
/// A script that does not parse.
const BROKEN: &str = "def is_legal(:\n    return True\n";

fn right_check() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("harness-skills/arena/scripts/hanoi_verifier.py"),
    )
    .unwrap()
}

/// The refiner's answer that solves the task: the right check and the guidance that goes with it.
fn right_answer() -> Answer {
    answer_with(
        &right_check(),
        "Move only the top disk of a peg that has one.",
    )
}

fn answer_with(script: &str, guidance: &str) -> Answer {
    Answer::text(&format!(
        "Here it is.\n\n```python\n{script}```\n\n```text\n{guidance}\n```\n"
    ))
}

/// The player: first an illegal move (peg B is empty), then, when the check sends it back,
/// the legal first move and one more; it reports once the episode is over.
fn player(t: &Turn) -> Answer {
    let act = |a: &str| Answer::call("hanoi__act", json!({ "action": a }));
    if t.last.contains("[the episode is over") || t.last.contains("actions are spent") {
        return Answer::write(
            &format!("children/{}/RESPONSE.md", t.child),
            "status: done\n",
        );
    }
    if t.turn == 0 {
        return act("move B A");
    }
    if t.last.contains("Illegal action") {
        return act("move A B");
    }
    act("move A C")
}

/// A model that is the player in rollouts and, for the refiner's requests, answers the
/// scripts in `answers` in turn (the last one again when they run out).
async fn model(answers: Vec<Answer>, delay: Duration) -> (TestEnv, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let n = asked.clone();
    let env = TestEnv::with_model(move |t: &Turn| {
        if t.task.starts_with("# Refine the harness") {
            let i = n.fetch_add(1, Ordering::SeqCst);
            return answers[i.min(answers.len() - 1)].clone();
        }
        std::thread::sleep(delay);
        player(t)
    })
    .await;
    (env, asked)
}

/// A repository with the arena harness (without its hand-written code verifier) at `arena/`,
/// and a Hanoi task (3 disks, A to B) in the environment's folder.
fn setup(env: TestEnv) -> (Repo, PathBuf) {
    let mut repo = Repo::in_env(env);
    repo.copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("harness-skills/arena")
            .to_str()
            .unwrap(),
        "arena",
    );
    repo.remove("arena/modules/code-verifier.md");
    repo.commit("the arena harness");
    let dir = repo.env.root().join("tasks/hanoi-3");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("TASK.md"),
        "# Tower of Hanoi\n\nSolve the tower of hanoi.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("task.toml"),
        format!(
            "[env]\nname = \"hanoi\"\ncommand = \"exec python3 '{}'\"\nconfig = {{ disks = 3, seed = 0 }}\n",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/environments/toy/hanoi.py")
                .display()
        ),
    )
    .unwrap();
    (repo, repo_tasks(&dir))
}

fn repo_tasks(task: &Path) -> PathBuf {
    task.parent().unwrap().to_path_buf()
}

fn synthesize_cmd(repo: &Repo, tasks: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = repo.env.nlah();
    cmd.current_dir(repo.path())
        .arg("synthesize")
        .arg("arena")
        .arg(tasks)
        .args(["--model", "openai:mock-1", "--target", "verifier"])
        .args(["--rollouts", "2", "--max-steps", "2", "--concurrency", "1"])
        .arg("--out")
        .arg(out)
        .args(extra);
    cmd
}

async fn synthesize(
    repo: &Repo,
    tasks: &Path,
    out: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    let o = output(synthesize_cmd(repo, tasks, out, extra)).await;
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A search of `iterations` iterations whose refiner answers `answers` in turn, run to its end:
/// the repository, the output folder, stderr, and how often the refiner was asked.
async fn searched(
    answers: Vec<Answer>,
    iterations: &str,
) -> (Repo, PathBuf, String, Arc<AtomicUsize>) {
    let (env, asked) = model(answers, Duration::ZERO).await;
    let (repo, tasks) = setup(env);
    let out = repo.env.root().join("out");
    let (code, stdout, stderr) =
        synthesize(&repo, &tasks, &out, &["--iterations", iterations]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    (repo, out, stderr, asked)
}

fn search(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("search.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_check_is_refined_until_every_action_is_legal() {
    let (env, asked) = model(
        vec![answer_with(ACCEPT_ALL, "Any move will do."), right_answer()],
        Duration::ZERO,
    )
    .await;
    let (repo, tasks) = setup(env);
    let head_before = repo.repo.head().unwrap().target().unwrap();
    let out = repo.env.root().join("out");
    let (code, stdout, stderr) = synthesize(&repo, &tasks, &out, &["--iterations", "5"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    insta::assert_snapshot!("summary", stdout);

    let s = search(&out);
    assert_eq!(s["stop"], "solved");
    let nodes = s["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    // Node 0 let `move B A` through: the environment refused it and the rollout stopped there.
    assert_eq!(
        (nodes[0]["legal"].as_u64(), nodes[0]["illegal"].as_u64()),
        (Some(0), Some(2))
    );
    let f = &nodes[0]["failures"][0];
    assert_eq!(f["action"], "hanoi__act {\"action\":\"move B A\"}");
    assert_eq!(f["check"], "accepted");
    assert!(
        f["observation"].as_str().unwrap().contains("A: 3 2 1"),
        "{f}"
    );
    assert!(f["why"].as_str().unwrap().contains("peg B is empty"), "{f}");
    // So both the check and the proposer were refined, from node 0.
    let it = &s["iterations"][1];
    assert_eq!(
        (it["refined"].as_u64(), it["what"].as_str()),
        (Some(0), Some("check and proposer"))
    );
    assert_eq!(
        (nodes[1]["legal"].as_u64(), nodes[1]["illegal"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(nodes[1]["parent"], 0);
    // Each rollout is a cell of an ablation matrix; its episode ended at the step limit.
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("nodes/1/rollouts/matrix.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["cells"].as_array().unwrap().len(), 2);
    assert_eq!(m["settings"]["stop_at_invalid"], true);
    assert_eq!(m["settings"]["max_actions"], 2);

    // The best node is in the harness, which checks, and the user's HEAD did not move.
    let module = repo.read("arena/modules/synthesized-verifier.md");
    assert!(
        module.contains("- script: `scripts/synthesized_verifier.py`"),
        "{module}"
    );
    assert!(
        module.contains("## Amend role player\n\nMove only the top disk"),
        "{module}"
    );
    assert_eq!(
        repo.read("arena/scripts/synthesized_verifier.py"),
        right_check()
    );
    let (c, o, e) = repo.nlah(&["check", "arena"]);
    assert_eq!(c, 0, "{o}{e}");
    assert_eq!(repo.repo.head().unwrap().target().unwrap(), head_before);

    // The branch holds both nodes, node 1 refined from node 0, scores in the notes.
    let (c, log, e) = repo.nlah(&["log", "arena", "--rev", "nlah/synthesize/arena/verifier"]);
    assert_eq!(c, 0, "{e}");
    assert!(
        log.contains("synthesize verifier: node 1 from node 0, legal-action rate 1.00 (4/4)"),
        "{log}"
    );
    assert!(
        log.contains("synthesize verifier: node 0, legal-action rate 0.00 (0/2)"),
        "{log}"
    );
    let tip = repo
        .repo
        .refname_to_id("refs/heads/nlah/synthesize/arena/verifier")
        .unwrap();
    let note = repo.repo.find_note(Some("refs/notes/nlah"), tip).unwrap();
    let text = note.message().unwrap().to_string();
    assert_eq!(
        text.lines().filter(|l| l.contains("\"run_id\"")).count(),
        2,
        "{text}"
    );
    assert!(text.contains("\"synthesize\":{"), "{text}");
    assert_fsck(&repo.path());
}

/// A check that rejects every action.
const REJECT_ALL: &str = "import json, sys\nfor line in sys.stdin:\n    req = json.loads(line)\n    print(json.dumps({\"id\": req[\"id\"], \"legal\": False, \"reason\": \"not a move\"}), flush=True)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_check_that_rejects_legal_moves_until_the_player_gives_up_is_refined() {
    // The player proposes only legal moves and gives up at the first rejection, as a small
    // model often does: the game never judges the rejected move.
    let refined = Arc::new(AtomicUsize::new(0));
    let n = refined.clone();
    let env = TestEnv::with_model(move |t: &Turn| {
        if t.task.starts_with("# Refine the harness") {
            // First the rejecting check, then the right one.
            return match n.fetch_add(1, Ordering::SeqCst) {
                0 => answer_with(REJECT_ALL, "Any move will do."),
                _ => right_answer(),
            };
        }
        if t.last.contains("Illegal action")
            || t.last.contains("[the episode is over")
            || t.last.contains("actions are spent")
        {
            return Answer::write(
                &format!("children/{}/RESPONSE.md", t.child),
                "status: done\n",
            );
        }
        let action = if t.turn == 0 { "move A B" } else { "move A C" };
        Answer::call("hanoi__act", json!({ "action": action }))
    })
    .await;
    let (repo, tasks) = setup(env);
    let out = repo.env.root().join("out");
    let (code, stdout, stderr) = synthesize(&repo, &tasks, &out, &["--iterations", "3"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(refined.load(Ordering::SeqCst), 2);
    let s = search(&out);
    let n0 = &s["nodes"][0];
    // Each rollout's rejected move counts as an illegal step of the harness, not as nothing.
    assert_eq!(
        (n0["legal"].as_u64(), n0["illegal"].as_u64()),
        (Some(0), Some(2)),
        "{n0}"
    );
    let f = &n0["failures"][0];
    assert_eq!(f["check"], "abandoned");
    assert_eq!(f["action"], "hanoi__act {\"action\":\"move A B\"}");
    assert!(
        f["check_said"].as_str().unwrap().contains("not a move"),
        "{f}"
    );
    // So the check is refined too, and the refiner is told why it is suspect.
    assert_eq!(s["iterations"][1]["what"], "check and proposer");
    let prompt = std::fs::read_to_string(out.join("iterations/1/prompt.md")).unwrap();
    assert!(prompt.contains("the player gave up"), "{prompt}");
    assert_eq!(s["nodes"][1]["legal"], 4);
    assert_eq!(s["stop"], "solved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_scripts_are_recorded_and_the_search_goes_on() {
    let (repo, out, stderr, _) = searched(
        vec![
            Answer::text("I would rather not write code."),
            answer_with(BROKEN, "Think."),
            answer_with(CRASHES, "Think."),
            right_answer(),
        ],
        "6",
    )
    .await;
    let s = search(&out);
    let its = s["iterations"].as_array().unwrap();
    assert_eq!(its[0]["fault"]["kind"], "no-code");
    assert_eq!(its[1]["fault"]["kind"], "syntax");
    assert!(
        its[1]["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{}",
        its[1]
    );
    assert!(
        stderr.contains(
            "iteration 1: a first script → no node (syntax: the script does not parse: line 1:"
        ),
        "{stderr}"
    );
    // The script that exits at once: every rollout ends in a code error, counted as illegal,
    // and the refiner is told so.
    let n0 = &s["nodes"][0];
    assert_eq!(
        (n0["code_errors"].as_u64(), n0["illegal"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(n0["failures"][0]["check"], "crashed");
    let prompt = std::fs::read_to_string(out.join("iterations/3/prompt.md")).unwrap();
    assert!(prompt.contains("The script failed: "), "{prompt}");
    // With its traceback, paths as the script knows them, once for both rollouts.
    assert_eq!(
        prompt.matches("RuntimeError: no check here").count(),
        1,
        "{prompt}"
    );
    assert!(
        prompt.contains("File \"scripts/synthesized_verifier.py\", line 2"),
        "{prompt}"
    );
    assert_eq!(s["nodes"][1]["legal"], 4);
    assert_eq!(s["stop"], "solved");
    assert_fsck(&repo.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refinement_that_repeats_a_node_is_not_rolled_out_again() {
    // The repository holds the folders: kept until the end.
    let (_repo, out, _, asked) = searched(
        vec![
            // A crashing check is rewritten with its guidance; the rewrite is the same again.
            answer_with(CRASHES, "Think."),
            answer_with(CRASHES, "Think."),
            right_answer(),
        ],
        "3",
    )
    .await;
    assert_eq!(asked.load(Ordering::SeqCst), 3);
    let s = search(&out);
    let its = s["iterations"].as_array().unwrap();
    assert_eq!(its[1]["fault"]["kind"], "unchanged", "{}", its[1]);
    assert_eq!(
        its[1]["fault"]["message"],
        "the same script and guidance as node 0"
    );
    assert!(its[1]["node"].is_null(), "{}", its[1]);
    // Two nodes, not three: the repeat was not rolled out.
    assert_eq!(s["nodes"].as_array().unwrap().len(), 2, "{s}");
    assert_eq!(s["nodes"][1]["iteration"], 2);
    assert_eq!(s["nodes"][1]["legal"], 4);
    assert_eq!(s["stop"], "solved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_search_continues_where_it_was() {
    let (env, asked) = model(
        vec![answer_with(ACCEPT_ALL, "Any move will do."), right_answer()],
        Duration::from_millis(150),
    )
    .await;
    let (repo, tasks) = setup(env);
    let out = repo.env.root().join("out");
    let mut cmd = synthesize_cmd(&repo, &tasks, &out, &["--iterations", "5"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Kill it while node 1's rollouts run.
    while !out.join("nodes/1/rollouts/matrix.json").is_file() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "synthesize ended too early"
        );
        assert!(Instant::now() < deadline, "node 1 never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(search(&out)["nodes"][1]["commit"].is_null());
    let (code, stdout, stderr) = synthesize(&repo, &tasks, &out, &["--iterations", "5"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("synthesize: continuing"), "{stderr}");
    // Nothing was asked twice: node 1 existed, only its rollouts were left.
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    let s = search(&out);
    assert_eq!(s["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(s["nodes"][1]["legal"], 4);
    // Rerunning a finished search changes nothing but says so again.
    let (code, stdout2, _) = synthesize(&repo, &tasks, &out, &["--iterations", "5"]).await;
    assert_eq!((code, stdout2.as_str()), (0, stdout.as_str()));
    // Another search is not mixed into this one.
    let (code, _, err) = synthesize(&repo, &tasks, &out, &["--seed", "7"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds a search of target verifier"), "{err}");
    assert_fsck(&repo.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_clear_message() {
    let (env, asked) = model(vec![answer_with(ACCEPT_ALL, "")], Duration::ZERO).await;
    let (repo, tasks) = setup(env);
    let out = repo.env.root().join("out");
    // The harness's own code verifier would conflict with the synthesized one.
    repo.copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("harness-skills/arena/modules")
            .to_str()
            .unwrap(),
        "arena/modules",
    );
    let (code, _, err) = synthesize(&repo, &tasks, &out, &[]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("module `code-verifier` declares a code-verifier layer too"),
        "{err}"
    );
    repo.remove("arena/modules/code-verifier.md");
    // A task without an environment.
    let plain = repo.env.root().join("plain/hello");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("TASK.md"), "# Hello\n\nSay hello.\n").unwrap();
    let (code, _, err) = synthesize(&repo, plain.parent().unwrap(), &out, &[]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("task `hello` has no [env]"), "{err}");
    // A harness outside any repository.
    let loose = repo.env.root().join("loose");
    crate::support::gitrepo::copy_dir(&repo.path().join("arena"), &loose.join("arena"));
    let o = output({
        let mut c = repo.env.nlah();
        c.current_dir(&loose)
            .args(["synthesize", "arena"])
            .arg(&tasks)
            .args(["--model", "openai:mock-1", "--target", "policy", "--out"])
            .arg(&out);
        c
    })
    .await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not inside a git repository"), "{err}");
    assert!(!out.join("search.json").exists());
    // Zero iterations.
    let (code, _, err) = synthesize(&repo, &tasks, &out, &["--iterations", "0"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--iterations must be at least 1"), "{err}");
    assert_eq!(asked.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refiner_that_fails_stops_the_search_cleanly_and_a_rerun_asks_again() {
    let (env, _) = model(vec![answer_with(ACCEPT_ALL, "")], Duration::ZERO).await;
    let (repo, tasks) = setup(env);
    let out = repo.env.root().join("out");
    // No ANTHROPIC_API_KEY reaches nlah: the refiner's call fails.
    let args = ["--refiner", "anthropic:claude-test", "--iterations", "2"];
    let (code, stdout, stderr) = synthesize(&repo, &tasks, &out, &args).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("stopped: the refiner's model failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no node was evaluated; nothing written"),
        "{stdout}"
    );
    let s = search(&out);
    assert_eq!(s["iterations"][0]["fault"]["kind"], "model");
    assert!(
        s["iterations"][0]["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("ANTHROPIC_API_KEY"),
        "{}",
        s["iterations"][0]
    );
    // The rerun asks again instead of counting the failure as an iteration.
    let (code, _, _) = synthesize(&repo, &tasks, &out, &args).await;
    assert_eq!(code, 1);
    assert_eq!(search(&out)["iterations"].as_array().unwrap().len(), 1);
    assert!(
        !repo
            .path()
            .join("arena/modules/synthesized-verifier.md")
            .exists()
    );
}

/// A lister whose only legal action is the illegal `move B A`, and a policy that always plays it.
const WRONG_FILTER: &str = "import json, sys\nfor line in sys.stdin:\n    req = json.loads(line)\n    print(json.dumps({\"id\": req[\"id\"], \"actions\": [\"move B A\"]}), flush=True)\n";
const WRONG_POLICY: &str = "import json, sys\nfor line in sys.stdin:\n    req = json.loads(line)\n    print(json.dumps({\"id\": req[\"id\"], \"action\": \"move B A\"}), flush=True)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lister_and_a_policy_are_synthesized_the_same_way() {
    for (target, wrong, check) in [
        ("filter", WRONG_FILTER, "accepted"),
        ("policy", WRONG_POLICY, "chose"),
    ] {
        let (env, _) = model(
            vec![answer_with(wrong, "Play."), right_answer()],
            Duration::ZERO,
        )
        .await;
        let (repo, tasks) = setup(env);
        let out = repo.env.root().join("out");
        let mut cmd = synthesize_cmd(&repo, &tasks, &out, &["--iterations", "4"]);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut fixed = repo.env.nlah();
        fixed.current_dir(repo.path()).args(
            args.iter()
                .map(|a| if a == "verifier" { target } else { a.as_str() }),
        );
        cmd = fixed;
        let o = output(cmd).await;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert_eq!(o.status.code(), Some(0), "{target}: {stdout}\n{stderr}");
        let s = search(&out);
        assert_eq!(s["stop"], "solved", "{target}");
        assert_eq!(s["nodes"][0]["failures"][0]["check"], check, "{target}");
        assert_eq!(s["iterations"][1]["what"], "check and proposer", "{target}");
        assert_eq!(s["nodes"][1]["legal"], 4, "{target}");
        let module = repo.read(&format!("arena/modules/synthesized-{target}.md"));
        assert!(module.contains(&format!("- mode: {target}\n")), "{module}");
        // A policy proposes every action itself: no guidance for the player.
        assert_eq!(
            module.contains("## Amend role player"),
            target == "filter",
            "{module}"
        );
        let (c, o, e) = repo.nlah(&["check", "arena"]);
        assert_eq!(c, 0, "{target}: {o}{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_cost_stops_the_search_and_every_iteration_says_what_it_cost() {
    let (env, asked) = model(
        vec![answer_with(ACCEPT_ALL, "Any move will do."), right_answer()],
        Duration::ZERO,
    )
    .await;
    let (repo, tasks) = setup(env);
    let prices = repo.env.root().join("prices.toml");
    std::fs::write(
        &prices,
        "[models.\"mock-1\"]\ninput = 10.0\noutput = 10.0\n",
    )
    .unwrap();
    let out = repo.env.root().join("out");
    let mut cmd = synthesize_cmd(
        &repo,
        &tasks,
        &out,
        &["--iterations", "5", "--max-cost", "0.02"],
    );
    cmd.env("NLAH_PRICES", &prices);
    let o = output(cmd).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        stdout.contains("stopped: --max-cost is spent"),
        "{stdout}\n{stderr}"
    );
    let s = search(&out);
    assert_eq!(s["stop"], "max-cost");
    assert!(
        s["iterations"][0]["refiner_cost_usd"].as_f64().unwrap() > 0.0,
        "{s}"
    );
    assert!(s["nodes"][0]["cost_usd"].as_f64().unwrap() > 0.0, "{s}");
    // Never the right script: the money ran out first.
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

/// A node's rollouts run as Slurm job arrays (fake `sbatch` and friends that run the array
/// tasks themselves, tests/fixtures/slurm/bin), and the search reaches the same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollouts_run_on_slurm() {
    let (env, asked) = model(
        vec![answer_with(ACCEPT_ALL, "Any move will do."), right_answer()],
        Duration::ZERO,
    )
    .await;
    let (repo, tasks) = setup(env);
    let state_dir = repo.env.root().join("slurm-state");
    let out = repo.env.root().join("out");
    let mut cmd = synthesize_cmd(
        &repo,
        &tasks,
        &out,
        &[
            "--iterations",
            "5",
            "--executor",
            "slurm",
            "--poll-ms",
            "100",
        ],
    );
    crate::support::fake_slurm::use_fake_slurm(&mut cmd, &state_dir, 100);
    let o = output(cmd).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    let s = search(&out);
    assert_eq!(s["stop"], "solved");
    let sbatch = crate::support::fake_slurm::sbatch_calls(&state_dir);
    assert!(sbatch.len() >= 2, "one array per node: {sbatch:?}");
}

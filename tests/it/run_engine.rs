//! `nlah run` end to end against a scripted model on a real loopback HTTP server: the
//! workspace, its history and git story, usage accounting, gates, budgets and bad input.

use crate::support::{Answer, TestEnv, Turn, diligent};

#[tokio::test(flavor = "multi_thread")]
async fn a_basic_run_leaves_a_complete_workspace() {
    let env = TestEnv::with_model(|t: &Turn| {
        if t.turn == 0 {
            return Answer::write("artifacts/result.txt", "42\n");
        }
        diligent(&Turn {
            turn: t.turn - 1,
            ..t.clone()
        })
    })
    .await;
    let ran = env.run_basic("openai:mock-1").await;
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
    for f in [
        "TASK.md",
        "SKILL.md",
        "RESPONSE.md",
        "run.json",
        "history/events.jsonl",
        "children/execute-1/TASK.md",
        "children/execute-1/RESPONSE.md",
        "children/execute-1/transcript.jsonl",
        "artifacts/result.txt",
    ] {
        assert!(ran.exists(f), "{f} missing");
    }
    let r = ran.record();
    assert_eq!(r["outcome"], "passed");
    assert_eq!(r["harness"]["name"], "basic");
    assert_eq!(r["verifier"]["passed"], true);
    // Every token the server reported is accounted, and nothing else.
    let served = env.model().served();
    assert_eq!(r["metrics"]["total"]["calls"], served.calls);
    assert_eq!(r["metrics"]["total"]["input_tokens"], served.prompt_tokens);
    assert_eq!(
        r["metrics"]["total"]["output_tokens"],
        served.completion_tokens
    );
    assert_eq!(
        r["metrics"]["children"]["input_tokens"], served.prompt_tokens,
        "basic has no runtime-owned calls"
    );
    // The story of the run, in git: one commit per transition. The child's end, the stage's and
    // the transition they lead to are one commit, since nothing waited between them.
    let story = ran.story();
    assert_eq!(story.len(), 4, "{story:?}");
    assert!(story[0].starts_with("run started: basic "), "{story:?}");
    assert!(story[1].starts_with("child execute-1 started"), "{story:?}");
    assert!(
        story[2].starts_with("stage execute attempt 1 passed"),
        "{story:?}"
    );
    let body: Vec<String> = ran.messages()[2]
        .lines()
        .skip(2)
        .map(str::to_string)
        .collect();
    assert_eq!(body.len(), 2, "{body:?}");
    assert!(
        body[0].starts_with("child execute-1 finished: done"),
        "{body:?}"
    );
    assert!(body[1].starts_with("transition execute -> "), "{body:?}");
    assert!(story[3].starts_with("run finished: passed"), "{story:?}");
    let kinds: Vec<String> = ran
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    for k in [
        "run-started",
        "stage-started",
        "child-started",
        "model-call",
        "tool-call",
        "child-finished",
        "stage-finished",
        "transition",
        "verifier-finished",
        "run-finished",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} event in {kinds:?}");
    }
    // The hidden tests never entered the workspace; no key reached it.
    assert!(!ran.exists("tests"));
    assert!(ran.stdout.contains("PASSED"), "{}", ran.stdout);
}

/// A child's shell starts while its first model call is in flight, so that its first command
/// does not wait for `bash` and its confinement: the shell that runs it is older than the model
/// took to answer. Bash's `SECONDS` counts whole seconds from its start: after 2.2 s it says 2 or
/// 3, where a shell started for the command (a few ms before it) would say 0 or 1.
#[tokio::test(flavor = "multi_thread")]
async fn a_childs_shell_starts_beside_its_first_model_call() {
    let probe = tempfile::tempdir().unwrap();
    assert!(
        nlah::sandbox::session::ShellSession::available(&nlah::sandbox::Confinement::workspace(
            probe.path()
        )),
        "this test needs shell sessions, which need PID namespaces (root, or user namespaces)"
    );
    let env = TestEnv::with_model(|t: &Turn| match t.turn {
        0 => {
            // The model thinks for 2.2 s before its first command.
            std::thread::sleep(std::time::Duration::from_millis(2200));
            Answer::shell("echo shell-age=$SECONDS; echo 42 > artifacts/result.txt")
        }
        n => diligent(&Turn {
            turn: n - 1,
            ..t.clone()
        }),
    })
    .await;
    let ran = env.run_basic("openai:mock-1").await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let mut transcripts = String::new();
    for child in std::fs::read_dir(ran.ws.join("children")).unwrap() {
        let t = child.unwrap().path().join("transcript.jsonl");
        transcripts.push_str(&std::fs::read_to_string(t).unwrap_or_default());
    }
    let age = regex::Regex::new(r"shell-age=(\d+)")
        .unwrap()
        .captures(&transcripts)
        .and_then(|c| c[1].parse::<u32>().ok());
    assert!(matches!(age, Some(2..)), "{transcripts}");
}

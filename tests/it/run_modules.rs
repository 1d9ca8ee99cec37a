//! Each of the six `swe` modules, on and off, on a real run: the difference shows in the
//! workspace history (events, children, branches, files).

use crate::support::{Answer, Ran, TestEnv, Turn, diligent};

async fn swe(with: &[&str], policy: impl Fn(&Turn) -> Answer + Send + Sync + 'static) -> Ran {
    let env = TestEnv::with_model(policy).await;
    let mut args = vec![
        "harness-skills/swe",
        "tests/fixtures/tasks/py-ok",
        "--model",
        "openai:mock-1",
    ];
    for m in with {
        args.extend(["--with", m]);
    }
    let ran = env.nlah_run(&args).await;
    assert!(
        ran.code == 0 || ran.code == 1,
        "exit {}:\n{}\n{}",
        ran.code,
        ran.stdout,
        ran.stderr
    );
    let served = env.model().served();
    let r = ran.record();
    assert_eq!(
        r["metrics"]["total"]["input_tokens"], served.prompt_tokens,
        "usage equals what the server reported"
    );
    assert_eq!(r["metrics"]["total"]["calls"], served.calls);
    ran
}

fn stages(ran: &Ran) -> Vec<String> {
    ran.kinds("stage-started")
        .iter()
        .map(|e| e["stage"].as_str().unwrap().to_string())
        .collect()
}

fn gates_passed(ran: &Ran) -> Vec<String> {
    ran.kinds("gate-passed")
        .iter()
        .map(|e| e["gate"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn base_swe_runs_plan_execute_verify() {
    let ran = swe(&[], diligent).await;
    assert_eq!(ran.record()["outcome"], "passed", "{}", ran.stderr);
    assert_eq!(stages(&ran), ["plan", "execute", "verify"]);
    assert!(
        gates_passed(&ran)
            .iter()
            .any(|g| g.contains("run-tests.sh"))
    );
    assert!(
        ran.exists("artifacts/test-output.txt"),
        "the harness script ran in the workspace"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verifier_module_adds_a_separate_review_whose_verdict_is_a_gate() {
    let off = swe(&[], diligent).await;
    let on = swe(&["verifier"], diligent).await;
    assert!(!stages(&off).contains(&"review".to_string()));
    assert!(
        stages(&on).contains(&"review".to_string()),
        "{:?}",
        stages(&on)
    );
    assert!(
        gates_passed(&on)
            .iter()
            .any(|g| g == "verifier `verifier` approves"),
        "{:?}\n{:#?}",
        gates_passed(&on),
        on.events()
            .iter()
            .filter(|e| e.to_string().contains("review"))
            .collect::<Vec<_>>()
    );
    // The verifier child could not see the executor's folder.
    let transcript =
        std::fs::read_to_string(on.ws.join("children/review-1/transcript.jsonl")).unwrap();
    assert!(transcript.contains("verdict: pass"));
}

#[tokio::test(flavor = "multi_thread")]
async fn self_evolution_leaves_a_reflection_the_next_attempt_reads() {
    // The first execute attempt answers without doing anything; the second is diligent.
    let lazy_first = |t: &Turn| {
        if t.child == "execute-1" {
            Answer::text("I think it is fine.")
        } else {
            diligent(t)
        }
    };
    let off = swe(&[], lazy_first).await;
    let on = swe(&["self-evolution"], lazy_first).await;
    assert!(off.kinds("reflection").is_empty());
    let refl = on.kinds("reflection");
    assert_eq!(refl.len(), 1, "{:?}", on.events());
    let path = refl[0]["path"].as_str().unwrap();
    let text = std::fs::read_to_string(on.ws.join(path)).unwrap();
    assert!(text.contains("no-response"), "{text}");
    assert!(text.len() <= 4000);
    let second = std::fs::read_to_string(on.ws.join("children/execute-2/TASK.md")).unwrap();
    assert!(second.contains("What the previous attempt learned"));
    let second_off = std::fs::read_to_string(off.ws.join("children/execute-2/TASK.md")).unwrap();
    assert!(!second_off.contains("What the previous attempt learned"));
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_candidate_search_runs_parallel_candidates_on_branches() {
    let on = swe(&["multi-candidate-search"], diligent).await;
    let sel = on.kinds("candidate-selected");
    assert_eq!(sel.len(), 1, "{:?}", on.events());
    // The diligent ranker names the last candidate first.
    assert_eq!(sel[0]["child"], "execute-1-c3");
    for k in 1..=3 {
        assert!(
            on.ws
                .join(format!("children/execute-1-c{k}/RESPONSE.md"))
                .is_file(),
            "candidate {k} kept"
        );
    }
    let repo = git2::Repository::open(&on.ws).unwrap();
    let branches: Vec<String> = repo
        .branches(None)
        .unwrap()
        .map(|b| b.unwrap().0.name().unwrap().unwrap().to_string())
        .collect();
    for k in 1..=3 {
        assert!(
            branches.contains(&format!("candidates/execute-1-c{k}")),
            "{branches:?}"
        );
    }
    assert!(
        !on.ws.join(".candidates").exists(),
        "worktrees are cleaned up"
    );
    let r = on.record();
    assert!(
        r["metrics"]["parent"]["calls"].as_u64().unwrap() > 0,
        "the ranking is the runtime's own call"
    );
    let off = swe(&[], diligent).await;
    assert!(off.kinds("candidate-selected").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamic_orchestration_lets_a_conductor_choose_within_the_declared_stages() {
    // The conductor first names a stage that does not exist, then finishes.
    let policy = |t: &Turn| {
        if t.child == "orchestrator-1" && t.turn == 0 {
            return Answer::write(
                "children/orchestrator-1/RESPONSE.md",
                "status: done\nnext: deploy\n",
            );
        }
        diligent(t)
    };
    let on = swe(&["dynamic-orchestration"], policy).await;
    let choices = on.kinds("orchestrator-choice");
    assert!(choices.len() >= 2, "{choices:?}");
    assert_eq!(choices[0]["choice"], "deploy");
    assert_eq!(
        choices[0]["accepted"], false,
        "a stage the harness does not declare is refused"
    );
    assert_eq!(choices[1]["accepted"], true);
    assert!(on.record()["metrics"]["parent"]["calls"].as_u64().unwrap() >= 2);
    let off = swe(&[], diligent).await;
    assert!(off.kinds("orchestrator-choice").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_backed_answering_checks_pointers() {
    let on = swe(&["evidence-backed-answering"], diligent).await;
    assert!(
        gates_passed(&on)
            .iter()
            .any(|g| g.contains("cites evidence")),
        "{:?}",
        gates_passed(&on)
    );
    // Evidence pointing at nothing fails the gate.
    let liar = |t: &Turn| {
        if t.child.starts_with("execute") && t.turn == 1 {
            return Answer::write(
                "artifacts/evidence.md",
                "Fixed, see `repo/does-not-exist.txt`.\n",
            );
        }
        diligent(t)
    };
    let bad = swe(&["evidence-backed-answering"], liar).await;
    let failed: Vec<String> = bad
        .kinds("gate-failed")
        .iter()
        .map(|e| format!("{} {}", e["gate"], e["reason"]))
        .collect();
    assert!(
        failed
            .iter()
            .any(|f| f.contains("cites evidence") && f.contains("does-not-exist")),
        "{failed:?}"
    );
    let off = swe(&[], diligent).await;
    assert!(
        !gates_passed(&off)
            .iter()
            .any(|g| g.contains("cites evidence"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn file_backed_state_persists_and_commits_named_files() {
    let on = swe(&["file-backed-state"], diligent).await;
    let repo = git2::Repository::open(&on.ws).unwrap();
    let tree = repo.head().unwrap().peel_to_tree().unwrap();
    assert!(
        tree.get_path(std::path::Path::new("artifacts/state/progress.md"))
            .is_ok()
    );
    let off = swe(&[], diligent).await;
    assert!(!off.ws.join("artifacts/state/progress.md").exists());
}

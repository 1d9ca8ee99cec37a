//! The interface layers (`## Interface layers`, the modules of `harness-skills/arena`) on the
//! deterministic Tower of Hanoi with the scripted model: what each layer does, each threshold's
//! boundary, what is recorded, and what `nlah check` says about bad layer modules.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{Answer, Ran, TestEnv, Turn};

fn hanoi_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/environments/toy/hanoi.py")
}

/// A Hanoi task (A to B for seed 0) in the environment's root.
fn task(env: &TestEnv, name: &str, disks: u32) -> String {
    let dir = env.root().join("tasks").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("TASK.md"),
        "# Tower of Hanoi\n\nSolve the tower of hanoi.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("task.toml"),
        format!(
            "[env]\nname = \"hanoi\"\ncommand = \"exec python3 '{}'\"\nconfig = {{ disks = {disks}, seed = 0 }}\n",
            hanoi_py().display()
        ),
    )
    .unwrap();
    dir.display().to_string()
}

/// A copy of the arena harness with `edits` (module file, from, to) applied.
fn arena(env: &TestEnv, edits: &[(&str, &str, &str)]) -> String {
    let to = env.root().join("arena");
    crate::support::gitrepo::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("harness-skills/arena"),
        &to,
    );
    for (file, from, with) in edits {
        let p = to.join("modules").join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&p, text.replace(from, with)).unwrap();
    }
    to.display().to_string()
}

/// The player's last call (`arena`'s player has no built-in tool but `finish`).
fn report(_: &Turn) -> Answer {
    Answer::call(
        "finish",
        json!({"status": "done", "report": "the episode is over"}),
    )
}

async fn run(env: &TestEnv, harness: &str, task: &str, with: &[&str], extra: &[&str]) -> Ran {
    let mut args = vec![harness, task, "--model", "openai:mock-1"];
    for m in with {
        args.extend(["--with", m]);
    }
    args.extend(extra);
    env.nlah_run(&args).await
}

fn interventions(ran: &Ran) -> Vec<Value> {
    ran.kinds("intervention")
}

fn steps(ran: &Ran) -> Vec<Value> {
    ran.kinds("environment-step")
}

fn policy(answers: Vec<Answer>) -> impl Fn(&Turn) -> Answer + Send + Sync {
    move |t: &Turn| answers.get(t.turn).cloned().unwrap_or_else(|| report(t))
}

fn mv(from: &str, to: &str) -> Answer {
    Answer::call("hanoi__move", json!({"from": from, "to": to}))
}

fn act(action: &str) -> Answer {
    Answer::call("hanoi__act", json!({"action": action}))
}

#[tokio::test(flavor = "multi_thread")]
async fn realization_repairs_near_miss_names_types_and_action_strings() {
    let env = TestEnv::with_model(policy(vec![
        // `frm` is `from`, a lower-case enum value is upper-cased.
        Answer::call("hanoi__move", json!({"frm": "a", "to": "C"})),
        // Filler words around one legal action.
        act("move disk from A to B"),
        // A tool name with a typo.
        Answer::call("hanoi_mvoe", json!({"from": "C", "to": "B"})),
    ]))
    .await;
    let t = task(&env, "repair", 2);
    let ran = run(
        &env,
        "harness-skills/arena",
        &t,
        &["action-realization"],
        &[],
    )
    .await;
    let r = ran.record();
    assert_eq!(r["outcome"], "unverified", "{}", ran.stderr);
    // All three reached the environment repaired, and solved the 2-disk tower (A to B).
    let s = steps(&ran);
    assert_eq!(s.len(), 3, "{s:?}");
    assert!(s.iter().all(|e| e["invalid"] == false), "{s:?}");
    assert_eq!(r["episode"]["reward"], 1.0);
    let iv = interventions(&ran);
    assert_eq!(iv.len(), 3, "{iv:#?}");
    assert_eq!(iv[0]["rule"], "argument-name,type-coercion");
    assert_eq!(iv[0]["after"], "hanoi__move {\"from\":\"A\",\"to\":\"C\"}");
    assert_eq!(iv[1]["rule"], "legal-action");
    assert_eq!(iv[1]["after"], "hanoi__act {\"action\":\"move A B\"}");
    assert_eq!(iv[2]["rule"], "tool-name");
    // The report (`finish`) is not an action.
    let m = &r["interface"];
    assert_eq!(m["actions"], 3);
    assert_eq!(m["repaired"], 3);
    assert_eq!(m["legal_first_try"], 0);
    assert_eq!(m["legal_final"], 3);
    assert_eq!(m["blocked"], 0);
    assert_eq!(m["interventions"], 3);
    // `nlah inspect` shows them on the timeline.
    let (code, stdout, stderr) = env.run(&["inspect", &ran.ws.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("action-realization legal-action: hanoi__act {\"action\":\"move disk from A to B\"} → hanoi__act {\"action\":\"move A B\"}"),
        "{stdout}"
    );
}

/// An illegal action every turn (peg C is empty at the start).
fn illegal_twice() -> Vec<Answer> {
    vec![act("move C A"), act("move C B"), mv("A", "C")]
}

#[tokio::test(flavor = "multi_thread")]
async fn realization_blocks_from_the_nth_invalid_action_in_a_row() {
    // block after 2 (the default): the first illegal action is sent (the environment forgives
    // one), the second is blocked before it can end the game.
    let env = TestEnv::with_model(policy(illegal_twice())).await;
    let t = task(&env, "block2", 3);
    let ran = run(
        &env,
        "harness-skills/arena",
        &t,
        &["action-realization"],
        &[],
    )
    .await;
    let s = steps(&ran);
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0]["invalid"], true);
    assert_eq!(
        s[1]["invalid"], false,
        "the third action, legal, went through"
    );
    let iv = interventions(&ran);
    assert_eq!(iv[0]["rule"], "illegal-action-passed");
    assert_eq!(iv[1]["rule"], "illegal-action");
    assert!(
        iv[1]["message"]
            .as_str()
            .unwrap()
            .contains("Legal actions now: move A B, move A C"),
        "{}",
        iv[1]
    );
    assert_eq!(ran.record()["episode"]["end"], "open");
    let m = &ran.record()["interface"];
    // Three moves: one refused, one blocked.
    assert_eq!(
        (m["actions"].clone(), m["blocked"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(m["legal_final"], 1);
    assert_eq!(m["legal_first_try"], 1);

    // Without the layer the same model loses the game at its second illegal action.
    let env = TestEnv::with_model(policy(illegal_twice())).await;
    let t = task(&env, "nolayer", 3);
    let ran = run(&env, "harness-skills/arena", &t, &[], &[]).await;
    assert_eq!(ran.record()["episode"]["end"], "done");
    assert!(ran.record()["episode"]["reward"].as_f64().unwrap() < 1.0);
    // Measured like the arms with layers: all three moves refused (the last after the end).
    let m = &ran.record()["interface"];
    assert_eq!(
        (m["actions"].clone(), m["legal_first_try"].clone()),
        (json!(3), json!(0))
    );
    assert_eq!(m["interventions"], 0);

    // block after 1: the first illegal action is blocked already.
    let env = TestEnv::with_model(policy(illegal_twice())).await;
    let h = arena(
        &env,
        &[("action-realization.md", "block after: 2", "block after: 1")],
    );
    let t = task(&env, "block1", 3);
    let ran = run(&env, &h, &t, &["action-realization"], &[]).await;
    let s = steps(&ran);
    assert_eq!(s.len(), 1, "only the legal action reached the game: {s:?}");
    assert_eq!(ran.record()["interface"]["blocked"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn realization_similarity_threshold_decides_a_typo_repair() {
    // "mvoe A B" against the legal "move A B": one swap in eight characters, similarity 0.875.
    for (similarity, repaired) in [("0.875", true), ("0.9", false)] {
        let env = TestEnv::with_model(policy(vec![act("mvoe A B")])).await;
        let h = arena(
            &env,
            &[(
                "action-realization.md",
                "similarity: 0.55",
                &format!("similarity: {similarity}"),
            )],
        );
        let t = task(&env, "sim", 3);
        let ran = run(&env, &h, &t, &["action-realization"], &[]).await;
        let rules: Vec<String> = interventions(&ran)
            .iter()
            .map(|e| e["rule"].as_str().unwrap().to_string())
            .collect();
        if repaired {
            assert_eq!(rules, ["legal-action"], "{similarity}");
        } else {
            assert_eq!(rules, ["illegal-action-passed"], "{similarity}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn realization_makes_a_call_written_as_text() {
    let env = TestEnv::with_model(policy(vec![Answer::text("My move: move A B")])).await;
    let t = task(&env, "text", 1);
    let ran = run(
        &env,
        "harness-skills/arena",
        &t,
        &["action-realization"],
        &[],
    )
    .await;
    let iv = interventions(&ran);
    assert_eq!(iv[0]["rule"], "text-tool-call", "{iv:?}");
    assert_eq!(iv[0]["after"], "hanoi__act {\"action\":\"move A B\"}");
    assert_eq!(ran.record()["episode"]["reward"], 1.0);

    // Without the layer the text is the child's last word.
    let env = TestEnv::with_model(policy(vec![Answer::text("My move: move A B")])).await;
    let t = task(&env, "text0", 1);
    let ran = run(&env, "harness-skills/arena", &t, &[], &[]).await;
    assert_eq!(ran.record()["episode"]["steps"], 0);
}

fn looks(n: usize) -> Vec<Answer> {
    (0..n)
        .map(|_| Answer::call("hanoi__look", json!({})))
        .collect()
}

fn regulation_rules(ran: &Ran) -> Vec<(String, String)> {
    interventions(ran)
        .iter()
        .filter(|e| e["layer"] == "trajectory-regulation")
        .map(|e| {
            (
                e["rule"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A run of the bundled arena harness with trajectory regulation on.
async fn regulated(env: &TestEnv, task: &str, extra: &[&str]) -> Ran {
    run(
        env,
        "harness-skills/arena",
        task,
        &["trajectory-regulation"],
        extra,
    )
    .await
}

fn assert_no_regulation(ran: &Ran) {
    let rules = regulation_rules(ran);
    assert!(rules.is_empty(), "{rules:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn regulation_escalates_from_soft_to_hard_to_blocking_repeats() {
    let env = TestEnv::with_model(policy(looks(7))).await;
    let t = task(&env, "loop", 3);
    let ran = run(
        &env,
        "harness-skills/arena",
        &t,
        &["trajectory-regulation"],
        &[],
    )
    .await;
    let rules = regulation_rules(&ran);
    // Calls 1–2 pass; call 3 is the third identical one: soft, soft, hard, then blocking.
    let kinds: Vec<&str> = rules.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "identical-calls",
            "identical-calls",
            "identical-calls",
            "identical-calls",
            "blocked-repeat"
        ],
        "{rules:#?}"
    );
    assert!(rules[0].1.ends_with("Consider a different approach."));
    assert!(rules[1].1.ends_with("Consider a different approach."));
    assert!(rules[2].1.contains("not making progress"));
    assert!(rules[3].1.contains("now blocked"));
    // Six looks reached the environment; the seventh was blocked.
    assert_eq!(steps(&ran).len(), 6);
    let m = &ran.record()["interface"];
    assert_eq!(m["regulation"]["identical-calls"], 4);
    assert_eq!(m["blocked"], 1);
    // The model saw the messages in its tool results.
    let transcript =
        std::fs::read_to_string(ran.ws.join("children/play-1/transcript.jsonl")).unwrap();
    assert!(transcript.contains(
        "[trajectory-regulation] Duplicate action detected (3 consecutive identical calls)"
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn regulation_thresholds_are_boundaries() {
    // identical calls: 4 — three looks say nothing, the fourth is flagged.
    for (n, flagged) in [(3, false), (4, true)] {
        let env = TestEnv::with_model(policy(looks(n))).await;
        let h = arena(
            &env,
            &[
                (
                    "trajectory-regulation.md",
                    "identical calls: 3",
                    "identical calls: 4",
                ),
                (
                    "trajectory-regulation.md",
                    "repeat count: 3",
                    "repeat count: 4",
                ),
            ],
        );
        let t = task(&env, "ident", 3);
        let ran = run(&env, &h, &t, &["trajectory-regulation"], &[]).await;
        assert_eq!(!regulation_rules(&ran).is_empty(), flagged, "{n} looks");
    }
    // The same observation from different calls: look, move there and back, look…
    let back_and_forth = || {
        vec![
            mv("A", "C"),
            mv("C", "A"),
            mv("A", "C"),
            mv("C", "A"),
            mv("A", "C"),
            mv("C", "A"),
        ]
    };
    // Oscillation over 6 with count 5 (the default) — but the observation also counts moves,
    // so each state is new: nothing to say.
    let env = TestEnv::with_model(policy(back_and_forth())).await;
    let t = task(&env, "osc", 3);
    let ran = regulated(&env, &t, &[]).await;
    assert_no_regulation(&ran);

    // steps warning: 7 with --max-steps 10 — the warning comes once fewer than 7 turns remain.
    let env = TestEnv::with_model(policy(vec![
        mv("A", "C"),
        mv("A", "B"),
        mv("C", "B"),
        mv("A", "C"),
    ]))
    .await;
    let t = task(&env, "warn", 3);
    let ran = regulated(&env, &t, &["--max-steps", "10"]).await;
    let rules = regulation_rules(&ran);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].0, "steps-running-out");
    assert!(
        rules[0]
            .1
            .starts_with("[trajectory-regulation] Only 6 turns are left"),
        "{rules:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn regulation_refuses_finish_while_the_episode_is_open_as_often_as_configured() {
    let quit_then_move = || {
        policy(vec![
            Answer::call("finish", json!({"status": "failed", "report": "I give up"})),
            mv("A", "C"),
        ])
    };
    // Off by default: the first `finish` ends the child with the game unplayed.
    let env = TestEnv::with_model(quit_then_move()).await;
    let t = task(&env, "quit", 3);
    let ran = regulated(&env, &t, &[]).await;
    assert_no_regulation(&ran);
    assert!(steps(&ran).is_empty());

    // One refusal: the quit is refused with the episode's tools named, the player moves, and
    // its next `finish` (the refusals spent) ends the child with the episode still open.
    let env = TestEnv::with_model(quit_then_move()).await;
    let h = arena(
        &env,
        &[(
            "trajectory-regulation.md",
            "- soft messages: 2",
            "- soft messages: 2\n- open episode refusals: 1",
        )],
    );
    let t = task(&env, "quit", 3);
    let ran = run(&env, &h, &t, &["trajectory-regulation"], &[]).await;
    let rules = regulation_rules(&ran);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].0, "episode-open");
    assert!(
        rules[0].1.contains("The episode is still open") && rules[0].1.contains("`hanoi__move`"),
        "{rules:?}"
    );
    assert_eq!(steps(&ran).len(), 1);
    let rec = ran.record();
    assert_eq!(
        rec["interface"]["regulation"]["episode-open"], 1,
        "{}",
        rec["interface"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn regulation_catches_a_repeated_failing_shell_command_too() {
    // The layers apply to the built-in tools: the basic harness's executor with the layer.
    let env = TestEnv::with_model(policy(vec![
        Answer::shell("cat missing.txt"),
        Answer::shell("cat missing.txt"),
        Answer::shell("cat missing.txt"),
    ]))
    .await;
    let h = env.root().join("basic");
    crate::support::gitrepo::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("harness-skills/basic"),
        &h,
    );
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("harness-skills/arena/modules/trajectory-regulation.md"),
        h.join("modules/trajectory-regulation.md"),
    )
    .unwrap();
    let ran = env
        .nlah_run(&[
            &h.display().to_string(),
            "tests/fixtures/tasks/write-result",
            "--model",
            "openai:mock-1",
            "--with",
            "trajectory-regulation",
        ])
        .await;
    let rules = regulation_rules(&ran);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].0, "identical-calls");
}

#[tokio::test(flavor = "multi_thread")]
async fn contract_notes_reach_the_tool_descriptions_within_their_word_cap() {
    let env = TestEnv::with_model(policy(vec![])).await;
    let h = arena(
        &env,
        &[("contract-notes.md", "max words: 20", "max words: 5")],
    );
    let t = task(&env, "notes", 3);
    let ran = run(&env, &h, &t, &["contract-notes"], &[]).await;
    let req = &env.model().requests()[0];
    let tools = req["tools"].as_array().unwrap();
    let desc = |name: &str| {
        tools
            .iter()
            .find(|t| t["function"]["name"] == name)
            .map(|t| t["function"]["description"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(
        desc("hanoi__move").ends_with("\nNote: Pegs are the letters A,"),
        "{}",
        desc("hanoi__move")
    );
    assert!(!desc("finish").contains("Note:"));
    let iv = interventions(&ran);
    let noted: Vec<&str> = iv.iter().map(|e| e["before"].as_str().unwrap()).collect();
    assert_eq!(noted, ["hanoi__move", "hanoi__act"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn procedural_skills_put_the_best_matching_skill_in_the_brief() {
    let env = TestEnv::with_model(policy(vec![])).await;
    let t = task(&env, "skills", 3);
    let ran = run(
        &env,
        "harness-skills/arena",
        &t,
        &["procedural-skills"],
        &[],
    )
    .await;
    let brief = std::fs::read_to_string(ran.ws.join("children/play-1/TASK.md")).unwrap();
    let skills = brief.split("## Skills").nth(1).expect("a skills section");
    assert!(skills.contains("- tower-of-hanoi: "), "{skills}");
    assert!(!skills.contains("guess-the-number"), "top k is 1: {skills}");
    let line = skills
        .lines()
        .find(|l| l.starts_with("- tower-of-hanoi"))
        .unwrap();
    assert_eq!(
        line.trim_start_matches("- tower-of-hanoi: ")
            .split_whitespace()
            .count(),
        35
    );
    assert_eq!(ran.record()["interface"]["skills_retrieved"], 1);

    // top k: 2 and max words: 5.
    let env = TestEnv::with_model(policy(vec![])).await;
    let h = arena(
        &env,
        &[
            ("procedural-skills.md", "top k: 1", "top k: 2"),
            ("procedural-skills.md", "max words: 35", "max words: 5"),
        ],
    );
    let t = task(&env, "skills2", 3);
    let ran = run(&env, &h, &t, &["procedural-skills"], &[]).await;
    let brief = std::fs::read_to_string(ran.ws.join("children/play-1/TASK.md")).unwrap();
    let skills = brief.split("## Skills").nth(1).unwrap();
    let lines: Vec<&str> = skills.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(lines.len(), 2, "{skills}");
    assert_eq!(lines[0], "- tower-of-hanoi: Solving a Tower of Hanoi");

    // tag: task — only skills carrying one of the task's own tags.
    let env = TestEnv::with_model(policy(vec![])).await;
    let h = arena(
        &env,
        &[(
            "procedural-skills.md",
            "max words: 35",
            "max words: 35\n- tag: task",
        )],
    );
    let t = task(&env, "tagged", 3);
    let toml = Path::new(&t).join("task.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!("{text}\n[metadata]\ntags = [\"board-game\"]\n"),
    )
    .unwrap();
    let ran = run(&env, &h, &t, &["procedural-skills"], &[]).await;
    let brief = std::fs::read_to_string(ran.ws.join("children/play-1/TASK.md")).unwrap();
    let skills = brief.split("## Skills").nth(1).expect("a skills section");
    assert!(skills.contains("- tic-tac-toe: "), "{skills}");
    assert!(!skills.contains("tower-of-hanoi"), "{skills}");
}

#[test]
fn bad_layer_modules_are_check_errors_at_their_line() {
    let env = TestEnv::new();
    let h = arena(
        &env,
        &[
            (
                "action-realization.md",
                "### action-realization",
                "### action-realisation",
            ),
            (
                "trajectory-regulation.md",
                "repeat window: 4",
                "repeat window: 40",
            ),
            ("contract-notes.md", "max words: 20", "max words: many"),
        ],
    );
    let (code, stdout, stderr) = env.run(&["check", &h]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let out = format!("{stdout}{stderr}");
    assert!(
        out.contains("modules/action-realization.md:15:1: error: `action-realisation` is not an interface layer kind"),
        "{out}"
    );
    assert!(out.contains("did you mean `action-realization`?"), "{out}");
    assert!(
        out.contains("modules/trajectory-regulation.md:16:18: error: `repeat window: 40` is out of range: a whole number from 2 to 12"),
        "{out}"
    );
    assert!(
        out.contains("modules/contract-notes.md:12:14: error: `max words: many` is out of range"),
        "{out}"
    );

    // A code verifier whose script is missing, or that is not a harness script.
    let h = arena(
        &env,
        &[("code-verifier.md", "mode: verifier", "mode: oracle")],
    );
    std::fs::remove_file(Path::new(&h).join("scripts/hanoi_verifier.py")).unwrap();
    let (code, stdout, stderr) = env.run(&["check", &h]);
    assert_eq!(code, 1);
    let out = format!("{stdout}{stderr}");
    assert!(
        out.contains("modules/code-verifier.md:14:1: error: the code verifier `scripts/hanoi_verifier.py` does not exist"),
        "{out}"
    );
    assert!(
        out.contains("modules/code-verifier.md:16:9: error: `mode: oracle` is not a mode: verifier, filter or policy"),
        "{out}"
    );
}

#[test]
fn a_module_may_tune_a_layer_another_declares_but_not_set_its_fields_again() {
    use nlah::harness::layers::LayerKind;
    let env = TestEnv::new();
    let h = arena(&env, &[]);
    let guard = Path::new(&h).join("modules/finish-guard.md");
    let module = "---\nname: finish-guard\ndescription: Refuses finishing while the game is open.\n\
                  enabled: false\n---\n\n## Append to Interface layers\n\n\
                  ### trajectory-regulation\n- open episode refusals: 2\n";
    std::fs::write(&guard, module).unwrap();
    let toggles = nlah::harness::Toggles {
        with: vec!["trajectory-regulation".into(), "finish-guard".into()],
        without: Vec::new(),
    };
    let (_, harness, diags) = nlah::harness::build(Path::new(&h), &toggles).unwrap();
    assert!(diags.0.is_empty(), "{diags:?}");
    let layers = harness.unwrap().layers;
    let [layer] = &layers[..] else {
        panic!("one layer: {layers:?}")
    };
    let LayerKind::TrajectoryRegulation(r) = &layer.kind else {
        panic!("{layer:?}")
    };
    // The declaring module's fields and the tuning module's, read as one layer.
    assert_eq!((r.open_episode_refusals, r.soft_messages), (2, 2));
    let (code, stdout, stderr) = env.run(&["check", &h]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // A field both set is an error at the second, naming the first.
    std::fs::write(&guard, format!("{module}- soft messages: 1\n")).unwrap();
    let (code, stdout, stderr) = env.run(&["check", &h]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let out = format!("{stdout}{stderr}");
    assert!(
        out.contains("error: `soft messages` of layer `trajectory-regulation` is set twice"),
        "{out}"
    );
    assert!(out.contains("the first is at "), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_verifier_reprompts_then_its_fallback_acts() {
    // The player insists on an illegal move (peg C is empty): three warnings, then the
    // verifier's policy plays the optimal first move (A to B for three disks, seed 0).
    let env = TestEnv::with_model(policy(vec![act("move C A"); 4])).await;
    let t = task(&env, "verify", 3);
    let ran = run(&env, "harness-skills/arena", &t, &["code-verifier"], &[]).await;
    let iv = interventions(&ran);
    let rules: Vec<&str> = iv.iter().map(|e| e["rule"].as_str().unwrap()).collect();
    assert_eq!(
        rules,
        [
            "illegal-action",
            "illegal-action",
            "illegal-action",
            "fallback"
        ],
        "{iv:#?}"
    );
    assert!(
        iv[0]["message"]
            .as_str()
            .unwrap()
            .contains("Illegal action: peg C is empty")
    );
    assert_eq!(iv[3]["after"], "hanoi__act {\"action\":\"move A B\"}");
    let s = steps(&ran);
    assert_eq!(
        s.len(),
        1,
        "only the fallback's move reached the game: {s:?}"
    );
    assert_eq!(s[0]["invalid"], false);
    let m = &ran.record()["interface"];
    assert_eq!(m["reprompts"], 3);
    assert_eq!(m["fallbacks"], 1);

    // re-prompts: 1 — one warning, then the fallback.
    let env = TestEnv::with_model(policy(vec![act("move C A"); 2])).await;
    let h = arena(
        &env,
        &[("code-verifier.md", "re-prompts: 3", "re-prompts: 1")],
    );
    let t = task(&env, "verify1", 3);
    let ran = run(&env, &h, &t, &["code-verifier"], &[]).await;
    let rules: Vec<String> = interventions(&ran)
        .iter()
        .map(|e| e["rule"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rules, ["illegal-action", "fallback"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_verifier_that_crashes_hangs_or_babbles_ends_the_run_as_an_infrastructure_error() {
    for (script, words) in [
        (
            "import sys\nsys.exit(3)\n",
            "exited before answering is_legal",
        ),
        (
            "import time\ntime.sleep(60)\n",
            "did not answer is_legal within 5300 ms",
        ),
        // What a small model wrote (no `import sys`): the fault quotes the traceback.
        (
            "import json\nfor l in sys.stdin:\n    pass\n",
            "exited before answering is_legal; its stderr ends:\nTraceback",
        ),
        (
            "import json\nfor l in sys.stdin:\n    pass\n",
            "NameError: name 'sys' is not defined",
        ),
        (
            "import sys\nfor l in sys.stdin:\n    print('hello', flush=True)\n",
            "with a line that is not JSON: \"hello\"",
        ),
    ] {
        let env = TestEnv::with_model(policy(vec![act("move A B"), act("move A C")])).await;
        let h = arena(
            &env,
            &[("code-verifier.md", "timeout ms: 2000", "timeout ms: 300")],
        );
        std::fs::write(Path::new(&h).join("scripts/hanoi_verifier.py"), script).unwrap();
        let t = task(&env, "broken", 3);
        let started = std::time::Instant::now();
        let ran = run(&env, &h, &t, &["code-verifier"], &[]).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        let r = ran.record();
        assert_eq!(r["outcome"], "error", "{script}: {}", ran.stderr);
        assert_eq!(r["error_class"], "code-verifier");
        assert!(
            r["reason"].as_str().unwrap().contains(words),
            "{}",
            r["reason"]
        );
        let errors = ran.kinds("error");
        assert!(
            errors.iter().any(|e| e["class"] == "code-verifier"),
            "{errors:?}"
        );
        // Nothing reached the environment, and the child stopped at once.
        assert_eq!(steps(&ran).len(), 0);
        assert_eq!(env.model().served().calls, 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_shows_legal_rates_interventions_and_reward_per_variant() {
    // The player's first move names `frm` for `from`; then it plays the optimal solution.
    let env = TestEnv::with_model(|t: &Turn| {
        let first = t
            .task
            .lines()
            .find(|l| l.starts_with("Tower of Hanoi with "))
            .expect("observation");
        let n: u32 = first["Tower of Hanoi with ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let from = first.split("from peg ").nth(1).unwrap()[..1].to_string();
        let to = first.split("to peg ").nth(1).unwrap()[..1].to_string();
        let via = ["A", "B", "C"]
            .into_iter()
            .find(|p| *p != from && *p != to)
            .unwrap()
            .to_string();
        fn rec(n: u32, a: &str, b: &str, c: &str, out: &mut Vec<(String, String)>) {
            if n > 0 {
                rec(n - 1, a, c, b, out);
                out.push((a.to_string(), c.to_string()));
                rec(n - 1, b, a, c, out);
            }
        }
        let mut moves = Vec::new();
        rec(n, &from, &via, &to, &mut moves);
        match (t.turn, moves.get(t.turn)) {
            (0, Some((a, b))) => Answer::call("hanoi__move", json!({"frm": a, "to": b})),
            (_, Some((a, b))) => mv(a, b),
            _ => report(t),
        }
    })
    .await;
    let out = env.root().join("out");
    let mut cmd = env.nlah();
    cmd.args([
        "ablate",
        "harness-skills/arena",
        "examples/hanoi",
        "--module",
        "action-realization",
        "--model",
        "openai:mock-1",
        "--retries",
        "1",
        "--out",
    ])
    .arg(&out);
    let o = crate::support::output(cmd).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = env.nlah().arg("report").arg(&out).output().unwrap();
    let text = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(
        text.contains("| Legal 1st try % | Legal final % | Interventions | Reward |"),
        "{text}"
    );
    let line = |variant: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| {variant} ")))
            .unwrap_or_else(|| panic!("no row {variant}: {text}"))
            .split('|')
            .map(|c| c.trim().to_string())
            .collect::<Vec<_>>()
    };
    let with = line("+action-realization");
    let n = with.len();
    // …, legal 1st, legal final, interventions, reward, scored.
    assert_eq!(with[n - 2], "3", "{with:?}");
    assert_eq!(with[n - 4], "1.0", "one repair per episode: {with:?}");
    assert_eq!(with[n - 5], "100.0", "{with:?}");
    assert_eq!(with[n - 3], "1.00", "{with:?}");
    let csv = env
        .nlah()
        .args(["report", "--format", "csv"])
        .arg(&out)
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&csv.stdout).into_owned();
    assert!(
        csv.lines().next().unwrap().ends_with(
            ",legal_first_try_pct,legal_first_try_pct_lo,legal_first_try_pct_hi,legal_final_pct,legal_final_pct_lo,legal_final_pct_hi,interventions,interventions_lo,interventions_hi,reward,reward_lo,reward_hi"
        ),
        "{csv}"
    );
    let json = env
        .nlah()
        .args(["report", "--format", "json"])
        .arg(&out)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    let rows = v["groups"][0]["rows"].as_array().unwrap();
    let base = rows
        .iter()
        .find(|r| r["variant"] == "basic" || r["is_baseline"] == true)
        .unwrap();
    // The baseline has no layers: measured all the same, with nothing repaired or blocked.
    assert_eq!(
        base["legal_first_try_pct"]["mean"], base["legal_final_pct"]["mean"],
        "{base}"
    );
    assert_eq!(base["interventions"]["mean"], 0.0, "{base}");
    assert!(base["reward"]["mean"].as_f64().unwrap() < 1.0, "{base}");
}

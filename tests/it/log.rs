//! `nlah log`: the versions of a harness in a real repository, with scores from results
//! folders and from git notes written by `nlah log --record`.

use serde_json::Value;

use crate::support::gitrepo::{self, Repo};
use crate::support::{TestEnv, assert_fsck, diligent};

const MINI: &str = "harness-skills/mini";

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_with_results_and_notes() {
    let mut r = Repo::in_env(TestEnv::with_model(diligent).await);
    r.copy("tests/fixtures/versions/mini", MINI);
    r.commit("mini v1");
    r.copy("tests/fixtures/versions/basic", "harness-skills/basic");
    r.commit("basic arrives");
    r.edit(
        &format!("{MINI}/SKILL.md"),
        "| tokens | 50k |",
        "| tokens | 60k |",
    );
    let v2 = r.commit("mini v2: more tokens");

    // Two real runs of v2 (one with the reviewer module), made from the working tree.
    let harness = r.path().join(MINI);
    let h = harness.to_str().unwrap();
    let task = "tests/fixtures/versions/tasks/write-result";
    let plain = r.env.nlah_run(&[h, task, "--model", "openai:mock-1"]).await;
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let reviewed = r
        .env
        .nlah_run(&[h, task, "--model", "openai:mock-1", "--with", "reviewer"])
        .await;
    assert_eq!(reviewed.code, 0, "{}", reviewed.stderr);

    r.edit(
        &format!("{MINI}/SKILL.md"),
        "Do the work.",
        "Do the work carefully.",
    );
    r.commit("mini v3: careful executor");

    // Recording finds the commit whose harness the run used, not HEAD.
    let (code, out, err) = r.nlah(&[
        "log",
        MINI,
        "--record",
        plain.ws.to_str().unwrap(),
        "--record",
        reviewed.ws.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let short = &v2.to_string()[..10];
    assert_eq!(
        out.matches(&format!("on commit {short}")).count(),
        2,
        "{out}"
    );
    let (_, again, _) = r.nlah(&["log", MINI, "--record", plain.ws.to_str().unwrap()]);
    assert!(again.starts_with("already recorded run"), "{again}");
    let note = r
        .repo
        .find_note(Some("refs/notes/nlah"), v2)
        .expect("a note on v2");
    let lines: Vec<Value> = note.message().unwrap().lines().map(json).collect();
    assert_eq!(lines.len(), 2, "recording twice adds nothing");
    assert_eq!(lines[0]["outcome"], "passed");
    assert_eq!(lines[0]["model"], "openai:mock-1");
    assert_eq!(lines[0]["version"], plain.record()["harness"]["version"]);
    assert_eq!(
        lines[1]["modules"],
        serde_json::json!(["reflect", "reviewer"])
    );
    assert!(lines[0]["tokens"].as_u64().unwrap() > 0);

    // A results folder: the plain run again (counted once), and a failed run of v1 by
    // another model.
    let (_, listed, _) = r.nlah(&["log", MINI, "--json"]);
    let listed = json(&listed);
    let v1_version = listed["entries"][2]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let results = tempfile::tempdir().unwrap();
    let copy = results.path().join("batch/a/run.json");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(plain.ws.join("run.json"), &copy).unwrap();
    let mut old = plain.record();
    old["run_id"] = "old-run".into();
    old["harness"]["version"] = v1_version.into();
    old["outcome"] = "failed".into();
    old["model"] = "openai:other".into();
    let old_path = results.path().join("batch/b/run.json");
    std::fs::create_dir_all(old_path.parent().unwrap()).unwrap();
    std::fs::write(&old_path, old.to_string()).unwrap();
    std::fs::write(results.path().join("batch/notes.txt"), "not a run").unwrap();

    let dir = results.path().to_str().unwrap();
    let (code, out, err) = r.nlah(&["log", MINI, "--results", dir]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("log_versions", out);

    let (code, out, _) = r.nlah(&["log", MINI, "--results", dir, "--json"]);
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v["harness"], MINI);
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "the basic commit did not touch mini");
    let s = &entries[1]["scores"][0];
    assert_eq!(
        s["runs"], 1,
        "the same run in notes and results counts once"
    );
    assert_eq!(s["sources"], serde_json::json!(["notes", "results"]));
    assert_eq!(entries[1]["other_toggles"], 1);
    assert_eq!(entries[2]["scores"][0]["failed"], 1);

    // With the reviewer on, v2's version is the reviewed run's.
    let (_, out, _) = r.nlah(&["log", MINI, "--with", "reviewer", "--json"]);
    let v = json(&out);
    assert_eq!(
        v["entries"][1]["version"],
        reviewed.record()["harness"]["version"]
    );
    assert_eq!(v["entries"][1]["scores"][0]["passed"], 1);

    // -n limits, --rev starts elsewhere.
    let (_, out, _) = r.nlah(&["log", MINI, "-n", "1", "--json"]);
    assert_eq!(json(&out)["entries"].as_array().unwrap().len(), 1);
    let (_, out, _) = r.nlah(&["log", MINI, "--rev", "HEAD~1", "--json"]);
    assert_eq!(json(&out)["entries"][0]["commit"], v2.to_string());
    // The notes nlah wrote are sound objects.
    assert_fsck(&r.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_of_uncommitted_edits_is_not_recorded() {
    let mut r = Repo::in_env(TestEnv::with_model(diligent).await);
    r.copy("tests/fixtures/versions/mini", MINI);
    r.commit("mini v1");
    r.edit(&format!("{MINI}/SKILL.md"), "Do the work.", "Do it now.");
    let harness = r.path().join(MINI);
    let ran = r
        .env
        .nlah_run(&[
            harness.to_str().unwrap(),
            "tests/fixtures/versions/tasks/write-result",
            "--model",
            "openai:mock-1",
        ])
        .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let (code, _, err) = r.nlah(&["log", MINI, "--record", ran.ws.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("which no commit of `harness-skills/mini` composes to"),
        "{err}"
    );
}

#[test]
fn a_folder_outside_git_or_without_history_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    gitrepo::copy_dir(
        std::path::Path::new("tests/fixtures/versions/mini"),
        &dir.path().join("mini"),
    );
    let (code, _, err) = TestEnv::new().run_in(dir.path(), &["log", "mini"]);
    assert_eq!(code, 2);
    assert!(err.contains("not inside a git repository"), "{err}");
    let mut r = Repo::new();
    r.write("README.md", "hello\n");
    r.commit("readme");
    r.copy("tests/fixtures/versions/mini", MINI);
    let (code, _, err) = r.nlah(&["log", MINI]);
    assert_eq!(code, 2);
    assert!(err.contains("no harness at `harness-skills/mini`"), "{err}");
}

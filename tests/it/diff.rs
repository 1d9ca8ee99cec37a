//! `nlah diff` on harnesses: real git repositories with several versions of a harness, read
//! from git objects; and two harness folders.

use serde_json::Value;

use crate::support::TestEnv;
use crate::support::gitrepo::{self, Repo};

const MINI: &str = "harness-skills/mini";

/// v1: the mini fixture and the basic harness. v2: mini's execute stage, a gate, a budget, a
/// role's tools, a module's default and a script change; basic is untouched.
fn two_versions() -> Repo {
    let mut r = Repo::new();
    r.copy("tests/fixtures/versions/mini", MINI);
    r.copy("tests/fixtures/versions/basic", "harness-skills/basic");
    r.commit("mini v1");
    let skill = &format!("{MINI}/SKILL.md");
    r.edit(skill, "| tokens | 50k |", "| tokens | 80k |");
    r.edit(skill, "- tools: shell, read, write", "- tools: shell, read");
    r.edit(
        skill,
        "  - command `bash scripts/check.sh` exits 0\n- on failure: go back to plan, at most 2 times",
        "  - command `bash scripts/check.sh` exits 0\n  - `artifacts/result.txt` matches `\\d+`\n- on failure: retry up to 3 times",
    );
    r.edit(
        skill,
        "Write a short plan.",
        "Write a short plan with numbered steps.",
    );
    r.edit(
        &format!("{MINI}/modules/reviewer.md"),
        "enabled: false",
        "enabled: true",
    );
    r.write(
        &format!("{MINI}/scripts/check.sh"),
        "#!/usr/bin/env bash\ntest -s artifacts/result.txt && grep -q . artifacts/result.txt\n",
    );
    r.commit("mini v2: stricter execute, reviewer on");
    r
}

#[test]
fn revisions_diff_in_harness_terms_then_by_section() {
    let r = two_versions();
    let (code, out, err) = r.nlah(&["diff", "HEAD~1", "HEAD"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("harness basic"),
        "basic did not change:\n{out}"
    );
    insta::assert_snapshot!("diff_revisions_mini", out);
}

#[test]
fn the_path_narrows_and_names_resolve() {
    let mut r = two_versions();
    r.edit(
        "harness-skills/basic/SKILL.md",
        "## Roles",
        "## Roles\n\nRoles act alone.\n",
    );
    r.commit("basic: a sentence");
    let (_, all, _) = r.nlah(&["diff", "HEAD~2", "HEAD"]);
    assert!(
        all.contains("harness mini") && all.contains("harness basic"),
        "{all}"
    );
    assert!(all.contains("only prose"), "{all}");
    for narrow in ["harness-skills/basic", "basic"] {
        let (code, out, err) = r.nlah(&["diff", "HEAD~2", "HEAD", "--", narrow]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("harness basic"), "{out}");
        assert!(!out.contains("harness mini"), "{out}");
    }
    // From a subfolder, a relative PATH still names the right folder.
    let (code, out, err) = r.env.run_in(
        &r.path().join("harness-skills"),
        &["diff", "HEAD~2", "HEAD", "--", "mini"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("harness mini") && !out.contains("harness basic"),
        "{out}"
    );
}

#[test]
fn json_names_every_change() {
    let r = two_versions();
    let (code, out, err) = r.nlah(&["diff", "HEAD~1", "HEAD", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "harnesses");
    let hs = v["harnesses"].as_array().unwrap();
    assert_eq!(hs.len(), 1);
    let h = &hs[0];
    assert_eq!(h["path"], MINI);
    assert_eq!(h["name"], "mini");
    assert_ne!(h["old"]["version"], h["new"]["version"]);
    assert_eq!(h["old"]["version"].as_str().unwrap().len(), 64);
    assert_eq!(
        h["new"]["modules"],
        serde_json::json!(["reflect", "reviewer"])
    );
    let modules = h["modules"].as_array().unwrap();
    assert_eq!(modules[0]["name"], "reviewer");
    assert_eq!(
        modules[0]["fields"][0],
        serde_json::json!({"kind": "value", "field": "enabled by default", "old": "off", "new": "on"})
    );
    // The reviewer module, now on by default, adds a stage and a role to the composition.
    let names = |k: &str| -> Vec<(String, String)> {
        h[k].as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["status"].as_str().unwrap().to_string(),
                    c["name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert!(names("stages").contains(&("added".into(), "review".into())));
    assert!(names("stages").contains(&("changed".into(), "execute".into())));
    assert!(names("roles").contains(&("added".into(), "reviewer".into())));
    assert!(names("roles").contains(&("changed".into(), "executor".into())));
    let contract = h["contract"].as_array().unwrap();
    assert!(contract.contains(&serde_json::json!({"kind": "value", "field": "budget tokens", "old": "50000", "new": "80000"})));
    let files = h["files"].as_array().unwrap();
    assert_eq!(files[0]["path"], "scripts/check.sh");
    assert!(
        h["sections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["file"] == "SKILL.md" && s["section"] == "Mini › Stages › 2. execute")
    );
}

#[test]
fn module_added_removed_and_stage_reordered() {
    let mut r = two_versions();
    r.remove(&format!("{MINI}/modules/reflect.md"));
    r.write(
        &format!("{MINI}/modules/critic.md"),
        "---\nname: critic\ndescription: A critic reads the plan.\nenabled: false\n---\n\nCriticism helps.\n\n## Amend stage plan\nAsk for criticism.\n",
    );
    r.commit("mini v3: critic instead of reflect");
    let (code, out, err) = r.nlah(&["diff", "HEAD~1", "HEAD", "--", MINI]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("diff_modules_swapped", out);
}

#[test]
fn unchanged_revisions_say_so_and_bad_revisions_are_usage_errors() {
    let r = two_versions();
    let (code, out, _) = r.nlah(&["diff", "HEAD", "HEAD"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "no harness changed");
    let (code, _, err) = r.nlah(&["diff", "HEAD", "no-such-branch"]);
    assert_eq!(code, 2);
    assert!(err.contains("`no-such-branch`: no such revision"), "{err}");
    let outside = tempfile::tempdir().unwrap();
    let (code, _, err) = TestEnv::new().run_in(outside.path(), &["diff", "HEAD~1", "HEAD"]);
    assert_eq!(code, 2);
    assert!(err.contains("not inside a git repository"), "{err}");
}

#[test]
fn a_harness_added_between_revisions_lists_its_files() {
    let mut r = two_versions();
    r.copy("tests/fixtures/versions/mini", "harness-skills/mini2");
    r.edit("harness-skills/mini2/SKILL.md", "name: mini", "name: mini2");
    r.commit("a second mini");
    let (code, out, err) = r.nlah(&["diff", "HEAD~1", "HEAD"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("harness mini2  harness-skills/mini2"), "{out}");
    assert!(out.contains("+ harness added, version"), "{out}");
    assert!(out.contains("+ modules/reviewer.md"), "{out}");
}

#[test]
fn two_harness_folders() {
    let env = TestEnv::new();
    let dir = env.root();
    gitrepo::copy_dir(
        std::path::Path::new("tests/fixtures/versions/mini"),
        &dir.join("old/mini"),
    );
    gitrepo::copy_dir(
        std::path::Path::new("tests/fixtures/versions/mini"),
        &dir.join("new/mini"),
    );
    let skill = dir.join("new/mini/SKILL.md");
    let text = std::fs::read_to_string(&skill).unwrap();
    let text = text
        .replace(
            "- on failure: retry up to 2 times\n",
            "- on failure: retry up to 2 times\n- candidates: 3\n",
        )
        .replace("### 2. execute", "### 2. carry-out")
        .replace("go back to plan, at most 2 times", "stop");
    std::fs::write(&skill, text).unwrap();
    let (code, out, err) = env.run_in(
        dir,
        &["diff", "old/mini", "new/mini", "--without", "reflect"],
    );
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("diff_folders", out);
}

#[test]
fn each_side_is_checked_against_its_own_files_not_the_working_tree() {
    let mut r = two_versions();
    let script = format!("{MINI}/scripts/check.sh");
    let kept = r.read(&script);
    r.remove(&script);
    r.commit("mini v3: the check script is gone");
    // Back in the working tree, uncommitted: the revision still lacks it.
    r.write(&script, &kept);
    let (code, out, err) = r.nlah(&["diff", "HEAD~1", "HEAD", "--", MINI]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("- scripts/check.sh"), "{out}");
    assert!(out.contains("! the new side has 1 error"), "{out}");
    assert!(
        out.contains("git:HEAD/harness-skills/mini/SKILL.md:") && out.contains("does not exist"),
        "the problem names the revision: {out}"
    );
    assert!(!out.contains("the old side has"), "{out}");
}

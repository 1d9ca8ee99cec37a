//! `nlah check`, `nlah show` and `nlah modules` as a user runs them: exit codes and output.

use crate::support::TestEnv;

/// Runs `nlah ARGS` in a fresh environment; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    TestEnv::new().run(args)
}

macro_rules! bad_case {
    ($name:ident, $dir:literal) => {
        #[test]
        fn $name() {
            let (code, stdout, _) = run(&["check", concat!("tests/fixtures/bad/", $dir)]);
            assert_eq!(code, 1, "{stdout}");
            insta::assert_snapshot!(stdout);
        }
    };
}

bad_case!(bad_yaml, "bad-yaml");
bad_case!(missing_front_matter, "no-front-matter");
bad_case!(unknown_role, "unknown-role");
bad_case!(duplicate_stage, "duplicate-stage");
bad_case!(cyclic_failure_jumps, "failure-cycle");
bad_case!(unbounded_failure_jump, "unbounded-jump");
bad_case!(missing_script, "missing-script");
bad_case!(module_with_unknown_anchor, "bad-module");

#[test]
fn plain_skill_with_deviations_only_warns() {
    let (code, stdout, _) = run(&["check", "tests/fixtures/bad/plain-skill"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(
            "warning: skill name `plain-skill-with-another-name` differs from its folder"
        )
    );
    let (strict, _, _) = run(&["check", "--strict", "tests/fixtures/bad/plain-skill"]);
    assert_eq!(strict, 1, "--strict turns warnings into errors");
}

#[test]
fn json_diagnostics_are_one_object_per_line() {
    let (code, stdout, _) = run(&["check", "--json", "tests/fixtures/bad/unknown-role"]);
    assert_eq!(code, 1);
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let err = objects
        .iter()
        .find(|o| o["severity"] == "error")
        .expect("an error");
    assert_eq!(err["code"], "unknown-role");
    assert_eq!(err["path"], "tests/fixtures/bad/unknown-role/SKILL.md");
    assert_eq!(err["line"], 17);
    assert_eq!(err["col"], 3);
    assert!(
        err["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("executor")
    );
}

#[test]
fn a_folder_is_searched_recursively() {
    let (code, stdout, _) = run(&["check", "tests/fixtures/bad"]);
    assert_eq!(code, 1);
    for case in [
        "bad-yaml",
        "unknown-role",
        "failure-cycle",
        "missing-script",
        "bad-module",
    ] {
        assert!(
            stdout.contains(&format!("tests/fixtures/bad/{case}/")),
            "{case} missing in:\n{stdout}"
        );
    }
    assert!(stdout.contains("checked 9 skill folders"), "{stdout}");
}

#[test]
fn a_module_file_is_checked_against_its_harness() {
    let (code, stdout, _) = run(&["check", "tests/fixtures/bad/bad-module/modules/review.md"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains(
            "review.md:7:1: error: module `review` inserts stage `review` after `verify`"
        )
    );
    assert!(
        !stdout.contains("SKILL.md"),
        "only the module's own diagnostics: {stdout}"
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["check"]).0, 2, "no path");
    assert_eq!(run(&["check", "tests/fixtures/does-not-exist"]).0, 2);
    assert_eq!(run(&["show", "tests/fixtures/does-not-exist"]).0, 2);
    assert_eq!(run(&["frobnicate"]).0, 2);
    assert_eq!(run(&["check", "--no-such-flag", "."]).0, 2);
}

#[test]
fn show_an_unknown_module_is_an_error() {
    let (code, stdout, stderr) = run(&["show", "tests/fixtures/mini", "--with", "reviwer"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("unknown module `reviwer`"), "{stderr}");
    assert!(stderr.contains("did you mean `reviewer`?"), "{stderr}");
}

#[test]
fn show_composes_byte_stably() {
    let (code, first, _) = run(&["show", "tests/fixtures/mini", "--with", "reviewer"]);
    assert_eq!(code, 0);
    let (_, second, _) = run(&["show", "tests/fixtures/mini", "--with", "reviewer"]);
    assert_eq!(first, second);
    insta::assert_snapshot!(first);
}

#[test]
fn show_raw_is_the_base_file_when_no_module_is_on() {
    let (code, raw, _) = run(&[
        "show",
        "--raw",
        "tests/fixtures/mini",
        "--without",
        "reflect",
    ]);
    assert_eq!(code, 0);
    let base = std::fs::read_to_string("tests/fixtures/mini/SKILL.md").expect("fixture");
    assert_eq!(raw, base);
}

#[test]
fn modules_lists_state_and_descriptions() {
    let (code, stdout, _) = run(&["modules", "tests/fixtures/mini"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(stdout);
}

#[test]
fn an_invalid_byte_is_reported_where_it_is() {
    // The byte 0xff sits on line 6 after "- é " (four characters): column 5, not 1:1.
    let env = TestEnv::new();
    let h = env.root().join("enc");
    std::fs::create_dir_all(&h).unwrap();
    let skill = b"---\nname: enc\ndescription: An encoding test.\n---\n\n- \xc3\xa9 \xff after\n";
    std::fs::write(h.join("SKILL.md"), skill).unwrap();
    let (code, stdout, stderr) = env.run(&["check", h.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let want = format!(
        "{}:6:5: error: file is not valid UTF-8: byte 0xff here",
        h.join("SKILL.md").display()
    );
    assert!(stdout.contains(&want), "{stdout}");
}

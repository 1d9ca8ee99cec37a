//! The bundled harnesses and charter: they check cleanly, and `nlah show` composes them
//! byte-stably for several toggle sets (insta snapshots).

use crate::support::TestEnv;

#[test]
fn bundled_harnesses_and_charter_check_strictly() {
    let (code, out, _) =
        TestEnv::new().run(&["check", "--strict", "harness-skills", "runtime-charter"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 errors, 0 warnings"), "{out}");
}

#[test]
fn swe_modules_are_the_six_of_the_paper() {
    let (code, out, _) = TestEnv::new().run(&["modules", "--json", "swe"]);
    assert_eq!(code, 0);
    let names: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "dynamic-orchestration",
            "evidence-backed-answering",
            "file-backed-state",
            "multi-candidate-search",
            "self-evolution",
            "verifier"
        ]
    );
}

macro_rules! show {
    ($name:ident, [$($arg:literal),*]) => {
        #[test]
        fn $name() {
            let args = ["show", "swe", $($arg),*];
            let env = TestEnv::new();
            let (code, first, _) = env.run(&args);
            assert_eq!(code, 0, "{first}");
            let (_, second, _) = env.run(&args);
            assert_eq!(first, second, "composition is byte-stable");
            insta::assert_snapshot!(first);
        }
    };
}

show!(show_swe_basic, []);
show!(show_swe_verifier, ["--with", "verifier"]);
show!(
    show_swe_self_evolution_and_candidates,
    [
        "--with",
        "self-evolution",
        "--with",
        "multi-candidate-search"
    ]
);
show!(
    show_swe_all_modules,
    [
        "--with",
        "dynamic-orchestration",
        "--with",
        "evidence-backed-answering",
        "--with",
        "file-backed-state",
        "--with",
        "multi-candidate-search",
        "--with",
        "self-evolution",
        "--with",
        "verifier"
    ]
);

#[test]
fn toggle_order_does_not_matter() {
    let (_, a, _) = TestEnv::new().run(&[
        "show",
        "swe",
        "--with",
        "verifier",
        "--with",
        "self-evolution",
    ]);
    let (_, b, _) = TestEnv::new().run(&[
        "show",
        "swe",
        "--with",
        "self-evolution",
        "--with",
        "verifier",
    ]);
    assert_eq!(a, b);
}

#[test]
fn basic_is_one_executor_stage() {
    let (code, out, _) = TestEnv::new().run(&["show", "basic", "--raw"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        std::fs::read_to_string("harness-skills/basic/SKILL.md").expect("file")
    );
}

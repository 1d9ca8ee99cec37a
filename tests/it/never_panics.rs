//! Parsing, composing and validating arbitrary input never panics.

use std::path::Path;

use nlah::diag::Diags;
use nlah::harness::{
    self, compose, module,
    source::{SourceFile, Text},
};
use proptest::prelude::*;

/// Markdown-ish fragments, so that generated documents reach deep into the parser.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("---\n".to_string()),
        Just("name: x\n".to_string()),
        Just("description: d\n".to_string()),
        Just("enabled: true\n".to_string()),
        Just("## Stages\n".to_string()),
        Just("## Roles\n".to_string()),
        Just("## Contract\n".to_string()),
        Just("## State\n".to_string()),
        Just("## Failure taxonomy\n".to_string()),
        Just("## Adapters\n### Scripts\n".to_string()),
        Just("### Budgets\n".to_string()),
        Just("### 1. plan\n".to_string()),
        Just("### executor\n".to_string()),
        Just("- role: executor\n".to_string()),
        Just("- on failure: go back to plan, at most 2 times\n".to_string()),
        Just("- then: go to plan, at most 1 time\n".to_string()),
        Just("- gate: command `bash scripts/x.sh` exits 0\n".to_string()),
        Just("- gates:\n  - `a` exists\n".to_string()),
        Just("- candidates: 3\n- select: ranked by executor\n".to_string()),
        Just("- reflection: `r.md`, at most 10 bytes\n".to_string()),
        Just("| tokens | 10k |\n|---|---|\n| cost | $1 |\n".to_string()),
        Just("## Insert stage a after plan\n".to_string()),
        Just("## Amend stage plan\n".to_string()),
        Just("## Append to Stages\n".to_string()),
        Just("## Add role r\n".to_string()),
        Just("## Replace State\n".to_string()),
        Just("```\n## code\n```\n".to_string()),
        Just("\n".to_string()),
        "[ -~\\n`#|*é]{0,40}",
    ]
}

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
}

fn exercise(skill: &str, module_text: &str) {
    let file = SourceFile::new("h/SKILL.md", skill.to_string());
    let base = Text::from_file(&file);
    let mut diags = Diags::default();
    harness::parse(&base, Path::new("h"), Some("h"), &mut diags);
    if let Some(m) = module::parse(
        Path::new("h/modules/m.md"),
        module_text.to_string(),
        &mut diags,
    ) {
        let composed = compose::compose(&base, &[&m], &mut diags);
        harness::parse(&composed.text, Path::new("h"), Some("h"), &mut diags);
    }
    for d in diags.into_sorted() {
        assert!(d.pos.line >= 1 && d.pos.col >= 1);
        let _ = d.to_string();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        exercise(&text, &text);
    }

    #[test]
    fn markdown_like_documents(skill in document(), module_body in document()) {
        let module_text = format!("---\nname: m\ndescription: d\nenabled: true\n---\n{module_body}");
        exercise(&skill, &module_text);
    }
}

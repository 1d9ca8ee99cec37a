//! The optional judge: a model asked to place the runs no detector placed (those left to
//! residual reasoning by elimination), from the task, the children's last steps and the
//! verifier's output. Its answer is recorded as such: `method` becomes `judge`, with its reason.

use std::path::Path;

use crate::model::{ChatBackend, ChatRequest, Message, ModelError, ToolChoice};
use crate::record::Usage;

use super::steps::{self, Action};
use super::{Category, Finding, RunDiagnosis};

const SYSTEM: &str = "You classify why an AI agent's run failed, into exactly one of four \
categories (the interface-failure taxonomy of Life-Harness):\n\
- action-realization: the agent's intent was plausible but its actions were not executable \
(free text instead of a tool call, missing or malformed arguments, wrong types);\n\
- contract-mismatch: its actions were valid but broke the tool's or environment's protocol \
(wrong order, wrong semantics, misread feedback, required outputs not produced where expected);\n\
- trajectory-degeneration: individual actions were fine but the run fell into repetition, \
stagnation or ineffective recovery loops;\n\
- residual-reasoning: the protocol was followed and the agent's inference or decision was \
wrong.\n\
Answer with one JSON object and nothing else: {\"category\": \"<one of the four>\", \"why\": \
\"<one sentence>\"}.";

/// How many of each child's last steps the judge sees.
const LAST_STEPS: usize = 8;

/// What the judge said about one run, and what it cost.
pub struct Verdict {
    pub category: Category,
    pub why: String,
    pub usage: Usage,
}

/// Asks `backend` (model `model`) to place `run`. An answer naming no category is an error the
/// caller records; the run keeps its placement by elimination.
pub async fn place(
    backend: &dyn ChatBackend,
    model: &str,
    run: &RunDiagnosis,
) -> Result<Verdict, ModelError> {
    let req = ChatRequest {
        model: model.to_string(),
        messages: vec![Message::system(SYSTEM), Message::user(evidence(run))],
        tools: Vec::new(),
        tool_choice: ToolChoice::default(),
        max_tokens: Some(200),
        temperature: Some(0.0),
        seed: Some(0),
        trace: Some(format!("judge#{}", run.run_id)),
    };
    let resp = backend.complete(&req).await?;
    let text = resp.message.content;
    let category = parse(&text).ok_or_else(|| {
        ModelError::Config(format!(
            "the judge named no category: {}",
            text.chars().take(200).collect::<String>()
        ))
    })?;
    let why = serde_json::from_str::<serde_json::Value>(text.trim())
        .ok()
        .and_then(|v| v["why"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.trim().chars().take(200).collect());
    Ok(Verdict {
        category,
        why,
        usage: resp.usage,
    })
}

/// The first category named in the answer (its JSON field, or anywhere in the text).
fn parse(text: &str) -> Option<Category> {
    let names = [
        ("action-realization", Category::ActionRealization),
        ("contract-mismatch", Category::ContractMismatch),
        ("trajectory-degeneration", Category::TrajectoryDegeneration),
        ("residual-reasoning", Category::ResidualReasoning),
    ];
    let field = serde_json::from_str::<serde_json::Value>(text.trim())
        .ok()
        .and_then(|v| v["category"].as_str().map(str::to_string));
    let hay = field.unwrap_or_else(|| text.to_string()).to_lowercase();
    names
        .iter()
        .filter_map(|(n, c)| hay.find(n).map(|at| (at, *c)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, c)| c)
}

/// The task, each child's last steps and the verifier's output, compactly.
fn evidence(run: &RunDiagnosis) -> String {
    let read = |rel: &str| std::fs::read_to_string(run.path.join(rel)).unwrap_or_default();
    let clip = crate::agent::session::clip;
    let mut out = format!("# The task\n\n{}\n", clip(&read("TASK.md"), 2000));
    let children = run.path.join("children");
    let mut ids: Vec<String> = std::fs::read_dir(&children)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    for id in ids {
        let steps = steps::read(&Path::new(&children).join(&id).join("transcript.jsonl"));
        if steps.is_empty() {
            continue;
        }
        out.push_str(&format!("\n# Child {id}: its last steps\n"));
        for s in steps.iter().rev().take(LAST_STEPS).rev() {
            match &s.action {
                Action::Call {
                    tool,
                    arguments,
                    is_error,
                    output,
                    ..
                } => out.push_str(&format!(
                    "{}. {tool} {} → {}{}\n",
                    s.index,
                    clip(arguments, 300),
                    if *is_error { "ERROR " } else { "" },
                    clip(output, 300)
                )),
                Action::Text { text } => {
                    out.push_str(&format!("{}. (text) {}\n", s.index, clip(text, 300)))
                }
            }
        }
    }
    let verifier = read("history/verifier-output.txt");
    let tail: String = verifier
        .lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    out.push_str(&format!(
        "\n# The verifier's output (last lines)\n\n{tail}\n"
    ));
    out
}

/// Applies a verdict to a run placed by elimination.
pub fn apply(run: &mut RunDiagnosis, v: &Verdict) {
    run.category = Some(v.category);
    run.method = Some("judge".to_string());
    run.cause = Some(Finding {
        category: v.category,
        detector: "judge".into(),
        child: String::new(),
        step: None,
        note: v.why.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_the_field_or_the_text() {
        assert_eq!(
            parse(r#"{"category": "contract-mismatch", "why": "x"}"#),
            Some(Category::ContractMismatch)
        );
        assert_eq!(
            parse("I think trajectory-degeneration, not residual-reasoning."),
            Some(Category::TrajectoryDegeneration)
        );
        assert_eq!(parse("no idea"), None);
    }
}

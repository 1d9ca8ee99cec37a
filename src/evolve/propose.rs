//! Weakness mining and the proposer: the search split's failed runs clustered by verifier
//! signature (`nlah diagnose`), and a request asking the proposer model for several minimal
//! edits, each on a declared surface, as one JSON object.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::edit::Files;
use crate::diagnose;
use crate::engine::backends::Backends;
use crate::model::{ChatRequest, Message, ModelError, ModelSpec, ToolChoice};
use crate::record::Usage;

/// The first line of every proposer request (the scripted proposer of the tests keys on it).
pub const MARK: &str = "# Harness evolution: propose edits";

/// Examples of detector notes shown per cluster.
const NOTES: usize = 3;
/// The longest file shown whole to the proposer.
const FILE_CHARS: usize = 12_000;

/// One weakness: failed runs whose verifier said the same thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weakness {
    pub signature: String,
    pub runs: usize,
    /// The runs' categories in the taxonomy of `nlah diagnose`.
    pub categories: BTreeMap<String, usize>,
    /// What the detectors noted on some of them.
    pub notes: Vec<String>,
}

/// Clusters the failed runs by verifier signature (runs without verifier output form one
/// cluster of their own).
pub fn mine(failed: &[PathBuf]) -> Result<Vec<Weakness>, diagnose::DiagnoseError> {
    if failed.is_empty() {
        return Ok(Vec::new());
    }
    let d = diagnose::diagnose(failed)?;
    let mut out: BTreeMap<String, Weakness> = BTreeMap::new();
    for r in &d.runs {
        if r.category.is_none() {
            continue;
        }
        let sig = r
            .signature
            .clone()
            .unwrap_or_else(|| "(no verifier output)".into());
        let w = out.entry(sig.clone()).or_insert_with(|| Weakness {
            signature: sig,
            runs: 0,
            categories: BTreeMap::new(),
            notes: Vec::new(),
        });
        w.runs += 1;
        if let Some(c) = r.category {
            *w.categories.entry(c.as_str().to_string()).or_default() += 1;
        }
        if let Some(f) = &r.cause
            && w.notes.len() < NOTES
            && !f.note.is_empty()
            && !w.notes.contains(&f.note)
        {
            w.notes.push(f.note.clone());
        }
    }
    let mut v: Vec<Weakness> = out.into_values().collect();
    v.sort_by(|a, b| b.runs.cmp(&a.runs).then(a.signature.cmp(&b.signature)));
    Ok(v)
}

const SYSTEM: &str = "You improve an agent harness (a SKILL.md with stages and roles, module \
files, scripts, skills) from evidence of its failures. The model and the tasks stay fixed; only \
the harness changes. Propose minimal edits, each aimed at one failure mechanism and confined to \
one editable surface. Never name tasks or copy task text: edits must help on tasks you have not \
seen. Answer with one JSON object and nothing else.";

/// The request's user message.
pub fn request(
    files: &Files,
    weaknesses: &[Weakness],
    passed: usize,
    total: usize,
    history: &[String],
    edits: usize,
) -> String {
    let mut out = format!("{MARK}\n\n## The harness\n");
    for (p, f) in files {
        let text = String::from_utf8_lossy(&f.bytes);
        out.push_str(&format!(
            "\n### {p}\n```\n{}\n```\n",
            crate::agent::session::clip(&text, FILE_CHARS)
        ));
    }
    out.push_str(&format!(
        "\n## Evidence\n\nOn the search tasks the harness passed {passed} of {total} runs. Its failed runs, grouped by what the verifier said:\n"
    ));
    for w in weaknesses {
        let cats: Vec<String> = w
            .categories
            .iter()
            .map(|(c, n)| format!("{c} ×{n}"))
            .collect();
        out.push_str(&format!(
            "\n- `{}`: {} run(s); {}\n",
            w.signature,
            w.runs,
            cats.join(", ")
        ));
        for n in &w.notes {
            out.push_str(&format!("  - {n}\n"));
        }
    }
    if !history.is_empty() {
        out.push_str("\n## Edits tried before\n\n");
        for h in history {
            out.push_str(&format!("- {h}\n"));
        }
    }
    out.push_str(&format!(
        "\n## What to answer\n\nUp to {edits} distinct minimal edits, as\n\
```json\n{{\"edits\": [{{\"surface\": \"SKILL.md#<section heading> | modules/<name>.md | scripts/<name> | skills/<name>\",\n\
  \"mechanism\": \"the failure it addresses and how\",\n\
  \"changes\": [{{\"file\": \"SKILL.md\", \"find\": \"exact text occurring once\", \"replace\": \"its replacement\"}}\n\
              | {{\"file\": \"modules/<name>.md\", \"content\": \"the whole file\"}}],\n\
  \"predicted\": {{\"search\": <expected change of the search pass rate, -1..1>, \"validation\": <the same on unseen tasks>}}}}]}}\n```\n\
Every change must stay inside the edit's surface (for a SKILL.md section: below its heading, above the next heading of its level).\n"
    ));
    out
}

/// Asks the proposer; returns its text and what the call cost.
pub async fn ask(
    spec: &ModelSpec,
    user: String,
    iteration: usize,
) -> Result<(String, Usage), ModelError> {
    let backends = Backends::new(None, None);
    let backend = backends.chat(spec).await?;
    let model = match spec {
        ModelSpec::OpenAi { model } | ModelSpec::Anthropic { model } => model.clone(),
        other => other.to_string(),
    };
    let req = ChatRequest {
        model,
        messages: vec![Message::system(SYSTEM), Message::user(user)],
        tools: Vec::new(),
        tool_choice: ToolChoice::default(),
        max_tokens: Some(4096),
        temperature: Some(0.7),
        seed: Some(iteration as u64),
        trace: Some(format!("evolve#{iteration}")),
    };
    let resp = backend.complete(&req).await?;
    Ok((resp.message.content, resp.usage))
}

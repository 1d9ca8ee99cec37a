//! Reading what a model meant from what it sent, before any tool runs: tool calls written as
//! text, arguments with raw control characters or HTML entities (see `model::repair`), and
//! answers with nothing in them. Every change is returned as a [`Note`] that the loop records.

use serde_json::Value;

use crate::model::repair::{self, EntityRepair};
use crate::model::{ChatResponse, ToolCall};

/// One thing the loop did to an answer, for the run's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `empty-answer`, `text-tool-call`, `control-characters`, `html-entities`,
    /// `html-entities-kept`.
    pub kind: &'static str,
    pub detail: String,
}

/// Whether an answer has neither text nor a tool call: malformed, not an end.
pub fn is_empty(resp: &ChatResponse) -> bool {
    resp.message.tool_calls.is_empty() && resp.message.content.trim().is_empty()
}

/// Repairs the answer in place: text tool calls become calls, each call's arguments are
/// repaired where unambiguous. Returns what was done.
pub fn repair(resp: &mut ChatResponse, step: u32) -> Vec<Note> {
    let mut notes = Vec::new();
    let msg = &mut resp.message;
    if msg.tool_calls.is_empty()
        && let Some((calls, rest)) = repair::text_tool_calls(&msg.content)
    {
        notes.push(Note {
            kind: "text-tool-call",
            detail: format!(
                "{} tool call(s) written as text: {}",
                calls.len(),
                calls
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
        msg.tool_calls = calls
            .into_iter()
            .enumerate()
            .map(|(i, (name, arguments))| ToolCall {
                id: format!("text_call_{step}_{i}"),
                name,
                arguments,
            })
            .collect();
        msg.content = rest;
    }
    for call in &mut msg.tool_calls {
        notes.extend(repair_arguments(call));
    }
    notes
}

/// Files whose text keeps HTML entities as they are.
fn is_markup(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    [".html", ".htm", ".xhtml", ".xml", ".svg"]
        .iter()
        .any(|e| p.ends_with(e))
}

fn repair_arguments(call: &mut ToolCall) -> Vec<Note> {
    let mut notes = Vec::new();
    if serde_json::from_str::<Value>(&call.arguments).is_err()
        && let Some(fixed) = repair::escape_raw_controls(&call.arguments)
    {
        notes.push(Note {
            kind: "control-characters",
            detail: format!("{}: raw control characters in strings escaped", call.name),
        });
        call.arguments = fixed;
    }
    let markup = serde_json::from_str::<Value>(&call.arguments)
        .ok()
        .and_then(|v| v["path"].as_str().map(is_markup))
        .unwrap_or(false);
    match repair::unescape_entities(&call.arguments, markup) {
        Some(EntityRepair::Undone(fixed)) => {
            notes.push(Note {
                kind: "html-entities",
                detail: format!("{}: HTML entities decoded", call.name),
            });
            call.arguments = fixed;
        }
        Some(EntityRepair::Kept) => notes.push(Note {
            kind: "html-entities-kept",
            detail: format!(
                "{}: HTML entities left as they are (markup, or mixed with raw characters)",
                call.name
            ),
        }),
        None => {}
    }
    notes
}

//! A child's steps read back from its transcript: each model turn and the tool calls it made,
//! with what came back.

use std::path::Path;

use serde_json::Value;

/// One thing a child did: a tool call with its answer, or a model turn that called no tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based, in the child's order (what `nlah inspect --calls` counts).
    pub index: usize,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A tool call and the runtime's answer to it.
    Call {
        tool: String,
        arguments: String,
        is_error: bool,
        exit_code: Option<i32>,
        /// The answer's text, clipped.
        output: String,
    },
    /// A model turn without a tool call (its text, clipped; empty for an empty answer).
    Text { text: String },
}

impl Step {
    /// Whether the step failed: a call answered with an error.
    pub fn failed(&self) -> bool {
        matches!(self.action, Action::Call { is_error: true, .. })
    }

    /// The call as one comparable key (tool and arguments), for repetition.
    pub fn key(&self) -> Option<(&str, &str)> {
        match &self.action {
            Action::Call {
                tool, arguments, ..
            } => Some((tool, arguments)),
            Action::Text { .. } => None,
        }
    }
}

const CLIP: usize = 600;

/// Reads `transcript.jsonl`; lines it does not know are skipped (the format grows).
pub fn read(path: &Path) -> Vec<Step> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut steps: Vec<Step> = Vec::new();
    // Calls waiting for their answers, by call id: (index into steps).
    let mut pending: Vec<(String, usize)> = Vec::new();
    let mut flags: Vec<(String, bool, Option<i32>)> = Vec::new();
    for line in &lines {
        match line["type"].as_str() {
            Some("message") => {
                let m = &line["message"];
                match m["role"].as_str() {
                    Some("assistant") => {
                        let calls = m["tool_calls"].as_array().cloned().unwrap_or_default();
                        if calls.is_empty() {
                            steps.push(Step {
                                index: steps.len() + 1,
                                action: Action::Text {
                                    text: clip(m["content"].as_str().unwrap_or_default()),
                                },
                            });
                        }
                        for c in calls {
                            pending.push((
                                c["id"].as_str().unwrap_or_default().to_string(),
                                steps.len(),
                            ));
                            steps.push(Step {
                                index: steps.len() + 1,
                                action: Action::Call {
                                    tool: c["name"].as_str().unwrap_or_default().to_string(),
                                    arguments: c["arguments"]
                                        .as_str()
                                        .unwrap_or_default()
                                        .to_string(),
                                    is_error: false,
                                    exit_code: None,
                                    output: String::new(),
                                },
                            });
                        }
                    }
                    Some("tool") => {
                        let id = m["tool_call_id"].as_str().unwrap_or_default();
                        let Some(pos) = pending.iter().position(|(p, _)| p == id) else {
                            continue;
                        };
                        let (_, at) = pending.remove(pos);
                        let flag = flags.iter().position(|(f, _, _)| f == id);
                        let (is_err, code) = flag
                            .map(|i| {
                                let (_, e, c) = flags.remove(i);
                                (e, c)
                            })
                            .unwrap_or((false, None));
                        if let Action::Call {
                            is_error,
                            exit_code,
                            output,
                            ..
                        } = &mut steps[at].action
                        {
                            *is_error = is_err;
                            *exit_code = code;
                            *output = clip(m["content"].as_str().unwrap_or_default());
                        }
                    }
                    _ => {}
                }
            }
            Some("tool-output") => flags.push((
                line["call_id"].as_str().unwrap_or_default().to_string(),
                line["is_error"].as_bool().unwrap_or(false),
                line["exit_code"]
                    .as_i64()
                    .and_then(|c| i32::try_from(c).ok()),
            )),
            _ => {}
        }
    }
    steps
}

fn clip(s: &str) -> String {
    crate::agent::session::clip(s, CLIP)
}

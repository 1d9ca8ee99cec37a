//! Forcing "some tool" on servers that can only force a named one.
//!
//! OpenAI's `tool_choice: "required"` makes the model call a tool of its choice. llama.cpp's
//! servers cannot: llama-cpp-python answers `required` with HTTP 500 under
//! `chatml-function-calling` and ignores it under a model's own template, while a *named* tool
//! is forced everywhere through a grammar built from its schema. So [`ToolChoice::Any`] is sent
//! to them as one tool, [`NAME`], whose arguments are `{"tool": <name>, "arguments": {…}}`,
//! one alternative per offered tool (`oneOf`, each with its own schema), and forced by name. The
//! answer is unwrapped back into a call of the chosen tool, so nothing above the backend sees the
//! wrapper.
//!
//! [`ToolChoice::Any`]: super::ToolChoice::Any

use serde_json::{Value, json};

use super::{ToolCall, ToolSpec, repair};

/// The dispatching tool's name.
pub const NAME: &str = "call_tool";

/// The one tool offered in place of `tools`.
pub fn spec(tools: &[ToolSpec]) -> ToolSpec {
    let alternatives: Vec<Value> = tools
        .iter()
        .map(|t| {
            json!({
                "type": "object",
                "properties": {
                    "tool": {"const": t.name},
                    "arguments": t.parameters,
                },
                "required": ["tool", "arguments"],
            })
        })
        .collect();
    let menu: Vec<String> = tools
        .iter()
        .map(|t| format!("- {}: {}", t.name, t.description))
        .collect();
    ToolSpec {
        name: NAME.into(),
        description: format!(
            "Call one of these tools: set `tool` to its name and `arguments` to its arguments.\n{}",
            menu.join("\n")
        ),
        parameters: json!({"oneOf": alternatives}).into(),
    }
}

/// The call the model meant: a [`NAME`] call unwrapped into the chosen tool's call. Anything
/// else, or a wrapper that cannot be read, is returned as it came (the agent loop then answers
/// with a correction).
pub fn unwrap(call: ToolCall) -> ToolCall {
    if call.name != NAME {
        return call;
    }
    let parsed = serde_json::from_str::<Value>(&call.arguments)
        .ok()
        .or_else(|| {
            repair::escape_raw_controls(&call.arguments)
                .and_then(|fixed| serde_json::from_str::<Value>(&fixed).ok())
        });
    let Some(v) = parsed else { return call };
    let Some(tool) = v["tool"].as_str() else {
        return call;
    };
    let arguments = match &v["arguments"] {
        Value::String(s) => s.clone(),
        Value::Null => "{}".into(),
        other => other.to_string(),
    };
    ToolCall {
        id: call.id,
        name: tool.to_string(),
        arguments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_call_comes_back_as_the_chosen_tool() {
        let tools = [ToolSpec {
            name: "shell".into(),
            description: "Run a command.".into(),
            parameters: json!({"type": "object", "properties": {"command": {"type": "string"}}})
                .into(),
        }];
        let s = spec(&tools);
        assert_eq!(
            s.parameters["oneOf"][0]["properties"]["tool"]["const"],
            "shell"
        );
        let call = unwrap(ToolCall {
            id: "c1".into(),
            name: NAME.into(),
            arguments: r#"{"tool": "shell", "arguments": {"command": "ls"}}"#.into(),
        });
        assert_eq!(call.name, "shell");
        assert_eq!(call.arguments, r#"{"command":"ls"}"#);
        let other = ToolCall {
            id: "c2".into(),
            name: NAME.into(),
            arguments: "not json".into(),
        };
        assert_eq!(unwrap(other.clone()), other);
    }
}

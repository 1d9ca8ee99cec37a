//! Unambiguous repairs of what small models send as tool calls. Each function returns the
//! repaired text only when there was something to repair and the repair has one reading; the
//! agent loop records every repair it applies (`interface` events, `run.json`).
//!
//! - Raw control characters (a newline typed straight into a JSON string) are invalid JSON, and
//!   escaping them is the only way to read such a string.
//! - HTML entities (`&gt;` `&lt;` `&amp;` `&quot;` `&#39;`) come from chat formats that escape what
//!   they render (llama-cpp-python's `chatml-function-calling`): the model copies the escaped
//!   form back. They are undone where the text cannot have meant them: see [`unescape_entities`].
//! - Tool calls written as text (`<tool_call>{"name": …, "arguments": …}</tool_call>`, the Hermes
//!   and Qwen format) come back when a server renders the model's own chat template without
//!   parsing its tool calls.

use serde_json::Value;

/// `arguments` with raw control characters inside JSON strings escaped, if it had any and the
/// result is valid JSON.
pub fn escape_raw_controls(arguments: &str) -> Option<String> {
    let mut out = String::with_capacity(arguments.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut changed = false;
    for c in arguments.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            } else if (c as u32) < 0x20 {
                changed = true;
                match c {
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    other => out.push_str(&format!("\\u{:04x}", other as u32)),
                }
                continue;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    (changed && serde_json::from_str::<Value>(&out).is_ok()).then_some(out)
}

/// The entities chat formats write, and what they stand for.
const ENTITIES: [(&str, char); 6] = [
    ("&gt;", '>'),
    ("&lt;", '<'),
    ("&amp;", '&'),
    ("&quot;", '"'),
    ("&#39;", '\''),
    ("&#x27;", '\''),
];

/// Whether `text` contains one of the entities.
pub fn has_entities(text: &str) -> bool {
    ENTITIES.iter().any(|(e, _)| text.contains(e))
}

/// `text` with the entities decoded, in one left-to-right pass (so `&amp;gt;` becomes `&gt;`,
/// as one level of escaping was added).
fn decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        match ENTITIES.iter().find(|(e, _)| tail.starts_with(e)) {
            Some((e, c)) => {
                out.push(*c);
                rest = &tail[e.len()..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `text` also holds what the entities stand for in raw form (`<`, `>`, or an `&` that
/// starts no entity): then the text mixes both and the entities may be meant.
fn has_raw_specials(text: &str) -> bool {
    if text.contains(['<', '>']) {
        return true;
    }
    text.match_indices('&')
        .any(|(i, _)| !ENTITIES.iter().any(|(e, _)| text[i..].starts_with(e)))
}

/// What an entity repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityRepair {
    /// Decoded: the repaired arguments.
    Undone(String),
    /// Entities seen, left as they are because they may be meant (markup, mixed text).
    Kept,
}

/// Decodes HTML entities in a call's arguments where that is unambiguous:
/// - arguments that are not JSON until decoded (`{&quot;command&quot;: …}`) are decoded whole;
/// - each string value with entities is decoded unless it also holds raw `<`, `>` or a bare
///   `&`, or `markup` says the call writes a markup file (HTML, XML, SVG), where entities are
///   ordinary text.
///
/// `None` when there are no entities (or the arguments are not JSON either way).
pub fn unescape_entities(arguments: &str, markup: bool) -> Option<EntityRepair> {
    if !has_entities(arguments) {
        return None;
    }
    let mut value: Value = match serde_json::from_str(arguments) {
        Ok(v) => v,
        Err(_) => {
            let decoded = decode(arguments);
            return serde_json::from_str::<Value>(&decoded)
                .ok()
                .map(|_| EntityRepair::Undone(decoded));
        }
    };
    if markup {
        return Some(EntityRepair::Kept);
    }
    let mut changed = false;
    let mut kept = false;
    decode_strings(&mut value, &mut changed, &mut kept);
    Some(if changed {
        EntityRepair::Undone(value.to_string())
    } else {
        EntityRepair::Kept
    })
}

fn decode_strings(v: &mut Value, changed: &mut bool, kept: &mut bool) {
    match v {
        Value::String(s) if has_entities(s) => {
            if has_raw_specials(s) {
                *kept = true;
            } else {
                *s = decode(s);
                *changed = true;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| decode_strings(i, changed, kept)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|i| decode_strings(i, changed, kept)),
        _ => {}
    }
}

/// Tool calls written as text: each `<tool_call>` block holding a JSON object with a `name` and
/// `arguments` (an object, or a string of JSON). Returns the calls (name, arguments as JSON
/// text) and the text outside the blocks; `None` when there is no well-formed block.
pub fn text_tool_calls(content: &str) -> Option<(Vec<(String, String)>, String)> {
    const OPEN: &str = "<tool_call>";
    const CLOSE: &str = "</tool_call>";
    let mut calls = Vec::new();
    let mut rest_text = String::new();
    let mut rest = content;
    while let Some(start) = rest.find(OPEN) {
        rest_text.push_str(&rest[..start]);
        let body_start = start + OPEN.len();
        // A block the model did not close runs to the end of the answer.
        let (body, next) = match rest[body_start..].find(CLOSE) {
            Some(end) => (
                &rest[body_start..body_start + end],
                &rest[body_start + end + CLOSE.len()..],
            ),
            None => (&rest[body_start..], ""),
        };
        let body = body.trim();
        let parsed = serde_json::from_str::<Value>(body).ok().or_else(|| {
            escape_raw_controls(body).and_then(|b| serde_json::from_str::<Value>(&b).ok())
        })?;
        let name = parsed["name"].as_str()?.to_string();
        let arguments = match &parsed["arguments"] {
            Value::String(s) => s.clone(),
            Value::Null => "{}".to_string(),
            other => other.to_string(),
        };
        calls.push((name, arguments));
        rest = next;
    }
    rest_text.push_str(rest);
    (!calls.is_empty()).then(|| (calls, rest_text.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_newlines_in_strings_are_escaped_and_nothing_else_changes() {
        let raw = "{\"content\": \"line 1\nline 2\tx\", \"path\": \"a\"}";
        let fixed = escape_raw_controls(raw).unwrap();
        let v: Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(v["content"], "line 1\nline 2\tx");
        // Newlines between tokens are JSON whitespace, not a repair.
        assert_eq!(escape_raw_controls("{\n\"a\": \"b\"\n}"), None);
        // An escaped quote does not end the string.
        let v: Value =
            serde_json::from_str(&escape_raw_controls("{\"a\": \"x\\\"\ny\"}").unwrap()).unwrap();
        assert_eq!(v["a"], "x\"\ny");
    }

    #[test]
    fn entities_are_undone_only_where_unambiguous() {
        let shell = r#"{"command": "ls &gt; out.txt &amp;&amp; cat out.txt"}"#;
        let Some(EntityRepair::Undone(fixed)) = unescape_entities(shell, false) else {
            panic!("not undone")
        };
        let v: Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(v["command"], "ls > out.txt && cat out.txt");
        // Mixed with raw specials: the entities may be meant.
        assert_eq!(
            unescape_entities(r#"{"content": "<p>a &amp; b</p>"}"#, false),
            Some(EntityRepair::Kept)
        );
        // A markup file keeps them.
        assert_eq!(
            unescape_entities(r#"{"content": "a &amp; b"}"#, true),
            Some(EntityRepair::Kept)
        );
        // JSON that only parses once decoded is decoded whole.
        let Some(EntityRepair::Undone(fixed)) = unescape_entities(
            "{&quot;command&quot;: &quot;echo &#39;hi&#39;&quot;}",
            false,
        ) else {
            panic!("not undone")
        };
        assert_eq!(fixed, r#"{"command": "echo 'hi'"}"#);
        assert_eq!(unescape_entities(r#"{"command": "ls"}"#, false), None);
        assert_eq!(decode("&amp;gt;"), "&gt;");
    }

    #[test]
    fn tool_calls_written_as_text_are_read() {
        let content = "I will list.\n<tool_call>\n{\"name\": \"shell\", \"arguments\": {\"command\": \"ls\"}}\n</tool_call>";
        let (calls, text) = text_tool_calls(content).unwrap();
        assert_eq!(
            calls,
            [("shell".to_string(), r#"{"command":"ls"}"#.to_string())]
        );
        assert_eq!(text, "I will list.");
        assert_eq!(text_tool_calls("no calls here"), None);
        assert_eq!(text_tool_calls("<tool_call>not json</tool_call>"), None);
    }
}

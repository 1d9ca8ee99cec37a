//! Checking a call's arguments against its tool's parameters, with corrections the model can act
//! on.

use serde_json::{Map, Value};

use super::schema::{Kind, ToolDef};

/// The raw arguments, shortened for quoting in a correction.
fn quote_got(raw: &str) -> String {
    let raw = raw.trim();
    if raw.chars().count() <= 200 {
        return raw.to_string();
    }
    let cut: String = raw.chars().take(200).collect();
    format!("{cut}…")
}

/// Checks `arguments` against the tool's parameters: an object with the required keys, no
/// others, each of the right type. `null` counts as absent.
pub(super) fn parse_args(def: &ToolDef, arguments: &str) -> Result<Map<String, Value>, String> {
    let expects = format!("{} expects {}", def.name, def.usage);
    let got = quote_got(arguments);
    let value: Value = if arguments.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(arguments)
            .map_err(|e| format!("the arguments are not valid JSON ({e}); {expects}; got {got}"))?
    };
    let Value::Object(mut map) = value else {
        return Err(format!(
            "the arguments must be a JSON object; {expects}; got {got}"
        ));
    };
    map.retain(|_, v| !v.is_null());
    let missing: Vec<&str> = def
        .params
        .iter()
        .filter(|p| p.required && !map.contains_key(p.name))
        .map(|p| p.name)
        .collect();
    let unknown: Vec<&String> = map
        .keys()
        .filter(|k| !def.params.iter().any(|p| p.name == k.as_str()))
        .collect();
    if !unknown.is_empty() {
        let names = unknown
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = match (unknown.len(), missing.as_slice()) {
            (1, [m]) => format!(" (did you mean {m:?}?)"),
            _ => String::new(),
        };
        let noun = if unknown.len() == 1 {
            "argument"
        } else {
            "arguments"
        };
        return Err(format!(
            "unknown {noun} {names}{hint}; {expects}; got {got}"
        ));
    }
    if !missing.is_empty() {
        let names = missing
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let noun = if missing.len() == 1 {
            "argument"
        } else {
            "arguments"
        };
        return Err(format!(
            "missing required {noun} {names}; {expects}; got {got}"
        ));
    }
    for p in def.params {
        let Some(v) = map.get(p.name) else { continue };
        let ok = match p.kind {
            Kind::Text => v.is_string(),
            Kind::Line => v.as_u64().is_some_and(|n| n >= 1),
        };
        if !ok {
            let want = match p.kind {
                Kind::Text => "a string",
                Kind::Line => "an integer ≥ 1 (a JSON number, not a string)",
            };
            return Err(format!("{:?} must be {want}, got {v}; {expects}", p.name));
        }
    }
    Ok(map)
}

pub(super) fn text_arg<'a>(args: &'a Map<String, Value>, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn line_arg(args: &Map<String, Value>, name: &str) -> Option<usize> {
    args.get(name)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

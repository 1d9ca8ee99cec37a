//! Action realization: a tool call checked against the tool's JSON schema and the environment's
//! legal actions before it runs. Unambiguous errors are repaired (a tool or argument name that
//! nearly matches, a value that coerces to the schema's type or enum, an action string that
//! matches one legal candidate of the same verb); everything else is invalid, with a reason the
//! model can act on.

use serde_json::{Map, Value};

use super::similarity::{distance, normalize, unique_best};
use crate::model::ToolSpec;

/// What the layer makes of one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Valid,
    Repaired {
        name: String,
        arguments: String,
        /// The repairs made (`argument-name`, `type-coercion`, …) and what each changed.
        repairs: Vec<(&'static str, String)>,
    },
    Invalid {
        rule: &'static str,
        reason: String,
    },
}

fn invalid(rule: &'static str, reason: String) -> Check {
    Check::Invalid { rule, reason }
}

/// The schema's string property when the tool takes exactly one: its action text.
pub fn action_property(spec: &ToolSpec) -> Option<String> {
    let props = spec.parameters.get("properties")?.as_object()?;
    match props.iter().collect::<Vec<_>>().as_slice() {
        [(name, p)] if p.get("type").and_then(Value::as_str) == Some("string") => {
            Some((*name).clone())
        }
        _ => None,
    }
}

/// Checks a call. `legal`: the environment's legal actions, when `spec` is an action of an
/// environment that lists them.
pub fn check(
    name: &str,
    arguments: &str,
    specs: &[ToolSpec],
    legal: Option<&[String]>,
    similarity: f64,
) -> Check {
    let mut repairs: Vec<(&'static str, String)> = Vec::new();
    let spec = match specs.iter().find(|s| s.name == name) {
        Some(s) => s,
        None => {
            let bare = name.rsplit(['.', ':', '/']).next().unwrap_or(name);
            match unique_best(bare, specs.iter().map(|s| s.name.as_str()), similarity)
                .and_then(|n| specs.iter().find(|s| s.name == n))
            {
                Some(s) => {
                    repairs.push(("tool-name", format!("`{name}` is `{}`", s.name)));
                    s
                }
                None => {
                    return invalid(
                        "unknown-tool",
                        format!(
                            "there is no tool `{name}`; the tools are {}",
                            specs
                                .iter()
                                .map(|s| format!("`{}`", s.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
    };
    let mut args: Map<String, Value> =
        match serde_json::from_str::<Value>(if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        }) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                return invalid(
                    "not-an-object",
                    format!(
                        "the arguments of `{}` must be a JSON object, not {other}",
                        spec.name
                    ),
                );
            }
            Err(e) => {
                return invalid(
                    "not-json",
                    format!("the arguments of `{}` are not JSON ({e})", spec.name),
                );
            }
        };
    let empty = Map::new();
    let props = spec
        .parameters
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let closed = spec.parameters.get("additionalProperties") == Some(&Value::Bool(false));

    // Argument names that nearly match a property the call lacks.
    let given: Vec<String> = args.keys().cloned().collect();
    for key in given {
        if props.contains_key(&key) {
            continue;
        }
        let free: Vec<&str> = props
            .keys()
            .map(String::as_str)
            .filter(|p| !args.contains_key(*p))
            .collect();
        let target = unique_best(&key.to_lowercase(), free.iter().copied(), similarity)
            .or_else(|| free.iter().copied().find(|p| p.eq_ignore_ascii_case(&key)));
        match target {
            Some(p) => {
                let p = p.to_string();
                if let Some(v) = args.remove(&key) {
                    args.insert(p.clone(), v);
                }
                repairs.push(("argument-name", format!("`{key}` is `{p}`")));
            }
            None if closed => {
                return invalid(
                    "unknown-argument",
                    format!(
                        "`{}` takes no argument `{key}`; its arguments are {}",
                        spec.name,
                        props
                            .keys()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            None => {}
        }
    }

    // Types and enums.
    for (key, schema) in props {
        let Some(v) = args.get(key).cloned() else {
            continue;
        };
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if allowed.contains(&v) {
                continue;
            }
            let text = match &v {
                Value::String(s) => s.trim().to_string(),
                other => other.to_string(),
            };
            let hit = allowed.iter().find(|a| match a {
                Value::String(s) => s.eq_ignore_ascii_case(&text),
                other => other.to_string() == text,
            });
            match hit {
                Some(a) => {
                    repairs.push(("type-coercion", format!("`{key}`: {v} is {a}")));
                    args.insert(key.clone(), a.clone());
                }
                None => {
                    return invalid(
                        "not-allowed",
                        format!(
                            "`{key}` of `{}` must be one of {}, not {v}",
                            spec.name,
                            allowed
                                .iter()
                                .map(Value::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
            continue;
        }
        let Some(ty) = schema.get("type").and_then(Value::as_str) else {
            continue;
        };
        match coerce(&v, ty) {
            Coerced::Fits => {}
            Coerced::To(n) => {
                repairs.push(("type-coercion", format!("`{key}`: {v} is {n}")));
                args.insert(key.clone(), n);
            }
            Coerced::No => {
                return invalid(
                    "wrong-type",
                    format!("`{key}` of `{}` must be a {ty}, not {v}", spec.name),
                );
            }
        }
    }

    // Required arguments.
    let missing: Vec<String> = spec
        .parameters
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|r| !args.contains_key(*r))
        .map(|r| format!("`{r}`"))
        .collect();
    if !missing.is_empty() {
        return invalid(
            "missing-argument",
            format!("`{}` needs {}", spec.name, missing.join(", ")),
        );
    }

    // The action string against the legal actions.
    if let (Some(legal), Some(prop)) = (legal.filter(|l| !l.is_empty()), action_property(spec))
        && let Some(Value::String(action)) = args.get(&prop).cloned()
        && !legal.contains(&action)
    {
        let norm = normalize(&action);
        let same: Vec<&String> = legal.iter().filter(|l| normalize(l) == norm).collect();
        let found = if let [one] = same.as_slice() {
            Some((*one).clone())
        } else {
            nearest_legal(&norm, legal, similarity)
        };
        match found {
            Some(l) => {
                repairs.push(("legal-action", format!("{action:?} is {l:?}")));
                args.insert(prop, Value::String(l));
            }
            None => {
                return invalid(
                    "illegal-action",
                    format!(
                        "{action:?} is not a legal action now; the legal actions are: {}",
                        legal.join(", ")
                    ),
                );
            }
        }
    }

    if repairs.is_empty() {
        Check::Valid
    } else {
        Check::Repaired {
            name: spec.name.clone(),
            arguments: Value::Object(args).to_string(),
            repairs,
        }
    }
}

/// The one legal action `norm` (normalized) unambiguously means: a candidate of the same verb
/// (or one typo away from it, for verbs of three letters or more) that differs only by typos in words of three letters or more (similarity at least `min`), or
/// else whose words appear in order among the action's (filler words left out: "move disk
/// from A to C" is "move A C"). A different short token (a peg, a cell, a number) is a
/// different action, never a repair.
fn nearest_legal(norm: &str, legal: &[String], min: f64) -> Option<String> {
    let words: Vec<&str> = norm.split(' ').collect();
    let verb = words.first().copied().unwrap_or("");
    let cands: Vec<(String, &String)> = legal
        .iter()
        .map(|l| (normalize(l), l))
        .filter(|(n, _)| {
            let v = n.split(' ').next().unwrap_or("");
            v == verb || v.len() >= 3 && verb.len() >= 3 && distance(v, verb) <= 1
        })
        .collect();
    let typo: Vec<(&String, &String)> = cands
        .iter()
        .filter(|(n, _)| {
            let cw: Vec<&str> = n.split(' ').collect();
            cw.len() == words.len()
                && cw
                    .iter()
                    .zip(&words)
                    .all(|(a, b)| a == b || a.len() >= 3 && b.len() >= 3)
        })
        .map(|(n, l)| (n, *l))
        .collect();
    if let Some(best) = unique_best(norm, typo.iter().map(|(n, _)| n.as_str()), min) {
        return typo
            .iter()
            .find(|(n, _)| *n == best)
            .map(|(_, l)| (*l).clone());
    }
    let sub: Vec<&String> = cands
        .iter()
        .filter(|(n, _)| {
            let mut it = words.iter();
            let cw: Vec<&str> = n.split(' ').collect();
            cw.len() < words.len() && cw.iter().all(|c| it.any(|w| w == c))
        })
        .map(|(_, l)| *l)
        .collect();
    match sub.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

enum Coerced {
    Fits,
    To(Value),
    No,
}

fn coerce(v: &Value, ty: &str) -> Coerced {
    let fits = match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    };
    if fits {
        return Coerced::Fits;
    }
    let s = v.as_str().map(str::trim);
    let to = match ty {
        "string" => match v {
            Value::Number(_) | Value::Bool(_) => Some(Value::String(v.to_string())),
            _ => None,
        },
        "integer" => s
            .and_then(|s| s.parse::<i64>().ok())
            .map(Value::from)
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| Value::from(f as i64))
            }),
        "number" => s
            .and_then(|s| s.parse::<f64>().ok())
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number)),
        "boolean" => match s.map(str::to_ascii_lowercase).as_deref() {
            Some("true") => Some(Value::Bool(true)),
            Some("false") => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    };
    match to {
        Some(t) => Coerced::To(t),
        None => Coerced::No,
    }
}

/// A tool call the model wrote as text instead of calling: a JSON object with `name` (or `tool`)
/// and `arguments` (or `args`/`parameters`), `tool(JSON)`, or exactly one legal action.
pub fn call_in_text(
    text: &str,
    specs: &[ToolSpec],
    legal: Option<(&str, &str, &[String])>,
) -> Option<(String, String)> {
    let t = text
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    if let Some(start) = t.find('{')
        && let Some(end) = t.rfind('}')
        && let Ok(Value::Object(o)) = serde_json::from_str::<Value>(&t[start..=end])
    {
        let name = o
            .get("name")
            .or_else(|| o.get("tool"))
            .and_then(Value::as_str);
        let args = o
            .get("arguments")
            .or_else(|| o.get("args"))
            .or_else(|| o.get("parameters"));
        if let (Some(n), Some(a)) = (name, args)
            && specs.iter().any(|s| s.name == n)
        {
            let a = match a {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            return Some((n.to_string(), a));
        }
    }
    for s in specs {
        if let Some(rest) = t.strip_prefix(&format!("{}(", s.name))
            && let Some(inner) = rest.strip_suffix(')')
            && serde_json::from_str::<Value>(inner).is_ok_and(|v| v.is_object())
        {
            return Some((s.name.clone(), inner.to_string()));
        }
    }
    if let Some((tool, prop, legal)) = legal {
        let norm = normalize(t);
        let hits: Vec<&String> = legal
            .iter()
            .filter(|l| {
                let n = normalize(l);
                n == norm || norm.ends_with(&format!(" {n}"))
            })
            .collect();
        if let [one] = hits.as_slice() {
            return Some((
                tool.to_string(),
                serde_json::json!({ prop: one }).to_string(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str, parameters: Value) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters: parameters.into(),
        }
    }

    #[test]
    fn repairs_and_refusals() {
        let specs = [
            spec(
                "hanoi__move",
                json!({"type": "object", "properties": {"from": {"type": "string", "enum": ["A", "B", "C"]}, "to": {"type": "string", "enum": ["A", "B", "C"]}}, "required": ["from", "to"], "additionalProperties": false}),
            ),
            spec(
                "hanoi__act",
                json!({"type": "object", "properties": {"action": {"type": "string"}}, "required": ["action"]}),
            ),
            spec(
                "count",
                json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
            ),
        ];
        assert_eq!(
            check(
                "hanoi__move",
                r#"{"from":"A","to":"C"}"#,
                &specs,
                None,
                0.55
            ),
            Check::Valid
        );
        let Check::Repaired {
            arguments, repairs, ..
        } = check("hanoi__move", r#"{"frm":"a","to":"C"}"#, &specs, None, 0.55)
        else {
            panic!()
        };
        assert_eq!(
            serde_json::from_str::<Value>(&arguments).unwrap(),
            json!({"from": "A", "to": "C"})
        );
        assert_eq!(repairs.len(), 2);
        assert!(matches!(
            check("count", r#"{"n":"4"}"#, &specs, None, 0.55),
            Check::Repaired { .. }
        ));
        assert!(matches!(
            check(
                "hanoi__move",
                r#"{"from":"D","to":"C"}"#,
                &specs,
                None,
                0.55
            ),
            Check::Invalid {
                rule: "not-allowed",
                ..
            }
        ));
        assert!(matches!(
            check("hanoi__move", r#"{"to":"C"}"#, &specs, None, 0.55),
            Check::Invalid {
                rule: "missing-argument",
                ..
            }
        ));
        let legal = vec!["move A B".to_string(), "move A C".to_string()];
        let Check::Repaired { arguments, .. } = check(
            "hanoi__act",
            r#"{"action":"move a-c"}"#,
            &specs,
            Some(&legal),
            0.55,
        ) else {
            panic!()
        };
        assert_eq!(arguments, r#"{"action":"move A C"}"#);
        assert!(matches!(
            check(
                "hanoi__act",
                r#"{"action":"move B C"}"#,
                &specs,
                Some(&legal),
                0.55
            ),
            Check::Invalid {
                rule: "illegal-action",
                ..
            }
        ));
        let legal = vec!["[A B]".to_string(), "[A C]".to_string()];
        let Check::Repaired { arguments, .. } = check(
            "hanoi__act",
            r#"{"action":"[A to C]"}"#,
            &specs,
            Some(&legal),
            0.55,
        ) else {
            panic!()
        };
        assert_eq!(arguments, r#"{"action":"[A C]"}"#);
        let legal = vec!["take apple".to_string(), "take pear".to_string()];
        assert!(matches!(
            check(
                "hanoi__act",
                r#"{"action":"take appel"}"#,
                &specs,
                Some(&legal),
                0.55
            ),
            Check::Repaired { .. }
        ));
        assert!(matches!(
            check("hanoi_mov", r#"{"from":"A","to":"C"}"#, &specs, None, 0.55),
            Check::Repaired { .. }
        ));
    }

    #[test]
    fn calls_written_as_text_are_read() {
        let specs = [spec(
            "shell",
            json!({"type": "object", "properties": {"command": {"type": "string"}}}),
        )];
        assert_eq!(
            call_in_text(
                r#"{"name": "shell", "arguments": {"command": "ls"}}"#,
                &specs,
                None
            ),
            Some(("shell".into(), r#"{"command":"ls"}"#.into()))
        );
        assert_eq!(
            call_in_text(r#"shell({"command": "ls"})"#, &specs, None),
            Some(("shell".into(), r#"{"command": "ls"}"#.into()))
        );
        let legal = vec!["[A C]".to_string(), "[A B]".to_string()];
        assert_eq!(
            call_in_text("I move [A C]", &specs, Some(("g__act", "action", &legal))),
            Some(("g__act".into(), r#"{"action":"[A C]"}"#.into()))
        );
        assert_eq!(
            call_in_text("thinking", &specs, Some(("g__act", "action", &legal))),
            None
        );
    }
}

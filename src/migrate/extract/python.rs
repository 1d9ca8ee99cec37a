//! Python sources, read with tree-sitter-python.

use serde_json::{Map, Value, json};
use tree_sitter::Node;

use super::{
    Control, Extraction, Loc, Prompt, Tool, Verifier, control, is_stage_name, is_test_command,
    is_tool_list_name, is_verifier_name, limit_kind, node_loc, node_text, parse,
};

struct Walker<'a> {
    rel: &'a str,
    src: &'a [u8],
    ex: &'a mut Extraction,
    prelude: Vec<String>,
}

pub fn extract(rel: &str, text: &str, ex: &mut Extraction) -> Result<(), String> {
    let tree = parse("Python", tree_sitter_python::LANGUAGE.into(), text)?;
    let root = tree.root_node();
    let mut w = Walker {
        rel,
        src: text.as_bytes(),
        ex,
        prelude: Vec::new(),
    };
    w.visit(root, None, false, 0);
    if !w.prelude.is_empty() {
        let prelude = w.prelude.join("\n");
        w.ex.python_prelude.insert(rel.to_string(), prelude);
    }
    Ok(())
}

fn is_prompt_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "prompt",
        "template",
        "instruction",
        "system_message",
        "persona",
    ]
    .iter()
    .any(|w| n.contains(w))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\n') => {}
            Some(o @ ('\\' | '\'' | '"')) => out.push(o),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Python's `textwrap.dedent`: the common leading whitespace of non-blank lines removed.
fn dedent(s: &str) -> String {
    let indent = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<&str> = s
        .split('\n')
        .map(|l| {
            if l.trim().is_empty() {
                ""
            } else {
                l.get(indent..).unwrap_or(l.trim_start())
            }
        })
        .collect();
    if out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
        out.push("");
    }
    out.join("\n")
}

impl Walker<'_> {
    fn text(&self, n: Node) -> &str {
        node_text(n, self.src)
    }

    fn loc(&self, n: Node) -> Loc {
        node_loc(self.rel, n)
    }

    /// The value of a string literal (also concatenated, or wrapped in `dedent(...)`).
    fn string_value(&self, n: Node) -> Option<String> {
        match n.kind() {
            "string" => {
                let raw = self
                    .text(n)
                    .split(['"', '\''])
                    .next()
                    .is_some_and(|p| p.to_ascii_lowercase().contains('r'));
                let mut out = String::new();
                let mut c = n.walk();
                for ch in n.children(&mut c) {
                    match ch.kind() {
                        "string_content" | "interpolation" => out.push_str(self.text(ch)),
                        _ => {}
                    }
                }
                Some(if raw { out } else { unescape(&out) })
            }
            "concatenated_string" => {
                let mut c = n.walk();
                let parts: Vec<String> = n
                    .named_children(&mut c)
                    .filter_map(|ch| self.string_value(ch))
                    .collect();
                Some(parts.concat())
            }
            "parenthesized_expression" => n.named_child(0).and_then(|c| self.string_value(c)),
            "call" => {
                // `dedent("""…""")`, `"…".strip()` and the like keep their literal.
                let args = n.child_by_field_name("arguments")?;
                let first = args.named_child(0)?;
                let f = n.child_by_field_name("function").map(|f| self.text(f));
                if f.is_some_and(|f| f.ends_with("dedent")) {
                    return self.string_value(first).map(|s| dedent(&s));
                }
                self.string_value(first).or_else(|| {
                    let f = n.child_by_field_name("function")?;
                    let obj = f.child_by_field_name("object")?;
                    self.string_value(obj)
                })
            }
            _ => None,
        }
    }

    /// A Python literal as JSON (dicts, lists, strings, numbers, booleans, None).
    fn literal(&self, n: Node) -> Option<Value> {
        match n.kind() {
            "string" | "concatenated_string" => self.string_value(n).map(Value::String),
            "integer" => self
                .text(n)
                .replace('_', "")
                .parse::<i64>()
                .ok()
                .map(Value::from),
            "float" => self
                .text(n)
                .replace('_', "")
                .parse::<f64>()
                .ok()
                .map(Value::from),
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            "none" => Some(Value::Null),
            "list" | "tuple" | "set" => {
                let mut c = n.walk();
                n.named_children(&mut c)
                    .filter(|ch| ch.kind() != "comment")
                    .map(|ch| self.literal(ch))
                    .collect::<Option<Vec<_>>>()
                    .map(Value::Array)
            }
            "dictionary" => {
                let mut map = Map::new();
                let mut c = n.walk();
                for pair in n.named_children(&mut c) {
                    if pair.kind() == "comment" {
                        continue;
                    }
                    if pair.kind() != "pair" {
                        return None;
                    }
                    let k = pair
                        .child_by_field_name("key")
                        .and_then(|k| self.string_value(k))?;
                    let v = pair
                        .child_by_field_name("value")
                        .and_then(|v| self.literal(v))?;
                    map.insert(k, v);
                }
                Some(Value::Object(map))
            }
            "unary_operator" => {
                let v = self.literal(n.named_child(0)?)?;
                v.as_f64().map(|f| json!(-f))
            }
            "parenthesized_expression" => self.literal(n.named_child(0)?),
            _ => None,
        }
    }

    fn visit(&mut self, n: Node, func: Option<&str>, in_loop: bool, depth: usize) {
        let is_loop =
            control::PYTHON.read(n, self.src, self.rel, func, in_loop, &mut self.ex.control);
        match n.kind() {
            // A loop's children are inside it.
            _ if is_loop => {}
            "import_statement" | "import_from_statement" if func.is_none() => {
                let t = self.text(n).to_string();
                self.prelude.push(t);
            }
            "expression_statement" => {
                if let Some(a) = n.named_child(0).filter(|a| a.kind() == "assignment") {
                    self.assignment(a, func, depth);
                    if let Some(r) = a.child_by_field_name("right") {
                        self.visit(r, func, in_loop, depth + 1);
                    }
                    return;
                }
            }
            "decorated_definition" => {
                let mut decos = Vec::new();
                let mut c = n.walk();
                for ch in n.named_children(&mut c) {
                    if ch.kind() == "decorator" {
                        decos.push(self.text(ch).to_string());
                    }
                }
                if let Some(def) = n.child_by_field_name("definition") {
                    if def.kind() == "function_definition" {
                        self.function(def, &decos, func, depth);
                    } else {
                        self.visit(def, func, in_loop, depth + 1);
                    }
                }
                return;
            }
            "function_definition" => {
                self.function(n, &[], func, depth);
                return;
            }
            "dictionary" if self.tool_dict(n) => return,
            "keyword_argument" => {
                let name = n
                    .child_by_field_name("name")
                    .map(|k| self.text(k).to_string());
                if let (Some(name), Some(v)) = (name, n.child_by_field_name("value"))
                    && is_prompt_name(&name)
                    && let Some(s) = self.string_value(v)
                    && s.len() >= 20
                {
                    let at = self.loc(n);
                    self.ex.prompts.push(Prompt { name, text: s, at });
                }
            }
            "string" => {
                if let Some(s) = self.string_value(n)
                    && is_test_command(&s)
                {
                    self.command(&s, n);
                }
                return;
            }
            "list" => {
                if let Some(Value::Array(items)) = self.literal(n) {
                    let words: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                    if words.len() == items.len() && is_test_command(&words.join(" ")) {
                        self.command(&words.join(" "), n);
                        return;
                    }
                }
            }
            _ => {}
        }
        let mut c = n.walk();
        let kids: Vec<Node> = n.children(&mut c).collect();
        for ch in kids {
            self.visit(ch, func, in_loop || is_loop, depth + 1);
        }
    }

    fn command(&mut self, cmd: &str, n: Node) {
        let at = self.loc(n);
        self.ex.test_command(cmd, at);
    }

    fn assignment(&mut self, a: Node, func: Option<&str>, depth: usize) {
        let (Some(left), Some(right)) = (
            a.child_by_field_name("left"),
            a.child_by_field_name("right"),
        ) else {
            return;
        };
        let full = self.text(left).to_string();
        let name = full.rsplit('.').next().unwrap_or(&full).to_string();
        let at = self.loc(a);
        if func.is_none() && depth <= 2 && self.literal(right).is_some() {
            let t = self.text(a.parent().unwrap_or(a)).to_string();
            self.prelude.push(t);
        }
        if is_prompt_name(&name)
            && let Some(s) = self.string_value(right)
        {
            self.ex.prompts.push(Prompt { name, text: s, at });
            return;
        }
        if let Some(kind) = limit_kind(&name)
            && matches!(right.kind(), "integer" | "float")
        {
            self.ex.control.push(Control {
                kind: kind.into(),
                name,
                detail: format!("{full} = {}", self.text(right)),
                at,
            });
            return;
        }
        if is_tool_list_name(&name)
            && matches!(right.kind(), "list" | "tuple" | "set")
            && let Some(Value::Array(items)) = self.literal(right)
        {
            for tool in items.iter().filter_map(Value::as_str) {
                self.ex.tools.push(Tool::listed(tool, &full, at.clone()));
            }
        }
    }

    /// A dict that declares a tool (`{"name": …, "parameters": {…}}`, OpenAI or Anthropic style).
    fn tool_dict(&mut self, n: Node) -> bool {
        let Some(Value::Object(map)) = self.literal(n) else {
            return false;
        };
        let Some(tool) = Tool::declared(&map, "schema dict", self.loc(n)) else {
            return false;
        };
        self.ex.tools.push(tool);
        true
    }

    fn params(&self, def: Node) -> Vec<(String, Option<String>, bool)> {
        let Some(ps) = def.child_by_field_name("parameters") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut c = ps.walk();
        for p in ps.named_children(&mut c) {
            let (name, ty, default) = match p.kind() {
                "identifier" => (self.text(p).to_string(), None, false),
                "typed_parameter" => (
                    p.named_child(0)
                        .map(|i| self.text(i).to_string())
                        .unwrap_or_default(),
                    p.child_by_field_name("type")
                        .map(|t| self.text(t).to_string()),
                    false,
                ),
                "default_parameter" | "typed_default_parameter" => (
                    p.child_by_field_name("name")
                        .map(|i| self.text(i).to_string())
                        .unwrap_or_default(),
                    p.child_by_field_name("type")
                        .map(|t| self.text(t).to_string()),
                    true,
                ),
                _ => continue,
            };
            if name == "self" || name == "cls" || name.is_empty() {
                continue;
            }
            out.push((name, ty, default));
        }
        out
    }

    fn docstring(&self, def: Node) -> String {
        def.child_by_field_name("body")
            .and_then(|b| b.named_child(0))
            .filter(|s| s.kind() == "expression_statement")
            .and_then(|s| s.named_child(0))
            .and_then(|s| self.string_value(s))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    fn function(&mut self, def: Node, decos: &[String], outer: Option<&str>, depth: usize) {
        let name = def
            .child_by_field_name("name")
            .map(|n| self.text(n).to_string())
            .unwrap_or_default();
        let at = self.loc(def);
        if decos
            .iter()
            .any(|d| d.to_ascii_lowercase().contains("tool"))
        {
            let mut props = Map::new();
            let mut required = Vec::new();
            for (p, ty, default) in self.params(def) {
                let t = match ty.as_deref().map(str::trim) {
                    Some("int") => "integer",
                    Some("float") => "number",
                    Some("bool") => "boolean",
                    Some(t) if t.starts_with("list") || t.starts_with("List") => "array",
                    Some(t) if t.starts_with("dict") || t.starts_with("Dict") => "object",
                    _ => "string",
                };
                props.insert(p.clone(), json!({"type": t}));
                if !default {
                    required.push(Value::String(p));
                }
            }
            self.ex.tools.push(Tool {
                name: name.clone(),
                description: self.docstring(def),
                schema: Some(json!({"type": "object", "properties": props, "required": required})),
                kind: format!("decorated function ({})", decos.join(" ")),
                at: at.clone(),
            });
        }
        let top_level = outer.is_none() && depth <= 1;
        if is_verifier_name(&name) && top_level {
            let params = self.params(def).into_iter().map(|p| p.0).collect();
            self.ex.verifiers.push(Verifier {
                name: name.clone(),
                kind: "python function".into(),
                code: self.text(def).to_string(),
                params,
                at: at.clone(),
            });
        }
        if is_stage_name(&name) {
            let doc = self.docstring(def);
            self.ex.control.push(Control {
                kind: "stage".into(),
                name: name.clone(),
                detail: doc.lines().next().unwrap_or("").to_string(),
                at,
            });
        }
        if let Some(body) = def.child_by_field_name("body") {
            self.visit(body, Some(&name), false, depth + 1);
        }
    }
}

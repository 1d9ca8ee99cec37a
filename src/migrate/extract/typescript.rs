//! TypeScript and JavaScript sources, read with tree-sitter-typescript (JavaScript and `.tsx`
//! through its TSX grammar, which accepts JSX).

use serde_json::{Map, Value};
use tree_sitter::Node;

use super::{
    Control, Extraction, Loc, Prompt, Tool, Verifier, control, is_stage_name, is_test_command,
    is_tool_list_name, is_verifier_name, limit_kind, node_loc, node_text, parse, snake,
};

fn is_prompt_name(name: &str) -> bool {
    let n = snake(name);
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

struct Walker<'a> {
    rel: &'a str,
    src: &'a [u8],
    ex: &'a mut Extraction,
}

pub fn extract(rel: &str, text: &str, tsx: bool, ex: &mut Extraction) -> Result<(), String> {
    let lang = if tsx { "TSX" } else { "TypeScript" };
    let grammar = if tsx {
        tree_sitter_typescript::LANGUAGE_TSX
    } else {
        tree_sitter_typescript::LANGUAGE_TYPESCRIPT
    };
    let tree = parse(lang, grammar.into(), text)?;
    let root = tree.root_node();
    let mut w = Walker {
        rel,
        src: text.as_bytes(),
        ex,
    };
    w.visit(root, None, false);
    Ok(())
}

impl Walker<'_> {
    fn text(&self, n: Node) -> &str {
        node_text(n, self.src)
    }

    fn loc(&self, n: Node) -> Loc {
        node_loc(self.rel, n)
    }

    /// A string or template literal's text (substitutions kept as `${…}`).
    fn string_value(&self, n: Node) -> Option<String> {
        match n.kind() {
            "string" | "template_string" => {
                let raw = self.text(n);
                let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
                Some(
                    inner
                        .replace("\\n", "\n")
                        .replace("\\t", "\t")
                        .replace("\\`", "`")
                        .replace("\\\"", "\"")
                        .replace("\\'", "'"),
                )
            }
            "parenthesized_expression" | "as_expression" | "satisfies_expression" => {
                n.named_child(0).and_then(|c| self.string_value(c))
            }
            "binary_expression" => {
                let l = self.string_value(n.child_by_field_name("left")?)?;
                let r = self.string_value(n.child_by_field_name("right")?)?;
                Some(l + &r)
            }
            _ => None,
        }
    }

    fn key(&self, pair: Node) -> Option<String> {
        let k = pair.child_by_field_name("key")?;
        self.string_value(k)
            .or_else(|| Some(self.text(k).to_string()))
    }

    fn literal(&self, n: Node) -> Option<Value> {
        match n.kind() {
            "string" | "template_string" => self.string_value(n).map(Value::String),
            "number" => self.text(n).replace('_', "").parse::<f64>().ok().map(|f| {
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    Value::from(f as i64)
                } else {
                    Value::from(f)
                }
            }),
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            "null" | "undefined" => Some(Value::Null),
            "array" => {
                let mut c = n.walk();
                n.named_children(&mut c)
                    .filter(|ch| ch.kind() != "comment")
                    .map(|ch| self.literal(ch))
                    .collect::<Option<Vec<_>>>()
                    .map(Value::Array)
            }
            "object" => {
                let mut map = Map::new();
                let mut c = n.walk();
                for pair in n.named_children(&mut c) {
                    match pair.kind() {
                        "comment" => continue,
                        "pair" => {
                            let k = self.key(pair)?;
                            let v = self.literal(pair.child_by_field_name("value")?)?;
                            map.insert(k, v);
                        }
                        _ => return None,
                    }
                }
                Some(Value::Object(map))
            }
            "parenthesized_expression" | "as_expression" | "satisfies_expression" => {
                self.literal(n.named_child(0)?)
            }
            _ => None,
        }
    }

    fn visit(&mut self, n: Node, func: Option<&str>, in_loop: bool) {
        let is_loop =
            control::TYPESCRIPT.read(n, self.src, self.rel, func, in_loop, &mut self.ex.control);
        match n.kind() {
            // A loop's children are inside it.
            _ if is_loop => {}
            "variable_declarator" => {
                let name = n
                    .child_by_field_name("name")
                    .map(|x| self.text(x).to_string())
                    .unwrap_or_default();
                if let Some(v) = n.child_by_field_name("value") {
                    // `const TEMPLATE = (x) => `…${x}…``: a template, not a stage.
                    let body = v.child_by_field_name("body");
                    if v.kind() == "arrow_function"
                        && is_prompt_name(&name)
                        && let Some(text) = body.and_then(|b| self.string_value(b))
                    {
                        let at = self.loc(n);
                        self.ex.prompts.push(Prompt { name, text, at });
                        return;
                    }
                    if matches!(
                        v.kind(),
                        "arrow_function" | "function_expression" | "function"
                    ) {
                        self.function(&name, n, v, func);
                        return;
                    }
                    // `for (let attempt = 0; …)` declares a counter, not a limit.
                    let in_for = n
                        .parent()
                        .and_then(|d| d.parent())
                        .is_some_and(|f| f.kind() == "for_statement");
                    if !in_for {
                        self.named_value(&name, n, v);
                    }
                }
            }
            "function_declaration" | "method_definition" | "generator_function_declaration" => {
                let name = n
                    .child_by_field_name("name")
                    .map(|x| self.text(x).to_string())
                    .unwrap_or_default();
                self.function(&name, n, n, func);
                return;
            }
            "pair" => {
                let name = self.key(n).unwrap_or_default();
                if let Some(v) = n.child_by_field_name("value") {
                    if v.kind() == "call_expression"
                        && v.child_by_field_name("function")
                            .is_some_and(|f| self.text(f).to_ascii_lowercase().ends_with("tool"))
                    {
                        // `{ run_shell: tool({ description, parameters }) }` (AI SDK style).
                        let desc = v
                            .child_by_field_name("arguments")
                            .and_then(|a| a.named_child(0))
                            .and_then(|o| self.literal_field(o, "description"))
                            .unwrap_or_default();
                        let at = self.loc(n);
                        self.ex.tools.push(Tool {
                            name,
                            description: desc,
                            schema: None,
                            kind: "tool() call".into(),
                            at,
                        });
                        return;
                    }
                    self.named_value(&name, n, v);
                }
            }
            "object" if self.tool_object(n) => return,
            "string" | "template_string" => {
                if let Some(s) = self.string_value(n)
                    && is_test_command(&s)
                {
                    self.command(&s, n);
                }
                return;
            }
            _ => {}
        }
        let mut c = n.walk();
        let kids: Vec<Node> = n.children(&mut c).collect();
        for ch in kids {
            self.visit(ch, func, in_loop || is_loop);
        }
    }

    fn literal_field(&self, obj: Node, field: &str) -> Option<String> {
        let mut c = obj.walk();
        obj.named_children(&mut c)
            .filter(|p| p.kind() == "pair")
            .find(|p| self.key(*p).as_deref() == Some(field))
            .and_then(|p| p.child_by_field_name("value"))
            .and_then(|v| self.string_value(v))
    }

    /// A name bound to a value (a variable or an object key): prompts, limits, tool lists.
    fn named_value(&mut self, name: &str, at_node: Node, v: Node) {
        let at = self.loc(at_node);
        if is_prompt_name(name)
            && let Some(s) = self.string_value(v)
        {
            self.ex.prompts.push(Prompt {
                name: name.to_string(),
                text: s,
                at,
            });
            return;
        }
        if let Some(kind) = limit_kind(&snake(name))
            && v.kind() == "number"
        {
            self.ex.control.push(Control {
                kind: kind.into(),
                name: name.to_string(),
                detail: format!("{name} = {}", self.text(v)),
                at,
            });
            return;
        }
        if is_tool_list_name(name)
            && v.kind() == "array"
            && let Some(Value::Array(items)) = self.literal(v)
        {
            for item in items.iter().filter_map(Value::as_str) {
                self.ex.tools.push(Tool::listed(item, name, at.clone()));
            }
        }
    }

    fn tool_object(&mut self, n: Node) -> bool {
        let Some(Value::Object(map)) = self.literal(n) else {
            return false;
        };
        let Some(tool) = Tool::declared(&map, "schema object", self.loc(n)) else {
            return false;
        };
        self.ex.tools.push(tool);
        true
    }

    fn command(&mut self, cmd: &str, n: Node) {
        let at = self.loc(n);
        self.ex.test_command(cmd, at);
    }

    /// A function: a stage when its name says so, a verifier when it verifies or checks.
    fn function(&mut self, name: &str, decl: Node, f: Node, outer: Option<&str>) {
        let at = self.loc(decl);
        if outer.is_none() && is_verifier_name(name) {
            // Kept as source for the model: a TypeScript check needs a toolchain the run may lack.
            self.ex.verifiers.push(Verifier {
                name: name.to_string(),
                kind: "typescript function".into(),
                code: self.text(decl).to_string(),
                params: Vec::new(),
                at: at.clone(),
            });
        }
        if is_stage_name(name) {
            self.ex.control.push(Control {
                kind: "stage".into(),
                name: name.to_string(),
                detail: String::new(),
                at,
            });
        }
        if let Some(body) = f.child_by_field_name("body") {
            self.visit(body, Some(name), false);
        }
    }
}

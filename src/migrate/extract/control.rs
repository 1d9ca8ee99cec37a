//! The control flow the Python and TypeScript extractors read alike: loops inside a function,
//! `try` inside a loop (a retry), and `if` statements that leave a loop. Both tree-sitter
//! grammars name these nodes the same way (`if_statement`, `try_statement`, `break_statement`,
//! `return_statement`), so one reading serves both; only the loop kinds and the name of an
//! exception handler differ.

use tree_sitter::Node;

use super::{Control, node_loc, node_text};

/// What tells one grammar's loops and retries apart.
pub(super) struct Flow {
    /// Node kinds of loop statements.
    loops: &'static [&'static str],
    /// How a `try` is named in a retry's detail.
    try_name: &'static str,
    /// The node kind of a handler whose first line the retry's detail quotes, if any.
    handler: Option<&'static str>,
}

pub(super) const PYTHON: Flow = Flow {
    loops: &["while_statement", "for_statement"],
    try_name: "try/except",
    handler: Some("except_clause"),
};

pub(super) const TYPESCRIPT: Flow = Flow {
    loops: &[
        "for_statement",
        "for_in_statement",
        "while_statement",
        "do_statement",
    ],
    try_name: "try/catch",
    handler: None,
};

/// Statements that leave a loop, by node kind (never by text, which would also match a
/// `breakpoint()` call or a `breakOut` variable).
const EXITS: [&str; 2] = ["break_statement", "return_statement"];

/// Whether an `if`'s consequence leaves the loop: it is an exit itself (`if (done) break;`) or a
/// block with one among its statements. Exits nested deeper belong to the statement that holds
/// them (an inner `if` is read on its own, an inner loop's `break` leaves that loop).
fn exits(consequence: Node) -> bool {
    if EXITS.contains(&consequence.kind()) {
        return true;
    }
    let mut c = consequence.walk();
    consequence
        .named_children(&mut c)
        .any(|s| EXITS.contains(&s.kind()))
}

fn first_line(n: Node, src: &[u8]) -> String {
    node_text(n, src)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

impl Flow {
    /// Reads `n` (of the file `rel`, whose text is `src`) as control flow inside function `func`
    /// (`None` at module level), adding the rules it finds to `out`. Returns whether `n` is a loop, whose children the caller then
    /// visits as inside it.
    pub(super) fn read(
        &self,
        n: Node,
        src: &[u8],
        rel: &str,
        func: Option<&str>,
        in_loop: bool,
        out: &mut Vec<Control>,
    ) -> bool {
        let name = || func.unwrap_or_default().to_string();
        match n.kind() {
            k if self.loops.contains(&k) && func.is_some() => {
                out.push(Control {
                    kind: "loop".into(),
                    name: name(),
                    detail: first_line(n, src),
                    at: node_loc(rel, n),
                });
                return true;
            }
            "try_statement" if in_loop => {
                let detail = match self.handler {
                    Some(kind) => {
                        let mut c = n.walk();
                        let handlers: Vec<String> = n
                            .named_children(&mut c)
                            .filter(|ch| ch.kind() == kind)
                            .map(|ch| first_line(ch, src))
                            .collect();
                        format!("{} inside a loop ({})", self.try_name, handlers.join("; "))
                    }
                    None => format!("{} inside a loop", self.try_name),
                };
                out.push(Control {
                    kind: "retry".into(),
                    name: name(),
                    detail,
                    at: node_loc(rel, n),
                });
            }
            "if_statement"
                if in_loop && n.child_by_field_name("consequence").is_some_and(exits) =>
            {
                let cond = n
                    .child_by_field_name("condition")
                    .map(|c| node_text(c, src))
                    .unwrap_or_default();
                out.push(Control::loop_exit(func, cond, node_loc(rel, n)));
            }
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Extraction, python, typescript};

    /// The `stop` rules read from a source, as their details.
    fn exits_in(rel: &str, src: &str) -> Vec<String> {
        let mut ex = Extraction::default();
        if rel.ends_with(".py") {
            python::extract(rel, src, &mut ex).unwrap();
        } else {
            typescript::extract(rel, src, false, &mut ex).unwrap();
        }
        ex.control
            .iter()
            .filter(|c| c.kind == "stop")
            .map(|c| c.detail.clone())
            .collect()
    }

    #[test]
    fn python_breakpoint_is_not_an_exit() {
        let src = "def run(task):\n    while True:\n        if debugging:\n            breakpoint()\n        if done:\n            break\n        if failed:\n            return None\n";
        assert_eq!(
            exits_in("agent.py", src),
            [
                "leaves the loop when `done`",
                "leaves the loop when `failed`"
            ]
        );
    }

    #[test]
    fn typescript_break_is_read_by_node_kind() {
        let src = r#"export async function run(task: string) {
  for (let i = 0; i < 8; i++) {
    if (debugging) { breakOut = true; }
    if (verbose) console.log("will break", returned);
    if (done) break;
    if (failed) {
      log(task);
      return null;
    }
  }
}
"#;
        assert_eq!(
            exits_in("agent.ts", src),
            [
                "leaves the loop when `(done)`",
                "leaves the loop when `(failed)`"
            ]
        );
    }
}

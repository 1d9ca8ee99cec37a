//! Deterministic extraction: what a code harness says, read with real parsers (tree-sitter for
//! Python and TypeScript, whose control flow `control.rs` reads for both; the YAML parser for
//! agent configs), before any model sees it.

mod control;
mod python;
mod typescript;
mod yaml;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use walkdir::WalkDir;

/// Where a construct was found: a path relative to SRC (its file name when SRC is a file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loc {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A prompt or template: the text the code sends to a model.
#[derive(Debug, Clone, Serialize)]
pub struct Prompt {
    pub name: String,
    pub text: String,
    pub at: Loc,
}

/// A tool the code harness offers its model.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: String,
    pub description: String,
    /// JSON-schema-like parameters, when the source states them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// How it was declared: `decorated function`, `schema dict`, `whitelist`, `yaml`.
    pub kind: String,
    pub at: Loc,
}

impl Tool {
    /// A tool declared as data (`{"name": …, "parameters": {…}}`, OpenAI or Anthropic style, or
    /// MCP's `inputSchema`): `None` unless it has both a name and an object schema.
    pub fn declared(map: &serde_json::Map<String, Value>, kind: &str, at: Loc) -> Option<Tool> {
        let schema = ["parameters", "input_schema", "inputSchema"]
            .iter()
            .find_map(|k| map.get(*k))
            .filter(|s| s.is_object())?;
        let name = map.get("name")?.as_str()?;
        Some(Tool {
            name: name.to_string(),
            description: map
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            schema: Some(schema.clone()),
            kind: kind.into(),
            at,
        })
    }

    /// A tool named in a list of allowed tools called `list`.
    pub fn listed(name: &str, list: &str, at: Loc) -> Tool {
        Tool {
            name: name.to_string(),
            description: String::new(),
            schema: None,
            kind: format!("whitelist `{list}`"),
            at,
        }
    }
}

/// Parses `text` with a tree-sitter grammar; a file with syntax errors is refused, naming the
/// line of the first.
fn parse(
    lang: &str,
    grammar: tree_sitter::Language,
    text: &str,
) -> Result<tree_sitter::Tree, String> {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&grammar)
        .map_err(|e| format!("{lang}: cannot load the grammar: {e}"))?;
    let tree = parser
        .parse(text, None)
        .ok_or_else(|| format!("{lang}: the parser gave up"))?;
    let root = tree.root_node();
    if root.has_error() {
        let line = first_error(root).map_or(1, |n| n.start_position().row + 1);
        return Err(format!(
            "{lang}: a syntax error near line {line} (tree-sitter could not parse the file)"
        ));
    }
    Ok(tree)
}

fn first_error(n: tree_sitter::Node) -> Option<tree_sitter::Node> {
    if n.is_error() || n.is_missing() {
        return Some(n);
    }
    let mut c = n.walk();
    n.children(&mut c).find_map(first_error)
}

/// A node's source text.
fn node_text<'s>(n: tree_sitter::Node, src: &'s [u8]) -> &'s str {
    n.utf8_text(src).unwrap_or("")
}

/// Where a node starts in the file `rel`.
fn node_loc(rel: &str, n: tree_sitter::Node) -> Loc {
    Loc {
        file: rel.to_string(),
        line: n.start_position().row + 1,
    }
}

/// A variable that lists the tools a model may use.
fn is_tool_list_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("tool") || n.contains("allowed") || n.contains("whitelist")
}

/// One item of the control-flow outline.
#[derive(Debug, Clone, Serialize)]
pub struct Control {
    /// `loop`, `stage`, `retry` or `stop`.
    pub kind: String,
    pub name: String,
    pub detail: String,
    pub at: Loc,
}

impl Control {
    /// A condition that leaves an agent loop: the loop's stop rule.
    pub fn loop_exit(func: Option<&str>, cond: &str, at: Loc) -> Control {
        Control {
            kind: "stop".into(),
            name: func.unwrap_or_default().to_string(),
            detail: format!("leaves the loop when `{cond}`"),
            at,
        }
    }
}

/// A verifier or check that should stay code.
#[derive(Debug, Clone, Serialize)]
pub struct Verifier {
    pub name: String,
    /// `python function` or `command`.
    pub kind: String,
    /// The function's source verbatim, or the command line.
    pub code: String,
    /// For a Python function: its parameter names (the script wrapper passes CLI args to them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
    pub at: Loc,
}

/// A file extraction could not read, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    pub path: String,
    pub why: String,
}

/// Everything extraction found in SRC.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Extraction {
    /// Files read (relative paths).
    pub files: Vec<String>,
    pub prompts: Vec<Prompt>,
    pub tools: Vec<Tool>,
    pub control: Vec<Control>,
    pub verifiers: Vec<Verifier>,
    pub unreadable: Vec<Unreadable>,
    /// Module-level imports and constants of Python files, by file: what an extracted verifier
    /// may need to run on its own.
    #[serde(skip)]
    pub python_prelude: std::collections::BTreeMap<String, String>,
}

impl Extraction {
    /// A shell command that runs the tests, recorded once however often the source names it.
    fn test_command(&mut self, cmd: &str, at: Loc) {
        if self.verifiers.iter().any(|v| v.code == cmd) {
            return;
        }
        self.verifiers.push(Verifier {
            name: "test-command".into(),
            kind: "command".into(),
            code: cmd.to_string(),
            params: Vec::new(),
            at,
        });
    }

    /// Whether extraction found any construct at all.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
            && self.tools.is_empty()
            && self.control.is_empty()
            && self.verifiers.is_empty()
    }
}

/// Why SRC cannot be migrated at all.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{0}: no such file or folder")]
    NotFound(PathBuf),
    #[error("{0}: the folder has no files")]
    Empty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What kind of file a path is, by extension.
enum Kind {
    Python,
    /// TypeScript or JavaScript; `true` for the TSX grammar (JSX, and plain JavaScript).
    TypeScript(bool),
    Yaml,
    /// Prompt templates kept as their own files (`.j2`, or text under a `prompts/` folder).
    Template,
    /// Read as context for the model, but not mined for constructs (README, JSON, text).
    Context,
    /// A programming language this build has no parser for.
    NoParser(&'static str),
}

fn kind_of(rel: &str) -> Kind {
    let lower = rel.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let lang = match ext {
        "py" => return Kind::Python,
        "yaml" | "yml" => return Kind::Yaml,
        "j2" | "jinja" | "jinja2" => return Kind::Template,
        "md" | "txt" if lower.contains("prompt") || lower.contains("template") => {
            return Kind::Template;
        }
        "ts" | "mts" | "cts" => return Kind::TypeScript(false),
        "tsx" | "js" | "jsx" | "mjs" | "cjs" => return Kind::TypeScript(true),
        "go" => "Go",
        "rs" => "Rust",
        "java" => "Java",
        "kt" => "Kotlin",
        "rb" => "Ruby",
        "php" => "PHP",
        "cs" => "C#",
        "c" | "h" | "cc" | "cpp" | "hpp" => "C/C++",
        "swift" => "Swift",
        "scala" => "Scala",
        "lua" => "Lua",
        _ => return Kind::Context,
    };
    Kind::NoParser(lang)
}

const SKIP: [&str; 8] = [
    ".git",
    "node_modules",
    "__pycache__",
    ".venv",
    "venv",
    "target",
    "migrated",
    ".mypy_cache",
];

/// The files of SRC (one file, or every file under a folder, sorted), as (absolute, relative).
pub fn list_files(src: &Path) -> Result<Vec<(PathBuf, String)>, ExtractError> {
    if !src.exists() {
        return Err(ExtractError::NotFound(src.to_path_buf()));
    }
    if src.is_file() {
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![(src.to_path_buf(), name)]);
    }
    let mut files = Vec::new();
    let walk = WalkDir::new(src).sort_by_file_name().into_iter();
    // A committed `migrated/` output beside the source is not part of the source.
    for entry in walk.filter_entry(|e| {
        e.depth() == 0 || !SKIP.contains(&e.file_name().to_string_lossy().as_ref())
    }) {
        let entry = entry.map_err(|e| ExtractError::Io {
            path: src.to_path_buf(),
            source: e.into(),
        })?;
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(src)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .replace('\\', "/");
            files.push((entry.path().to_path_buf(), rel));
        }
    }
    if files.is_empty() {
        return Err(ExtractError::Empty(src.to_path_buf()));
    }
    Ok(files)
}

/// Reads a file as text; `None` when it is binary or not UTF-8.
fn read_text(path: &Path) -> Result<Option<String>, ExtractError> {
    let bytes = std::fs::read(path).map_err(|source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.contains(&0) {
        return Ok(None);
    }
    Ok(String::from_utf8(bytes).ok())
}

/// The source texts extraction read, to hand to the model as context.
pub type Texts = Vec<(String, String)>;

/// Extracts every construct of SRC. Files it cannot read are listed in `unreadable`.
pub fn extract(src: &Path) -> Result<(Extraction, Texts), ExtractError> {
    let mut ex = Extraction::default();
    let mut texts = Vec::new();
    for (abs, rel) in list_files(src)? {
        let Some(text) = read_text(&abs)? else {
            ex.unreadable.push(Unreadable {
                path: rel,
                why: "a binary file (not UTF-8 text)".into(),
            });
            continue;
        };
        match kind_of(&rel) {
            Kind::Python => match python::extract(&rel, &text, &mut ex) {
                Ok(()) => {}
                Err(why) => {
                    ex.unreadable.push(Unreadable { path: rel, why });
                    continue;
                }
            },
            Kind::TypeScript(tsx) => {
                if let Err(why) = typescript::extract(&rel, &text, tsx, &mut ex) {
                    ex.unreadable.push(Unreadable { path: rel, why });
                    continue;
                }
            }
            Kind::Yaml => {
                if let Err(why) = yaml::extract(&rel, &text, &mut ex) {
                    ex.unreadable.push(Unreadable { path: rel, why });
                    continue;
                }
            }
            Kind::Template => {
                let name = Path::new(&rel)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| rel.clone());
                ex.prompts.push(Prompt {
                    name,
                    text: text.clone(),
                    at: Loc {
                        file: rel.clone(),
                        line: 1,
                    },
                });
            }
            Kind::Context => {}
            Kind::NoParser(lang) => {
                ex.unreadable.push(Unreadable {
                    path: rel,
                    why: format!("{lang}: this build of nlah has no parser for it"),
                });
                continue;
            }
        }
        ex.files.push(rel.clone());
        texts.push((rel, text));
    }
    dedup_tools(&mut ex.tools);
    Ok((ex, texts))
}

/// A tool both whitelisted and defined is one tool: keep the richest declaration.
fn dedup_tools(tools: &mut Vec<Tool>) {
    let mut out: Vec<Tool> = Vec::new();
    for t in tools.drain(..) {
        match out.iter_mut().find(|o| o.name == t.name) {
            Some(o) if o.schema.is_none() && t.schema.is_some() => *o = t,
            Some(o) if o.description.is_empty() && !t.description.is_empty() => {
                o.description = t.description
            }
            Some(_) => {}
            None => out.push(t),
        }
    }
    *tools = out;
}

/// Function names that read as a stage of an agent loop.
const STAGE_WORDS: [&str; 16] = [
    "plan",
    "act",
    "execute",
    "verify",
    "review",
    "reflect",
    "observe",
    "step",
    "repair",
    "fix",
    "critique",
    "summarize",
    "think",
    "decide",
    "evaluate",
    "run_tests",
];

/// `runTests` → `run_tests`, so that camelCase names match the same words as Python's.
fn snake(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A function that reads as a stage of an agent loop (`plan`, `_act`, `runTests`, `verify_step`).
fn is_stage_name(name: &str) -> bool {
    let s = snake(name);
    let s = s.trim_start_matches('_');
    STAGE_WORDS
        .iter()
        .any(|w| s == *w || s.starts_with(&format!("{w}_")))
}

/// A function that reads as a check (`verify…`, `check…`, `…_validate…`).
fn is_verifier_name(name: &str) -> bool {
    let n = snake(name);
    ["verify", "check", "validate"]
        .iter()
        .any(|w| n.starts_with(w) || n.contains(&format!("_{w}")))
}

/// Names that read as limits on a loop, and what kind of control item they are.
fn limit_kind(name: &str) -> Option<&'static str> {
    // `max_steps`, `MAX_STEPS`, `maxSteps` and `max-steps` are one name.
    let n: String = name
        .to_ascii_lowercase()
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect();
    if n.contains("retry") || n.contains("retries") || n.contains("attempt") {
        Some("retry")
    } else if [
        "steplimit",
        "maxsteps",
        "maxturns",
        "maxiter",
        "costlimit",
        "budget",
        "timeout",
        "maxtokens",
        "timelimit",
    ]
    .iter()
    .any(|w| n.contains(w))
    {
        Some("stop")
    } else {
        None
    }
}

/// A shell command that runs tests or checks.
fn is_test_command(s: &str) -> bool {
    let s = s.trim();
    const STARTS: [&str; 12] = [
        "pytest",
        "python -m pytest",
        "python3 -m pytest",
        "python -m unittest",
        "python3 -m unittest",
        "npm test",
        "npm run test",
        "cargo test",
        "make test",
        "make check",
        "go test",
        "tox",
    ];
    !s.contains('\n')
        && STARTS
            .iter()
            .any(|p| s == *p || s.starts_with(&format!("{p} ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> Extraction {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/code-harnesses");
        extract(&root.join(name)).unwrap().0
    }

    fn names<T>(v: &[T], f: impl Fn(&T) -> &str) -> Vec<String> {
        v.iter().map(|x| f(x).to_string()).collect()
    }

    #[test]
    fn python_loop_is_read() {
        let ex = example("py-plan-act-verify");
        assert_eq!(
            names(&ex.prompts, |p| &p.name),
            [
                "SYSTEM_PROMPT",
                "PLAN_TEMPLATE",
                "ACT_TEMPLATE",
                "VERIFY_FEEDBACK_TEMPLATE"
            ]
        );
        assert!(
            ex.prompts[0]
                .text
                .starts_with("You are a careful software agent")
        );
        let tools = names(&ex.tools, |t| &t.name);
        assert_eq!(tools, ["run_shell", "read_file", "write_file", "finish"]);
        assert!(ex.tools[0].schema.is_some() && ex.tools[3].schema.is_some());
        assert_eq!(names(&ex.verifiers, |v| &v.name), ["verify_step"]);
        assert_eq!(ex.verifiers[0].params, ["path", "min_chars"]);
        let kinds: Vec<(String, String)> = ex
            .control
            .iter()
            .map(|c| (c.kind.clone(), c.name.clone()))
            .collect();
        for want in [
            ("stage", "plan"),
            ("stage", "act"),
            ("loop", "run"),
            ("retry", "run"),
            ("stop", "MAX_STEPS"),
            ("retry", "MAX_RETRIES"),
        ] {
            assert!(
                kinds.contains(&(want.0.into(), want.1.into())),
                "{want:?} in {kinds:?}"
            );
        }
        assert!(ex.unreadable.is_empty());
    }

    #[test]
    fn yaml_config_is_read() {
        let ex = example("yaml-agent");
        assert_eq!(
            names(&ex.prompts, |p| &p.name),
            [
                "agent.system_template",
                "agent.instance_template",
                "agent.format_error_template"
            ]
        );
        assert_eq!(ex.prompts[0].at.to_string(), "config.yaml:2");
        assert_eq!(names(&ex.tools, |t| &t.name), ["bash", "submit"]);
        assert_eq!(names(&ex.verifiers, |v| &v.code), ["make test"]);
        let limits = names(&ex.control, |c| &c.name);
        assert!(
            limits.contains(&"agent.step_limit".to_string()),
            "{limits:?}"
        );
        assert!(limits.contains(&"agent.cost_limit".to_string()));
        assert!(limits.contains(&"environment.timeout".to_string()));
    }

    #[test]
    fn other_languages_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agent.go"), "package main\n").unwrap();
        std::fs::write(dir.path().join("broken.ts"), "const x = ;\n").unwrap();
        std::fs::write(dir.path().join("blob.bin"), [0u8, 1, 2]).unwrap();
        let (ex, _) = extract(dir.path()).unwrap();
        assert!(ex.files.is_empty());
        assert_eq!(ex.unreadable.len(), 3);
        assert!(ex.unreadable[0].why.contains("Go"), "{:?}", ex.unreadable);
        assert!(ex.unreadable[1].why.contains("binary"));
        assert!(
            ex.unreadable[2]
                .why
                .contains("TypeScript: a syntax error near line 1")
        );
    }

    #[test]
    fn typescript_scaffold_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let src = r#"import { tool } from "ai";

export const SYSTEM_PROMPT = `You are a coding agent. Use one tool per turn.`;
const maxSteps = 8;
const ALLOWED_TOOLS = ["bash", "readFile"];

export const tools = {
  bash: tool({ description: "Run a command", parameters: schema }),
};

const readFileSpec = {
  name: "readFile",
  description: "Read a file",
  parameters: { type: "object", properties: { path: { type: "string" } } },
};

export function verifyPatch(diff: string): boolean {
  return diff.length > 0;
}

export async function run(task: string) {
  for (let step = 0; step < maxSteps; step++) {
    try {
      const done = await act(task);
      if (done) break;
    } catch (e) {
      continue;
    }
  }
  await exec("npm test");
}
"#;
        std::fs::write(dir.path().join("agent.ts"), src).unwrap();
        let (ex, _) = extract(dir.path()).unwrap();
        assert!(ex.unreadable.is_empty(), "{:?}", ex.unreadable);
        assert_eq!(names(&ex.prompts, |p| &p.name), ["SYSTEM_PROMPT"]);
        assert_eq!(names(&ex.tools, |t| &t.name), ["bash", "readFile"]);
        assert!(ex.tools[1].schema.is_some());
        assert_eq!(
            names(&ex.verifiers, |v| &v.name),
            ["verifyPatch", "test-command"]
        );
        let kinds = names(&ex.control, |c| &c.kind);
        for k in ["stop", "loop", "retry"] {
            assert!(kinds.contains(&k.to_string()), "{k} in {kinds:?}");
        }
    }

    #[test]
    fn typescript_example_is_read() {
        let ex = example("ts-review-agent");
        assert_eq!(
            names(&ex.prompts, |p| &p.name),
            ["SYSTEM_PROMPT", "REVIEW_TEMPLATE"]
        );
        assert_eq!(names(&ex.tools, |t| &t.name), ["runCommand", "readFile"]);
        assert_eq!(
            names(&ex.verifiers, |v| &v.name),
            ["checkReview", "test-command"]
        );
        assert_eq!(ex.verifiers[1].code, "npm test");
        let limits = names(&ex.control, |c| &c.name);
        assert!(limits.contains(&"maxSteps".to_string()), "{limits:?}");
        assert!(limits.contains(&"maxRetries".to_string()), "{limits:?}");
    }
}

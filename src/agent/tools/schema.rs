//! The built-in tools' parameters: what a correct call looks like, as JSON schemas for the model
//! and as the table that argument checking reads.

use std::sync::LazyLock;

use serde_json::{Map, json};

use crate::model::ToolSpec;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Text,
    /// An integer ≥ 1.
    Line,
}

pub(super) struct Param {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) required: bool,
    pub(super) description: &'static str,
}

pub(super) struct ToolDef {
    pub(super) name: &'static str,
    /// How a correct call looks, quoted in corrections.
    pub(super) usage: &'static str,
    pub(super) description: &'static str,
    pub(super) params: &'static [Param],
}

pub(super) const TOOLS: [ToolDef; 4] = [
    ToolDef {
        name: "shell",
        usage: r#"{"command": "<bash command>"}"#,
        description: "Run a bash command in the workspace (the first starts in the workspace \
            root; `cd` and exported variables carry over to your next commands) and return its \
            stdout and stderr, interleaved, followed by the exit code. Commands are sandboxed: \
            they write only in `repo/`, `artifacts/` and your own folder, read nothing outside \
            the workspace but the system's programs, and have no network access. stdin is \
            empty, so interactive programs will not work; pass flags such as -y. Each command \
            has a time limit, after which it is killed and the next command starts a new shell; \
            background processes are stopped when the command returns. Long output is cut in \
            the middle (the first and last parts are kept), so filter it (grep, head, tail) \
            when you expect a lot.",
        params: &[Param {
            name: "command",
            kind: Kind::Text,
            required: true,
            description: "The bash command line, e.g. `ls -la src` or `python3 -m pytest -x -q`.",
        }],
    },
    ToolDef {
        name: "read",
        usage: r#"{"path": "<file path>", "start_line": <optional line number>, "end_line": <optional line number>}"#,
        description: "Read a text file of the workspace. Returns the plain text (no line \
            numbers). For long files pass start_line and end_line (1-based, inclusive) to read a \
            part; long output is cut in the middle and the note says which lines were left out. \
            Reading a folder lists its entries (folders end with /). Binary files are refused.",
        params: &[
            Param {
                name: "path",
                kind: Kind::Text,
                required: true,
                description: "Path relative to the workspace root, e.g. `src/main.py`.",
            },
            Param {
                name: "start_line",
                kind: Kind::Line,
                required: false,
                description: "First line to return (1-based). Default: 1.",
            },
            Param {
                name: "end_line",
                kind: Kind::Line,
                required: false,
                description: "Last line to return (inclusive). Default: the end of the file.",
            },
        ],
    },
    ToolDef {
        name: "write",
        usage: r#"{"path": "<file path>", "content": "<the complete file content>"}"#,
        description: "Create a file in the workspace, or replace a whole file, with the given \
            content. Missing parent folders are created. For a small change to an existing file \
            use edit instead.",
        params: &[
            Param {
                name: "path",
                kind: Kind::Text,
                required: true,
                description: "Path relative to the workspace root, e.g. `artifacts/plan.md`.",
            },
            Param {
                name: "content",
                kind: Kind::Text,
                required: true,
                description: "The complete new content of the file.",
            },
        ],
    },
    ToolDef {
        name: "edit",
        usage: r#"{"path": "<file path>", "old": "<exact text to replace>", "new": "<replacement text>"}"#,
        description: "Replace one piece of text in a workspace file. `old` must match the file \
            exactly, including whitespace and indentation, and must occur exactly once: include \
            a few surrounding lines to make it unique. Nothing changes when it matches zero or \
            several times. Read the file first.",
        params: &[
            Param {
                name: "path",
                kind: Kind::Text,
                required: true,
                description: "Path relative to the workspace root.",
            },
            Param {
                name: "old",
                kind: Kind::Text,
                required: true,
                description: "The exact text to replace (occurring once in the file).",
            },
            Param {
                name: "new",
                kind: Kind::Text,
                required: true,
                description: "The text to put in its place (may be empty to delete).",
            },
        ],
    },
];

fn spec_of(def: &ToolDef) -> ToolSpec {
    let mut props = Map::new();
    for p in def.params {
        let schema = match p.kind {
            Kind::Text => json!({"type": "string", "description": p.description}),
            Kind::Line => json!({"type": "integer", "minimum": 1, "description": p.description}),
        };
        props.insert(p.name.to_string(), schema);
    }
    let required: Vec<&str> = def
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    ToolSpec {
        name: def.name.to_string(),
        description: def.description.to_string(),
        parameters: json!({
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        })
        .into(),
    }
}

/// The built-in tools' specs, made once per process: children share their schemas.
static SPECS: LazyLock<Vec<ToolSpec>> = LazyLock::new(|| TOOLS.iter().map(spec_of).collect());

/// The specs of the built-in tools, in a fixed order; with `allowed`, only those named in it.
pub fn builtin_specs(allowed: Option<&[String]>) -> Vec<ToolSpec> {
    SPECS
        .iter()
        .filter(|d| allowed.is_none_or(|a| a.contains(&d.name)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_closed_objects() {
        for s in builtin_specs(None) {
            assert_eq!(s.parameters["additionalProperties"], json!(false));
        }
        let only = builtin_specs(Some(&["read".to_string()]));
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].name, "read");
    }
}

//! The runtime charter: generic rules every child gets, from `runtime-charter/*.md`.

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diags, Pos};
use crate::harness::frontmatter::{self, NAME_HINT, valid_name};
use crate::harness::markdown::outline;
use crate::harness::source::{SourceFile, Text};
use crate::harness::{HarnessError, read_text};

/// One charter file.
#[derive(Debug, Clone)]
pub struct CharterPart {
    pub name: String,
    pub path: PathBuf,
    /// The body, without front matter.
    pub body: String,
}

/// The whole charter, in file-name order.
#[derive(Debug, Clone, Default)]
pub struct Charter {
    pub parts: Vec<CharterPart>,
}

impl Charter {
    /// The charter as children read it: every part's body, in order.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(p.body.trim());
            out.push('\n');
        }
        out
    }
}

/// The charter built into the binary (the repository's `runtime-charter/` at build time), so
/// an installed `nlah` runs from any folder.
const BUILTIN: [(&str, &str); 4] = [
    (
        "10-workspace-protocol.md",
        include_str!("../runtime-charter/10-workspace-protocol.md"),
    ),
    (
        "20-tools.md",
        include_str!("../runtime-charter/20-tools.md"),
    ),
    (
        "30-reporting.md",
        include_str!("../runtime-charter/30-reporting.md"),
    ),
    (
        "40-stopping.md",
        include_str!("../runtime-charter/40-stopping.md"),
    ),
];

pub fn builtin(diags: &mut Diags) -> Charter {
    let mut charter = Charter::default();
    for (name, text) in BUILTIN {
        charter.parts.extend(part(
            &Path::new("<built-in runtime-charter>").join(name),
            text.to_string(),
            diags,
        ));
    }
    charter
}

/// Reads and checks a charter folder.
pub fn load(dir: &Path, diags: &mut Diags) -> Result<Charter, HarnessError> {
    if !dir.is_dir() {
        return Err(HarnessError::NotFound(dir.to_path_buf()));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| HarnessError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md") && p.is_file())
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    if files.is_empty() {
        diags.push(
            Diagnostic::error(
                Pos::file_start(dir),
                "empty-charter",
                "the runtime charter has no `.md` files",
            )
            .with_hint("add e.g. `10-workspace-protocol.md`"),
        );
    }
    let mut charter = Charter::default();
    for path in files {
        let (text, bad) = read_text(&path)?;
        if let Some(bad) = bad {
            diags.push(bad);
        }
        charter.parts.extend(part(&path, text, diags));
    }
    Ok(charter)
}

/// Checks one charter file: front matter with a name equal to its stem, a description, a body.
fn part(path: &Path, text: String, diags: &mut Diags) -> Option<CharterPart> {
    let file = SourceFile::new(path, text);
    let t = Text::from_file(&file);
    let o = outline(t.as_str());
    let fy = frontmatter::read(&t, &o, diags)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let name = fy.string("name", diags).unwrap_or_default();
    if !valid_name(&name) {
        diags.push(
            Diagnostic::error(
                fy.key_pos("name"),
                "skill-name",
                format!("charter part name `{name}` is not a valid name"),
            )
            .with_hint(NAME_HINT),
        );
    } else if name != stem {
        diags.push(
            Diagnostic::warning(
                fy.key_pos("name"),
                "name-file-mismatch",
                format!("charter part `{name}` lives in `{stem}.md`"),
            )
            .with_hint("name the file after the part"),
        );
    }
    if fy
        .string("description", diags)
        .is_none_or(|d| d.trim().is_empty())
    {
        diags.push(Diagnostic::error(
            fy.key_pos("description"),
            "front-matter",
            "charter part has no `description`",
        ));
    }
    let body = file.text[o.body_start..].to_string();
    if body.trim().is_empty() {
        diags.push(
            Diagnostic::error(
                file.pos(o.body_start),
                "empty-charter",
                "charter part has no body",
            )
            .with_hint("write the rules children must follow"),
        );
    }
    Some(CharterPart {
        name,
        path: path.to_path_buf(),
        body,
    })
}

//! Diagnostics: what `nlah check` reports, with a position in a real file.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

/// How bad a diagnostic is: warnings leave a harness runnable, errors do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A position in a source file: 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub path: Arc<Path>,
    pub line: u32,
    pub col: u32,
}

impl Pos {
    /// The first character of a file, for problems that concern the whole file.
    pub fn file_start(path: &Path) -> Pos {
        Pos {
            path: Arc::from(path),
            line: 1,
            col: 1,
        }
    }
}

/// The first invalid UTF-8 byte of `bytes` and where it is (1-based line, character column), so
/// that an encoding error points at the byte instead of the file's start; `None` for valid text.
pub fn first_invalid_utf8(path: &Path, bytes: &[u8]) -> Option<(Pos, u8)> {
    let e = std::str::from_utf8(bytes).err()?;
    let at = e.valid_up_to();
    // The prefix before `valid_up_to` is valid UTF-8 by definition.
    let prefix = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let pos = Pos {
        path: Arc::from(path),
        line: prefix.matches('\n').count() as u32 + 1,
        col: prefix[line_start..].chars().count() as u32 + 1,
    };
    Some((pos, bytes.get(at).copied().unwrap_or_default()))
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

impl Serialize for Pos {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One finding, rustc-style: `path:line:col: error: cause` plus an optional hint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Diagnostic {
    pub pos: Pos,
    pub severity: Severity,
    /// A stable kebab-case name for the kind of problem (documented in docs/FORMAT.md).
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(pos: Pos, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            pos,
            severity: Severity::Error,
            code,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(pos: Pos, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(pos, code, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.pos, self.severity, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

/// The machine-readable form printed by `nlah check --json`, one object per line.
#[derive(Serialize)]
pub struct JsonDiagnostic<'a> {
    pub severity: Severity,
    pub code: &'static str,
    pub path: String,
    pub line: u32,
    pub col: u32,
    pub message: &'a str,
    pub hint: Option<&'a str>,
}

impl<'a> From<&'a Diagnostic> for JsonDiagnostic<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        JsonDiagnostic {
            severity: d.severity,
            code: d.code,
            path: d.pos.path.display().to_string(),
            line: d.pos.line,
            col: d.pos.col,
            message: &d.message,
            hint: d.hint.as_deref(),
        }
    }
}

/// A growing list of diagnostics that parsing and validation push into.
#[derive(Debug, Default, Clone)]
pub struct Diags(pub Vec<Diagnostic>);

impl Diags {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Diags) {
        self.0.extend(other.0);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.0.len() - self.errors()
    }

    /// Sorted by file and position, duplicates removed: the order `check` prints.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.0.sort();
        self.0
            .dedup_by(|a, b| a.pos == b.pos && a.message == b.message);
        self.0
    }
}

/// The closest of `candidates` to `word` within a small edit distance, for "did you mean" hints.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_near_words_only() {
        assert_eq!(closest("rol", ["role", "reads"]), Some("role"));
        assert_eq!(closest("planner", ["executor", "verifier"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}

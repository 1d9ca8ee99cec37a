//! The proposer's edits: parsed from its JSON answer, applied to the parent harness's files in
//! memory, and rejected before anything runs when they leave their declared surface.
//!
//! An editable surface is one of: a section of `SKILL.md` (`SKILL.md#Stages`, any heading), a
//! module file (`modules/NAME.md`), a script (`scripts/NAME`), or a skill (`skills/NAME`, a
//! file or a folder). Every change an edit makes must fall inside the surface it declares.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One file of a harness: its bytes and whether it is executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub bytes: Vec<u8>,
    pub exec: bool,
}

/// A harness folder's files by path relative to it (`SKILL.md`, `modules/verifier.md`).
pub type Files = BTreeMap<String, File>;

/// The proposer's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Proposal {
    #[serde(default)]
    pub edits: Vec<Edit>,
}

/// One proposed edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// The declared editable surface.
    pub surface: String,
    /// The failure mechanism it targets, in the proposer's words.
    #[serde(default)]
    pub mechanism: String,
    pub changes: Vec<Change>,
    /// The change in pass rate it predicts on each split.
    #[serde(default)]
    pub predicted: Predicted,
}

/// One change to one file: replace the one occurrence of `find` with `replace`, or set the
/// file's whole `content`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Predicted {
    #[serde(default)]
    pub search: f64,
    #[serde(default)]
    pub validation: f64,
}

/// Reads the proposer's answer: the JSON object in it (a fenced block or bare), with its edits.
pub fn parse(text: &str) -> Result<Vec<Edit>, String> {
    let start = text.find('{').ok_or("the answer holds no JSON object")?;
    let end = text.rfind('}').ok_or("the answer holds no JSON object")?;
    if end < start {
        return Err("the answer holds no JSON object".into());
    }
    let p: Proposal = serde_json::from_str(&text[start..=end])
        .map_err(|e| format!("the answer's JSON is malformed: {e}"))?;
    if p.edits.is_empty() {
        return Err("the answer proposes no edit".into());
    }
    Ok(p.edits)
}

/// What a surface allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Surface {
    Section(String),
    File(String),
    Skill(String),
}

fn surface(s: &str) -> Result<Surface, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "`{s}` is not an editable surface (SKILL.md#SECTION, modules/NAME.md, scripts/NAME, skills/NAME)"
        )
    };
    if let Some(h) = s.strip_prefix("SKILL.md#") {
        return if h.trim().is_empty() {
            Err(bad())
        } else {
            Ok(Surface::Section(h.trim().to_string()))
        };
    }
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.split('/')
                .all(|c| !c.is_empty() && c != ".." && c != "." && !c.starts_with('.'))
    };
    if let Some(n) = s.strip_prefix("modules/") {
        return (name_ok(n) && !n.contains('/') && n.ends_with(".md"))
            .then(|| Surface::File(s.to_string()))
            .ok_or_else(bad);
    }
    if let Some(n) = s.strip_prefix("scripts/") {
        return name_ok(n)
            .then(|| Surface::File(s.to_string()))
            .ok_or_else(bad);
    }
    if let Some(n) = s.strip_prefix("skills/") {
        return name_ok(n.trim_end_matches('/'))
            .then(|| Surface::Skill(s.trim_end_matches('/').to_string()))
            .ok_or_else(bad);
    }
    Err(bad())
}

fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && c != ".git")
}

/// Applies `edit` to `parent`: the new files, or why the edit is rejected.
pub fn apply(parent: &Files, edit: &Edit) -> Result<Files, String> {
    let surf = surface(&edit.surface)?;
    if edit.changes.is_empty() {
        return Err("the edit has no changes".into());
    }
    let mut files = parent.clone();
    for c in &edit.changes {
        if !safe_path(&c.file) {
            return Err(format!("`{}` is not a path inside the harness", c.file));
        }
        match (&c.find, &c.replace, &c.content) {
            (Some(find), Some(replace), None) => {
                let f = files
                    .get_mut(&c.file)
                    .ok_or_else(|| format!("`{}` does not exist", c.file))?;
                let text = std::str::from_utf8(&f.bytes)
                    .map_err(|_| format!("`{}` is not text", c.file))?;
                if find.is_empty() {
                    return Err(format!("an empty `find` in `{}`", c.file));
                }
                let n = text.matches(find.as_str()).count();
                if n != 1 {
                    return Err(format!(
                        "the text to find occurs {n} times in `{}` (it must occur once)",
                        c.file
                    ));
                }
                f.bytes = text.replacen(find.as_str(), replace, 1).into_bytes();
            }
            (None, None, Some(content)) => {
                let exec = files
                    .get(&c.file)
                    .map_or(c.file.starts_with("scripts/"), |f| f.exec);
                files.insert(
                    c.file.clone(),
                    File {
                        bytes: content.clone().into_bytes(),
                        exec,
                    },
                );
            }
            _ => {
                return Err(format!(
                    "a change to `{}` must give either `find` and `replace`, or `content`",
                    c.file
                ));
            }
        }
    }
    let changed: Vec<&String> = files
        .iter()
        .filter(|(p, f)| parent.get(*p) != Some(*f))
        .map(|(p, _)| p)
        .collect();
    if changed.is_empty() {
        return Err("the edit changes nothing".into());
    }
    let outside: Vec<&&String> = changed
        .iter()
        .filter(|p| match &surf {
            Surface::Section(_) => p.as_str() != "SKILL.md",
            Surface::File(f) => p.as_str() != f.as_str(),
            Surface::Skill(s) => p.as_str() != s.as_str() && !p.starts_with(&format!("{s}/")),
        })
        .collect();
    if let Some(p) = outside.first() {
        return Err(format!(
            "it changes `{p}`, outside its declared surface `{}`",
            edit.surface
        ));
    }
    if let Surface::Section(h) = &surf {
        let old = text_of(parent, "SKILL.md");
        let new = text_of(&files, "SKILL.md");
        section_only(&old, &new, h).map_err(|e| format!("{e} (declared `{}`)", edit.surface))?;
    }
    Ok(files)
}

fn text_of(files: &Files, p: &str) -> String {
    files
        .get(p)
        .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
        .unwrap_or_default()
}

/// The byte span of the section headed `heading` (any level, case-insensitive): its heading
/// line through the line before the next heading of the same or a higher level.
fn section_span(text: &str, heading: &str) -> Option<(usize, usize)> {
    let mut fence = false;
    let mut found: Option<(usize, usize)> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = !fence;
        }
        let level = if fence {
            0
        } else {
            t.chars().take_while(|c| *c == '#').count()
        };
        if (1..=6).contains(&level) && t[level..].starts_with([' ', '\t', '\n', '\r']) {
            if let Some((start, l)) = found {
                if level <= l {
                    return Some((start, at));
                }
            } else if t[level..].trim().eq_ignore_ascii_case(heading) {
                found = Some((at + line.len(), level));
            }
        }
        at += line.len();
    }
    found.map(|(start, _)| (start, text.len()))
}

/// Whether `new` differs from `old` only inside the body of the section `heading`.
fn section_only(old: &str, new: &str, heading: &str) -> Result<(), String> {
    let (a, b) =
        section_span(old, heading).ok_or_else(|| format!("SKILL.md has no section `{heading}`"))?;
    let suffix = &old[b..];
    let ok = new.len() >= a + suffix.len()
        && new.as_bytes()[..a] == old.as_bytes()[..a]
        && new.ends_with(suffix);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "it changes SKILL.md outside the section `{heading}`"
        ))
    }
}

/// The lines each changed file gained, for the leakage checks.
pub fn added_text(parent: &Files, child: &Files) -> String {
    let mut out = String::new();
    for (p, f) in child {
        if parent.get(p) == Some(f) {
            continue;
        }
        let old = text_of(parent, p);
        let new = String::from_utf8_lossy(&f.bytes);
        let diff = similar::TextDiff::from_lines(old.as_str(), new.as_ref());
        for ch in diff.iter_all_changes() {
            if ch.tag() == similar::ChangeTag::Insert {
                out.push_str(ch.value());
                if !ch.value().ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKILL: &str =
        "# H\n\n## Contract\nx\n\n## Stages\n\n### solve\nDo it.\n\n## State\n- persist: `a`\n";

    fn files() -> Files {
        let mut f = Files::new();
        f.insert(
            "SKILL.md".into(),
            File {
                bytes: SKILL.as_bytes().to_vec(),
                exec: false,
            },
        );
        f
    }

    fn edit(surface: &str, changes: Vec<Change>) -> Edit {
        Edit {
            surface: surface.into(),
            mechanism: String::new(),
            changes,
            predicted: Predicted::default(),
        }
    }

    fn replace(file: &str, find: &str, with: &str) -> Change {
        Change {
            file: file.into(),
            find: Some(find.into()),
            replace: Some(with.into()),
            content: None,
        }
    }

    #[test]
    fn an_edit_inside_its_section_applies() {
        let e = edit(
            "SKILL.md#Stages",
            vec![replace("SKILL.md", "Do it.", "Do it well.")],
        );
        let out = apply(&files(), &e).unwrap();
        assert!(text_of(&out, "SKILL.md").contains("Do it well."));
        let e = edit(
            "SKILL.md#solve",
            vec![replace("SKILL.md", "Do it.", "Do it well.")],
        );
        assert!(apply(&files(), &e).is_ok());
    }

    #[test]
    fn an_edit_outside_its_surface_is_refused() {
        let e = edit(
            "SKILL.md#Stages",
            vec![replace("SKILL.md", "persist", "keep")],
        );
        let err = apply(&files(), &e).unwrap_err();
        assert!(err.contains("outside the section `Stages`"), "{err}");
        let e = edit(
            "modules/a.md",
            vec![Change {
                file: "modules/b.md".into(),
                find: None,
                replace: None,
                content: Some("x".into()),
            }],
        );
        assert!(
            apply(&files(), &e)
                .unwrap_err()
                .contains("outside its declared surface")
        );
        let e = edit("SKILL.md", vec![replace("SKILL.md", "x", "y")]);
        assert!(
            apply(&files(), &e)
                .unwrap_err()
                .contains("not an editable surface")
        );
        let e = edit("scripts/../x", vec![]);
        assert!(apply(&files(), &e).is_err());
        let e = edit("SKILL.md#Nope", vec![replace("SKILL.md", "Do it.", "No.")]);
        assert!(
            apply(&files(), &e)
                .unwrap_err()
                .contains("no section `Nope`")
        );
    }

    #[test]
    fn answers_parse_or_say_why_not() {
        assert!(parse("no json here").unwrap_err().contains("no JSON"));
        assert!(parse("{\"edits\": []}").unwrap_err().contains("no edit"));
        assert!(parse("{\"edits\": [{]}").unwrap_err().contains("malformed"));
        let e = parse("Here:\n```json\n{\"edits\": [{\"surface\": \"scripts/x.sh\", \"changes\": [{\"file\": \"scripts/x.sh\", \"content\": \"echo\"}], \"predicted\": {\"search\": 0.1}}]}\n```").unwrap();
        assert_eq!(e[0].predicted.search, 0.1);
        let out = apply(&files(), &e[0]).unwrap();
        assert!(out["scripts/x.sh"].exec);
        assert_eq!(added_text(&files(), &out), "echo\n");
    }
}

//! Harnesses: the Markdown format, its parser, composition with modules, and validation.
//!
//! `load` reads a harness folder; `compose` applies module toggles; `parse` turns composed text
//! into the typed [`Harness`]; `check` runs every check `nlah check` reports.

pub mod clauses;
pub mod compose;
pub mod frontmatter;
pub mod gate;
pub mod layers;
pub mod markdown;
pub mod model;
pub mod module;
pub mod parse;
pub mod source;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use compose::{Composed, Toggles};
pub use model::Harness;
pub use module::Module;
use source::{SourceFile, Text};

use crate::diag::{Diagnostic, Diags, Pos};

/// Failures to read a harness from disk (as opposed to problems in what it says).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0}: no such file or folder")]
    NotFound(PathBuf),
    #[error("{0}: no SKILL.md in this folder")]
    NoSkill(PathBuf),
    /// A harness file that is a FIFO, socket or device: reading it could block forever.
    #[error("{}: not a regular file ({kind}); nlah reads harnesses only from regular files", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `path` is when it exists (links followed) but is neither a regular file nor a folder.
pub fn special_kind(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path).ok()?.file_type();
    Some(if t.is_file() || t.is_dir() {
        return None;
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a special file"
    })
}

/// Reads a file as UTF-8 text; invalid UTF-8 is replaced so that it gets a diagnostic (at the
/// first invalid byte) instead of stopping the check.
pub fn read_text(path: &Path) -> Result<(String, Option<Diagnostic>), HarnessError> {
    let bytes = std::fs::read(path).map_err(|source| HarnessError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok((s, None)),
        Err(e) => {
            let diag = crate::diag::first_invalid_utf8(path, e.as_bytes()).map(not_utf8);
            Ok((String::from_utf8_lossy(e.as_bytes()).into_owned(), diag))
        }
    }
}

/// A harness folder as read from disk: its `SKILL.md` and parsed modules.
#[derive(Debug)]
pub struct HarnessSource {
    pub root: PathBuf,
    pub skill: Arc<SourceFile>,
    pub modules: Vec<Module>,
    /// Problems found while reading the files themselves (encoding, module front matter).
    pub load_diags: Diags,
}

impl HarnessSource {
    pub fn skill_path(&self) -> &Path {
        &self.skill.path
    }

    fn folder_name(&self) -> Option<&str> {
        self.root.file_name().and_then(|n| n.to_str())
    }
}

/// Reads `root/SKILL.md` and `root/modules/*.md`.
pub fn load(root: &Path) -> Result<HarnessSource, HarnessError> {
    if !root.is_dir() {
        return Err(HarnessError::NotFound(root.to_path_buf()));
    }
    let skill_path = root.join("SKILL.md");
    if !skill_path.is_file() {
        return Err(match special_kind(&skill_path) {
            Some(kind) => HarnessError::NotRegular {
                path: skill_path,
                kind,
            },
            None => HarnessError::NoSkill(root.to_path_buf()),
        });
    }
    let mut load_diags = Diags::default();
    let (text, bad) = read_text(&skill_path)?;
    if let Some(bad) = bad {
        load_diags.push(bad);
    }
    let skill = SourceFile::new(&skill_path, text);
    let mut modules = Vec::new();
    let mdir = root.join("modules");
    if mdir.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&mdir)
            .map_err(|source| HarnessError::Io {
                path: mdir.clone(),
                source,
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "md")
                    && (p.is_file() || special_kind(p).is_some())
            })
            .collect();
        files.sort();
        for path in files {
            if let Some(kind) = special_kind(&path) {
                return Err(HarnessError::NotRegular { path, kind });
            }
            let (text, bad) = read_text(&path)?;
            if let Some(bad) = bad {
                load_diags.push(bad);
            }
            if let Some(m) = module::parse(&path, text, &mut load_diags) {
                if let Some(first) = modules.iter().find(|o: &&Module| o.name == m.name) {
                    load_diags.push(
                        Diagnostic::error(
                            m.pos(0),
                            "duplicate-module",
                            format!("module `{}` is defined twice", m.name),
                        )
                        .with_hint(format!("the other is {}", first.file.path.display())),
                    );
                    continue;
                }
                modules.push(m);
            }
        }
    }
    Ok(HarnessSource {
        root: root.to_path_buf(),
        skill,
        modules,
        load_diags,
    })
}

fn not_utf8((at, byte): (Pos, u8)) -> Diagnostic {
    Diagnostic::error(
        at,
        "encoding",
        format!("file is not valid UTF-8: byte 0x{byte:02x} here"),
    )
    .with_hint("save it as UTF-8 text")
}

/// Composes the harness for a set of toggles. Unknown modules and operations that cannot apply
/// are reported in `diags`.
pub fn compose(src: &HarnessSource, toggles: &Toggles, diags: &mut Diags) -> Composed {
    let at = Pos::file_start(&src.root.join("modules"));
    let mods = compose::enabled(&src.modules, toggles, diags, &at);
    compose::compose(&Text::from_file(&src.skill), &mods, diags)
}

/// Parses and validates composed (or base) harness text. `None` when it is a plain skill.
pub fn parse(text: &Text, root: &Path, folder: Option<&str>, diags: &mut Diags) -> Option<Harness> {
    let outline = markdown::outline(text.as_str());
    let meta = frontmatter::skill_meta(text, &outline, folder, diags).unwrap_or_default();
    let h = parse::harness(text, &outline, meta, diags)?;
    validate::harness(&h, root, diags);
    Some(h)
}

/// Loads, composes and parses in one step: what `run` and `show` need. Errors abort.
pub fn build(
    root: &Path,
    toggles: &Toggles,
) -> Result<(Composed, Option<Harness>, Diags), HarnessError> {
    let src = load(root)?;
    let mut diags = src.load_diags.clone();
    let composed = compose(&src, toggles, &mut diags);
    let h = parse(&composed.text, &src.root, src.folder_name(), &mut diags);
    Ok((composed, h, diags))
}

/// Every check of a harness folder: the base, each module alone, the default toggles, and all
/// modules at once. A problem that appears only in a composition says which modules caused it.
pub fn check(src: &HarnessSource) -> Diags {
    let mut all = src.load_diags.clone();
    let base = Text::from_file(&src.skill);
    let mut base_diags = Diags::default();
    let is_harness = parse(&base, &src.root, src.folder_name(), &mut base_diags).is_some();
    let known: std::collections::HashSet<(Pos, String)> = base_diags
        .0
        .iter()
        .map(|d| (d.pos.clone(), d.message.clone()))
        .collect();
    all.extend(base_diags);
    if !is_harness {
        for m in &src.modules {
            all.push(
                Diagnostic::error(
                    m.pos(0),
                    "module-without-harness",
                    format!(
                        "module `{}` belongs to a SKILL.md that declares no `## Stages`",
                        m.name
                    ),
                )
                .with_hint(
                    "modules change harnesses; a plain skill has nothing for them to change",
                ),
            );
        }
        return all;
    }
    let mut sets: Vec<Vec<&Module>> = src.modules.iter().map(|m| vec![m]).collect();
    let defaults: Vec<&Module> = src.modules.iter().filter(|m| m.enabled).collect();
    if defaults.len() > 1 {
        sets.push(defaults);
    }
    if src.modules.len() > 1 {
        sets.push(src.modules.iter().collect());
    }
    for mut set in sets {
        set.sort_by(|a, b| a.name.cmp(&b.name));
        let mut d = Diags::default();
        let composed = compose::compose(&base, &set, &mut d);
        parse(&composed.text, &src.root, src.folder_name(), &mut d);
        let names: Vec<&str> = set.iter().map(|m| m.name.as_str()).collect();
        for mut diag in d.0 {
            if known.contains(&(diag.pos.clone(), diag.message.clone())) {
                continue;
            }
            let in_module = set.iter().any(|m| *m.file.path == *diag.pos.path);
            if !in_module || set.len() > 1 {
                let note = format!(
                    "with module{} {} enabled",
                    if names.len() > 1 { "s" } else { "" },
                    names.join(", ")
                );
                diag.hint = Some(match diag.hint {
                    Some(h) => format!("{h} ({note})"),
                    None => note,
                });
            }
            all.push(diag);
        }
    }
    all
}

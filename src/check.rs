//! What `nlah check` looks at: harness folders, plain skills, module files, charters, and any
//! folder searched for them.

use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::diag::{Diagnostic, Diags, Pos};
use crate::harness::{self, HarnessError};

/// One thing to check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A folder with a `SKILL.md` (a harness or a plain skill) and its modules.
    Skill(PathBuf),
    /// A module file outside any skill folder given.
    Module(PathBuf),
    /// A `runtime-charter/` folder.
    Charter(PathBuf),
}

const SKIP: [&str; 5] = [".git", "target", "node_modules", "workspaces", ".venv"];

/// Finds the targets under `path`.
pub fn discover(path: &Path) -> Result<Vec<Target>, HarnessError> {
    if !path.exists() {
        return Err(HarnessError::NotFound(path.to_path_buf()));
    }
    // Reading a FIFO or a device would block or never end; say so instead of skipping it.
    let special = |p: &Path| {
        harness::special_kind(p).map_or(Ok(()), |kind| {
            Err(HarnessError::NotRegular {
                path: p.to_path_buf(),
                kind,
            })
        })
    };
    special(path)?;
    if path.is_file() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let parent = path.parent().unwrap_or(Path::new("."));
        return Ok(vec![if name == "SKILL.md" {
            Target::Skill(parent.to_path_buf())
        } else if is_charter(parent) {
            Target::Charter(parent.to_path_buf())
        } else {
            Target::Module(path.to_path_buf())
        }]);
    }
    let mut out = Vec::new();
    let mut walk = WalkDir::new(path).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(|e| HarnessError::Io {
            path: e
                .path()
                .map_or_else(|| path.to_path_buf(), Path::to_path_buf),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
        })?;
        if !entry.file_type().is_dir() {
            continue;
        }
        let dir = entry.path();
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if entry.depth() > 0 && SKIP.contains(&name) {
            walk.skip_current_dir();
            continue;
        }
        special(&dir.join("SKILL.md"))?;
        if dir.join("SKILL.md").is_file() {
            out.push(Target::Skill(dir.to_path_buf()));
            // A skill's own modules are checked with it; nested skills (`skills/`) are found
            // by walking on.
            continue;
        }
        if is_charter(dir) {
            out.push(Target::Charter(dir.to_path_buf()));
            walk.skip_current_dir();
            continue;
        }
        if name == "modules" && entry.depth() == 0 {
            let files = md_files(dir);
            for f in &files {
                special(f)?;
            }
            out.extend(files.into_iter().map(Target::Module));
        }
    }
    Ok(out)
}

fn is_charter(dir: &Path) -> bool {
    dir.file_name().is_some_and(|n| n == "runtime-charter")
}

fn md_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    v.sort();
    v
}

/// Checks one target.
pub fn check(target: &Target) -> Diags {
    let io = |e: HarnessError, path: &Path| {
        let mut d = Diags::default();
        d.push(Diagnostic::error(
            Pos::file_start(path),
            "io",
            e.to_string(),
        ));
        d
    };
    match target {
        Target::Skill(dir) => match harness::load(dir) {
            Ok(src) => harness::check(&src),
            Err(e) => io(e, dir),
        },
        Target::Charter(dir) => {
            let mut d = Diags::default();
            match crate::charter::load(dir, &mut d) {
                Ok(_) => d,
                Err(e) => io(e, dir),
            }
        }
        Target::Module(path) => {
            // A module next to its harness is checked against it.
            let harness_dir = path
                .parent()
                .filter(|p| p.ends_with("modules"))
                .and_then(Path::parent);
            if let Some(dir) = harness_dir.filter(|d| d.join("SKILL.md").is_file()) {
                let all = check(&Target::Skill(dir.to_path_buf()));
                return Diags(
                    all.0
                        .into_iter()
                        .filter(|x| *x.pos.path == **path)
                        .collect(),
                );
            }
            let mut d = Diags::default();
            match harness::read_text(path) {
                Ok((text, bad)) => {
                    if let Some(bad) = bad {
                        d.push(bad);
                    }
                    harness::module::parse(path, text, &mut d);
                }
                Err(e) => return io(e, path),
            }
            d
        }
    }
}

/// Checks many targets, spreading them over the machine's cores.
pub fn check_all(targets: &[Target]) -> Diags {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(targets.len().max(1));
    let chunk = targets.len().div_ceil(threads).max(1);
    let mut all = Diags::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter().map(check).fold(Diags::default(), |mut acc, d| {
                        acc.extend(d);
                        acc
                    })
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(d) => all.extend(d),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    all
}

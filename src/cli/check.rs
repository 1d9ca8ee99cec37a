//! `nlah check PATH...`

use std::io::Write;
use std::path::PathBuf;

use nlah::check::{self, Target};
use nlah::diag::Severity;

use super::{exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// Harness folders, Agent Skills folders, module files, or folders to search.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print one JSON object per diagnostic.
    #[arg(long)]
    json: bool,
    /// Treat warnings as errors.
    #[arg(long)]
    strict: bool,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let mut targets = Vec::new();
    for p in &a.paths {
        let found = check::discover(p)?;
        // Exit 0 must mean something was checked, not that a typo found nothing.
        if found.is_empty() {
            anyhow::bail!(
                "{}: nothing to check (no SKILL.md, module file or runtime charter found there)",
                p.display()
            );
        }
        targets.extend(found);
    }
    targets.sort();
    targets.dedup();
    let mut diags = check::check_all(&targets).into_sorted();
    if a.strict {
        for d in &mut diags {
            d.severity = Severity::Error;
        }
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    output::write_all(&mut out, &diags, a.json, output::stdout_color());
    let (skills, modules, charters) = targets.iter().fold((0, 0, 0), |(s, m, c), t| match t {
        Target::Skill(_) => (s + 1, m, c),
        Target::Module(_) => (s, m + 1, c),
        Target::Charter(_) => (s, m, c + 1),
    });
    if a.json {
        // A last line a script can tell from a diagnostic: the check ran, and what it found.
        let summary = serde_json::json!({"summary": {
            "skill_folders": skills, "module_files": modules, "charters": charters,
            "errors": errors, "warnings": warnings,
        }});
        let _ = writeln!(out, "{summary}");
    } else {
        let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let mut what = vec![count(skills, "skill folder")];
        if modules > 0 {
            what.push(count(modules, "module file"));
        }
        if charters > 0 {
            what.push(count(charters, "charter"));
        }
        let _ = writeln!(
            out,
            "checked {}: {}, {}",
            what.join(", "),
            count(errors, "error"),
            count(warnings, "warning")
        );
    }
    Ok(if errors > 0 { exit::FAILED } else { exit::OK })
}

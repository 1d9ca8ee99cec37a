//! `nlah watch HARNESS [--with M]... [--show]`: re-check on every save.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use nlah::harness::Toggles;
use nlah::versions::watch::{self, CheckRound, WatchOptions};

use super::{exit, output, resolve_harness};

#[derive(clap::Args)]
pub struct Args {
    /// A harness folder, or the name of one in ./harness-skills/.
    harness: PathBuf,
    /// Enable a module (repeatable).
    #[arg(long = "with", value_name = "MODULE")]
    with: Vec<String>,
    /// Disable a module (repeatable).
    #[arg(long = "without", value_name = "MODULE")]
    without: Vec<String>,
    /// Also print the composed SKILL.md for the toggles after each check.
    #[arg(long)]
    show: bool,
    /// Quiet time after a change before checking, in milliseconds.
    #[arg(long, default_value_t = 30, value_name = "MS")]
    debounce: u64,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let root = resolve_harness(&a.harness)?;
    let opts = WatchOptions {
        root: root.canonicalize().unwrap_or(root),
        toggles: Toggles {
            with: a.with,
            without: a.without,
        },
        show: a.show,
        debounce: Duration::from_millis(a.debounce),
    };
    let color = output::stdout_color();
    watch::watch(&opts, |r| print(&r, &opts, color))?;
    Ok(exit::OK)
}

/// Prints one check; `false` (stop watching) once standard output is gone.
fn print(r: &CheckRound, opts: &WatchOptions, color: bool) -> bool {
    let mut out = std::io::stdout().lock();
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let status = format!(
        "{}, {}",
        count(r.errors, "error"),
        count(r.warnings, "warning")
    );
    let status = match (color, r.errors, r.warnings) {
        (false, _, _) => status,
        (true, 0, 0) => format!("\x1b[32m{status}\x1b[0m"),
        (true, 0, _) => format!("\x1b[33m{status}\x1b[0m"),
        (true, _, _) => format!("\x1b[31m{status}\x1b[0m"),
    };
    let what = if r.changed.is_empty() {
        "first check".to_string()
    } else {
        let names: Vec<String> = r
            .changed
            .iter()
            .map(|p| {
                p.strip_prefix(&opts.root)
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .collect();
        format!("changed: {}", names.join(", "))
    };
    let version = r.version.as_deref().unwrap_or("-");
    let mut text = format!(
        "── {} · {} {version} · {status} · {what}\n",
        r.at.format("%H:%M:%S%.3f"),
        r.harness
    );
    for d in &r.diags {
        text.push_str(&output::human(d, color));
        text.push('\n');
    }
    if let Some(c) = &r.composed {
        let modules = if r.modules.is_empty() {
            "no modules".to_string()
        } else {
            r.modules.join(", ")
        };
        text.push_str(&format!("── composed SKILL.md ({modules}) ──\n"));
        text.push_str(c);
        if !c.ends_with('\n') {
            text.push('\n');
        }
    } else if opts.show && r.errors > 0 {
        text.push_str("(composed skill not shown: fix the errors first)\n");
    }
    out.write_all(text.as_bytes()).is_ok() && out.flush().is_ok()
}

//! `nlah report OUT [OUT...]`: the paper's tables and charts from an ablation output folder, and
//! the transfer table (baseline versus a learned harness, per model) over one or more.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nlah::report::{self, Format};

use super::exit;

#[derive(clap::Args)]
pub struct Args {
    /// The output folder of `nlah ablate` (it holds matrix.json and cells/). Further folders
    /// join the transfer table only (the same tasks run with another harness or other models).
    #[arg(required = true)]
    out: Vec<PathBuf>,
    /// md, csv, json or html (default: from --out's extension, else md).
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// The variant to compare against (default: the matrix's baseline).
    #[arg(long, value_name = "VARIANT")]
    baseline: Option<String>,
    /// The learned harness of the transfer table: a variant name, FOLDER/VARIANT or a version
    /// prefix. Without it the table is shown when the folders hold exactly two harnesses and
    /// more than one model.
    #[arg(long, value_name = "HARNESS")]
    learned: Option<String>,
    /// Write the report to this file instead of standard output.
    #[arg(long = "out", value_name = "FILE")]
    file: Option<PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| format!("{s:?}: choose md, csv, json or html"))
}

fn format_of(file: Option<&Path>) -> Format {
    file.and_then(|f| f.extension())
        .and_then(|e| Format::parse(&e.to_string_lossy()))
        .unwrap_or(Format::Markdown)
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let format = a.format.unwrap_or_else(|| format_of(a.file.as_deref()));
    let built = report::report_folders(&a.out, a.baseline.as_deref(), a.learned.as_deref())?;
    let text = report::render(&built, format)?;
    match &a.file {
        Some(f) => std::fs::write(f, text).with_context(|| format!("{}", f.display()))?,
        None => {
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    Ok(exit::OK)
}

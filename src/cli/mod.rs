//! The command line: one file per subcommand. Only this layer prints.

mod ablate;
mod check;
mod diagnose;
mod diff;
mod evolve;
mod inspect;
mod log;
mod migrate;
mod modules;
mod output;
mod report;
mod run;
mod run_cell;
mod show;
mod synthesize;
mod view;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Exit codes, as documented in README.md.
pub mod exit {
    pub const OK: u8 = 0;
    /// The input has errors (a harness does not check, a run's verifier failed).
    pub const FAILED: u8 = 1;
    /// Bad usage: unknown flags, missing paths, configuration errors.
    pub const USAGE: u8 = 2;
}

#[derive(Parser)]
#[command(name = "nlah", version, about = "A runtime for natural-language agent harnesses", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate harness folders, Agent Skills, module files or charters (folders are searched).
    Check(check::Args),
    /// Print the composed SKILL.md a child receives for a set of module toggles.
    Show(show::Args),
    /// List a harness's modules, whether each is enabled, and what it does.
    Modules(modules::Args),
    /// Run a harness on a task in a new git-versioned workspace.
    Run(run::Args),
    /// Run an ablation matrix (variants × tasks × models × seeds), locally or on Slurm; resumable.
    // `nlah eval HARNESS TASKS` is the same command: without --module it runs the harness as it is.
    #[command(visible_alias = "eval")]
    Ablate(ablate::Args),
    /// Run one cell of an ablation matrix (what Slurm array tasks run).
    RunCell(run_cell::Args),
    /// Compare two harness versions (git revisions or folders) or two runs.
    Diff(diff::Args),
    /// A harness's versions (commits), their version ids and the scores recorded for them.
    Log(log::Args),
    /// Re-check a harness on every save and print its diagnostics.
    Watch(watch::Args),
    /// A run's timeline and usage; `--export atif` writes it as ATIF trajectories.
    Inspect(inspect::Args),
    /// Tables and charts of an ablation output folder: Perf, Δ, costs, shares, flips.
    Report(report::Args),
    /// Why runs failed: action realization, contract mismatch, trajectory degeneration,
    /// residual reasoning or infrastructure, with examples and verifier signatures.
    Diagnose(diagnose::Args),
    /// Turn a code harness (Python or TypeScript agent loop, YAML agent config) into an nlah harness.
    Migrate(migrate::Args),
    /// Synthesize a harness script (action check, legal-action lister or policy) by a tree
    /// search over code versions refined from failed rollouts (AutoHarness); resumable.
    Synthesize(synthesize::Args),
    /// Evolve a harness from its failures (Self-Harness): split tasks three ways, propose
    /// minimal edits, accept by a paired rule; every candidate a commit. Resumable.
    Evolve(evolve::Args),
    /// A local web page (127.0.0.1) for a matrix, a run (or two side by side) or a harness.
    View(view::Args),
}

pub fn main() -> ExitCode {
    // Parsed in two steps so that `ablate` can tell the flags given from their defaults.
    let matches = Cli::command().get_matches();
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut Cli::command()).exit());
    let sub = matches.subcommand().map(|(_, m)| m);
    let code = match cli.command {
        Command::Check(a) => check::run(a),
        Command::Show(a) => show::run(a),
        Command::Modules(a) => modules::run(a),
        Command::Run(a) => run::run(a),
        Command::Ablate(a) => ablate::run(a, sub),
        Command::RunCell(a) => run_cell::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Log(a) => log::run(a),
        Command::Watch(a) => watch::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Report(a) => report::run(a),
        Command::Diagnose(a) => diagnose::run(a),
        Command::Migrate(a) => migrate::run(a),
        Command::Synthesize(a) => synthesize::run(a),
        Command::Evolve(a) => evolve::run(a),
        Command::View(a) => view::run(a),
    };
    match code {
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(exit::USAGE)
        }
    }
}

/// An error and its causes, `: `-joined as anyhow's `{:#}` does, but a cause that the message
/// before it already ends with (errors that print their source) is not repeated.
fn chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.ends_with(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

/// A harness folder's own name (for default output folders), `harness` when it has none.
pub fn harness_name(folder: &Path) -> String {
    folder
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "harness".into())
}

/// A harness given by path, or by name under `./harness-skills/`.
pub fn resolve_harness(arg: &Path) -> anyhow::Result<PathBuf> {
    if arg.is_dir() {
        return Ok(arg.to_path_buf());
    }
    if arg.file_name().is_some_and(|n| n == "SKILL.md") && arg.is_file() {
        return Ok(arg.parent().unwrap_or(Path::new(".")).to_path_buf());
    }
    let named = Path::new("harness-skills").join(arg);
    if arg.components().count() == 1 && named.is_dir() {
        return Ok(named);
    }
    anyhow::bail!(
        "{}: no such harness (give a harness folder, or the name of one in ./harness-skills/)",
        arg.display()
    )
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("TASK.md: cannot read: {source}")]
    struct Prints {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_prints_is_not_repeated() {
        let e = anyhow::Error::new(Prints {
            source: std::io::Error::other("stream did not contain valid UTF-8"),
        });
        assert_eq!(
            super::chain(&e),
            "TASK.md: cannot read: stream did not contain valid UTF-8"
        );
        let e = anyhow::Error::new(std::io::Error::other("no space")).context("writing run.json");
        assert_eq!(super::chain(&e), "writing run.json: no space");
    }
}

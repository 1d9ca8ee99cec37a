//! `nlah inspect RUN [--json] [--calls] [--export atif --out FILE]`

use std::io::Write;
use std::path::PathBuf;

use nlah::inspect::timeline::{self, Mark, Options, Timeline};
use nlah::inspect::{RunDir, align, atif, thousands};

use super::{exit, output};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// ATIF v1.6 (Harbor's agent trajectory interchange format).
    Atif,
}

#[derive(clap::Args)]
pub struct Args {
    /// A run workspace (a folder with run.json or history/events.jsonl).
    run: PathBuf,
    /// Print the timeline and usage as one JSON document.
    #[arg(long)]
    json: bool,
    /// Show every tool call (by default only failed ones; the rest are counted per child).
    #[arg(long)]
    calls: bool,
    /// Write the run in another format instead of showing it.
    #[arg(long, value_enum, requires = "out")]
    export: Option<Format>,
    /// Where the export goes; child trajectories are written next to it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let run = RunDir::open(&a.run)?;
    let mut out = std::io::stdout().lock();
    if let (Some(Format::Atif), Some(path)) = (a.export, &a.out) {
        let e = atif::export(&run, path)?;
        let _ = writeln!(
            out,
            "wrote {} ({} child trajector{})",
            e.parent.display(),
            e.children.len(),
            if e.children.len() == 1 { "y" } else { "ies" }
        );
        return Ok(exit::OK);
    }
    let t = timeline::build(&run, Options { calls: a.calls });
    if a.json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&t).unwrap_or_default()
        );
        return Ok(exit::OK);
    }
    for line in render(&t, output::stdout_color()) {
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(exit::OK)
}

fn render(t: &Timeline, color: bool) -> Vec<String> {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let h = &t.header;
    let mut out = vec![paint("1", &timeline::header_line(h))];
    let mut info = format!("started {}", h.started);
    if let Some(ms) = h.wall_ms {
        info.push_str(&format!(" · {:.1} s", ms as f64 / 1000.0));
    }
    if !h.sandbox.is_empty() {
        info.push_str(&format!(" · sandbox: {}", h.sandbox));
    }
    out.push(info);
    let outcome = format!("outcome: {} — {}", h.outcome, h.reason);
    out.push(if h.outcome == "passed" {
        paint("32", &outcome)
    } else {
        paint("31", &outcome)
    });
    out.push(String::new());
    for e in &t.entries {
        let mark = match e.mark {
            Mark::Pass => paint("32", e.mark.symbol()),
            Mark::Fail => paint("31", e.mark.symbol()),
            Mark::Warn => paint("33", e.mark.symbol()),
            Mark::Start => paint("1", e.mark.symbol()),
            Mark::Info => paint("2", e.mark.symbol()),
        };
        out.push(format!(
            "{:>10}  {}{mark} {}",
            timeline::offset(e.t_ms),
            "  ".repeat(e.depth as usize),
            e.text
        ));
    }
    let u = &t.usage;
    out.push(String::new());
    out.push(paint("1", "usage by stage"));
    let mut rows = vec![vec![
        "stage".to_string(),
        "attempts".into(),
        "passed".into(),
        "calls".into(),
        "input".into(),
        "output".into(),
        "cost".into(),
        "tool calls".into(),
    ]];
    for s in &u.stages {
        rows.push(vec![
            s.stage.clone(),
            s.attempts.to_string(),
            if s.passed { "yes" } else { "no" }.into(),
            s.usage.calls.to_string(),
            input_tokens(&s.usage),
            thousands(s.usage.output_tokens),
            format!("${:.4}", s.usage.cost_usd),
            s.tool_calls.to_string(),
        ]);
    }
    out.extend(align(&rows).into_iter().map(|l| format!("  {l}")));
    out.push(String::new());
    out.push(paint("1", "usage by child"));
    let mut rows = vec![vec![
        "child".to_string(),
        "role".into(),
        "model".into(),
        "status".into(),
        "calls".into(),
        "input".into(),
        "output".into(),
        "cost".into(),
        "tools".into(),
    ]];
    for c in &u.children {
        rows.push(vec![
            c.child.clone(),
            c.role.clone(),
            c.model.clone(),
            c.status.clone(),
            c.usage.calls.to_string(),
            input_tokens(&c.usage),
            thousands(c.usage.output_tokens),
            format!("${:.4}", c.usage.cost_usd),
            if c.tools.is_empty() {
                "-".into()
            } else {
                timeline::tool_counts(&c.tools)
            },
        ]);
    }
    out.extend(align(&rows).into_iter().map(|l| format!("  {l}")));
    out.push(String::new());
    out.push(format!(
        "run: {} model calls, {} input ({} cached) / {} output tokens, ${:.4}, {} tool calls; the runtime's own: {} calls",
        u.total.calls,
        thousands(u.total.input_tokens),
        thousands(u.total.cached_input_tokens),
        thousands(u.total.output_tokens),
        u.total.cost_usd,
        u.tool_calls,
        u.parent.calls
    ));
    out
}

/// Prompt tokens, with the share a provider's prompt cache served when it reported one.
fn input_tokens(u: &nlah::record::Usage) -> String {
    if u.cached_input_tokens == 0 {
        thousands(u.input_tokens)
    } else {
        format!(
            "{} ({} cached)",
            thousands(u.input_tokens),
            thousands(u.cached_input_tokens)
        )
    }
}

//! `nlah diff A B [-- PATH]`: two git revisions, two harness folders, or two run workspaces.

use std::io::Write;
use std::path::{Path, PathBuf};

use nlah::harness::Toggles;
use nlah::inspect::{self, align, short, thousands};
use nlah::versions::files::HarnessFiles;
use nlah::versions::gitread;
use nlah::versions::harness_diff::{self, DiffOptions, FieldChange, HarnessDiff, ItemChange};
use nlah::versions::run_diff::{ArtifactStatus, FileInfo, RunDiff, RunSide};
use nlah::versions::sections::Status;

use super::{exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// The old side: a git revision, a harness folder, or a run workspace.
    a: String,
    /// The new side, of the same kind.
    b: String,
    /// For revisions: one harness folder (or a folder of harnesses) to compare.
    #[arg(last = true)]
    path: Option<PathBuf>,
    /// The repository that holds the harnesses (default: the one around the current folder).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Compose both sides with this module enabled (repeatable).
    #[arg(long = "with", value_name = "MODULE")]
    with: Vec<String>,
    /// Compose both sides with this module disabled (repeatable).
    #[arg(long = "without", value_name = "MODULE")]
    without: Vec<String>,
    /// Lines of context around each change.
    #[arg(long, short = 'U', default_value_t = 3)]
    context: usize,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let (pa, pb) = (Path::new(&a.a), Path::new(&a.b));
    let opts = DiffOptions {
        toggles: Toggles {
            with: a.with.clone(),
            without: a.without.clone(),
        },
        context: a.context,
    };
    let color = !a.json && output::stdout_color();
    if pa.is_dir() && pb.is_dir() {
        let is_run =
            |p: &Path| p.join("run.json").is_file() || p.join("history/events.jsonl").is_file();
        if is_run(pa) && is_run(pb) {
            let d = nlah::versions::run_diff::diff(pa, pb)?;
            if a.json {
                print_json(&serde_json::json!({"kind": "runs", "diff": d}));
            } else {
                print_lines(&render_runs(&d, color));
            }
            return Ok(exit::OK);
        }
        if pa.join("SKILL.md").is_file() && pb.join("SKILL.md").is_file() {
            let fa = HarnessFiles::from_dir(pa)?;
            let fb = HarnessFiles::from_dir(pb)?;
            let d = harness_diff::diff(&format!("{} → {}", a.a, a.b), Some(&fa), Some(&fb), &opts);
            return Ok(finish_harnesses(&[d], a.json, color));
        }
        anyhow::bail!(
            "{} and {} are folders, but neither both harness folders (SKILL.md) nor both run workspaces (run.json)",
            a.a,
            a.b
        );
    }
    // One folder and one name that is not a folder: the user meant two folders, not revisions.
    if let Some((dir, missing)) = match (pa.is_dir(), pb.is_dir()) {
        (true, false) => Some((&a.a, &a.b)),
        (false, true) => Some((&a.b, &a.a)),
        _ => None,
    } {
        anyhow::bail!(
            "{missing}: no such folder ({dir} is a folder, so give two harness folders or two run workspaces; to compare git revisions, give two revisions and `-- PATH`)"
        );
    }
    let start = a.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    let (repo, workdir) = gitread::discover(&start)?;
    let rel = match &a.path {
        Some(p) => Some(path_in_repo(&workdir, p)?),
        None => None,
    };
    let diffs = harness_diff::diff_revisions(&repo, &a.a, &a.b, rel.as_deref(), &opts)?;
    Ok(finish_harnesses(&diffs, a.json, color))
}

/// A PATH argument as a repository-relative folder: an existing path, a harness name under
/// `harness-skills/`, or a path as the repository names it.
fn path_in_repo(workdir: &Path, p: &Path) -> anyhow::Result<String> {
    if p.exists() {
        return Ok(gitread::rel_path(workdir, p)?);
    }
    let named = workdir.join("harness-skills").join(p);
    if p.components().count() == 1 && named.is_dir() {
        return Ok(gitread::rel_path(workdir, &named)?);
    }
    Ok(nlah::versions::files::slash(p))
}

fn finish_harnesses(diffs: &[HarnessDiff], json: bool, color: bool) -> u8 {
    if json {
        print_json(&serde_json::json!({"kind": "harnesses", "harnesses": diffs}));
    } else if diffs.iter().all(HarnessDiff::is_empty) {
        print_lines(&["no harness changed".to_string()]);
    } else {
        let mut lines = Vec::new();
        for d in diffs.iter().filter(|d| !d.is_empty()) {
            if !lines.is_empty() {
                lines.push(String::new());
            }
            lines.extend(render_harness(d, color));
        }
        print_lines(&lines);
    }
    exit::OK
}

fn print_json(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_default()
    );
}

fn print_lines(lines: &[String]) {
    let mut out = std::io::stdout().lock();
    for l in lines {
        if writeln!(out, "{l}").is_err() {
            return;
        }
    }
}

/// ANSI styles, or nothing when piped.
struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn cyan(&self, s: &str) -> String {
        self.wrap("36", s)
    }
    fn status(&self, st: Status) -> String {
        let m = st.mark().to_string();
        match st {
            Status::Added => self.green(&m),
            Status::Removed => self.red(&m),
            Status::Changed => self.yellow(&m),
        }
    }
}

/// The harness summary, then each changed section's diff.
pub fn render_harness(d: &HarnessDiff, color: bool) -> Vec<String> {
    let p = Paint(color);
    let mut out = vec![p.bold(&format!("harness {}  {}", d.name, d.path))];
    let mods = |m: &[String]| {
        if m.is_empty() {
            "no modules".to_string()
        } else {
            m.join(", ")
        }
    };
    match (&d.old, &d.new) {
        (Some(o), Some(n)) if o.version == n.version => out.push(format!(
            "  version  {} (unchanged; {})",
            short(&n.version),
            mods(&n.modules)
        )),
        (Some(o), Some(n)) => {
            out.push(format!(
                "  version  {} → {}",
                short(&o.version),
                short(&n.version)
            ));
            if o.modules == n.modules {
                out.push(format!("  enabled  {} (as composed)", mods(&n.modules)));
            } else {
                out.push(format!(
                    "  enabled  {} → {} (as composed)",
                    mods(&o.modules),
                    mods(&n.modules)
                ));
            }
        }
        (None, Some(n)) => out.push(format!(
            "  {} harness added, version {}",
            p.green("+"),
            short(&n.version)
        )),
        (Some(o), None) => out.push(format!(
            "  {} harness removed (was version {})",
            p.red("-"),
            short(&o.version)
        )),
        (None, None) => {}
    }
    for (side, s) in [("old", &d.old), ("new", &d.new)] {
        let Some(s) = s.as_ref().filter(|s| s.errors > 0) else {
            continue;
        };
        out.push(format!(
            "  {} the {side} side has {} error{}",
            p.red("!"),
            s.errors,
            if s.errors == 1 { "" } else { "s" }
        ));
        out.extend(s.problems.iter().map(|e| format!("      {e}")));
    }
    let items = |out: &mut Vec<String>, title: &str, list: &[ItemChange]| {
        if list.is_empty() {
            return;
        }
        out.push(format!("  {}", p.bold(title)));
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|c| {
                let mut what = c.detail.clone().unwrap_or_default();
                if c.status == Status::Changed {
                    what = c
                        .fields
                        .iter()
                        .map(FieldChange::field)
                        .collect::<Vec<_>>()
                        .join(", ");
                }
                vec![format!("{} {}", st_mark(c.status), c.name), what]
            })
            .collect();
        for (row, c) in align(&rows).into_iter().zip(list) {
            let colored = row.replacen(st_mark(c.status), &p.status(c.status), 1);
            out.push(format!("    {colored}"));
            if c.status == Status::Changed {
                out.extend(fields(&p, &c.fields, "        "));
            }
        }
    };
    items(&mut out, "modules", &d.modules);
    items(&mut out, "stages", &d.stages);
    if let Some((o, n)) = &d.stage_order {
        out.push(format!("    order  {} → {}", o.join(", "), n.join(", ")));
    }
    items(&mut out, "roles", &d.roles);
    for (title, list) in [
        ("contract", &d.contract),
        ("flow", &d.flow),
        ("other", &d.other),
    ] {
        if !list.is_empty() {
            out.push(format!("  {}", p.bold(title)));
            out.extend(fields(&p, list, "    "));
        }
    }
    if !d.files.is_empty() {
        out.push(format!("  {}", p.bold("files")));
        let rows: Vec<Vec<String>> = d
            .files
            .iter()
            .map(|f| {
                vec![
                    format!("{} {}", st_mark(f.status), f.path),
                    f.lines
                        .map_or_else(|| "binary".into(), |(a, r)| format!("+{a} -{r}")),
                ]
            })
            .collect();
        for (row, f) in align(&rows).into_iter().zip(&d.files) {
            out.push(format!(
                "    {}",
                row.replacen(st_mark(f.status), &p.status(f.status), 1)
            ));
        }
    }
    if d.old.is_some() && d.new.is_some() && !d.has_semantic_changes() && d.files.is_empty() {
        out.push("  no change in stages, roles, contract or modules; only prose".into());
    }
    for s in &d.sections {
        out.push(String::new());
        out.push(p.bold(&format!(
            "{} {} › {} ({})",
            st_mark(s.status),
            s.file,
            s.section,
            match s.status {
                Status::Added => "added",
                Status::Removed => "removed",
                Status::Changed => "changed",
            }
        )));
        for h in &s.hunks {
            out.push(p.cyan(&h.header));
            for l in &h.lines {
                let line = format!("{}{}", l.tag, l.text);
                out.push(match l.tag {
                    '+' => p.green(&line),
                    '-' => p.red(&line),
                    _ => line,
                });
            }
        }
    }
    out
}

fn st_mark(s: Status) -> &'static str {
    match s {
        Status::Added => "+",
        Status::Removed => "-",
        Status::Changed => "~",
    }
}

fn fields(p: &Paint, list: &[FieldChange], indent: &str) -> Vec<String> {
    let mut out = Vec::new();
    let width = list
        .iter()
        .map(|f| f.field().chars().count())
        .max()
        .unwrap_or(0);
    for f in list {
        let name = format!("{:width$}", f.field());
        match f {
            FieldChange::Value { old, new, .. } => {
                let show = |s: &str| {
                    if s.is_empty() {
                        "(none)".to_string()
                    } else {
                        s.to_string()
                    }
                };
                out.push(format!(
                    "{indent}{name}  {} → {}",
                    p.red(&show(old)),
                    p.green(&show(new))
                ));
            }
            FieldChange::List { added, removed, .. } => {
                let mut first = true;
                for (mark, items) in [("-", removed), ("+", added)] {
                    for it in items {
                        let lead = if first {
                            name.clone()
                        } else {
                            " ".repeat(width)
                        };
                        first = false;
                        let text = format!("{mark} {it}");
                        let text = if mark == "+" {
                            p.green(&text)
                        } else {
                            p.red(&text)
                        };
                        out.push(format!("{indent}{lead}  {text}"));
                    }
                }
            }
            FieldChange::Text { .. } => {
                out.push(format!("{indent}{name}  text changed (see below)"));
            }
        }
    }
    out
}

/// Two runs side by side.
pub fn render_runs(d: &RunDiff, color: bool) -> Vec<String> {
    let p = Paint(color);
    let mut out = Vec::new();
    let row = |k: &str, f: &dyn Fn(&RunSide) -> String| vec![k.to_string(), f(&d.a), f(&d.b)];
    let mut rows = vec![
        vec![String::new(), "A".into(), "B".into()],
        row("run", &|s| s.run_id.clone()),
        row("path", &|s| s.path.clone()),
        row("harness", &|s| {
            format!("{} {}", s.harness, short(&s.version))
        }),
        row("modules", &|s| inspect::modules_text(&s.modules)),
        row("task", &|s| s.task.clone()),
        row("model", &|s| format!("{} (seed {})", s.model, s.seed)),
    ];
    out.extend(align(&rows).into_iter().map(|l| format!("  {l}")));
    out.push(String::new());
    match &d.divergence {
        None => out.push(format!(
            "{} the histories agree: {} events each (times, ids and usage aside)",
            p.green("="),
            d.common
        )),
        Some(div) => {
            out.push(format!(
                "{} the histories part at event {} (after {} in common)",
                p.yellow("≠"),
                div.index,
                d.common
            ));
            for (side, v) in [("A", &div.a), ("B", &div.b)] {
                match v {
                    Some(v) => {
                        out.push(format!("  {side} #{:<4} {:<18} {}", v.seq, v.event, v.text))
                    }
                    None => out.push(format!("  {side}       (history ended)")),
                }
            }
        }
    }
    out.push(String::new());
    rows = vec![
        vec![String::new(), "A".into(), "B".into()],
        row("outcome", &|s| s.outcome.clone()),
        row("reason", &|s| inspect::clip(&s.reason, 60)),
        row("model calls", &|s| s.usage.calls.to_string()),
        row("input tokens", &|s| thousands(s.usage.input_tokens)),
        row("output tokens", &|s| thousands(s.usage.output_tokens)),
        row("cost", &|s| format!("${:.4}", s.usage.cost_usd)),
        row("tool calls", &|s| s.tool_calls.to_string()),
        row("children", &|s| s.children.to_string()),
        row("events", &|s| s.events.to_string()),
        row("wall time", &|s| {
            s.wall_ms
                .map_or_else(|| "?".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0))
        }),
    ];
    out.extend(align(&rows).into_iter().map(|l| format!("  {l}")));
    out.push(String::new());
    if d.artifacts.is_empty() {
        out.push("artifacts: none on either side".into());
        return out;
    }
    out.push(p.bold("artifacts"));
    let info = |f: &Option<FileInfo>| {
        f.as_ref().map_or_else(
            || "—".into(),
            |f| format!("{} B {}", f.size, &f.sha256[..8]),
        )
    };
    let rows: Vec<Vec<String>> = d
        .artifacts
        .iter()
        .map(|a| {
            let mark = match a.status {
                ArtifactStatus::Same => "=",
                ArtifactStatus::Added => "+",
                ArtifactStatus::Removed => "-",
                ArtifactStatus::Changed => "~",
            };
            vec![format!("{mark} {}", a.path), info(&a.a), info(&a.b)]
        })
        .collect();
    out.extend(align(&rows).into_iter().map(|l| format!("  {l}")));
    out
}

//! The report as Markdown: pipe tables a paper or an issue can take as they are.

use super::table::{self, Table};
use super::{AblationReport, Counts};

/// Pipe characters inside a cell would split it.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

pub fn pipe_table(t: &Table) -> String {
    let mut s = String::new();
    let head: Vec<String> = t.header.iter().map(|h| cell(h)).collect();
    s.push_str(&format!("| {} |\n", head.join(" | ")));
    let rule: Vec<&str> = t
        .right
        .iter()
        .map(|&r| if r { "---:" } else { "---" })
        .collect();
    s.push_str(&format!("|{}|\n", rule.join("|")));
    for row in &t.rows {
        let row: Vec<String> = row.iter().map(|c| cell(c)).collect();
        s.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    s
}

/// "40 cells: 36 scored (30 passed, 6 failed), 1 unverified, 2 errors, 1 running, 0 not run."
pub fn counts_sentence(c: &Counts) -> String {
    let mut parts = vec![format!(
        "{} scored ({} passed, {} failed)",
        c.scored(),
        c.passed,
        c.failed
    )];
    for (n, word) in [
        (c.unverified, "unverified"),
        (c.errors, if c.errors == 1 { "error" } else { "errors" }),
        (c.running, "running"),
        (c.budget, "stopped by --max-cost"),
        (c.not_run, "not run yet"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    format!(
        "{} {}: {}.",
        c.cells,
        if c.cells == 1 { "cell" } else { "cells" },
        parts.join(", ")
    )
}

/// How the figures were computed, in two sentences.
pub fn method_sentences(r: &AblationReport) -> Vec<String> {
    let mut v = vec![
        "Perf. is resolved % over scored cells (passed or failed); errors, running, unverified \
         and not-yet-run cells are excluded. Tokens, calls and runtime are per-cell means over \
         finished cells."
            .to_string(),
    ];
    v.push(if r.has_intervals() {
        format!(
            "± is the 95% t-interval over seeds ({} in the design): t(0.975, seeds − 1) · sd of \
             the per-seed means / √seeds.",
            r.seeds
        )
    } else {
        "95% intervals: n/a (one seed).".to_string()
    });
    v
}

pub fn render(r: &AblationReport) -> String {
    let mut s = format!("# Ablation report: {} ({})\n\n", r.harness, r.design);
    s.push_str(&format!(
        "Baseline: `{}`. {}\n\n",
        r.baseline,
        counts_sentence(&r.counts)
    ));
    if let Some(spend) = &r.spend {
        s.push_str(&format!("Spend: {}\n\n", spend.sentence()));
    }
    for line in method_sentences(r) {
        s.push_str(&line);
        s.push('\n');
    }

    s.push_str("\n## Main table\n\n");
    for g in &r.groups {
        if r.several_groups() {
            s.push_str(&format!("### {}\n\n", table::group_label(g)));
        }
        s.push_str(&pipe_table(&table::main_table(r, g)));
        s.push('\n');
    }

    if !r.episodes.is_empty() {
        s.push_str("## Episodes\n\n");
        s.push_str(table::EPISODES_METHOD);
        s.push_str("\n\n");
        s.push_str(&pipe_table(&table::episode_table(r)));
        s.push('\n');
    }

    let variants = r.groups.iter().map(|g| g.rows.len()).max().unwrap_or(0);
    if variants > 1 {
        s.push_str(&format!(
            "## Module effects\n\nPerf. and Δ versus `{}`, in points.\n\n",
            r.baseline
        ));
        s.push_str(&pipe_table(&table::module_table(r)));
        s.push('\n');
    }

    s.push_str("## Parent versus children\n\n");
    s.push_str(
        "Shares of everything the finished cells spent: the runtime-owned parent (orchestration, \
         ranking) versus the delegated child agents.\n\n",
    );
    s.push_str(&pipe_table(&table::share_table(&r.share)));
    s.push_str("\nThe parent's share by variant:\n\n");
    s.push_str(&pipe_table(&table::share_by_variant(r)));

    if r.groups.iter().any(|g| !g.flips.is_empty()) {
        s.push_str(&format!("\n## Flips versus `{}`\n\n", r.baseline));
        s.push_str(&format!(
            "Flips are {}; a flip gains when the variant resolves a task the baseline does not. \
             The McNemar test is exact (two-sided binomial on the flipping tasks).\n\n",
            super::FLIP_RULE
        ));
        s.push_str(&pipe_table(&table::flip_table(r)));
        s.push('\n');
        for g in &r.groups {
            for f in &g.flips {
                let who = if r.several_groups() {
                    format!("**{}** ({})", f.variant, table::group_label(g))
                } else {
                    format!("**{}**", f.variant)
                };
                s.push_str(&format!("- {who}: {}", table::flip_sentence(f)));
                if !f.gained_tasks.is_empty() {
                    s.push_str(&format!(" Gain: {}.", f.gained_tasks.join(", ")));
                }
                if !f.lost_tasks.is_empty() {
                    s.push_str(&format!(" Lose: {}.", f.lost_tasks.join(", ")));
                }
                s.push('\n');
            }
        }
    }
    if let Some(t) = &r.transfer {
        s.push_str("\n## Transfer\n\n");
        for line in super::transfer::sentences(t) {
            s.push_str(&line);
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&pipe_table(&super::transfer::table(t)));
    }
    if let Some(line) = super::transfer::other_folders_note(&r.other_folders) {
        s.push_str(&format!("\n{line}\n"));
    }
    s
}

//! The report's tables as rows of strings, shared by the Markdown and HTML renderers, and the
//! CSV export (one tidy row per task set, model and variant).

use super::fmt::{self, human, human_pm};
use super::{AblationReport, Estimate, Flips, Group, Row, Share, Split};

pub struct Table {
    pub header: Vec<String>,
    /// Numeric columns are right-aligned.
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(cols: &[(&str, bool)]) -> Table {
        Table {
            header: cols.iter().map(|c| c.0.to_string()).collect(),
            right: cols.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }
}

/// "74.4 ± 1.2", "74.4" (no interval anywhere in the report) or "74.4 ± n/a".
fn est(
    e: Option<Estimate>,
    intervals: bool,
    show: impl Fn(f64) -> String,
    pm: impl Fn(f64, f64) -> String,
) -> String {
    match e {
        None => "n/a".into(),
        Some(e) => match (intervals, e.half_width) {
            (false, _) => show(e.mean),
            (true, Some(h)) => pm(e.mean, h),
            (true, None) => format!("{} ± n/a", show(e.mean)),
        },
    }
}

fn est_fixed(e: Option<Estimate>, intervals: bool) -> String {
    est(e, intervals, fmt::fixed1, fmt::fixed_pm)
}

fn est_human(e: Option<Estimate>, intervals: bool) -> String {
    est(e, intervals, human, human_pm)
}

fn est_dollars(e: Option<Estimate>, intervals: bool) -> String {
    est(e, intervals, fmt::dollars, fmt::dollars_pm)
}

pub fn delta_cell(r: &Row) -> String {
    if r.is_baseline {
        "—".into()
    } else {
        r.delta.map_or("n/a".into(), |d| fmt::delta(d.mean))
    }
}

/// Cells left out of Perf: errors, running, not run and unverified.
fn excluded(r: &Row) -> u64 {
    r.counts.cells - r.counts.scored()
}

pub fn main_table(report: &AblationReport, g: &Group) -> Table {
    let cost = report.has_cost();
    let show_excluded = report.counts.cells != report.counts.scored();
    let mut cols = vec![
        ("Variant", false),
        ("Perf.", true),
        ("Δ", true),
        ("Prompt tokens", true),
        ("Completion tokens", true),
        ("Tool calls", true),
        ("LLM calls", true),
        ("Runtime (min)", true),
    ];
    if cost {
        cols.push(("Cost", true));
    }
    // The interface columns, when some cell has interface layers or a reward.
    let layered = g.rows.iter().any(|r| r.legal_first_try_pct.is_some());
    let rewarded = g.rows.iter().any(|r| r.reward.is_some());
    if layered {
        cols.push(("Legal 1st try %", true));
        cols.push(("Legal final %", true));
        cols.push(("Interventions", true));
    }
    if rewarded {
        cols.push(("Reward", true));
    }
    cols.push(("Scored", true));
    if show_excluded {
        cols.push(("Excluded", true));
    }
    let mut t = Table::new(&cols);
    let iv = report.has_intervals();
    for r in &g.rows {
        let mut row = vec![
            r.variant.clone(),
            est_fixed(r.perf, iv),
            delta_cell(r),
            est_human(r.prompt_tokens, iv),
            est_human(r.completion_tokens, iv),
            est_human(r.tool_calls, iv),
            est_human(r.llm_calls, iv),
            est_fixed(r.runtime_min, iv),
        ];
        if cost {
            row.push(est_dollars(r.cost_usd, iv));
        }
        if layered {
            row.push(est_fixed(r.legal_first_try_pct, iv));
            row.push(est_fixed(r.legal_final_pct, iv));
            row.push(est_fixed(r.interventions, iv));
        }
        if rewarded {
            row.push(est(
                r.reward,
                iv,
                |x| format!("{x:.2}"),
                |x, h| format!("{x:.2} ± {h:.2}"),
            ));
        }
        row.push(r.counts.scored().to_string());
        if show_excluded {
            row.push(excluded(r).to_string());
        }
        t.rows.push(row);
    }
    t
}

/// The group's name in tables that list several.
pub fn group_label(g: &Group) -> String {
    format!("{} · {}", g.task_set, g.model)
}

/// The paper's per-module table: Perf with Δ, one column per variant, one row per group.
/// Columns follow the first group's variant order, then any variant only later groups have.
pub fn module_table(report: &AblationReport) -> Table {
    let mut names: Vec<&str> = Vec::new();
    for g in &report.groups {
        for r in &g.rows {
            if !names.contains(&r.variant.as_str()) {
                names.push(&r.variant);
            }
        }
    }
    // The baseline first, as the paper's Basic column.
    names.sort_by_key(|n| *n != report.baseline);
    let mut cols = vec![("Task set · Model", false)];
    cols.extend(names.iter().map(|n| (*n, true)));
    let mut t = Table::new(&cols);
    for g in &report.groups {
        let mut row = vec![group_label(g)];
        for n in &names {
            let cell = match g.rows.iter().find(|r| r.variant == *n) {
                None => "—".into(),
                Some(r) => match (r.perf, r.is_baseline) {
                    (None, _) => "n/a".into(),
                    (Some(p), true) => fmt::fixed1(p.mean),
                    (Some(p), false) => match r.delta {
                        Some(d) => format!("{} {}", fmt::fixed1(p.mean), fmt::delta(d.mean)),
                        None => fmt::fixed1(p.mean),
                    },
                },
            };
            row.push(cell);
        }
        t.rows.push(row);
    }
    t
}

fn pct(p: Option<f64>) -> String {
    p.map_or("n/a".into(), |p| format!("{}%", fmt::fixed1(p)))
}

fn splits(s: &Share) -> [(&'static str, &Split); 4] {
    [
        ("Prompt tokens", &s.prompt_tokens),
        ("Completion tokens", &s.completion_tokens),
        ("Tool calls", &s.tool_calls),
        ("LLM calls", &s.llm_calls),
    ]
}

/// The paper's table: each metric split between parent and children.
pub fn share_table(s: &Share) -> Table {
    let mut t = Table::new(&[
        ("Metric", false),
        ("Runtime-owned parent", true),
        ("Delegated child agents", true),
    ]);
    for (name, sp) in splits(s) {
        t.rows
            .push(vec![name.into(), pct(sp.parent_pct), pct(sp.children_pct)]);
    }
    t
}

/// The parent's share per variant (the children's is the rest).
pub fn share_by_variant(report: &AblationReport) -> Table {
    let cols = [
        ("Variant", false),
        ("Prompt tokens", true),
        ("Completion tokens", true),
        ("Tool calls", true),
        ("LLM calls", true),
    ];
    per_group(report, &cols, |g| {
        g.rows
            .iter()
            .map(|r| {
                let mut row = vec![r.variant.clone()];
                row.extend(splits(&r.share).iter().map(|(_, sp)| pct(sp.parent_pct)));
                row
            })
            .collect()
    })
}

/// A table of `cols` with the rows `rows` makes for each group, led by a "Task set · Model"
/// column when the report has more than one group.
fn per_group(
    report: &AblationReport,
    cols: &[(&str, bool)],
    rows: impl Fn(&Group) -> Vec<Vec<String>>,
) -> Table {
    let several = report.several_groups();
    let mut all = Vec::new();
    if several {
        all.push(("Task set · Model", false));
    }
    all.extend_from_slice(cols);
    let mut t = Table::new(&all);
    for g in &report.groups {
        for row in rows(g) {
            let mut full = Vec::with_capacity(all.len());
            if several {
                full.push(group_label(g));
            }
            full.extend(row);
            t.rows.push(full);
        }
    }
    t
}

pub fn p_value(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

pub fn flip_table(report: &AblationReport) -> Table {
    let cols = [
        ("Variant", false),
        ("Tasks", true),
        ("No flip", true),
        ("Gain", true),
        ("Lose", true),
        ("McNemar p", true),
    ];
    per_group(report, &cols, |g| {
        g.flips
            .iter()
            .map(|f| {
                vec![
                    f.variant.clone(),
                    f.paired.to_string(),
                    f.unchanged.to_string(),
                    f.gained.to_string(),
                    f.lost.to_string(),
                    p_value(f.mcnemar_p),
                ]
            })
            .collect()
    })
}

/// "110 of 125 tasks do not flip; 9 gain, 6 lose (McNemar p = 0.607)."
pub fn flip_sentence(f: &Flips) -> String {
    let mut s = format!("{} (McNemar p = {}).", f.summary, p_value(f.mcnemar_p));
    if f.unpaired > 0 {
        s.push_str(&format!(
            " {} with a verdict under only one of the two left out.",
            if f.unpaired == 1 {
                "1 task".to_string()
            } else {
                format!("{} tasks", f.unpaired)
            }
        ));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// CSV.

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(x: Option<f64>, dec: usize) -> String {
    match x {
        Some(x) if x.is_finite() => {
            let s = format!("{x:.dec$}");
            // No "-0.00": a difference that rounds to nothing has no sign.
            if s.starts_with('-') && s[1..].chars().all(|c| matches!(c, '0' | '.')) {
                s[1..].to_string()
            } else {
                s
            }
        }
        _ => "n/a".into(),
    }
}

fn est_cols(out: &mut Vec<String>, e: Option<Estimate>, dec: usize) {
    out.push(num(e.map(|e| e.mean), dec));
    out.push(num(e.and_then(|e| e.lo), dec));
    out.push(num(e.and_then(|e| e.hi), dec));
}

const EST_COLS: [(&str, usize); 9] = [
    ("perf", 2),
    ("delta", 2),
    ("prompt_tokens", 1),
    ("completion_tokens", 1),
    ("total_tokens", 1),
    ("tool_calls", 2),
    ("llm_calls", 2),
    ("runtime_min", 3),
    ("cost_usd", 6),
];

const INTERFACE_COLS: [(&str, usize); 4] = [
    ("legal_first_try_pct", 2),
    ("legal_final_pct", 2),
    ("interventions", 2),
    ("reward", 3),
];

pub fn csv(report: &AblationReport) -> String {
    let mut header: Vec<String> = [
        "task_set",
        "model",
        "variant",
        "modules",
        "is_baseline",
        "baseline",
        "cells",
        "passed",
        "failed",
        "unverified",
        "errors",
        "running",
        "not_run",
        "scored",
        "seeds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (name, _) in EST_COLS {
        header.extend([name.to_string(), format!("{name}_lo"), format!("{name}_hi")]);
    }
    header.extend(
        [
            "parent_prompt_tokens_pct",
            "parent_completion_tokens_pct",
            "parent_tool_calls_pct",
            "parent_llm_calls_pct",
            "flip_tasks",
            "flip_unchanged",
            "flip_gained",
            "flip_lost",
            "mcnemar_p",
            "gained_tasks",
            "lost_tasks",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    // The interface columns come last, when some cell has interface layers or a reward.
    let interface = report
        .groups
        .iter()
        .flat_map(|g| &g.rows)
        .any(|r| r.legal_first_try_pct.is_some() || r.reward.is_some());
    if interface {
        for (name, _) in INTERFACE_COLS {
            header.extend([name.to_string(), format!("{name}_lo"), format!("{name}_hi")]);
        }
    }
    let mut out = header.join(",");
    out.push('\n');
    for g in &report.groups {
        for r in &g.rows {
            let mut row = vec![
                g.task_set.clone(),
                g.model.clone(),
                r.variant.clone(),
                r.modules.join(";"),
                r.is_baseline.to_string(),
                report.baseline.clone(),
                r.counts.cells.to_string(),
                r.counts.passed.to_string(),
                r.counts.failed.to_string(),
                r.counts.unverified.to_string(),
                r.counts.errors.to_string(),
                r.counts.running.to_string(),
                r.counts.not_run.to_string(),
                r.counts.scored().to_string(),
                r.perf.map_or(0, |p| p.seeds).to_string(),
            ];
            let ests = [
                r.perf,
                r.delta,
                r.prompt_tokens,
                r.completion_tokens,
                r.total_tokens,
                r.tool_calls,
                r.llm_calls,
                r.runtime_min,
                r.cost_usd,
            ];
            for (e, (_, dec)) in ests.into_iter().zip(EST_COLS) {
                est_cols(&mut row, e, dec);
            }
            for (_, sp) in splits(&r.share) {
                row.push(num(sp.parent_pct, 2));
            }
            match g.flips.iter().find(|f| f.variant == r.variant) {
                Some(f) => row.extend([
                    f.paired.to_string(),
                    f.unchanged.to_string(),
                    f.gained.to_string(),
                    f.lost.to_string(),
                    format!("{}", f.mcnemar_p),
                    f.gained_tasks.join(";"),
                    f.lost_tasks.join(";"),
                ]),
                None => row.extend(std::iter::repeat_n(String::new(), 7)),
            }
            if interface {
                let ests = [
                    r.legal_first_try_pct,
                    r.legal_final_pct,
                    r.interventions,
                    r.reward,
                ];
                for (e, (_, dec)) in ests.into_iter().zip(INTERFACE_COLS) {
                    est_cols(&mut row, e, dec);
                }
            }
            let line: Vec<String> = row.iter().map(|s| field(s)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
    }
    out
}

/// A rate and its Wilson interval: "35.0 [27.1, 43.8]"; "—" without a denominator.
fn rate_ci(r: Option<(f64, (f64, f64))>) -> String {
    match r {
        Some((p, (lo, hi))) => format!("{p:.1} [{lo:.1}, {hi:.1}]"),
        None => "—".into(),
    }
}

/// The episodes table (`episodes.rs`): a variant's row over all its tasks, then one per task.
pub fn episode_table(r: &AblationReport) -> Table {
    let several = r.several_groups();
    let mut cols = vec![];
    if several {
        cols.push(("Task set · Model", false));
    }
    cols.extend([
        ("Variant", false),
        ("Task", false),
        ("Episodes", true),
        ("Actions", true),
        ("First-try legal % [95% CI]", true),
        ("Final legal % [95% CI]", true),
        ("Re-prompts / ep.", true),
        ("Fallbacks / ep.", true),
        ("Reward", true),
        ("Won % [95% CI]", true),
    ]);
    let mut t = Table::new(&cols);
    let per = |v: Option<f64>, ci: Option<f64>| match (v, ci) {
        (Some(x), Some(h)) => format!("{x:.2} ± {h:.2}"),
        (Some(x), None) => format!("{x:.2}"),
        (None, _) => "—".into(),
    };
    for e in &r.episodes {
        let mut row = vec![];
        if several {
            row.push(format!("{} · {}", e.task_set, e.model));
        }
        row.extend([
            e.variant.clone(),
            e.task.clone().unwrap_or_else(|| "all".into()),
            e.episodes.to_string(),
            e.actions.to_string(),
            rate_ci(e.legal_first_try_pct()),
            rate_ci(e.legal_final_pct()),
            per(e.per_episode(e.reprompts), e.reprompts_ci),
            per(e.per_episode(e.fallbacks), e.fallbacks_ci),
            match (e.mean_reward(), e.reward_ci) {
                (Some(x), Some(h)) => format!("{x:.3} ± {h:.3} (n = {})", e.rewarded),
                (Some(x), None) => format!("{x:.3} (n = {})", e.rewarded),
                (None, _) => "—".into(),
            },
            rate_ci(e.won_pct()),
        ]);
        t.rows.push(row);
    }
    t
}

/// What the episodes table's figures are.
pub const EPISODES_METHOD: &str = "Finished episodes (passed or failed runs) of tasks that run in an environment. Legal rates are over the actions the model proposed (`finish` excluded), pooled over seeds: first try = taken as proposed, final = taken in the end (repairs included, blocked and refused actions not). Rate intervals are Wilson 95% score intervals. Re-prompts and fallbacks are the code verifier's, per episode; reward is the mean of the environment's last reward over the episodes that reported one (n; an episode left before its end reports none); both ± the half-width of the 95% t-interval over episodes. Won = the task's verifier passed.";

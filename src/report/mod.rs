//! `nlah report`: the NLAH paper's tables from a matrix's cells.
//!
//! Reads a [`Matrix`] and its cells (per-cell summaries from the ablation index with [`report`],
//! full [`CellResult`]s with [`load`], or straight from the files with [`load_files`]) and
//! computes, per task set and model: the main table (Perf, Δ versus the baseline, tokens, calls,
//! runtime, each a per-cell mean with a 95% t-interval over seeds), the parent-versus-children
//! shares, and the flip analysis with an exact McNemar test. Renderers turn the [`AblationReport`] into
//! Markdown, CSV, JSON or one self-contained HTML page.
//!
//! Which cells count where:
//! - Perf (resolved %) = passed / (passed + failed). `error`, `running` and `budget` cells (the
//!   matrix's `--max-cost` stopped them), cells not run yet, and `unverified` cells (no verifier
//!   verdict) are excluded and counted separately.
//! - Tokens, calls, runtime, cost and shares are means over finished cells: passed, failed and
//!   unverified (a run without a verdict still spent its budget).
//! - Flips pair tasks within a task set and model: a task is resolved under a variant when it
//!   passed in a strict majority of its scored seeds (with one seed: when it passed).

pub mod episodes;
pub mod fmt;
mod html;
mod load;
mod markdown;
pub mod stats;
mod table;
pub mod transfer;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ablation::index::Summary;
use crate::ablation::spend::SpendRecord;
use crate::ablation::{Cell, CellResult, Matrix};
use crate::record::RunOutcome;

pub use load::{load, load_files, report, report_folders};
pub use stats::Estimate;

pub const REPORT_SCHEMA: &str = "nlah.report/1";

/// How flips are paired; stated in every rendering so readers know what a flip means.
pub const FLIP_RULE: &str = "paired by task within each task set and model; a task counts as \
resolved under a variant when it passed in a strict majority of its scored seeds";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: no matrix here (is this the --out folder of `nlah ablate`?)", path.display())]
    NoMatrix { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid JSON for this file: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no variant named {name:?} in this matrix (variants: {known})")]
    UnknownBaseline { name: String, known: String },
    #[error("the matrix has no cells")]
    NoCells,
    #[error("no harness named {name:?} in these folders (known: {known})")]
    UnknownArm { name: String, known: String },
    #[error(transparent)]
    Ablation(#[from] crate::ablation::error::AblationError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Csv,
    Json,
    Html,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Format::Markdown),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "html" | "htm" => Some(Format::Html),
            _ => None,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How many cells are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub cells: u64,
    pub passed: u64,
    pub failed: u64,
    pub unverified: u64,
    pub errors: u64,
    pub running: u64,
    /// Cells the matrix's `--max-cost` stopped while they ran: no verdict, not a failure.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub budget: u64,
    /// Cells without a run.json yet.
    pub not_run: u64,
}

impl Counts {
    fn add(&mut self, outcome: Option<RunOutcome>) {
        self.cells += 1;
        match outcome {
            Some(RunOutcome::Passed) => self.passed += 1,
            Some(RunOutcome::Failed) => self.failed += 1,
            Some(RunOutcome::Unverified) => self.unverified += 1,
            Some(RunOutcome::Error) => self.errors += 1,
            Some(RunOutcome::Running) => self.running += 1,
            Some(RunOutcome::Budget) => self.budget += 1,
            None => self.not_run += 1,
        }
    }

    /// Cells with a verdict: the denominator of Perf.
    pub fn scored(&self) -> u64 {
        self.passed + self.failed
    }

    /// Cells that ran to the end: the denominator of the cost means.
    pub fn finished(&self) -> u64 {
        self.passed + self.failed + self.unverified
    }

    fn merge(&mut self, o: &Counts) {
        self.cells += o.cells;
        self.passed += o.passed;
        self.failed += o.failed;
        self.unverified += o.unverified;
        self.errors += o.errors;
        self.running += o.running;
        self.budget += o.budget;
        self.not_run += o.not_run;
    }
}

/// One metric split between the runtime-owned parent and the delegated children.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub parent: f64,
    pub children: f64,
    /// parent / (parent + children) × 100; `None` when both are zero.
    pub parent_pct: Option<f64>,
    pub children_pct: Option<f64>,
}

impl Split {
    fn new(parent: f64, children: f64) -> Split {
        let sum = parent + children;
        let (p, c) = if sum > 0.0 {
            (Some(parent / sum * 100.0), Some(children / sum * 100.0))
        } else {
            (None, None)
        };
        Split {
            parent,
            children,
            parent_pct: p,
            children_pct: c,
        }
    }
}

/// The paper's parent-versus-children table: sums over finished cells.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub prompt_tokens: Split,
    pub completion_tokens: Split,
    pub tool_calls: Split,
    pub llm_calls: Split,
}

/// One variant's line of the main table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub variant: String,
    pub modules: Vec<String>,
    pub is_baseline: bool,
    pub counts: Counts,
    /// Resolved %: passed / scored × 100; `None` when no cell has a verdict.
    pub perf: Option<Estimate>,
    /// Perf minus the baseline's, in points; its interval is over per-seed differences.
    pub delta: Option<Estimate>,
    pub prompt_tokens: Option<Estimate>,
    pub completion_tokens: Option<Estimate>,
    /// Prompt plus completion tokens (the cost axis when no prices are known).
    pub total_tokens: Option<Estimate>,
    pub tool_calls: Option<Estimate>,
    pub llm_calls: Option<Estimate>,
    pub runtime_min: Option<Estimate>,
    pub cost_usd: Option<Estimate>,
    pub share: Share,
    /// Of the actions proposed, % legal at the first try (cells with interface layers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_first_try_pct: Option<Estimate>,
    /// Of the actions proposed, % legal in the end (repairs included, blocks not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_final_pct: Option<Estimate>,
    /// Interventions of the layers per episode (per cell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interventions: Option<Estimate>,
    /// The environment's final reward (cells whose environment reported one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<Estimate>,
}

/// One variant against the baseline, task by task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flips {
    pub variant: String,
    pub baseline: String,
    /// Tasks with a verdict under both variants.
    pub paired: u64,
    pub unchanged: u64,
    pub both_resolved: u64,
    pub neither_resolved: u64,
    /// Unresolved under the baseline, resolved under the variant.
    pub gained: u64,
    pub lost: u64,
    /// Tasks with a verdict under only one of the two.
    pub unpaired: u64,
    pub gained_tasks: Vec<String>,
    pub lost_tasks: Vec<String>,
    /// Exact two-sided McNemar p-value on the discordant tasks.
    pub mcnemar_p: f64,
    /// "110 of 125 tasks do not flip; 9 gain, 6 lose".
    pub summary: String,
}

/// One task set and model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub task_set: String,
    pub model: String,
    pub counts: Counts,
    /// Distinct tasks in this group.
    pub tasks: u64,
    pub rows: Vec<Row>,
    pub flips: Vec<Flips>,
    pub share: Share,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblationReport {
    pub schema: String,
    pub harness: String,
    pub design: String,
    pub baseline: String,
    pub confidence: f64,
    pub interval: String,
    pub flip_rule: String,
    /// Seeds in the design.
    pub seeds: u64,
    pub counts: Counts,
    pub groups: Vec<Group>,
    /// Shares pooled over every finished cell.
    pub share: Share,
    /// What the matrix spent against its `--max-cost` (`OUT/spend.json`), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<SpendRecord>,
    /// Per variant and task, the episodes of tasks that run in an environment (`episodes.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub episodes: Vec<episodes::EpisodeRow>,
    /// Baseline versus a learned harness, per model (`report::transfer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<transfer::Transfer>,
    /// Further output folders read for the transfer table only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_folders: Vec<PathBuf>,
}

impl AblationReport {
    /// Whether any figure has an interval (with one seed none has).
    pub fn has_intervals(&self) -> bool {
        self.groups
            .iter()
            .flat_map(|g| &g.rows)
            .any(|r| r.perf.is_some_and(|e| e.half_width.is_some()))
    }

    /// Whether several task sets or models are compared (tables then say which is which).
    pub fn several_groups(&self) -> bool {
        self.groups.len() > 1
    }

    /// Whether any run knew its prices (else the cost axis is tokens).
    pub fn has_cost(&self) -> bool {
        self.groups
            .iter()
            .flat_map(|g| &g.rows)
            .any(|r| r.cost_usd.is_some_and(|e| e.mean > 0.0))
    }
}

/// Renders a report in one of the formats.
pub fn render(report: &AblationReport, format: Format) -> Result<String, ReportError> {
    Ok(match format {
        Format::Markdown => markdown::render(report),
        Format::Csv => table::csv(report),
        Format::Json => {
            let mut s =
                serde_json::to_string_pretty(report).map_err(|source| ReportError::Json {
                    path: PathBuf::from("<report>"),
                    source,
                })?;
            s.push('\n');
            s
        }
        Format::Html => html::render(report),
    })
}

/// The task set a cell belongs to: the folder given as TASKS (older matrices: the folder its
/// task was loaded from).
pub fn task_set_of(cell: &Cell) -> String {
    if !cell.task_set.is_empty() {
        return cell.task_set.clone();
    }
    cell.task_path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "tasks".into())
}

// ---------------------------------------------------------------------------------------------
// Accumulation.

/// Sums of one set of finished cells.
#[derive(Debug, Clone, Default)]
struct Sums {
    scored: u64,
    passed: u64,
    finished: u64,
    prompt: f64,
    completion: f64,
    tool_calls: f64,
    llm_calls: f64,
    runtime_min: f64,
    cost: f64,
    /// Cells whose harness has interface layers, and their counts.
    layered: u64,
    actions: f64,
    legal_first: f64,
    legal_final: f64,
    interventions: f64,
    /// Cells whose environment reported a reward, and its sum.
    rewarded: u64,
    reward: f64,
}

impl Sums {
    fn perf(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.passed as f64 / self.scored as f64 * 100.0)
    }

    fn mean(&self, v: f64) -> Option<f64> {
        (self.finished > 0).then(|| v / self.finished as f64)
    }
}

#[derive(Debug, Clone, Default)]
struct ShareSums {
    prompt: (f64, f64),
    completion: (f64, f64),
    tools: (f64, f64),
    calls: (f64, f64),
}

impl ShareSums {
    fn add(&mut self, o: &ShareSums) {
        self.prompt.0 += o.prompt.0;
        self.prompt.1 += o.prompt.1;
        self.completion.0 += o.completion.0;
        self.completion.1 += o.completion.1;
        self.tools.0 += o.tools.0;
        self.tools.1 += o.tools.1;
        self.calls.0 += o.calls.0;
        self.calls.1 += o.calls.1;
    }

    fn share(&self) -> Share {
        Share {
            prompt_tokens: Split::new(self.prompt.0, self.prompt.1),
            completion_tokens: Split::new(self.completion.0, self.completion.1),
            tool_calls: Split::new(self.tools.0, self.tools.1),
            llm_calls: Split::new(self.calls.0, self.calls.1),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct VariantAcc {
    counts: Counts,
    all: Sums,
    seeds: BTreeMap<u64, Sums>,
    /// Per task: (passed, scored).
    tasks: BTreeMap<String, (u64, u64)>,
    share: ShareSums,
}

impl VariantAcc {
    fn add(&mut self, cell: &Cell, facts: Option<&Summary>) {
        self.counts.add(facts.map(|f| f.outcome));
        let Some(f) = facts else { return };
        let (scored, passed) = match f.outcome {
            RunOutcome::Passed => (true, true),
            RunOutcome::Failed => (true, false),
            RunOutcome::Unverified => (false, false),
            RunOutcome::Error | RunOutcome::Running | RunOutcome::Budget => return,
        };
        let seed = self.seeds.entry(cell.seed).or_default();
        for s in [&mut self.all, seed] {
            s.finished += 1;
            s.scored += u64::from(scored);
            s.passed += u64::from(passed);
            s.prompt += f.input_tokens as f64;
            s.completion += f.output_tokens as f64;
            s.tool_calls += f.tool_calls as f64;
            s.llm_calls += f.llm_calls as f64;
            s.runtime_min += f.wall_ms as f64 / 60_000.0;
            s.cost += f.cost_usd;
            if let Some(i) = f.interface {
                s.layered += 1;
                s.actions += i.actions as f64;
                s.legal_first += i.legal_first_try as f64;
                s.legal_final += i.legal_final as f64;
                s.interventions += i.interventions as f64;
            }
            if let Some(r) = f.reward {
                s.rewarded += 1;
                s.reward += r;
            }
        }
        if scored {
            let t = self.tasks.entry(cell.task.clone()).or_default();
            t.0 += u64::from(passed);
            t.1 += 1;
        }
        let sh = &mut self.share;
        for (sum, parent, children) in [
            (
                &mut sh.prompt,
                f.parent_input_tokens,
                f.children_input_tokens,
            ),
            (
                &mut sh.completion,
                f.parent_output_tokens,
                f.children_output_tokens,
            ),
            (&mut sh.tools, f.parent_tool_calls, f.children_tool_calls),
            (&mut sh.calls, f.parent_llm_calls, f.children_llm_calls),
        ] {
            sum.0 += parent as f64;
            sum.1 += children as f64;
        }
    }

    /// A per-cell mean over finished cells with its interval over the seeds' means.
    fn estimate(&self, pick: impl Fn(&Sums) -> f64) -> Option<Estimate> {
        let mean = self.all.mean(pick(&self.all))?;
        let per_seed: Vec<f64> = self
            .seeds
            .values()
            .filter_map(|s| s.mean(pick(s)))
            .collect();
        Some(Estimate::new(mean, &per_seed))
    }

    /// A ratio of two sums (as %, pooled over cells), with its interval over the seeds' ratios.
    fn rate(&self, num: impl Fn(&Sums) -> f64, den: impl Fn(&Sums) -> f64) -> Option<Estimate> {
        let r = |s: &Sums| (den(s) > 0.0).then(|| num(s) / den(s) * 100.0);
        let mean = r(&self.all)?;
        let per_seed: Vec<f64> = self.seeds.values().filter_map(r).collect();
        Some(Estimate::new(mean, &per_seed))
    }

    /// A mean over the cells that have a count (`n`), with its interval over the seeds' means.
    fn mean_over(&self, v: impl Fn(&Sums) -> f64, n: impl Fn(&Sums) -> u64) -> Option<Estimate> {
        let m = |s: &Sums| (n(s) > 0).then(|| v(s) / n(s) as f64);
        let mean = m(&self.all)?;
        let per_seed: Vec<f64> = self.seeds.values().filter_map(m).collect();
        Some(Estimate::new(mean, &per_seed))
    }

    fn perf(&self) -> Option<Estimate> {
        let mean = self.all.perf()?;
        let per_seed: Vec<f64> = self.seeds.values().filter_map(Sums::perf).collect();
        Some(Estimate::new(mean, &per_seed))
    }

    /// Resolved by strict majority over scored seeds, per task.
    fn resolved(&self) -> BTreeMap<&str, bool> {
        self.tasks
            .iter()
            .map(|(t, &(passed, scored))| (t.as_str(), passed * 2 > scored))
            .collect()
    }
}

fn delta(v: &VariantAcc, b: &VariantAcc) -> Option<Estimate> {
    let mean = v.all.perf()? - b.all.perf()?;
    // Paired by seed: a seed counts when both variants scored cells under it.
    let diffs: Vec<f64> = v
        .seeds
        .iter()
        .filter_map(|(seed, s)| Some(s.perf()? - b.seeds.get(seed)?.perf()?))
        .collect();
    Some(Estimate::new(mean, &diffs))
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn flips(name: &str, v: &VariantAcc, baseline: &str, b: &VariantAcc) -> Flips {
    let (rv, rb) = (v.resolved(), b.resolved());
    let mut f = Flips {
        variant: name.to_string(),
        baseline: baseline.to_string(),
        paired: 0,
        unchanged: 0,
        both_resolved: 0,
        neither_resolved: 0,
        gained: 0,
        lost: 0,
        unpaired: 0,
        gained_tasks: Vec::new(),
        lost_tasks: Vec::new(),
        mcnemar_p: 1.0,
        summary: String::new(),
    };
    for (task, &bv) in &rb {
        let Some(&vv) = rv.get(task) else {
            f.unpaired += 1;
            continue;
        };
        f.paired += 1;
        match (bv, vv) {
            (true, true) => f.both_resolved += 1,
            (false, false) => f.neither_resolved += 1,
            (false, true) => f.gained_tasks.push(task.to_string()),
            (true, false) => f.lost_tasks.push(task.to_string()),
        }
    }
    f.unpaired += rv.keys().filter(|t| !rb.contains_key(*t)).count() as u64;
    f.gained = f.gained_tasks.len() as u64;
    f.lost = f.lost_tasks.len() as u64;
    f.unchanged = f.both_resolved + f.neither_resolved;
    f.mcnemar_p = stats::mcnemar_exact(f.gained, f.lost);
    f.summary = if f.paired == 0 {
        "no task has a verdict under both".to_string()
    } else {
        format!(
            "{} of {} {}; {}, {}",
            f.unchanged,
            plural(f.paired, "task", "tasks"),
            if f.unchanged == 1 {
                "does not flip"
            } else {
                "do not flip"
            },
            plural(f.gained, "gains", "gain"),
            plural(f.lost, "loses", "lose"),
        )
    };
    f
}

/// The order things appear in: as the matrix lists them, then any others sorted.
fn ordered(listed: impl IntoIterator<Item = String>, seen: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in listed {
        if seen.contains(&s) && !out.contains(&s) {
            out.push(s);
        }
    }
    for s in seen {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// Computes every figure of the report from full records. `baseline` overrides the matrix's.
pub fn build(
    matrix: &Matrix,
    cells: &[CellResult],
    baseline: Option<&str>,
) -> Result<AblationReport, ReportError> {
    let cells: Vec<(&Cell, Option<Summary>)> = cells
        .iter()
        .map(|c| (&c.cell, c.record.as_ref().map(Summary::of)))
        .collect();
    build_cells(matrix, &cells, baseline)
}

/// The same from the index's summaries (one per matrix cell, in matrix order), which need no
/// record parsed.
pub fn build_from_summaries(
    matrix: &Matrix,
    summaries: &[Option<Summary>],
    baseline: Option<&str>,
) -> Result<AblationReport, ReportError> {
    let cells: Vec<(&Cell, Option<Summary>)> =
        matrix.cells.iter().zip(summaries.iter().copied()).collect();
    build_cells(matrix, &cells, baseline)
}

fn build_cells(
    matrix: &Matrix,
    cells: &[(&Cell, Option<Summary>)],
    baseline: Option<&str>,
) -> Result<AblationReport, ReportError> {
    if cells.is_empty() {
        return Err(ReportError::NoCells);
    }
    let baseline = baseline.unwrap_or(&matrix.baseline).to_string();
    let known_variants: BTreeSet<String> = matrix
        .variants
        .iter()
        .map(|v| v.name.clone())
        .chain(cells.iter().map(|(c, _)| c.variant.clone()))
        .collect();
    if !known_variants.contains(&baseline) {
        return Err(ReportError::UnknownBaseline {
            name: baseline,
            known: known_variants.into_iter().collect::<Vec<_>>().join(", "),
        });
    }
    let variants = ordered(
        matrix.variants.iter().map(|v| v.name.clone()),
        &known_variants,
    );
    let modules_of = |name: &str| {
        matrix
            .variants
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.modules.clone())
            .unwrap_or_default()
    };

    // (task set, model) -> variant -> accumulator.
    let mut acc: BTreeMap<(String, String), BTreeMap<String, VariantAcc>> = BTreeMap::new();
    let mut tasks: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut models_seen = BTreeSet::new();
    let mut sets_seen = BTreeSet::new();
    for (cell, facts) in cells {
        let key = (task_set_of(cell), cell.model.clone());
        sets_seen.insert(key.0.clone());
        models_seen.insert(key.1.clone());
        tasks
            .entry(key.clone())
            .or_default()
            .insert(cell.task.clone());
        acc.entry(key)
            .or_default()
            .entry(cell.variant.clone())
            .or_default()
            .add(cell, facts.as_ref());
    }
    let models = ordered(matrix.models.iter().cloned(), &models_seen);

    let mut counts = Counts::default();
    let mut pooled = ShareSums::default();
    let mut groups = Vec::new();
    for set in &sets_seen {
        for model in &models {
            let key = (set.clone(), model.clone());
            let Some(by_variant) = acc.get(&key) else {
                continue;
            };
            let base = by_variant.get(&baseline);
            let mut g = Group {
                task_set: set.clone(),
                model: model.clone(),
                counts: Counts::default(),
                tasks: tasks.get(&key).map_or(0, |t| t.len() as u64),
                rows: Vec::new(),
                flips: Vec::new(),
                share: Share::default(),
            };
            let mut group_share = ShareSums::default();
            for name in &variants {
                let Some(v) = by_variant.get(name) else {
                    continue;
                };
                let is_baseline = *name == baseline;
                g.counts.merge(&v.counts);
                group_share.add(&v.share);
                g.rows.push(Row {
                    variant: name.clone(),
                    modules: modules_of(name),
                    is_baseline,
                    counts: v.counts.clone(),
                    perf: v.perf(),
                    delta: base.and_then(|b| delta(v, b)),
                    prompt_tokens: v.estimate(|s| s.prompt),
                    completion_tokens: v.estimate(|s| s.completion),
                    total_tokens: v.estimate(|s| s.prompt + s.completion),
                    tool_calls: v.estimate(|s| s.tool_calls),
                    llm_calls: v.estimate(|s| s.llm_calls),
                    runtime_min: v.estimate(|s| s.runtime_min),
                    cost_usd: v.estimate(|s| s.cost),
                    share: v.share.share(),
                    legal_first_try_pct: v.rate(|s| s.legal_first, |s| s.actions),
                    legal_final_pct: v.rate(|s| s.legal_final, |s| s.actions),
                    interventions: v.mean_over(|s| s.interventions, |s| s.layered),
                    reward: v.mean_over(|s| s.reward, |s| s.rewarded),
                });
                if let Some(b) = base.filter(|_| !is_baseline) {
                    g.flips.push(flips(name, v, &baseline, b));
                }
            }
            counts.merge(&g.counts);
            pooled.add(&group_share);
            g.share = group_share.share();
            groups.push(g);
        }
    }

    Ok(AblationReport {
        schema: REPORT_SCHEMA.into(),
        harness: matrix.harness_name.clone(),
        design: matrix.design.clone(),
        baseline,
        confidence: 0.95,
        interval: "per-cell mean ± t(0.975, seeds−1) · sd(per-seed means) / √seeds".into(),
        flip_rule: FLIP_RULE.into(),
        seeds: matrix.seeds,
        counts,
        groups,
        share: pooled.share(),
        spend: None,
        episodes: episodes::rows(cells, &variants),
        transfer: None,
        other_folders: Vec::new(),
    })
}

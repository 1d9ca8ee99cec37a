//! The transfer table (issue 18, section 5): a harness learned with one model, run unchanged on
//! others. Per model: the baseline harness, the learned one, and Δ with its 95% interval, paired
//! per task.
//!
//! The two harnesses are two **arms**: a variant of a matrix, known by its composed harness's
//! version id, so the same harness in two output folders is one arm and a module toggle or an
//! evolved version is another. The baseline arm is the first folder's baseline variant (or
//! `--baseline`); the learned arm is `--learned` (a variant name, `FOLDER/VARIANT`, or a version
//! prefix), or, when the folders hold exactly two arms, the other one.
//!
//! Pairing: a task's score under an arm is its pass rate over its scored seeds (passed or
//! failed; errors, unverified and unfinished cells are left out). Per model, only tasks scored
//! under both arms count; Baseline and Learned are the mean scores over those tasks (× 100), Δ
//! their difference, and its interval is the paired t-interval over the tasks' differences:
//! t(0.975, tasks − 1) · sd / √tasks. Gains and losses count tasks resolved (strict majority of
//! seeds) under one arm only, with the exact McNemar test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ablation::Matrix;
use crate::ablation::index::Summary;
use crate::record::RunOutcome;

use super::fmt;
use super::stats::{self, Estimate};
use super::table::{self, Table};
use super::{ReportError, task_set_of};

/// The pairing rule, stated in every rendering.
pub const TRANSFER_RULE: &str = "paired by task within each model: a task's score is its pass \
rate over its scored seeds, only tasks scored under both harnesses count, and ± is the 95% \
t-interval over the tasks' differences";

/// One harness of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// The variant's name, or `FOLDER/VARIANT` where names repeat across folders.
    pub label: String,
    pub variant: String,
    /// The composed harness's version id.
    pub version: String,
    /// The output folder it was found in first.
    pub out: PathBuf,
}

/// One model's line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRow {
    pub model: String,
    /// Tasks scored under both arms.
    pub tasks: u64,
    /// Mean task score under the baseline, in % (`None` without a paired task).
    pub baseline: Option<f64>,
    pub learned: Option<f64>,
    /// Learned − baseline, in points, with its interval over the paired tasks.
    pub delta: Option<Estimate>,
    pub gained: u64,
    pub lost: u64,
    pub mcnemar_p: f64,
    /// Tasks scored under only one of the two arms.
    pub unpaired: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    pub baseline: Arm,
    pub learned: Arm,
    pub rule: String,
    pub rows: Vec<TransferRow>,
}

/// One output folder's cells, as the report reads them.
pub struct Folder<'a> {
    pub out: &'a Path,
    pub matrix: &'a Matrix,
    pub summaries: &'a [Option<Summary>],
}

/// What decides whether there is a transfer table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Choice<'a> {
    /// A variant of the first folder (default: its matrix's baseline).
    pub baseline: Option<&'a str>,
    /// An arm: a variant name, `FOLDER/VARIANT`, or a version prefix.
    pub learned: Option<&'a str>,
}

/// Per task: (passed, scored).
type Scores = BTreeMap<String, (u64, u64)>;

fn folder_name(out: &Path) -> String {
    out.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| out.display().to_string())
}

/// Every arm of the folders, in folder and variant order; the same version is one arm.
fn arms(folders: &[Folder<'_>]) -> Vec<Arm> {
    let mut out: Vec<Arm> = Vec::new();
    for f in folders {
        for v in &f.matrix.variants {
            if !out.iter().any(|a| a.version == v.version) {
                out.push(Arm {
                    label: v.name.clone(),
                    variant: v.name.clone(),
                    version: v.version.clone(),
                    out: f.out.to_path_buf(),
                });
            }
        }
    }
    let names: Vec<String> = out.iter().map(|a| a.variant.clone()).collect();
    for a in &mut out {
        if names.iter().filter(|n| **n == a.variant).count() > 1 {
            a.label = format!("{}/{}", folder_name(&a.out), a.variant);
        }
    }
    out
}

/// The arms `query` names: a label, a variant name, or a version prefix of at least 6 digits.
fn matching<'a>(arms: &'a [Arm], query: &str) -> Vec<&'a Arm> {
    arms.iter()
        .filter(|a| {
            a.label == query
                || a.variant == query
                || (query.len() >= 6 && a.version.starts_with(query))
        })
        .collect()
}

fn unknown(query: &str, arms: &[Arm]) -> ReportError {
    ReportError::UnknownArm {
        name: query.to_string(),
        known: arms
            .iter()
            .map(|a| format!("{} ({})", a.label, short(&a.version)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The first 12 digits of a version id, as `nlah show` prints it.
pub fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}

/// The transfer table of `folders`, or `None` when there is none to show: shown when a learned
/// arm is named, or when the folders hold exactly two arms and more than one model.
pub fn build(folders: &[Folder<'_>], choice: Choice<'_>) -> Result<Option<Transfer>, ReportError> {
    let Some(first) = folders.first() else {
        return Ok(None);
    };
    let arms = arms(folders);
    // The baseline: the first folder's (named) baseline variant.
    let name = choice.baseline.unwrap_or(&first.matrix.baseline);
    let version = first
        .matrix
        .variants
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.version.clone());
    let Some(baseline) = arms
        .iter()
        .find(|a| Some(&a.version) == version.as_ref())
        .cloned()
    else {
        return Ok(None);
    };
    let learned = match choice.learned {
        Some(q) => {
            let found: Vec<&Arm> = matching(&arms, q)
                .into_iter()
                .filter(|a| a.version != baseline.version)
                .collect();
            match found.as_slice() {
                [a] => (*a).clone(),
                _ => return Err(unknown(q, &arms)),
            }
        }
        None => {
            let models: BTreeSet<&str> = folders
                .iter()
                .flat_map(|f| f.matrix.cells.iter().map(|c| c.model.as_str()))
                .collect();
            if arms.len() != 2 || models.len() < 2 {
                return Ok(None);
            }
            match arms.iter().find(|a| a.version != baseline.version) {
                Some(a) => a.clone(),
                None => return Ok(None),
            }
        }
    };

    // model -> arm version -> task -> (passed, scored).
    let mut acc: BTreeMap<String, BTreeMap<String, Scores>> = BTreeMap::new();
    let mut models: Vec<String> = Vec::new();
    for f in folders {
        let version_of: BTreeMap<&str, &str> = f
            .matrix
            .variants
            .iter()
            .map(|v| (v.name.as_str(), v.version.as_str()))
            .collect();
        for m in &f.matrix.models {
            if !models.contains(m) {
                models.push(m.clone());
            }
        }
        for (cell, s) in f.matrix.cells.iter().zip(f.summaries) {
            let Some(version) = version_of.get(cell.variant.as_str()) else {
                continue;
            };
            if *version != baseline.version && *version != learned.version {
                continue;
            }
            let passed = match s.map(|s| s.outcome) {
                Some(RunOutcome::Passed) => 1,
                Some(RunOutcome::Failed) => 0,
                _ => continue,
            };
            if !models.contains(&cell.model) {
                models.push(cell.model.clone());
            }
            let task = format!("{}/{}", task_set_of(cell), cell.task);
            let t = acc
                .entry(cell.model.clone())
                .or_default()
                .entry(version.to_string())
                .or_default()
                .entry(task)
                .or_default();
            t.0 += passed;
            t.1 += 1;
        }
    }
    let empty = Scores::new();
    let rows = models
        .iter()
        .map(|m| {
            let by_arm = acc.get(m);
            let b = by_arm
                .and_then(|a| a.get(&baseline.version))
                .unwrap_or(&empty);
            let l = by_arm
                .and_then(|a| a.get(&learned.version))
                .unwrap_or(&empty);
            row(m, b, l)
        })
        .collect();
    Ok(Some(Transfer {
        baseline,
        learned,
        rule: TRANSFER_RULE.to_string(),
        rows,
    }))
}

fn row(model: &str, b: &Scores, l: &Scores) -> TransferRow {
    let rate = |(p, n): (u64, u64)| p as f64 / n as f64 * 100.0;
    let resolved = |(p, n): (u64, u64)| p * 2 > n;
    let mut bs = Vec::new();
    let mut ls = Vec::new();
    let mut diffs = Vec::new();
    let (mut gained, mut lost) = (0, 0);
    for (task, &bt) in b {
        let Some(&lt) = l.get(task) else { continue };
        bs.push(rate(bt));
        ls.push(rate(lt));
        diffs.push(rate(lt) - rate(bt));
        match (resolved(bt), resolved(lt)) {
            (false, true) => gained += 1,
            (true, false) => lost += 1,
            _ => {}
        }
    }
    let paired = diffs.len() as u64;
    let unpaired = b.keys().chain(l.keys()).collect::<BTreeSet<_>>().len() as u64 - paired;
    TransferRow {
        model: model.to_string(),
        tasks: paired,
        baseline: stats::mean(&bs),
        learned: stats::mean(&ls),
        delta: stats::mean(&diffs).map(|m| {
            let h = stats::t_half_width(&diffs);
            Estimate {
                mean: m,
                half_width: h,
                lo: h.map(|h| m - h),
                hi: h.map(|h| m + h),
                seeds: diffs.len(),
            }
        }),
        gained,
        lost,
        mcnemar_p: stats::mcnemar_exact(gained, lost),
        unpaired,
    }
}

/// The table, one row per model.
pub(super) fn table(t: &Transfer) -> Table {
    let cols = [
        ("Model", false),
        ("Tasks", true),
        ("Baseline %", true),
        ("Learned %", true),
        ("Δ (points)", true),
        ("95% interval", true),
        ("Gain", true),
        ("Lose", true),
        ("McNemar p", true),
    ];
    let pct = |x: Option<f64>| x.map_or("n/a".to_string(), fmt::fixed1);
    Table {
        header: cols.iter().map(|c| c.0.to_string()).collect(),
        right: cols.iter().map(|c| c.1).collect(),
        rows: t
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.model.clone(),
                    r.tasks.to_string(),
                    pct(r.baseline),
                    pct(r.learned),
                    r.delta.map_or("n/a".to_string(), |d| fmt::delta(d.mean)),
                    match r.delta.and_then(|d| d.lo.zip(d.hi)) {
                        Some((lo, hi)) => format!("[{}, {}]", fmt::delta(lo), fmt::delta(hi)),
                        None => "n/a".to_string(),
                    },
                    r.gained.to_string(),
                    r.lost.to_string(),
                    table::p_value(r.mcnemar_p),
                ]
            })
            .collect(),
    }
}

/// What the table compares and how, in sentences (Markdown inline code for names).
pub(super) fn sentences(t: &Transfer) -> Vec<String> {
    let arm = |a: &Arm| {
        format!(
            "`{}` (version {}, {})",
            a.label,
            short(&a.version),
            a.out.display()
        )
    };
    let mut v = vec![
        format!(
            "Baseline: {}. Learned: {}.",
            arm(&t.baseline),
            arm(&t.learned)
        ),
        format!(
            "Pairing: {} (a model with fewer than two paired tasks has no interval: n/a). Gains \
             and losses count tasks resolved (strict majority of scored seeds) under one harness \
             only; the McNemar test is exact.",
            t.rule
        ),
    ];
    let unpaired: u64 = t.rows.iter().map(|r| r.unpaired).sum();
    if unpaired > 0 {
        v.push(format!(
            "{unpaired} task-model pair{} scored under only one harness left out.",
            if unpaired == 1 { "" } else { "s" }
        ));
    }
    v
}

/// The sentence that says which folders joined only the transfer table, when any did.
pub fn other_folders_note(folders: &[std::path::PathBuf]) -> Option<String> {
    if folders.is_empty() {
        return None;
    }
    let names: Vec<String> = folders
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect();
    Some(format!(
        "The tables above are of the first folder; {} joined the transfer table only.",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(v: &[(&str, u64, u64)]) -> Scores {
        v.iter()
            .map(|(t, p, n)| (t.to_string(), (*p, *n)))
            .collect()
    }

    #[test]
    fn delta_is_paired_by_task_with_a_t_interval() {
        // Three paired tasks: differences 100, 0 and 50 points; one task only under the baseline.
        let b = scores(&[("a", 0, 2), ("b", 2, 2), ("c", 0, 2), ("d", 1, 1)]);
        let l = scores(&[("a", 2, 2), ("b", 2, 2), ("c", 1, 2)]);
        let r = row("m", &b, &l);
        assert_eq!((r.tasks, r.unpaired), (3, 1));
        assert_eq!(r.baseline, Some(100.0 / 3.0));
        assert_eq!(r.learned, Some(250.0 / 3.0));
        let d = r.delta.unwrap();
        assert!((d.mean - 50.0).abs() < 1e-9);
        // sd of (100, 0, 50) is 50; t(0.975, 2) = 4.302652730; half-width 4.3027 · 50 / √3.
        let h = 4.302_652_730 * 50.0 / 3f64.sqrt();
        assert!((d.half_width.unwrap() - h).abs() < 1e-6, "{d:?}");
        // `a` gains; `c` at one of two seeds is resolved by no strict majority: no flip.
        assert_eq!((r.gained, r.lost), (1, 0));
    }
}

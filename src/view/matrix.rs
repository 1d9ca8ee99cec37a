//! A matrix's data for the page: its design and counts, one filtered page of its cells (from
//! the index's summaries: no run.json is parsed for a listing), and the report page.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::ViewError;
use crate::ablation::index::{self, Summary};
use crate::ablation::{Cell, Matrix};
use crate::report::{self, Format};

/// What a cell is doing: its run's outcome, or why there is none.
fn status(out: &Path, cell: &Cell, s: Option<&Summary>) -> &'static str {
    if let Some(s) = s {
        return s.outcome.as_str();
    }
    let dir = out.join("cells").join(&cell.id);
    if dir.join("run.json").exists() {
        // The index could not read it: the run page says why.
        "unreadable"
    } else if dir.is_dir() {
        "running"
    } else {
        "not-run"
    }
}

/// matrix.json read once and kept while it stays the same (size, mtime, inode): with 10,000
/// cells, parsing it is a good part of answering a poll.
#[derive(Default)]
pub struct MatrixCache {
    kept: Mutex<Option<(Stamp, Arc<Matrix>)>>,
}

/// Size, mtime (ns) and inode.
type Stamp = (u64, i64, u64);

impl MatrixCache {
    fn matrix(&self, out: &Path) -> Result<Arc<Matrix>, ViewError> {
        let path = out.join(crate::ablation::matrix::MATRIX_FILE);
        let stamp = std::fs::metadata(&path)
            .map(|m| {
                (
                    m.size(),
                    m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                    m.ino(),
                )
            })
            .map_err(|source| ViewError::Io {
                path: path.clone(),
                source,
            })?;
        if let Ok(kept) = self.kept.lock()
            && let Some((s, m)) = kept.as_ref()
            && *s == stamp
        {
            return Ok(m.clone());
        }
        let m = Arc::new(crate::ablation::matrix::read_matrix(&path)?);
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some((stamp, m.clone()));
        }
        Ok(m)
    }
}

/// The matrix and each cell's summary from the index, brought up to date with the files.
fn load(cache: &MatrixCache, out: &Path) -> Result<(Arc<Matrix>, Vec<Option<Summary>>), ViewError> {
    let m = cache.matrix(out)?;
    let entries = index::refresh(out, &m, false)?;
    Ok((m, entries.into_iter().map(|e| e.summary).collect()))
}

/// The design, the values each filter can take, and how many cells ended how.
pub fn summary(cache: &MatrixCache, out: &Path) -> Result<Value, ViewError> {
    let (m, sums) = load(cache, out)?;
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut tasks: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (c, s) in m.cells.iter().zip(&sums) {
        *counts.entry(status(out, c, s.as_ref())).or_default() += 1;
        if seen.insert(c.task.as_str()) {
            tasks.push(&c.task);
        }
    }
    let finished: u64 = ["passed", "failed", "unverified", "error"]
        .iter()
        .map(|k| counts.get(k).copied().unwrap_or(0))
        .sum();
    Ok(json!({
        "harness": m.harness_name,
        "harness_path": m.harness.display().to_string(),
        "design": m.design,
        "baseline": m.baseline,
        "created": m.created,
        "variants": m.variants.iter().map(|v| json!({"name": v.name, "modules": v.modules})).collect::<Vec<_>>(),
        "tasks": tasks,
        "models": m.models,
        "seeds": m.seeds,
        "total": m.cells.len(),
        "finished": finished,
        "counts": counts,
    }))
}

/// Which cells to list; `None` matches every value.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub variant: Option<String>,
    pub task: Option<String>,
    pub model: Option<String>,
    pub seed: Option<u64>,
    pub outcome: Option<String>,
}

impl Filter {
    fn keeps(&self, c: &Cell, status: &str) -> bool {
        self.variant.as_ref().is_none_or(|v| *v == c.variant)
            && self.task.as_ref().is_none_or(|t| *t == c.task)
            && self.model.as_ref().is_none_or(|m| *m == c.model)
            && self.seed.is_none_or(|s| s == c.seed)
            && self.outcome.as_ref().is_none_or(|o| o == status)
    }
}

/// One page of the cells the filter keeps, in matrix order, with how many it keeps in all.
pub fn cells(
    cache: &MatrixCache,
    out: &Path,
    f: &Filter,
    offset: usize,
    limit: usize,
) -> Result<Value, ViewError> {
    let (m, sums) = load(cache, out)?;
    let mut matched = 0usize;
    let mut rows = Vec::new();
    for (c, s) in m.cells.iter().zip(&sums) {
        let st = status(out, c, s.as_ref());
        if !f.keeps(c, st) {
            continue;
        }
        if matched >= offset && rows.len() < limit {
            rows.push(json!({
                "id": c.id,
                "index": c.index,
                "variant": c.variant,
                "task": c.task,
                "task_set": c.task_set,
                "model": c.model,
                "seed": c.seed,
                "outcome": st,
                "tokens": s.map(|s| s.input_tokens + s.output_tokens),
                "tool_calls": s.map(|s| s.tool_calls),
                "wall_ms": s.map(|s| s.wall_ms),
                "cost_usd": s.map(|s| s.cost_usd),
            }));
        }
        matched += 1;
    }
    Ok(json!({ "total": matched, "offset": offset, "cells": rows }))
}

/// `nlah report`'s HTML page of the matrix (tables and charts), as it stands now.
pub fn report_html(out: &Path) -> Result<String, ViewError> {
    let r = report::report(out, None)?;
    Ok(report::render(&r, Format::Html)?)
}

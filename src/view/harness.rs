//! A harness's data for the page: its composed SKILL.md for the toggles the page sets, its
//! versions from git with their scores (`nlah log`), and the semantic diff of two versions.

use std::path::Path;

use serde_json::{Value, json};

use super::ViewError;
use crate::harness::{self, Toggles};
use crate::versions::gitread;
use crate::versions::harness_diff::{self, DiffOptions};
use crate::versions::log::{self, LogOptions};

/// The modules (each with its default), the composed text, its version id and its problems.
pub fn composed(root: &Path, toggles: &Toggles) -> Result<Value, ViewError> {
    let src = harness::load(root)?;
    let mut diags = src.load_diags.clone();
    let c = harness::compose(&src, toggles, &mut diags);
    let folder = root.file_name().and_then(|n| n.to_str());
    let h = harness::parse(&c.text, &src.root, folder, &mut diags);
    let problems: Vec<String> = diags
        .into_sorted()
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    Ok(json!({
        "path": root.display().to_string(),
        "name": h.as_ref().map(|h| h.meta.name.clone()),
        "modules": src.modules.iter().map(|m| json!({
            "name": m.name,
            "description": m.description,
            "default": m.enabled,
        })).collect::<Vec<_>>(),
        "enabled": c.modules,
        "version": c.hash,
        "text": c.text.as_str(),
        "problems": problems,
    }))
}

/// The versions newest first with their scores (from git notes).
pub fn log(root: &Path, toggles: &Toggles) -> Result<Value, ViewError> {
    let opts = LogOptions {
        toggles: toggles.clone(),
        ..LogOptions::default()
    };
    let l = log::log(root, &opts)?;
    Ok(serde_json::to_value(l).unwrap_or(Value::Null))
}

/// What changed in this harness between two revisions.
pub fn diff(root: &Path, a: &str, b: &str, toggles: &Toggles) -> Result<Value, ViewError> {
    let (repo, workdir) = gitread::discover(root)?;
    let rel = gitread::rel_path(&workdir, root)?;
    let opts = DiffOptions {
        toggles: toggles.clone(),
        context: 3,
    };
    let diffs = harness_diff::diff_revisions(&repo, a, b, Some(&rel), &opts)?;
    Ok(json!({ "a": a, "b": b, "harnesses": diffs }))
}

//! Building a matrix: variants composed and validated, tasks hashed, cells enumerated with stable
//! ids, and `OUT/matrix.json` written (or checked against the one already there).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::design::{self, Design};
use super::error::AblationError;
use super::{Cell, MATRIX_SCHEMA, Matrix, Variant};
use crate::diag::{Diagnostic, closest};
use crate::engine::RunSettings;
use crate::harness::{self, Toggles, compose::sha256_hex};
use crate::model::ModelSpec;
use crate::task;

/// The file name of the matrix inside the output folder.
pub const MATRIX_FILE: &str = "matrix.json";

/// `OUT/matrix.json`: the shared [`Matrix`] plus the run settings every cell runs with (the
/// `nlah run` flags, stored as they are, so that `nlah run-cell` on another machine runs a cell
/// exactly as the local executor does). Readers that want only the matrix deserialize
/// [`Matrix`] from the same file (unknown fields are ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixFile {
    #[serde(flatten)]
    pub matrix: Matrix,
    /// Missing fields take their defaults: files of earlier versions still load.
    #[serde(default)]
    pub settings: RunSettings,
}

/// What a matrix is made of, as given on the command line.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub harness: &'a Path,
    pub tasks: &'a Path,
    pub design: &'a Design,
    pub modules: &'a [String],
    pub models: &'a [String],
    pub seeds: u64,
    pub baseline: Option<&'a str>,
}

/// A cell's identity: the first 16 hex digits of SHA-256 over the composed harness's hash, the
/// task's content hash, the model spec and the seed.
pub fn cell_id(version: &str, task_hash: &str, model: &str, seed: u64) -> String {
    let mut h = sha256_hex(format!("{version}\n{task_hash}\n{model}\n{seed}").as_bytes());
    h.truncate(16);
    h
}

/// Toggles that turn on exactly `on` among `all` modules, whatever their defaults.
pub fn toggles(on: &[String], all: &[String]) -> Toggles {
    Toggles {
        with: on.to_vec(),
        without: all.iter().filter(|m| !on.contains(m)).cloned().collect(),
    }
}

/// The names of a harness's modules.
pub fn module_names(harness: &Path) -> Result<Vec<String>, AblationError> {
    let src = harness::load(harness)?;
    Ok(src.modules.iter().map(|m| m.name.clone()).collect())
}

/// Composes, parses and validates one variant; returns the composed hash, the harness's name and
/// the error diagnostics (empty when it composes cleanly).
pub fn compose_variant(
    harness: &Path,
    on: &[String],
    all: &[String],
) -> Result<(String, String, Vec<Diagnostic>), AblationError> {
    let (composed, h, diags) = harness::build(harness, &toggles(on, all))?;
    let errors: Vec<Diagnostic> = diags
        .into_sorted()
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    let Some(h) = h else {
        return Err(AblationError::NotAHarness(harness.to_path_buf()));
    };
    Ok((composed.hash, h.meta.name, errors))
}

/// Builds the matrix: checks every module exists and every variant composes without errors
/// before anything runs.
pub fn build(req: &Request<'_>) -> Result<Matrix, AblationError> {
    let root = req
        .harness
        .canonicalize()
        .map_err(AblationError::io(req.harness))?;
    let src = harness::load(&root)?;
    let all: Vec<String> = src.modules.iter().map(|m| m.name.clone()).collect();
    let on_by_default: Vec<String> = src
        .modules
        .iter()
        .filter(|m| m.enabled)
        .map(|m| m.name.clone())
        .collect();
    let planned = design::variants(req.design, req.modules, &on_by_default)?;
    let named: BTreeSet<&String> = req
        .modules
        .iter()
        .chain(planned.variants.iter().flat_map(|v| &v.modules))
        .collect();
    for m in named {
        if !all.contains(m) {
            let hint = match closest(m, all.iter().map(String::as_str)) {
                Some(c) => format!("did you mean `{c}`?"),
                None if all.is_empty() => "this harness has no modules/ folder".into(),
                None => format!("its modules are: {}", all.join(", ")),
            };
            return Err(AblationError::UnknownModule {
                name: m.clone(),
                harness: req.harness.to_path_buf(),
                hint,
            });
        }
    }

    let mut variants = Vec::new();
    let mut broken = Vec::new();
    let mut harness_name = String::new();
    for v in &planned.variants {
        let (hash, name, errors) = compose_variant(&root, &v.modules, &all)?;
        harness_name = name;
        if !errors.is_empty() {
            broken.push((v.name.clone(), errors));
        }
        variants.push(Variant {
            name: v.name.clone(),
            modules: v.modules.clone(),
            version: hash,
        });
    }
    if !broken.is_empty() {
        return Err(AblationError::Compose(broken));
    }
    for (i, a) in variants.iter().enumerate() {
        if let Some(b) = variants[..i].iter().find(|b| b.version == a.version) {
            return Err(AblationError::Design(format!(
                "variants `{}` and `{}` compose to the same harness (their modules change nothing between them), so their cells would be the same",
                b.name, a.name
            )));
        }
    }

    let tasks = task::load_set(req.tasks)?;
    let task_set = std::fs::canonicalize(req.tasks)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "tasks".into());
    let mut hashed = Vec::new();
    for t in &tasks {
        let h = t.content_hash()?;
        if let Some((other, _)) = hashed.iter().find(|(_, oh): &&(String, String)| *oh == h) {
            return Err(AblationError::Design(format!(
                "tasks `{other}` and `{}` have the same content, so their cells would be the same",
                t.id
            )));
        }
        hashed.push((t.id.clone(), h));
    }

    let mut models: Vec<String> = Vec::new();
    for m in req.models {
        let spec: ModelSpec = m.parse()?;
        let s = spec.to_string();
        if !models.contains(&s) {
            models.push(s);
        }
    }
    if models.is_empty() {
        return Err(AblationError::Design(
            "no model: give --model SPEC (repeatable) or set NLAH_MODEL".into(),
        ));
    }
    if req.seeds == 0 {
        return Err(AblationError::Design("--seeds must be at least 1".into()));
    }
    let baseline = match req.baseline {
        Some(b) if variants.iter().any(|v| v.name == b) => b.to_string(),
        Some(b) => {
            return Err(AblationError::Design(format!(
                "--baseline `{b}` is not a variant of this design (variants: {})",
                variants
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        None => planned.baseline,
    };

    // Seeds outermost: a matrix stopped early (a cost ceiling, an interruption) has compared
    // every variant on the same tasks and seeds so far, rather than finished some variants only.
    let mut cells = Vec::new();
    for seed in 0..req.seeds {
        for (t, (_, th)) in tasks.iter().zip(&hashed) {
            for model in &models {
                for v in &variants {
                    cells.push(Cell {
                        id: cell_id(&v.version, th, model, seed),
                        index: cells.len(),
                        variant: v.name.clone(),
                        task: t.id.clone(),
                        task_path: t.root.clone(),
                        task_set: task_set.clone(),
                        task_hash: th.clone(),
                        model: model.clone(),
                        seed,
                    });
                }
            }
        }
    }

    Ok(Matrix {
        schema: MATRIX_SCHEMA.to_string(),
        harness: root,
        harness_name,
        design: req.design.name(),
        baseline,
        variants,
        models,
        seeds: req.seeds,
        cells,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// Reads `matrix.json` with its settings.
pub fn read(path: &Path) -> Result<MatrixFile, AblationError> {
    let bytes = std::fs::read(path).map_err(AblationError::io(path))?;
    let file: MatrixFile =
        serde_json::from_slice(&bytes).map_err(|source| AblationError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    check(&file.matrix, path)?;
    Ok(file)
}

/// Reads only the matrix of `matrix.json` (what reports need).
pub fn read_matrix(path: &Path) -> Result<Matrix, AblationError> {
    let bytes = std::fs::read(path).map_err(AblationError::io(path))?;
    let m: Matrix = serde_json::from_slice(&bytes).map_err(|source| AblationError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    check(&m, path)?;
    Ok(m)
}

fn check(m: &Matrix, path: &Path) -> Result<(), AblationError> {
    let bad = |message: String| AblationError::BadFile {
        path: path.to_path_buf(),
        message,
    };
    if m.schema != MATRIX_SCHEMA {
        return Err(bad(format!(
            "schema `{}`, but this nlah reads `{MATRIX_SCHEMA}`",
            m.schema
        )));
    }
    for (i, c) in m.cells.iter().enumerate() {
        // Ids name folders: anything but hex would let a edited file escape OUT/cells/.
        if c.index != i || c.id.is_empty() || !c.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!(
                "cell {i} is malformed (index {}, id {:?})",
                c.index, c.id
            )));
        }
    }
    Ok(())
}

/// Writes `OUT/matrix.json` atomically.
pub fn write(out: &Path, file: &MatrixFile) -> Result<(), AblationError> {
    let path = out.join(MATRIX_FILE);
    let json = serde_json::to_vec_pretty(file).map_err(|source| AblationError::Json {
        path: path.clone(),
        source,
    })?;
    crate::atomic::write(&path, &json).map_err(AblationError::io(&path))
}

/// Puts the matrix in `out`: a new folder gets it; a folder that already holds the same cells,
/// or a part of them (a design that gained arms, tasks or seeds), keeps its creation time and
/// finished cells (and takes the new settings); a matrix that drops cells is refused, so that no
/// recorded cell is orphaned.
pub fn install(out: &Path, mut file: MatrixFile) -> Result<MatrixFile, AblationError> {
    let path = out.join(MATRIX_FILE);
    if path.exists() {
        let old = read_matrix(&path)?;
        let old_ids: HashSet<&str> = old.cells.iter().map(|c| c.id.as_str()).collect();
        let new_ids: HashSet<&str> = file.matrix.cells.iter().map(|c| c.id.as_str()).collect();
        if !old_ids.is_subset(&new_ids) {
            return Err(AblationError::Mismatch {
                out: out.to_path_buf(),
                only_old: old_ids.difference(&new_ids).count(),
                only_new: new_ids.difference(&old_ids).count(),
            });
        }
        file.matrix.created = old.created;
        if old_ids != new_ids {
            // The index holds the old cell positions; it is a cache and is rebuilt.
            let _ = std::fs::remove_file(out.join(super::index::INDEX_FILE));
        }
    }
    write(out, &file)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_ids_are_short_stable_and_distinct() {
        let a = cell_id("v1", "t1", "openai:m", 0);
        assert_eq!(a.len(), 16);
        assert_eq!(a, cell_id("v1", "t1", "openai:m", 0));
        assert_ne!(a, cell_id("v1", "t1", "openai:m", 1));
        assert_ne!(a, cell_id("v2", "t1", "openai:m", 0));
        assert_ne!(a, cell_id("v1", "t2", "openai:m", 0));
        assert_ne!(a, cell_id("v1", "t1", "openai:n", 0));
    }

    #[test]
    fn toggles_name_every_module() {
        let all = ["a".to_string(), "b".to_string(), "c".to_string()];
        let t = toggles(&["b".to_string()], &all);
        assert_eq!(t.with, ["b"]);
        assert_eq!(t.without, ["a", "c"]);
    }
}

//! Reading an output folder. Normally through the ablation index (`OUT/index.sqlite`, brought up
//! to date from the run.json files as needed); [`load_files`] reads every run.json directly,
//! needing nothing but the files (the source of truth).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::ablation::matrix::{MATRIX_FILE, read_matrix};
use crate::ablation::resume::run_json;
use crate::ablation::{CellResult, Matrix, index};
use crate::record::RunRecord;

use super::transfer::{Choice, Folder};
use super::{AblationReport, ReportError};

fn matrix_of(out: &Path) -> Result<Matrix, ReportError> {
    let path = out.join(MATRIX_FILE);
    if !path.is_file() {
        return Err(ReportError::NoMatrix {
            path: out.to_path_buf(),
        });
    }
    Ok(read_matrix(&path)?)
}

/// The report of an output folder, from the index's per-cell summaries (no record is parsed
/// for cells the index already knows).
pub fn report(out: &Path, baseline: Option<&str>) -> Result<AblationReport, ReportError> {
    if !out.join(MATRIX_FILE).is_file() {
        return Err(ReportError::NoMatrix {
            path: out.to_path_buf(),
        });
    }
    let (matrix, summaries) = index::summaries(out)?;
    let mut r = super::build_from_summaries(&matrix, &summaries, baseline)?;
    r.spend = crate::ablation::spend::read(out)?;
    Ok(r)
}

/// The report of several output folders: the tables of the first, and the transfer table
/// ([`super::transfer`]) over all of them, shown when `learned` names the learned harness or the
/// folders hold exactly two harnesses and more than one model.
pub fn report_folders(
    outs: &[PathBuf],
    baseline: Option<&str>,
    learned: Option<&str>,
) -> Result<AblationReport, ReportError> {
    let mut read = Vec::new();
    for out in outs {
        if !out.join(MATRIX_FILE).is_file() {
            return Err(ReportError::NoMatrix { path: out.clone() });
        }
        read.push((out, index::summaries(out)?));
    }
    let Some((first, (matrix, summaries))) = read.first() else {
        return Err(ReportError::NoCells);
    };
    let mut r = super::build_from_summaries(matrix, summaries, baseline)?;
    r.spend = crate::ablation::spend::read(first)?;
    let folders: Vec<Folder<'_>> = read
        .iter()
        .map(|(out, (matrix, summaries))| Folder {
            out,
            matrix,
            summaries,
        })
        .collect();
    r.transfer = super::transfer::build(&folders, Choice { baseline, learned })?;
    r.other_folders = outs.iter().skip(1).cloned().collect();
    Ok(r)
}

/// The matrix and every cell with its full run record, through the index. A run.json that
/// cannot be read counts as not run, as it does for `nlah ablate --resume`.
pub fn load(out: &Path) -> Result<(Matrix, Vec<CellResult>), ReportError> {
    let matrix = matrix_of(out)?;
    let cells = index::load(out)?;
    Ok((matrix, cells))
}

fn load_record(path: &Path) -> Result<Option<RunRecord>, ReportError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ReportError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| ReportError::Json {
            path: path.to_path_buf(),
            source,
        })
}

/// The matrix and every cell with its run record, read from the files alone (`None` for cells
/// that have not started; an unreadable run.json is an error naming it). Records are read on all
/// cores: 10,000 small files are mostly system-call time.
pub fn load_files(out: &Path) -> Result<(Matrix, Vec<CellResult>), ReportError> {
    let matrix = matrix_of(out)?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16);
    let chunk = matrix.cells.len().div_ceil(threads).max(1);
    let records: Vec<Result<Vec<Option<RunRecord>>, ReportError>> = std::thread::scope(|s| {
        let handles: Vec<_> = matrix
            .cells
            .chunks(chunk)
            .map(|cells| {
                s.spawn(move || {
                    cells
                        .iter()
                        .map(|c| load_record(&run_json(out, &c.id)))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ReportError::Io {
                        path: out.join("cells"),
                        source: std::io::Error::other("a reader thread panicked"),
                    })
                })
            })
            .collect()
    });
    let mut cells = Vec::with_capacity(matrix.cells.len());
    let mut iter = matrix.cells.iter();
    for chunk in records {
        for record in chunk? {
            if let Some(cell) = iter.next() {
                cells.push(CellResult {
                    cell: cell.clone(),
                    record,
                });
            }
        }
    }
    Ok((matrix, cells))
}

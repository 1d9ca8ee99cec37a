//! Reading an output folder. Normally through the ablation index (`OUT/index.sqlite`, brought up
//! to date from the run.json files as needed); [`load_files`] reads every run.json directly,
//! needing nothing but the files (the source of truth).

use std::io::ErrorKind;
use std::path::Path;

use crate::ablation::matrix::{MATRIX_FILE, read_matrix};
use crate::ablation::resume::run_json;
use crate::ablation::{CellResult, Matrix, index};
use crate::record::RunRecord;

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

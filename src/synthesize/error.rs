//! What can stop a synthesis search before it starts or while it runs.

use std::path::{Path, PathBuf};

use crate::ablation::error::AblationError;
use crate::harness::HarnessError;
use crate::model::ModelError;
use crate::versions::VersionsError;

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Bad input: the harness, the tasks or the flags (exit 2).
    #[error("{0}")]
    Input(String),
    /// `--out` holds the record of another search.
    #[error(
        "{out}: holds a search of {found}, not of {wanted}; give another --out, or the same command as before to continue it"
    )]
    OtherSearch {
        out: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a search record: {message}")]
    BadRecord { path: PathBuf, message: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error(transparent)]
    Versions(#[from] VersionsError),
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Ablation(#[from] AblationError),
    #[error("the refiner's model failed: {0}")]
    Model(#[from] ModelError),
}

impl SynthError {
    pub fn io(path: &Path) -> impl Fn(std::io::Error) -> SynthError + '_ {
        move |source| SynthError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the input was at fault (the CLI's exit 2) rather than the search.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            SynthError::Input(_) | SynthError::OtherSearch { .. } | SynthError::Harness(_)
        )
    }
}

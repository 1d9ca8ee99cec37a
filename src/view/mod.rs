//! `nlah view`: a read-only local web page for an ablation matrix, a run or a harness.
//!
//! The server (axum, on 127.0.0.1 only) serves one hand-written page embedded in the binary
//! (`assets.rs`) and JSON endpoints that each load only what one part of the page shows:
//! the matrix's summary and one page of its cells (`matrix.rs`), a run's header, one page of its
//! events, one child's transcript, one commit's diff (`run.rs`), two runs compared, and a
//! harness composed, its versions and the diff of two (`harness.rs`). Nothing here writes to a
//! workspace; the one file it may write is the ablation index (`OUT/index.sqlite`), a cache that
//! `nlah report` keeps the same way. Problems are answered as `{"error": …}` and handed to the
//! caller's reporter (the CLI prints them), never panicked on.

mod api;
mod assets;
mod harness;
mod matrix;
mod run;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use api::router;
pub use run::RunCache;

/// What `nlah view` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An `ablate` output folder (`matrix.json`).
    Matrix,
    /// One or two run workspaces (`run.json` or `history/events.jsonl`).
    Runs,
    /// A harness folder (`SKILL.md`).
    Harness,
}

/// The folder (or folders) a server shows.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    /// The matrix's output folder or the harness folder; the first run for runs.
    pub root: PathBuf,
    /// For runs: every run given, addressed in the API by position (`0`, `1`).
    pub runs: Vec<PathBuf>,
}

/// Why a request (or the server) could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("{0}: no such file or folder")]
    Missing(PathBuf),
    #[error(
        "{0}: not an nlah folder (expected an ablation output folder with matrix.json, a run workspace with run.json or history/events.jsonl, or a harness folder with SKILL.md)"
    )]
    NotNlah(PathBuf),
    #[error("{0}")]
    Mixed(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Inspect(#[from] crate::inspect::InspectError),
    #[error(transparent)]
    Ablation(#[from] crate::ablation::error::AblationError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error(transparent)]
    Versions(#[from] crate::versions::VersionsError),
    #[error(transparent)]
    Harness(#[from] crate::harness::HarnessError),
    #[error("{path}: git: {source}")]
    Git {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ViewError {
    fn status(&self) -> StatusCode {
        match self {
            ViewError::NotFound(_) | ViewError::Missing(_) => StatusCode::NOT_FOUND,
            ViewError::BadRequest(_) => StatusCode::BAD_REQUEST,
            // What is on disk cannot be read as a record: the request was fine, the data is not.
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl IntoResponse for ViewError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), axum::Json(body)).into_response()
    }
}

/// Where problems go: the CLI prints them on the terminal.
pub type Reporter = Arc<dyn Fn(String) + Send + Sync>;

fn is_run(p: &Path) -> bool {
    p.join("run.json").is_file() || p.join("history/events.jsonl").is_file()
}

/// What kind of folder each path is. Several paths must all be runs.
pub fn detect(paths: &[PathBuf]) -> Result<Target, ViewError> {
    let Some(first) = paths.first() else {
        return Err(ViewError::BadRequest("no path given".into()));
    };
    for p in paths {
        if !p.exists() {
            return Err(ViewError::Missing(p.clone()));
        }
    }
    if paths.len() > 1 {
        if let Some(p) = paths.iter().find(|p| !is_run(p)) {
            return Err(ViewError::Mixed(format!(
                "{}: not a run workspace (several paths are shown side by side only when all are runs)",
                p.display()
            )));
        }
        return Ok(Target {
            kind: Kind::Runs,
            root: first.clone(),
            runs: paths.to_vec(),
        });
    }
    let kind = if first.join(crate::ablation::matrix::MATRIX_FILE).is_file() {
        Kind::Matrix
    } else if is_run(first) {
        Kind::Runs
    } else if first.join("SKILL.md").is_file() {
        Kind::Harness
    } else {
        return Err(ViewError::NotNlah(first.clone()));
    };
    Ok(Target {
        kind,
        root: first.clone(),
        runs: if kind == Kind::Runs {
            vec![first.clone()]
        } else {
            Vec::new()
        },
    })
}

/// What is wrong with the target as a whole, said once when the server starts (the page says it
/// again where it shows): a corrupt or missing run.json, an unreadable matrix or harness.
pub fn problems(t: &Target) -> Vec<String> {
    let mut out = Vec::new();
    match t.kind {
        Kind::Runs => {
            for p in &t.runs {
                match crate::inspect::RunDir::open(p) {
                    Err(e) => out.push(e.to_string()),
                    Ok(r) if r.record.is_none() => out.push(format!(
                        "{}: no run.json yet: the run is still going, or it was stopped before it finished",
                        p.display()
                    )),
                    Ok(_) => {}
                }
            }
        }
        Kind::Matrix => {
            if let Err(e) = crate::ablation::index::summaries(&t.root) {
                out.push(e.to_string());
            }
        }
        Kind::Harness => {
            if let Err(e) = crate::harness::load(&t.root) {
                out.push(e.to_string());
            }
        }
    }
    out
}

/// Binds 127.0.0.1 on `port` (0: a free one).
pub async fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// Serves `target` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    target: Target,
    report: Reporter,
) -> std::io::Result<()> {
    axum::serve(listener, router(target, report)).await
}

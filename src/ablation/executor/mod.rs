//! Running cells: one cell exactly as `nlah run` runs it ([`run_cell`], the one code path of
//! every executor and of `nlah run-cell`), a local pool ([`local`]) and Slurm job arrays
//! ([`slurm`]).

pub mod choice;
pub mod local;
pub mod slurm;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::cassettes::Cassettes;
use super::error::AblationError;
use super::index::Summary;
use super::matrix::{MatrixFile, compose_variant, module_names, toggles};
use super::resume::{self, CellState};
use super::{Cell, Matrix, Variant};
use crate::agent::shared_budget::SharedBudget;
use crate::charter::Charter;
use crate::engine::{self, Built, EventSink, HttpBackends, RunOptions, RunSettings};
use crate::model::{ChatBackend, ModelSpec};
use crate::record::EventKind;
use crate::record::Usage;
use crate::record::{RunOutcome, RunRecord};
use crate::task;

/// What executors tell the CLI while cells run.
#[derive(Debug, Clone)]
pub enum Event {
    /// A cell began a new attempt; a folder left by an earlier attempt was moved aside.
    Started {
        cell: Cell,
        moved_aside: Option<PathBuf>,
    },
    /// A model call of a running cell (its usage so far grows by this).
    ModelCall { index: usize, usage: Usage },
    /// A cell wrote its final run.json: a result, or `error` for an infrastructure failure.
    Finished { cell: Cell, record: Arc<RunRecord> },
    /// A cell stopped without a final run.json (its workspace could not be made, a job died).
    Failed { cell: Cell, error: String },
    /// `--max-cost` is spent, or cannot cover another cell: no further cell is scheduled.
    /// `spent` counts every settled model call, running cells' included.
    CostCeiling {
        spent: f64,
        limit: f64,
        unscheduled: usize,
    },
}

/// Receives executor events; called from any thread, so it must be quick.
pub type Sink = Arc<dyn Fn(&Event) + Send + Sync>;

/// A sink that drops everything.
pub fn quiet() -> Sink {
    Arc::new(|_: &Event| {})
}

/// What became of one cell.
#[derive(Debug, Clone)]
pub enum CellRun {
    /// It had a result already; nothing ran.
    Skipped(RunOutcome),
    Ran(Arc<RunRecord>),
}

/// Everything needed to run the cells of one matrix.
pub struct Runner {
    pub out: PathBuf,
    pub matrix: Matrix,
    pub settings: RunSettings,
    pub charter: Charter,
    /// All modules of the harness: those a variant does not turn on are turned off.
    pub modules: Vec<String>,
    /// A chat backend of the embedding program's own (benchmarks), instead of HTTP.
    pub chat_backend: Option<Arc<dyn ChatBackend>>,
    /// Each cell's model calls recorded to, or answered from, a cassette of its own.
    pub cassettes: Option<Cassettes>,
    /// Each variant's harness, built by its first cell and shared by the rest.
    built: Mutex<HashMap<String, Built>>,
    /// One HTTP client per model for all cells (they run on one runtime).
    http: Arc<HttpBackends>,
    /// The matrix's `--max-cost`, counted live by every cell's meter (local pool only).
    budget: Mutex<Option<Arc<SharedBudget>>>,
}

impl Runner {
    pub fn new(out: PathBuf, file: MatrixFile, charter: Charter) -> Result<Runner, AblationError> {
        let modules = module_names(&file.matrix.harness)?;
        Ok(Runner {
            out,
            matrix: file.matrix,
            settings: file.settings,
            charter,
            modules,
            chat_backend: None,
            cassettes: None,
            built: Mutex::new(HashMap::new()),
            http: Arc::default(),
            budget: Mutex::new(None),
        })
    }

    /// Holds the cells started from now on to `budget` (none: no shared budget).
    pub fn share_budget(&self, budget: Option<Arc<SharedBudget>>) {
        *self.budget.lock().unwrap_or_else(|p| p.into_inner()) = budget;
    }

    fn variant(&self, cell: &Cell) -> Result<&Variant, AblationError> {
        self.matrix
            .variants
            .iter()
            .find(|v| v.name == cell.variant)
            .ok_or_else(|| AblationError::BadFile {
                path: self.out.join(super::matrix::MATRIX_FILE),
                message: format!(
                    "cell {} names variant `{}`, which the matrix does not define",
                    cell.index, cell.variant
                ),
            })
    }

    /// Checks that the cell's harness variant and task are still what the matrix was made
    /// from: a cell run elsewhere or later must not record a result under a stale identity.
    pub fn verify(&self, cell: &Cell) -> Result<(), AblationError> {
        self.verify_variant(self.variant(cell)?)?;
        verify_task(cell)
    }

    /// [`Runner::verify`] for every variant and task of the matrix, each once: for a matrix
    /// read back from its file rather than built from the current folders.
    pub fn verify_all(&self) -> Result<(), AblationError> {
        for v in &self.matrix.variants {
            self.verify_variant(v)?;
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.matrix.cells {
            if seen.insert(&c.task_path) {
                verify_task(c)?;
            }
        }
        Ok(())
    }

    fn verify_variant(&self, v: &Variant) -> Result<(), AblationError> {
        let (hash, _, errors) = compose_variant(&self.matrix.harness, &v.modules, &self.modules)?;
        if !errors.is_empty() {
            return Err(AblationError::Compose(vec![(v.name.clone(), errors)]));
        }
        if hash != v.version {
            return Err(AblationError::HarnessChanged {
                variant: v.name.clone(),
                expected: v.version.clone(),
                found: hash,
            });
        }
        Ok(())
    }

    /// The harness of variant `v`, built once: it must still be the version the matrix
    /// records.
    fn built(&self, v: &Variant, cell: &Cell) -> Result<Built, AblationError> {
        let mut cache = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = cache.get(&v.name) {
            return Ok(b.clone());
        }
        let b = Built::new(&self.matrix.harness, &toggles(&v.modules, &self.modules)).map_err(
            |source| AblationError::Engine {
                cell: cell.id.clone(),
                source,
            },
        )?;
        if b.composed.hash != v.version {
            return Err(AblationError::HarnessChanged {
                variant: v.name.clone(),
                expected: v.version.clone(),
                found: b.composed.hash.clone(),
            });
        }
        cache.insert(v.name.clone(), b.clone());
        Ok(b)
    }

    /// The `nlah run` options of a cell.
    pub fn options(&self, cell: &Cell, sink: &Sink) -> Result<RunOptions, AblationError> {
        let v = self.variant(cell)?;
        let model: ModelSpec = cell.model.parse()?;
        let mut o = RunOptions::new(
            self.matrix.harness.clone(),
            cell.task_path.clone(),
            model,
            self.charter.clone(),
        );
        o.toggles = toggles(&v.modules, &self.modules);
        o.built = Some(self.built(v, cell)?);
        o.http = Some(self.http.clone());
        o.seed = cell.seed;
        o.workspace = Some(resume::cell_dir(&self.out, &cell.id));
        o.settings = self.settings.clone();
        o.chat_backend = self.chat_backend.clone();
        if let Some(c) = &self.cassettes {
            c.apply(cell, &mut o)?;
        }
        o.shared_budget = self
            .budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|b| b.cell(cell.index));
        let sink = sink.clone();
        let index = cell.index;
        let observer: EventSink = Arc::new(move |e: &crate::record::Event| {
            if let EventKind::ModelCall { usage, .. } = &e.kind {
                sink(&Event::ModelCall {
                    index,
                    usage: *usage,
                });
            }
        });
        o.observer = Some(observer);
        Ok(o)
    }
}

fn verify_task(cell: &Cell) -> Result<(), AblationError> {
    let found = task::load(&cell.task_path)?.content_hash()?;
    if found != cell.task_hash {
        return Err(AblationError::TaskChanged {
            task: cell.task.clone(),
            expected: cell.task_hash.clone(),
            found,
        });
    }
    Ok(())
}

/// Runs one cell into `OUT/cells/<id>`, unless it has a result already. A folder left by an
/// unfinished or failed attempt is moved aside first. Emits `Started` and then `Finished` or
/// `Failed`.
pub async fn run_cell(runner: &Runner, cell: &Cell, sink: &Sink) -> Result<CellRun, AblationError> {
    if let CellState::Finished(o) = resume::state(&runner.out, &cell.id) {
        return Ok(CellRun::Skipped(o));
    }
    let fail = |e: AblationError| {
        sink(&Event::Failed {
            cell: cell.clone(),
            error: e.to_string(),
        });
        e
    };
    let moved_aside = resume::clear(&runner.out, &cell.id).map_err(fail)?;
    sink(&Event::Started {
        cell: cell.clone(),
        moved_aside,
    });
    let opts = runner.options(cell, sink).map_err(fail)?;
    let report = engine::run(opts)
        .await
        .map_err(|source| AblationError::Engine {
            cell: cell.id.clone(),
            source,
        })
        .map_err(fail)?;
    let record = Arc::new(report.record);
    sink(&Event::Finished {
        cell: cell.clone(),
        record: record.clone(),
    });
    Ok(CellRun::Ran(record))
}

/// Running totals of a matrix, for progress displays and the closing summary.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub total: usize,
    /// Cells with a result before this invocation started.
    pub earlier: usize,
    pub passed: usize,
    pub failed: usize,
    pub unverified: usize,
    /// Cells that ended in an infrastructure error (or died without a result).
    pub errors: usize,
    /// Cells the matrix's `--max-cost` stopped while they ran (outcome `budget`).
    pub budget: usize,
    pub running: usize,
    pub usage: Usage,
    pub tool_calls: u64,
    /// Cost of finished cells (the figure `--max-cost` compares).
    pub cost: f64,
}

impl Tally {
    pub fn done(&self) -> usize {
        self.passed + self.failed + self.unverified
    }

    pub fn remaining(&self) -> usize {
        self.total
            .saturating_sub(self.done() + self.errors + self.budget + self.running)
    }

    /// Counts a cell's run.json summary.
    pub fn add(&mut self, s: &Summary) {
        match s.outcome {
            RunOutcome::Passed => self.passed += 1,
            RunOutcome::Failed => self.failed += 1,
            RunOutcome::Unverified => self.unverified += 1,
            RunOutcome::Error | RunOutcome::Running => self.errors += 1,
            RunOutcome::Budget => self.budget += 1,
        }
        self.usage.input_tokens += s.input_tokens;
        self.usage.output_tokens += s.output_tokens;
        self.usage.cached_input_tokens += s.cached_input_tokens;
        self.usage.calls += s.llm_calls;
        self.usage.cost_usd += s.cost_usd;
        self.tool_calls += s.tool_calls;
        self.cost += s.cost_usd;
    }
}

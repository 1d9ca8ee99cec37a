//! The run's record as data: the events of `history/events.jsonl`, the run record of
//! `run.json`, and usage. Pure serde types, no I/O (as codex-rs keeps its `protocol` apart from
//! `core`): the engine and the workspace write them; inspect, diff, log, ablation and report
//! read them.

mod event;
mod run;
mod usage;

pub use event::{ChildStatus, Event, EventKind};
pub use run::{
    EpisodeEnd, EpisodeRecord, HarnessRef, InterfaceMetrics, Metrics, RequestBounds, RunOutcome,
    RunRecord, SCHEMA, StageMetrics, TaskRef, VerifierRecord,
};
pub use usage::Usage;

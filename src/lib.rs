//! nlah: a runtime for natural-language agent harnesses.
//!
//! The library parses, validates and composes harnesses written as Markdown; the `nlah` binary
//! (`src/main.rs`, `src/cli/`) renders what the library reports. Nothing here prints.

pub mod ablation;
pub mod agent;
pub mod atomic;
pub mod charter;
pub mod check;
pub mod diag;
pub mod diagnose;
pub mod engine;
pub mod env;
pub mod evolve;
pub mod harness;
pub mod inspect;
pub mod interface;
pub mod migrate;
pub mod model;
pub mod profile;
pub mod record;
pub mod report;
pub mod sandbox;
pub mod synthesize;
pub mod task;
pub mod versions;
pub mod view;
pub mod workspace;

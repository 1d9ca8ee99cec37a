//! The integration tests, in one binary (one link of the whole dependency tree instead of one
//! per file): a module per area, and `support` for what they share.

mod support;

mod ablate;
mod ablate_cost;
mod big_files;
mod briefs;
mod bundled;
mod cli_check;
mod diagnose;
mod diff;
mod diff_runs;
mod e2e_local_llm;
mod environments;
mod eval;
mod evolve;
mod experiments;
mod inspect;
mod layers;
mod log;
mod mcp;
mod migrate;
mod model_anthropic;
mod model_openai;
mod model_retry_replay;
mod never_panics;
mod newcomer;
mod quickstart;
mod record_safety;
mod report;
mod report_html;
mod report_transfer;
mod run_backends;
mod run_bad_input;
mod run_engine;
mod run_modules;
mod sandbox_tools;
mod slurm_fake;
mod slurm_real;
mod small_models;
mod synthesize;
mod tasks;
mod textarena;
mod view;
mod view_browser;
mod watch;

//! The run settings: how a run behaves beyond what it runs (harness, task, model, seed). One
//! type for every command that runs cells: flattened into `nlah run` and `nlah ablate` as flags,
//! and stored as it is in an ablation's `matrix.json`, so that `nlah run-cell` on another
//! machine runs a cell exactly as the local executor does.
//!
//! Each default is declared once, in [`defaults`]: clap shows and applies it, `Default` and
//! serde (`#[serde(default)]`, for files written before a field existed) take it from there.

use std::path::PathBuf;

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::{Deserialize, Serialize};

use crate::model::ToolChoice;
use crate::model::retry::RetryPolicy;

/// The one declaration of each default.
pub mod defaults {
    /// Let the model decide whether to call a tool.
    pub const TOOL_CHOICE: &str = "auto";
    pub const MAX_STEPS: u32 = 40;
    pub const RETRIES: u32 = 5;
    /// Completion tokens per call: enough for a whole file in one `write` (about 12 KiB of code)
    /// and a reasoning model's thinking, and a bound on a runaway generation (on 2 CPU cores a
    /// 0.5B model writes about 30 tokens/s: 4096 tokens are about two minutes).
    pub const MAX_TOKENS: u32 = 4096;
}

/// The `nlah run` flags that every cell of a matrix shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct RunSettings {
    // In matrix.json `None` is the charter built into the binary: `nlah ablate` stores
    // ./runtime-charter, when it is there, as an absolute path (Slurm jobs may start elsewhere).
    // A second doc paragraph would make clap print the long help layout.
    /// The runtime charter folder (default: ./runtime-charter, else the built-in one).
    #[arg(long)]
    pub charter: Option<PathBuf>,
    /// An environment variable a command: backend may see (its own API key); repeatable.
    #[arg(long = "pass-env", value_name = "VAR")]
    pub pass_env: Vec<String>,
    /// `auto` (default), `none`, `any` (some tool every step, the finish tool included), or a
    /// tool name to force at the first step, then `any` (small local models need forcing).
    #[arg(long, default_value = defaults::TOOL_CHOICE)]
    pub tool_choice: String,
    /// Model steps per child at most.
    #[arg(long, default_value_t = defaults::MAX_STEPS)]
    pub max_steps: u32,
    /// Completion tokens per model call at most; 0 sends no limit.
    // A matrix.json written when the field was optional has `null` there: no limit, as then.
    #[arg(long, default_value_t = defaults::MAX_TOKENS)]
    #[serde(deserialize_with = "null_is_no_limit")]
    pub max_tokens: u32,
    /// The model's context window in tokens: a request that cannot fit is not sent (the run
    /// fails as a configuration failure). Default: what the server says, else unchecked.
    #[arg(long, value_name = "TOKENS")]
    pub context_window: Option<u64>,
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Attempts per model call on 429, 5xx, timeouts and malformed answers.
    #[arg(long, default_value_t = defaults::RETRIES)]
    pub retries: u32,
    /// End an environment's episode at the first action it refuses (`end: invalid`).
    #[arg(long)]
    pub stop_at_invalid: bool,
    /// An environment's actions at most (overrides the task's `[env] max_steps`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_actions: Option<u64>,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            charter: None,
            pass_env: Vec::new(),
            tool_choice: defaults::TOOL_CHOICE.into(),
            max_steps: defaults::MAX_STEPS,
            max_tokens: defaults::MAX_TOKENS,
            context_window: None,
            temperature: None,
            retries: defaults::RETRIES,
            stop_at_invalid: false,
            max_actions: None,
        }
    }
}

fn null_is_no_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(Option::<u32>::deserialize(d)?.unwrap_or(0))
}

impl RunSettings {
    /// `--tool-choice` as the model requests take it.
    pub fn tool_choice(&self) -> ToolChoice {
        match self.tool_choice.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "any" => ToolChoice::Any,
            tool => ToolChoice::Function(tool.to_string()),
        }
    }

    /// `--max-tokens` as requests take it: 0 is no limit.
    pub fn max_tokens(&self) -> Option<u32> {
        (self.max_tokens > 0).then_some(self.max_tokens)
    }

    /// The retry policy of model calls: `--retries` attempts (at least one), default backoff.
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.retries.max(1),
            ..RetryPolicy::default()
        }
    }

    /// Takes from `flags` the settings given on the command line (`matches` says which),
    /// keeping the rest of `self`: a resumed matrix keeps what it was started with unless told
    /// otherwise, even where that differs from a default.
    pub fn overlay(&mut self, flags: &RunSettings, matches: &ArgMatches) {
        let given = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        // Destructured so that a new field cannot be forgotten here.
        let RunSettings {
            charter,
            pass_env,
            tool_choice,
            max_steps,
            max_tokens,
            context_window,
            temperature,
            retries,
            stop_at_invalid,
            max_actions,
        } = flags;
        if given("charter") {
            self.charter.clone_from(charter);
        }
        if given("pass_env") {
            self.pass_env.clone_from(pass_env);
        }
        if given("tool_choice") {
            self.tool_choice.clone_from(tool_choice);
        }
        if given("max_steps") {
            self.max_steps = *max_steps;
        }
        if given("max_tokens") {
            self.max_tokens = *max_tokens;
        }
        if given("context_window") {
            self.context_window = *context_window;
        }
        if given("temperature") {
            self.temperature = *temperature;
        }
        if given("retries") {
            self.retries = *retries;
        }
        if given("stop_at_invalid") {
            self.stop_at_invalid = *stop_at_invalid;
        }
        if given("max_actions") {
            self.max_actions = *max_actions;
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        settings: RunSettings,
    }

    fn parse(args: &[&str]) -> (RunSettings, ArgMatches) {
        let m = Cmd::command()
            .try_get_matches_from(std::iter::once("nlah").chain(args.iter().copied()))
            .unwrap();
        (Cmd::from_arg_matches(&m).unwrap().settings, m)
    }

    #[test]
    fn clap_serde_and_default_agree_on_every_default() {
        let (flags, _) = parse(&[]);
        assert_eq!(flags, RunSettings::default());
        let from_empty: RunSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(from_empty, RunSettings::default());
        assert_eq!(
            RunSettings::default().max_tokens(),
            Some(defaults::MAX_TOKENS)
        );
        // Stored before there was a default: no limit, as then.
        let old: RunSettings = serde_json::from_str(r#"{"max_tokens": null}"#).unwrap();
        assert_eq!(old.max_tokens(), None);
        assert_eq!(RunSettings::default().tool_choice(), ToolChoice::Auto);
        assert_eq!(RunSettings::default().retry(), RetryPolicy::default());
    }

    #[test]
    fn overlay_takes_only_what_the_command_line_gave() {
        let stored = RunSettings {
            max_steps: 7,
            tool_choice: "write".into(),
            retries: 2,
            pass_env: vec!["KEY".into()],
            temperature: Some(0.5),
            ..RunSettings::default()
        };
        let (flags, m) = parse(&[]);
        let mut s = stored.clone();
        s.overlay(&flags, &m);
        assert_eq!(s, stored, "defaults do not override stored settings");

        let (flags, m) = parse(&[
            "--max-steps",
            "40",
            "--tool-choice",
            "none",
            "--max-tokens",
            "9",
        ]);
        let mut s = stored.clone();
        s.overlay(&flags, &m);
        assert_eq!(
            s,
            RunSettings {
                max_steps: 40,
                tool_choice: "none".into(),
                max_tokens: 9,
                ..stored
            }
        );
    }

    #[test]
    fn tool_choice_names_a_tool_to_force() {
        let s = RunSettings {
            tool_choice: "shell".into(),
            retries: 0,
            ..RunSettings::default()
        };
        assert_eq!(s.tool_choice(), ToolChoice::Function("shell".into()));
        assert_eq!(s.retry().max_attempts, 1);
    }
}

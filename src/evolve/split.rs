//! The three-way split of a task set: `search` (whose failures the proposer sees), `validation`
//! (which only gates acceptance) and `test` (run once, at the end). A task's own `split` in
//! `task.toml` wins; the rest are ordered by a seeded hash of their ids and dealt out by fixed
//! shares, so the same seed and tasks always give the same split.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::EvolveError;
use crate::harness::compose::sha256_hex;
use crate::task::Task;

/// Each split needs at least this many tasks. Over few tasks the paired interval is wide (its
/// bootstrap redraws seeds too), so small splits rarely accept anything; an empty one cannot
/// compare at all.
pub const MIN_TASKS: usize = 1;

/// The shares of the tasks without a declared split that go to validation and to test; search
/// gets the rest.
pub const VALIDATION_SHARE: f64 = 0.25;
pub const TEST_SHARE: f64 = 0.25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Search,
    Validation,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Search, Split::Validation, Split::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Search => "search",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    /// A `task.toml` `split` value: the names of this split and the usual synonyms.
    pub fn parse(s: &str) -> Option<Split> {
        match s.trim().to_ascii_lowercase().as_str() {
            "search" | "train" | "held-in" => Some(Split::Search),
            "validation" | "valid" | "val" | "dev" | "held-out" => Some(Split::Validation),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

/// The split as recorded in the evolution's state: which task went where, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub seed: u64,
    /// The rule in words, for the record and the report.
    pub rule: String,
    pub search: Vec<String>,
    pub validation: Vec<String>,
    pub test: Vec<String>,
    /// Tasks whose `task.toml` declared their split.
    pub declared: Vec<String>,
}

impl Assignment {
    pub fn tasks(&self, s: Split) -> &[String] {
        match s {
            Split::Search => &self.search,
            Split::Validation => &self.validation,
            Split::Test => &self.test,
        }
    }

    pub fn of(&self, task: &str) -> Option<Split> {
        Split::ALL
            .into_iter()
            .find(|s| self.tasks(*s).iter().any(|t| t == task))
    }
}

/// Splits `tasks` with `seed`. A declared split that names none of the three, or a split left
/// with fewer than [`MIN_TASKS`] tasks, is an error that says how to fix it.
pub fn assign(tasks: &[Task], seed: u64) -> Result<Assignment, EvolveError> {
    let mut by: BTreeMap<Split, Vec<String>> = BTreeMap::new();
    let mut declared = Vec::new();
    let mut free: Vec<(String, String)> = Vec::new();
    for t in tasks {
        match t.config.split.as_deref() {
            Some(s) => {
                let split = Split::parse(s).ok_or_else(|| EvolveError::Split(format!(
                    "{}: task.toml says split = \"{s}\"; nlah evolve knows search (train), validation (dev) and test",
                    t.root.display()
                )))?;
                by.entry(split).or_default().push(t.id.clone());
                declared.push(t.id.clone());
            }
            None => free.push((
                sha256_hex(format!("{seed}\n{}", t.id).as_bytes()),
                t.id.clone(),
            )),
        }
    }
    free.sort();
    let n = free.len();
    let n_test = (n as f64 * TEST_SHARE).round() as usize;
    let n_val = (n as f64 * VALIDATION_SHARE).round() as usize;
    for (i, (_, id)) in free.into_iter().enumerate() {
        let s = if i < n_test {
            Split::Test
        } else if i < n_test + n_val {
            Split::Validation
        } else {
            Split::Search
        };
        by.entry(s).or_default().push(id);
    }
    let mut take = |s: Split| {
        let mut v = by.remove(&s).unwrap_or_default();
        v.sort();
        v
    };
    let a = Assignment {
        seed,
        rule: format!(
            "task.toml `split` wins; the other tasks ordered by SHA-256 of \"{seed}\\n<task id>\", the first {:.0}% to test, the next {:.0}% to validation, the rest to search",
            TEST_SHARE * 100.0,
            VALIDATION_SHARE * 100.0
        ),
        search: take(Split::Search),
        validation: take(Split::Validation),
        test: take(Split::Test),
        declared,
    };
    for s in Split::ALL {
        let k = a.tasks(s).len();
        if k < MIN_TASKS {
            return Err(EvolveError::Split(format!(
                "the {} split has {k} task(s) of {} (search {}, validation {}, test {}); each split needs at least {MIN_TASKS} to compare harnesses paired per task: add tasks, or set `split` in their task.toml",
                s.as_str(),
                tasks.len(),
                a.search.len(),
                a.validation.len(),
                a.test.len()
            )));
        }
    }
    Ok(a)
}

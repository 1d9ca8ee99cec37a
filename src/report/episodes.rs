//! The episodes table, for matrices whose tasks run in an environment: per task set · model,
//! variant and task, how many of the actions the model proposed were legal at the first try and
//! in the end, what the code verifier's re-prompts and fallbacks cost per episode, the reward,
//! and the episodes won. Rates pool the actions (or episodes) of all seeds and carry a Wilson 95%
//! interval: the final legal rate is 100% by construction once a verifier gates every action,
//! so the first-try rate, the re-prompts and the reward are the evidence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::wilson_pct;
use super::task_set_of;
use crate::ablation::Cell;
use crate::ablation::index::Summary;
use crate::record::RunOutcome;

/// One row: a variant over all tasks of its group (`task` = None), or over one task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRow {
    pub task_set: String,
    pub model: String,
    pub variant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Finished episodes (passed or failed runs).
    pub episodes: u64,
    pub actions: u64,
    pub legal_first_try: u64,
    pub legal_final: u64,
    pub reprompts: u64,
    pub fallbacks: u64,
    /// Episodes whose environment reported a reward, and the rewards' sum.
    pub rewarded: u64,
    pub reward_sum: f64,
    /// Episodes that passed (the task's verifier: a reward at least its threshold).
    pub won: u64,
}

impl EpisodeRow {
    fn add(&mut self, s: &Summary) {
        self.episodes += 1;
        if let Some(i) = s.interface {
            self.actions += i.actions;
            self.legal_first_try += i.legal_first_try;
            self.legal_final += i.legal_final;
            self.reprompts += i.reprompts;
            self.fallbacks += i.fallbacks;
        }
        if let Some(r) = s.reward {
            self.rewarded += 1;
            self.reward_sum += r;
        }
        self.won += u64::from(s.outcome == RunOutcome::Passed);
    }

    pub fn legal_first_try_pct(&self) -> Option<(f64, (f64, f64))> {
        rate(self.legal_first_try, self.actions)
    }

    pub fn legal_final_pct(&self) -> Option<(f64, (f64, f64))> {
        rate(self.legal_final, self.actions)
    }

    pub fn won_pct(&self) -> Option<(f64, (f64, f64))> {
        rate(self.won, self.episodes)
    }

    pub fn per_episode(&self, n: u64) -> Option<f64> {
        (self.episodes > 0).then(|| n as f64 / self.episodes as f64)
    }

    pub fn mean_reward(&self) -> Option<f64> {
        (self.rewarded > 0).then(|| self.reward_sum / self.rewarded as f64)
    }
}

fn rate(k: u64, n: u64) -> Option<(f64, (f64, f64))> {
    Some((k as f64 / n as f64 * 100.0, wilson_pct(k, n)?))
}

/// The rows of a matrix's finished episodes, variants in `variants` order, each variant's row
/// over all its tasks first and then one per task. Empty when no task ran in an environment.
pub fn rows(cells: &[(&Cell, Option<Summary>)], variants: &[String]) -> Vec<EpisodeRow> {
    type Key = (String, String, usize);
    let order = |v: &str| variants.iter().position(|n| n == v).unwrap_or(usize::MAX);
    let mut all: BTreeMap<Key, EpisodeRow> = BTreeMap::new();
    let mut by_task: BTreeMap<(Key, String), EpisodeRow> = BTreeMap::new();
    for (cell, s) in cells {
        let Some(s) = s else { continue };
        let finished = matches!(s.outcome, RunOutcome::Passed | RunOutcome::Failed);
        if !finished || (s.reward.is_none() && s.interface.is_none()) {
            continue;
        }
        let key = (task_set_of(cell), cell.model.clone(), order(&cell.variant));
        let blank = || EpisodeRow {
            task_set: key.0.clone(),
            model: key.1.clone(),
            variant: cell.variant.clone(),
            ..EpisodeRow::default()
        };
        all.entry(key.clone()).or_insert_with(blank).add(s);
        by_task
            .entry((key.clone(), cell.task.clone()))
            .or_insert_with(|| EpisodeRow {
                task: Some(cell.task.clone()),
                ..blank()
            })
            .add(s);
    }
    let mut out = Vec::new();
    for (key, row) in all {
        out.push(row);
        out.extend(
            by_task
                .range((key.clone(), String::new())..)
                .take_while(|((k, _), _)| *k == key)
                .map(|(_, r)| r.clone()),
        );
    }
    out
}

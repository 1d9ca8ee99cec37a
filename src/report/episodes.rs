//! The episodes table, for matrices whose tasks run in an environment: per task set · model,
//! variant and task, how many of the actions the model proposed were legal at the first try and
//! in the end, what the code verifier's re-prompts and fallbacks cost per episode, the reward,
//! and the episodes won. Rates pool the actions (or episodes) of all seeds and carry a Wilson 95%
//! interval; re-prompts, fallbacks and the reward are means over episodes with a t 95% interval.
//! The final legal rate is 100% by construction once a verifier gates every action, so the
//! first-try rate, the re-prompts and the reward are the evidence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::{t_half_width, wilson_pct};
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
    /// Half-widths of the 95% t-intervals over episodes of the re-prompts and fallbacks per
    /// episode and of the reward (none with fewer than two episodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprompts_ci: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallbacks_ci: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_ci: Option<f64>,
    /// Each episode's figures, for the intervals.
    #[serde(skip)]
    samples: Samples,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Samples {
    reprompts: Vec<f64>,
    fallbacks: Vec<f64>,
    rewards: Vec<f64>,
}

impl EpisodeRow {
    fn add(&mut self, s: &Summary) {
        self.episodes += 1;
        let i = s.interface.unwrap_or_default();
        self.actions += i.actions;
        self.legal_first_try += i.legal_first_try;
        self.legal_final += i.legal_final;
        self.reprompts += i.reprompts;
        self.fallbacks += i.fallbacks;
        self.samples.reprompts.push(i.reprompts as f64);
        self.samples.fallbacks.push(i.fallbacks as f64);
        if let Some(r) = s.reward {
            self.rewarded += 1;
            self.reward_sum += r;
            self.samples.rewards.push(r);
        }
        self.won += u64::from(s.outcome == RunOutcome::Passed);
    }

    /// Sets the intervals once every episode is added.
    fn close(mut self) -> Self {
        self.reprompts_ci = t_half_width(&self.samples.reprompts);
        self.fallbacks_ci = t_half_width(&self.samples.fallbacks);
        self.reward_ci = t_half_width(&self.samples.rewards);
        self
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
        out.push(row.close());
        out.extend(
            by_task
                .range((key.clone(), String::new())..)
                .take_while(|((k, _), _)| *k == key)
                .map(|(_, r)| r.clone().close()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ablation::index::InterfaceSummary;

    fn cell(task: &str, seed: u64) -> Cell {
        Cell {
            id: format!("{task}-{seed}"),
            index: 0,
            variant: "v".into(),
            task: task.into(),
            task_path: format!("/tasks/{task}").into(),
            task_set: "tasks".into(),
            task_hash: "h".into(),
            model: "m".into(),
            seed,
        }
    }

    fn episode(reprompts: u64, reward: Option<f64>) -> Summary {
        Summary {
            outcome: RunOutcome::Failed,
            input_tokens: 0,
            output_tokens: 0,
            cached_input_tokens: 0,
            tool_calls: 0,
            llm_calls: 0,
            wall_ms: 0,
            cost_usd: 0.0,
            parent_input_tokens: 0,
            parent_output_tokens: 0,
            parent_tool_calls: 0,
            parent_llm_calls: 0,
            children_input_tokens: 0,
            children_output_tokens: 0,
            children_tool_calls: 0,
            children_llm_calls: 0,
            interface: Some(InterfaceSummary {
                actions: 4,
                reprompts,
                ..InterfaceSummary::default()
            }),
            reward,
        }
    }

    #[test]
    fn means_per_episode_carry_a_t_interval_over_episodes() {
        let cells = [cell("a", 0), cell("a", 1), cell("b", 0)];
        let summaries = [
            episode(1, Some(0.0)),
            episode(3, Some(1.0)),
            episode(2, None),
        ];
        let pairs: Vec<_> = cells.iter().zip(summaries.map(Some)).collect();
        let rows = rows(&pairs, &["v".to_string()]);
        let all = &rows[0];
        assert_eq!((all.task.as_deref(), all.episodes), (None, 3));
        // Re-prompts 1, 3, 2: mean 2, sd 1, t(0.975, 2) = 4.303 → ± 4.303 / √3.
        assert_eq!(all.per_episode(all.reprompts), Some(2.0));
        let h = all.reprompts_ci.unwrap();
        assert!((h - 4.302_653 / 3f64.sqrt()).abs() < 1e-5, "{h}");
        // Rewards 0 and 1 (the third episode reported none): ± 12.706 · 0.7071 / √2.
        assert!((all.reward_ci.unwrap() - 6.353).abs() < 1e-3, "{all:?}");
        // One episode has no interval.
        let b = rows
            .iter()
            .find(|r| r.task.as_deref() == Some("b"))
            .unwrap();
        assert_eq!((b.reprompts_ci, b.reward_ci), (None, None));
    }
}

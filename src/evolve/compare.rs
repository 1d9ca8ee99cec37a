//! The acceptance rule: two harnesses compared paired per task on one split, with a paired
//! bootstrap interval over tasks and an exact sign test, and the candidate's predicted effect
//! checked against what happened.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::report::stats::mcnemar_exact;

/// Bootstrap resamples of the tasks.
pub const RESAMPLES: usize = 10_000;
/// The interval's coverage.
pub const LEVEL: f64 = 0.95;

/// Per task: how many of its seeds passed, out of how many that reached a verdict.
pub type TaskScores = BTreeMap<String, (u32, u32)>;

/// One split, candidate against parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub tasks: usize,
    /// Pass rates (mean over tasks of each task's share of passing seeds).
    pub parent: f64,
    pub candidate: f64,
    /// candidate − parent, the mean of the per-task differences.
    pub delta: f64,
    /// The 95% paired-bootstrap percentile interval of `delta`.
    pub low: f64,
    pub high: f64,
    /// Tasks where the candidate did better, worse, the same.
    pub wins: u32,
    pub losses: u32,
    pub ties: u32,
    /// The exact two-sided sign test's p over wins and losses.
    pub sign_p: f64,
}

impl Comparison {
    /// Better beyond noise: the whole interval above 0.
    pub fn better(&self) -> bool {
        self.low > 0.0
    }

    /// Not worse: no drop in the mean, or an interval that still reaches above 0. A drop the
    /// whole interval agrees on (its upper end at or below 0) is worse.
    pub fn not_worse(&self) -> bool {
        self.delta >= 0.0 || self.high > 0.0
    }

    pub fn sentence(&self) -> String {
        format!(
            "{:.2} → {:.2}, Δ {:+.2} [{:+.2}, {:+.2}], {} better / {} worse / {} same, sign test p = {:.3}",
            self.parent,
            self.candidate,
            self.delta,
            self.low,
            self.high,
            self.wins,
            self.losses,
            self.ties,
            self.sign_p
        )
    }
}

fn rate((passed, n): (u32, u32)) -> f64 {
    if n == 0 {
        0.0
    } else {
        f64::from(passed) / f64::from(n)
    }
}

/// A pass rate as a resample of `n` runs at the observed rate would give it.
fn redraw(rng: &mut StdRng, (passed, n): (u32, u32)) -> f64 {
    if n == 0 || passed == 0 || passed == n {
        return rate((passed, n));
    }
    let p = f64::from(passed) / f64::from(n);
    let hits = (0..n).filter(|_| rng.random::<f64>() < p).count();
    hits as f64 / f64::from(n)
}

/// Compares on the tasks both sides have; `seed` makes the bootstrap reproducible. The
/// bootstrap is two-level: tasks are resampled, and within each drawn task both sides' seeds
/// are redrawn at their observed pass rates, so that seed-to-seed noise widens the interval
/// even over few tasks.
pub fn compare(parent: &TaskScores, candidate: &TaskScores, seed: u64) -> Option<Comparison> {
    let pairs: Vec<((u32, u32), (u32, u32))> = parent
        .iter()
        .filter_map(|(t, p)| candidate.get(t).map(|c| (*p, *c)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len();
    let d: Vec<f64> = pairs.iter().map(|(p, c)| rate(*c) - rate(*p)).collect();
    let delta = d.iter().sum::<f64>() / n as f64;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let mut sum = 0.0;
            for _ in 0..n {
                let (p, c) = pairs[rng.random_range(0..n)];
                sum += redraw(&mut rng, c) - redraw(&mut rng, p);
            }
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - LEVEL) / 2.0;
    let at = |q: f64| means[((q * RESAMPLES as f64) as usize).min(RESAMPLES - 1)];
    let wins = d.iter().filter(|x| **x > 0.0).count() as u32;
    let losses = d.iter().filter(|x| **x < 0.0).count() as u32;
    Some(Comparison {
        tasks: n,
        parent: pairs.iter().map(|p| rate(p.0)).sum::<f64>() / n as f64,
        candidate: pairs.iter().map(|p| rate(p.1)).sum::<f64>() / n as f64,
        delta,
        low: at(tail),
        high: at(1.0 - tail),
        wins,
        losses,
        ties: n as u32 - wins - losses,
        sign_p: mcnemar_exact(u64::from(wins), u64::from(losses)),
    })
}

/// The rule: better on one split and not worse on the other.
pub fn accepts(search: &Comparison, validation: &Comparison) -> bool {
    (search.better() && validation.not_worse()) || (validation.better() && search.not_worse())
}

/// The rule in words, for the report.
pub const RULE: &str = "accepted when better on one split and not worse on the other, paired per task (each task's pass rate over its seeds): better = the 95% paired-bootstrap interval of the mean per-task difference lies above 0 (10,000 resamples of the tasks, each drawn task's seeds redrawn at both sides' observed pass rates, so seed noise counts even over few tasks); worse = the mean dropped and the interval's upper end is at or below 0; the exact sign test over tasks that changed is reported beside it";

/// What the proposer predicted for one split against what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionCheck {
    pub predicted: f64,
    pub observed: f64,
    /// The prediction lies inside the observed interval.
    pub held: bool,
}

pub fn check_prediction(predicted: f64, c: &Comparison) -> PredictionCheck {
    PredictionCheck {
        predicted,
        observed: c.delta,
        held: predicted >= c.low - 1e-9 && predicted <= c.high + 1e-9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(v: &[(&str, u32, u32)]) -> TaskScores {
        v.iter()
            .map(|(t, p, n)| (t.to_string(), (*p, *n)))
            .collect()
    }

    #[test]
    fn a_clear_gain_is_better_and_noise_is_not() {
        let parent = scores(&[("a", 0, 2), ("b", 0, 2), ("c", 0, 2), ("d", 2, 2)]);
        let cand = scores(&[("a", 2, 2), ("b", 2, 2), ("c", 2, 2), ("d", 2, 2)]);
        let c = compare(&parent, &cand, 1).unwrap();
        assert!(c.better(), "{}", c.sentence());
        assert_eq!((c.wins, c.losses, c.ties), (3, 0, 1));
        assert!((c.delta - 0.75).abs() < 1e-9);

        let noisy = scores(&[("a", 1, 2), ("b", 0, 2), ("c", 0, 2), ("d", 1, 2)]);
        let c = compare(&parent, &noisy, 1).unwrap();
        assert!(!c.better(), "{}", c.sentence());
        assert!(c.not_worse());

        // One task: only its seeds tell noise from a gain.
        let one = |p, c| compare(&scores(&[("a", p, 4)]), &scores(&[("a", c, 4)]), 1).unwrap();
        assert!(one(0, 4).better());
        assert!(!one(1, 3).better(), "{}", one(1, 3).sentence());
    }

    #[test]
    fn a_drop_everyone_agrees_on_is_worse() {
        let parent = scores(&[("a", 2, 2), ("b", 2, 2), ("c", 2, 2)]);
        let cand = scores(&[("a", 0, 2), ("b", 0, 2), ("c", 0, 2)]);
        let c = compare(&parent, &cand, 1).unwrap();
        assert!(!c.not_worse());
        assert!(!accepts(&c, &compare(&parent, &parent, 1).unwrap()));
        let p = check_prediction(0.5, &c);
        assert!(!p.held);
    }
}

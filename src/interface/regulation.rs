//! Trajectory regulation: detectors over the actions and observations of one child — identical
//! consecutive calls, the same observation repeated within a window, moving back and forth
//! between at most two states, no new state for a window, the turns running out — and an
//! escalation from soft messages to a hard directive to blocking repeats.

use std::collections::{HashMap, HashSet};

use crate::harness::layers::Regulation;

/// What regulation says after an action.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub rule: &'static str,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Regulator {
    cfg: Option<Regulation>,
    calls: Vec<String>,
    states: Vec<u64>,
    seen: HashSet<u64>,
    /// The step at which the last new state appeared.
    last_new: usize,
    /// Detections since the last new state.
    level: u32,
    blocking: bool,
    warned_turns: bool,
    /// `finish` calls refused while the episode was open.
    finish_refused: u32,
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl Regulator {
    pub fn new(cfg: Regulation) -> Regulator {
        Regulator {
            cfg: Some(cfg),
            ..Regulator::default()
        }
    }

    /// Before an action: once the hard directive went unheeded, a repeat of the last call is
    /// blocked (the message says why).
    pub fn before(&self, call: &str) -> Option<String> {
        (self.blocking && self.calls.last().is_some_and(|c| c == call)).then(|| {
            "this repeats the previous action, which the runtime now blocks: the trajectory is \
             not making progress. Choose a different action."
                .to_string()
        })
    }

    /// Whether a `finish` while the episode is open is refused: the first
    /// `open_episode_refusals` of them are.
    pub fn refuse_finish(&mut self) -> bool {
        let Some(cfg) = &self.cfg else {
            return false;
        };
        if self.finish_refused >= cfg.open_episode_refusals {
            return false;
        }
        self.finish_refused += 1;
        true
    }

    /// After an action and what it showed (`state`: the observation); `turns_left`: model turns
    /// the child has left.
    pub fn after(&mut self, call: &str, state: &str, turns_left: u32) -> Option<Note> {
        let cfg = self.cfg.clone()?;
        let h = hash(state);
        self.calls.push(call.to_string());
        self.states.push(h);
        let step = self.states.len();
        if self.seen.insert(h) {
            self.last_new = step;
            if step > 1 {
                self.level = 0;
                self.blocking = false;
            }
        }
        let detected = self.detect(&cfg, step);
        if let Some((rule, what)) = detected {
            self.level += 1;
            let message = if self.level <= cfg.soft_messages {
                format!("{what} Consider a different approach.")
            } else if self.level == cfg.soft_messages + 1 {
                format!(
                    "{what} The current strategy is not making progress. Stop, re-read the task \
                     and the last observation, and take a different action; repeating the last \
                     action will be blocked."
                )
            } else {
                self.blocking = true;
                format!("{what} Repeats of the last action are now blocked.")
            };
            return Some(Note { rule, message });
        }
        if cfg.steps_warning > 0 && turns_left < cfg.steps_warning && !self.warned_turns {
            self.warned_turns = true;
            return Some(Note {
                rule: "steps-running-out",
                message: format!(
                    "Only {turns_left} turns are left: finish the task now and report."
                ),
            });
        }
        None
    }

    fn detect(&self, cfg: &Regulation, step: usize) -> Option<(&'static str, String)> {
        let n = cfg.identical_calls as usize;
        if self.calls.len() >= n {
            let tail = &self.calls[self.calls.len() - n..];
            if tail.iter().all(|c| *c == tail[0]) {
                return Some((
                    "identical-calls",
                    format!("Duplicate action detected ({n} consecutive identical calls)."),
                ));
            }
        }
        // The observation just seen, repeated within the window.
        let now = self.states[step - 1];
        let w = (cfg.repeat_window as usize).min(step);
        let c = self.states[step - w..]
            .iter()
            .filter(|s| **s == now)
            .count();
        if c >= cfg.repeat_count as usize && c >= 2 {
            return Some((
                "repeated-observation",
                format!("The same observation came back {c} times in the last {w} actions."),
            ));
        }
        // Back and forth between two states, the one just seen among them.
        let w = cfg.oscillation_window as usize;
        if step >= w {
            let mut counts: HashMap<u64, usize> = HashMap::new();
            for s in &self.states[step - w..] {
                *counts.entry(*s).or_default() += 1;
            }
            let mut top: Vec<(usize, u64)> = counts.iter().map(|(h, c)| (*c, *h)).collect();
            top.sort_unstable_by(|a, b| b.cmp(a));
            if top.len() >= 2
                && top[1].0 >= 2
                && top[0].0 + top[1].0 >= cfg.oscillation_count as usize
                && (top[0].1 == now || top[1].1 == now)
            {
                return Some((
                    "oscillation",
                    format!(
                        "{} of the last {w} actions moved back and forth between two states.",
                        top[0].0 + top[1].0
                    ),
                ));
            }
        }
        let w = cfg.stall_window as usize;
        if step >= cfg.min_steps as usize && step - self.last_new >= w {
            return Some((
                "no-progress",
                format!("No new state in the last {} actions.", step - self.last_new),
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalates_and_resets_on_a_new_state() {
        let mut r = Regulator::new(Regulation {
            soft_messages: 1,
            steps_warning: 0,
            ..Regulation::default()
        });
        assert_eq!(r.after("a", "s1", 40), None);
        assert_eq!(r.after("a", "s1", 40), None);
        let n = r.after("a", "s1", 40).unwrap();
        assert_eq!(n.rule, "identical-calls");
        assert!(n.message.ends_with("Consider a different approach."));
        let n = r.after("a", "s1", 40).unwrap();
        assert!(n.message.contains("not making progress"));
        assert_eq!(r.before("a"), None);
        let n = r.after("a", "s1", 40).unwrap();
        assert!(n.message.contains("now blocked"));
        assert!(r.before("a").is_some());
        assert_eq!(r.before("b"), None);
        assert_eq!(r.after("b", "s2", 40), None);
        assert_eq!(r.before("b"), None);
    }
}

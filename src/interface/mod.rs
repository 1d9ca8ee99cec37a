//! The interface layers between a child and what it acts on (seeds 001 Life-Harness and 002
//! AutoHarness), declared by a harness under `## Interface layers` and run here in code at the
//! hook points of the child loop: contract notes before each model call, calls written as text
//! after the model's output, action realization and blocked repeats before each tool, trajectory
//! regulation after each result. They apply to every tool, the built-in ones included. Every
//! intervention is an event for the run's history and is counted for `run.json`.

pub mod realization;
pub mod regulation;
pub mod similarity;
pub mod skills;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use self::realization::{Check, action_property};
use self::regulation::Regulator;
use crate::agent::session::Hooks;
use crate::agent::tools::ToolOutput;
use crate::env::Episode;
use crate::harness::layers::{ContractNotes, Layer, LayerKind, Realization};
use crate::model::{ChatRequest, ChatResponse, ToolCall, ToolSpec};
use crate::record::{EventKind, InterfaceMetrics};

/// How a call fared before it ran.
#[derive(Debug, Clone, Default)]
struct CallInfo {
    repaired: bool,
    flagged: bool,
    key: String,
    env: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Invalid actions in a row (blocked, flagged, or refused by the environment).
    invalid_run: u32,
    /// Model calls made.
    turns: u32,
    notes_recorded: bool,
    calls: HashMap<String, CallInfo>,
    regulator: Regulator,
    pending: Vec<EventKind>,
    metrics: InterfaceMetrics,
}

/// The layers of one child.
pub struct Layers {
    child: String,
    realization: Option<Realization>,
    notes: Option<ContractNotes>,
    env: Option<Arc<Episode>>,
    specs: Vec<ToolSpec>,
    max_steps: u32,
    st: Mutex<State>,
}

/// `tool {arguments}` as events show an action.
fn show(name: &str, arguments: &str) -> String {
    let mut s = format!("{name} {arguments}");
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// A call's identity for repetition: its tool and its arguments in a canonical form.
fn key(name: &str, arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v) => format!("{name} {v}"),
        Err(_) => format!("{name} {}", arguments.trim()),
    }
}

impl Layers {
    /// The layers the harness declares for a child whose tools are `specs`; `None` when it
    /// declares none that run in the loop.
    pub fn new(
        child: &str,
        layers: &[Layer],
        specs: Vec<ToolSpec>,
        env: Option<Arc<Episode>>,
        max_steps: u32,
    ) -> Option<Layers> {
        let mut realization = None;
        let mut regulation = None;
        let mut notes = None;
        for l in layers {
            match &l.kind {
                LayerKind::ActionRealization(r) => realization = Some(r.clone()),
                LayerKind::TrajectoryRegulation(r) => regulation = Some(r.clone()),
                LayerKind::ContractNotes(c) => notes = Some(c.clone()),
                LayerKind::ProceduralSkills(_) => {}
            }
        }
        if realization.is_none() && regulation.is_none() && notes.is_none() {
            return None;
        }
        Some(Layers {
            child: child.to_string(),
            realization,
            notes,
            env,
            specs,
            max_steps,
            st: Mutex::new(State {
                regulator: regulation.map(Regulator::new).unwrap_or_default(),
                ..State::default()
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(st: &mut State, kind: EventKind) {
        st.metrics.interventions += 1;
        st.pending.push(kind);
    }

    fn event(
        &self,
        layer: &str,
        rule: &str,
        before: String,
        after: Option<String>,
        message: String,
    ) -> EventKind {
        EventKind::Intervention {
            child: self.child.clone(),
            layer: layer.to_string(),
            rule: rule.to_string(),
            before,
            after,
            message,
        }
    }

    /// Events recorded since the last call, for the run's history.
    pub fn take_events(&self) -> Vec<EventKind> {
        std::mem::take(&mut self.state().pending)
    }

    /// What the layers counted for this child.
    pub fn metrics(&self) -> InterfaceMetrics {
        self.state().metrics.clone()
    }

    /// The environment's legal actions when `tool` is one of its actions and it lists them.
    fn legal_for(&self, tool: &str) -> Option<Vec<String>> {
        let env = self.env.as_ref().filter(|e| e.has_tool(tool))?;
        env.state().legal_actions
    }

    /// The environment's action tool that takes one string, with its legal actions now.
    fn action_tool(&self) -> Option<(String, String, Vec<String>)> {
        let env = self.env.as_ref()?;
        let legal = env.state().legal_actions.filter(|l| !l.is_empty())?;
        self.specs
            .iter()
            .filter(|s| env.has_tool(&s.name))
            .find_map(|s| action_property(s).map(|p| (s.name.clone(), p, legal.clone())))
    }
}

impl Hooks for Layers {
    fn before_model(&self, req: &mut ChatRequest) {
        let mut st = self.state();
        st.turns += 1;
        let Some(notes) = &self.notes else {
            return;
        };
        let mut added = Vec::new();
        for t in &mut req.tools {
            for (tool, note) in &notes.notes {
                if *tool == t.name {
                    let note = skills::cap_words(note, notes.max_words as usize);
                    t.description.push_str(&format!("\nNote: {note}"));
                    added.push((tool.clone(), note));
                }
            }
        }
        if !st.notes_recorded {
            st.notes_recorded = true;
            for (tool, note) in added {
                let e = self.event("contract-notes", "note", tool, None, note);
                Self::record(&mut st, e);
            }
        }
    }

    fn after_output(&self, resp: &mut ChatResponse) {
        if self.realization.is_none()
            || !resp.message.tool_calls.is_empty()
            || resp.message.content.trim().is_empty()
        {
            return;
        }
        let action = self.action_tool();
        let legal = action
            .as_ref()
            .map(|(t, p, l)| (t.as_str(), p.as_str(), l.as_slice()));
        let Some((name, arguments)) =
            realization::call_in_text(&resp.message.content, &self.specs, legal)
        else {
            return;
        };
        let mut st = self.state();
        let id = format!("nlah-text-{}", st.turns);
        let e = self.event(
            "action-realization",
            "text-tool-call",
            clip(&resp.message.content),
            Some(show(&name, &arguments)),
            "the tool call written as text was made as a call".into(),
        );
        Self::record(&mut st, e);
        resp.message.tool_calls.push(ToolCall {
            id,
            name,
            arguments,
        });
    }

    fn before_tool(&self, call: &mut ToolCall) -> Option<ToolOutput> {
        let mut st = self.state();
        st.metrics.actions += 1;
        let mut info = CallInfo::default();
        if let Some(r) = &self.realization {
            let legal = self.legal_for(&call.name);
            match realization::check(
                &call.name,
                &call.arguments,
                &self.specs,
                legal.as_deref(),
                r.similarity,
            ) {
                Check::Valid => {}
                Check::Repaired {
                    name,
                    arguments,
                    repairs,
                } => {
                    let before = show(&call.name, &call.arguments);
                    call.name = name;
                    call.arguments = arguments;
                    st.metrics.repaired += 1;
                    info.repaired = true;
                    let rules: Vec<&str> = repairs.iter().map(|(r, _)| *r).collect();
                    let what: Vec<String> = repairs.iter().map(|(_, w)| w.clone()).collect();
                    let e = self.event(
                        "action-realization",
                        &rules.join(","),
                        before,
                        Some(show(&call.name, &call.arguments)),
                        format!("repaired: {}", what.join("; ")),
                    );
                    Self::record(&mut st, e);
                }
                Check::Invalid { rule, reason } => {
                    if st.invalid_run + 1 >= r.block_after {
                        st.invalid_run += 1;
                        st.metrics.blocked += 1;
                        let mut message = format!(
                            "[action-realization] The action was not taken: {reason}. Correct it and call again."
                        );
                        if let Some(l) = legal.filter(|l| !l.is_empty()) {
                            message.push_str(&format!(" Legal actions now: {}.", l.join(", ")));
                        }
                        let e = self.event(
                            "action-realization",
                            rule,
                            show(&call.name, &call.arguments),
                            None,
                            message.clone(),
                        );
                        Self::record(&mut st, e);
                        return Some(ToolOutput::error(message));
                    }
                    info.flagged = true;
                    let e = self.event(
                        "action-realization",
                        &format!("{rule}-passed"),
                        show(&call.name, &call.arguments),
                        None,
                        format!(
                            "{reason}; sent anyway ({} invalid in a row so far, blocking from {})",
                            st.invalid_run, r.block_after
                        ),
                    );
                    Self::record(&mut st, e);
                }
            }
        }
        info.key = key(&call.name, &call.arguments);
        info.env = self.env.as_ref().is_some_and(|e| e.has_tool(&call.name));
        if let Some(message) = st.regulator.before(&info.key) {
            st.metrics.blocked += 1;
            let message = format!("[trajectory-regulation] {message}");
            let e = self.event(
                "trajectory-regulation",
                "blocked-repeat",
                show(&call.name, &call.arguments),
                None,
                message.clone(),
            );
            Self::record(&mut st, e);
            return Some(ToolOutput::error(message));
        }
        st.calls.insert(call.id.clone(), info);
        None
    }

    fn after_tool(&self, call: &ToolCall, out: &mut ToolOutput) {
        let mut st = self.state();
        let info = st.calls.remove(&call.id).unwrap_or_default();
        let env_state = info
            .env
            .then(|| self.env.as_ref().map(|e| e.state()))
            .flatten();
        let refused = match &env_state {
            Some(s) => s.invalid,
            None => info.flagged && out.is_error,
        };
        if refused {
            st.invalid_run += 1;
        } else {
            st.invalid_run = 0;
            st.metrics.legal_final += 1;
            if !info.repaired {
                st.metrics.legal_first_try += 1;
            }
        }
        let observation = env_state
            .and_then(|s| s.observation)
            .unwrap_or_else(|| out.content.clone());
        let left = self.max_steps.saturating_sub(st.turns);
        if let Some(note) = st.regulator.after(&info.key, &observation, left) {
            *st.metrics
                .regulation
                .entry(note.rule.to_string())
                .or_default() += 1;
            let message = format!("[trajectory-regulation] {}", note.message);
            out.content.push_str(&format!("\n\n{message}"));
            let e = self.event(
                "trajectory-regulation",
                note.rule,
                show(&call.name, &call.arguments),
                None,
                message,
            );
            Self::record(&mut st, e);
        }
    }
}

/// The skills a child's brief gets: `## Skills` with the top-k of the harness's library for the
/// task, each cut to the word cap; and their names. `None` without the layer or a match.
pub fn skills_note(
    layers: &[Layer],
    harness_root: &Path,
    task: &str,
) -> Option<(String, Vec<String>)> {
    let cfg = layers.iter().find_map(|l| match &l.kind {
        LayerKind::ProceduralSkills(s) => Some(s),
        _ => None,
    })?;
    let index = skills::index_for(&harness_root.join("skills"));
    let top = index.top(task, cfg.top_k as usize, cfg.tag.as_deref());
    if top.is_empty() {
        return None;
    }
    let mut s =
        String::from("## Skills\n\nProcedures that worked before on tasks like this one:\n\n");
    for k in &top {
        s.push_str(&format!(
            "- {}: {}\n",
            k.name,
            skills::cap_words(&k.text, cfg.max_words as usize)
        ));
    }
    Some((s, top.iter().map(|k| k.name.clone()).collect()))
}

/// At most 300 bytes of a text, for events.
fn clip(s: &str) -> String {
    show(s, "").trim_end().to_string()
}

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
pub mod verifier;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use self::realization::{Check, action_property};
use self::regulation::Regulator;
use self::verifier::VerifierProcess;
use crate::agent::session::Hooks;
use crate::agent::tools::ToolOutput;
use crate::agent::tools::finish;
use crate::env::Episode;
use crate::harness::layers::{
    ContractNotes, Fallback, Layer, LayerKind, Realization, Verifier, VerifierMode,
};
use crate::model::{ChatRequest, ChatResponse, ToolCall, ToolSpec};
use crate::record::{EventKind, InterfaceMetrics};
use crate::sandbox::Confinement;

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
    /// Code-verifier rejections in a row.
    rejections: u32,
    /// The fault of the layers' own parts (the verifier script), which stops the child.
    fault: Option<String>,
    pending: Vec<EventKind>,
    metrics: InterfaceMetrics,
}

/// The layers of one child.
pub struct Layers {
    child: String,
    realization: Option<Realization>,
    notes: Option<ContractNotes>,
    verifier: Option<(Verifier, Option<VerifierProcess>)>,
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
    /// The layers the harness declares for a child whose tools are `specs`, working in `root`
    /// under `confinement` (where a code verifier runs); `None` when it declares none that run
    /// in the loop. Needs a tokio runtime (a code verifier's process).
    pub async fn new(
        child: &str,
        layers: &[Layer],
        specs: Vec<ToolSpec>,
        env: Option<Arc<Episode>>,
        max_steps: u32,
        root: &Path,
        confinement: &Confinement,
    ) -> Option<Layers> {
        let mut realization = None;
        let mut regulation = None;
        let mut notes = None;
        let mut verifier = None;
        for l in layers {
            match &l.kind {
                LayerKind::ActionRealization(r) => realization = Some(r.clone()),
                LayerKind::TrajectoryRegulation(r) => regulation = Some(r.clone()),
                LayerKind::ContractNotes(c) => notes = Some(c.clone()),
                LayerKind::CodeVerifier(v) => verifier = Some(v.clone()),
                LayerKind::ProceduralSkills(_) => {}
            }
        }
        // With an environment the actions are counted even when no layer acts on them, so that
        // an arm without layers is measured like the others.
        if realization.is_none()
            && regulation.is_none()
            && notes.is_none()
            && verifier.is_none()
            && env.is_none()
        {
            return None;
        }
        let mut st = State {
            regulator: regulation.map(Regulator::new).unwrap_or_default(),
            ..State::default()
        };
        let verifier = match verifier {
            Some(v) => {
                let timeout = std::time::Duration::from_millis(u64::from(v.timeout_ms));
                match VerifierProcess::start(&v.script, root, confinement, timeout).await {
                    Ok(p) => Some((v, Some(p))),
                    Err(f) => {
                        st.fault = Some(f);
                        Some((v, None))
                    }
                }
            }
            None => None,
        };
        Some(Layers {
            child: child.to_string(),
            realization,
            notes,
            verifier,
            env,
            specs,
            max_steps,
            st: Mutex::new(st),
        })
    }

    /// The fault of a layer's own part (the code verifier), which ends the child.
    pub fn fault(&self) -> Option<String> {
        self.state().fault.clone()
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

    /// A `finish` while the child's episode is still open, refused as often as regulation's
    /// `open episode refusals` says: quitting a game in the middle scores nothing.
    fn finish_while_open(&self, call: &ToolCall) -> Option<ToolOutput> {
        let env = self.env.as_ref().filter(|e| !e.over())?;
        let mut st = self.state();
        if !st.regulator.refuse_finish() {
            return None;
        }
        *st.metrics
            .regulation
            .entry("episode-open".to_string())
            .or_default() += 1;
        let actions: Vec<String> = self
            .specs
            .iter()
            .filter(|s| env.has_tool(&s.name))
            .map(|s| format!("`{}`", s.name))
            .collect();
        let message = format!(
            "[trajectory-regulation] The episode is still open: finishing now ends it unplayed. \
             Take your next action ({}) and finish once the episode is over.",
            actions.join(", ")
        );
        Some(self.refuse(
            &mut st,
            "trajectory-regulation",
            "episode-open",
            call,
            message,
        ))
    }

    /// Refuses `call` for `layer`: the intervention recorded, `message` the call's result.
    fn refuse(
        &self,
        st: &mut State,
        layer: &str,
        rule: &str,
        call: &ToolCall,
        message: String,
    ) -> ToolOutput {
        let e = self.event(
            layer,
            rule,
            show(&call.name, &call.arguments),
            None,
            message.clone(),
        );
        Self::record(st, e);
        ToolOutput::error(message)
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

impl Layers {
    /// The code verifier's turn on a call: `Some` blocks it (a re-prompt or a fault).
    fn verify(
        &self,
        st: &mut State,
        call: &mut ToolCall,
        info: &mut CallInfo,
    ) -> Option<ToolOutput> {
        let (cfg, process) = self.verifier.as_ref()?;
        if let Some(f) = &st.fault {
            return Some(ToolOutput::error(format!(
                "[code-verifier] the action was not taken: {f}. Report and stop."
            )));
        }
        let process = process.as_ref()?;
        // With an environment the verifier judges its actions; without one, every call.
        if self.env.as_ref().is_some_and(|e| !e.has_tool(&call.name)) {
            return None;
        }
        let observation = self
            .env
            .as_ref()
            .and_then(|e| e.state().observation)
            .unwrap_or_default();
        let spec = self.specs.iter().find(|s| s.name == call.name)?;
        let prop = action_property(spec);
        let mut args: Value = serde_json::from_str(&call.arguments).unwrap_or(Value::Null);
        let action = prop
            .as_ref()
            .and_then(|p| args.get(p))
            .and_then(Value::as_str)
            .map(str::to_string);
        let before = show(&call.name, &call.arguments);
        let result: Result<Option<String>, String> = match cfg.mode {
            VerifierMode::Verifier => {
                process.is_legal(&observation, &call.name, &args, action.as_deref())
            }
            VerifierMode::Filter => {
                process
                    .legal_actions(&observation)
                    .map(|legal| match &action {
                        Some(a) if !legal.contains(a) => Some(format!(
                            "{a:?} is not among the legal actions: {}",
                            legal.join(", ")
                        )),
                        _ => None,
                    })
            }
            VerifierMode::Policy => match (&prop, process.policy(&observation)) {
                (Some(p), Ok(chosen)) => {
                    if action.as_deref() != Some(chosen.as_str()) {
                        args[p.as_str()] = Value::String(chosen.clone());
                        call.arguments = args.to_string();
                        info.repaired = true;
                        let e = self.event(
                            "code-verifier",
                            "policy",
                            before.clone(),
                            Some(show(&call.name, &call.arguments)),
                            format!("the verifier's policy chose {chosen:?}"),
                        );
                        Self::record(st, e);
                    }
                    Ok(None)
                }
                (_, Err(f)) => Err(f),
                (None, Ok(_)) => Ok(None),
            },
        };
        let reason = match result {
            Ok(None) => {
                st.rejections = 0;
                return None;
            }
            Ok(Some(r)) => r,
            Err(f) => {
                st.fault = Some(f.clone());
                let message =
                    format!("[code-verifier] the action was not taken: {f}. Report and stop.");
                let e = self.event("code-verifier", "fault", before, None, message.clone());
                Self::record(st, e);
                return Some(ToolOutput::error(message));
            }
        };
        st.rejections += 1;
        if st.rejections <= cfg.reprompts {
            st.metrics.reprompts += 1;
            let message = format!(
                "[code-verifier] Illegal action: {reason}. The action was not taken; choose a legal one ({} of {} warnings).",
                st.rejections, cfg.reprompts
            );
            let e = self.event(
                "code-verifier",
                "illegal-action",
                before,
                None,
                message.clone(),
            );
            Self::record(st, e);
            return Some(ToolOutput::error(message));
        }
        st.rejections = 0;
        st.metrics.fallbacks += 1;
        let chosen = match cfg.fallback {
            Fallback::Pass => None,
            Fallback::Policy => Some(process.policy(&observation)),
            Fallback::FirstLegal => Some(process.legal_actions(&observation).and_then(|l| {
                l.into_iter()
                    .next()
                    .ok_or_else(|| "the verifier lists no legal action".to_string())
            })),
        };
        let chosen = match chosen {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(f)) => {
                st.fault = Some(f.clone());
                let message =
                    format!("[code-verifier] the action was not taken: {f}. Report and stop.");
                let e = self.event("code-verifier", "fault", before, None, message.clone());
                Self::record(st, e);
                return Some(ToolOutput::error(message));
            }
        };
        if let (Some(c), Some(p)) = (&chosen, &prop) {
            args[p.as_str()] = Value::String(c.clone());
            call.arguments = args.to_string();
            info.repaired = true;
        }
        let e = self.event(
            "code-verifier",
            "fallback",
            before,
            Some(show(&call.name, &call.arguments)),
            format!(
                "{} re-prompts spent ({reason}); the fallback {}",
                cfg.reprompts,
                match (&chosen, cfg.fallback) {
                    (Some(c), _) => format!("chose {c:?}"),
                    (None, _) => "sent the model's action".to_string(),
                }
            ),
        );
        Self::record(st, e);
        None
    }
}

impl Hooks for Layers {
    fn stopped(&self) -> Option<String> {
        self.fault()
    }

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
        // Ending the turn is not an action: it is neither counted nor checked, only refused
        // while the episode is open if regulation says so.
        if call.name == finish::NAME {
            return self.finish_while_open(call);
        }
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
                        return Some(self.refuse(
                            &mut st,
                            "action-realization",
                            rule,
                            call,
                            message,
                        ));
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
        if let Some(out) = self.verify(&mut st, call, &mut info) {
            return Some(out);
        }
        info.key = key(&call.name, &call.arguments);
        info.env = self.env.as_ref().is_some_and(|e| e.has_tool(&call.name));
        if let Some(message) = st.regulator.before(&info.key) {
            st.metrics.blocked += 1;
            let message = format!("[trajectory-regulation] {message}");
            return Some(self.refuse(
                &mut st,
                "trajectory-regulation",
                "blocked-repeat",
                call,
                message,
            ));
        }
        st.calls.insert(call.id.clone(), info);
        None
    }

    fn after_tool(&self, call: &ToolCall, out: &mut ToolOutput) {
        if call.name == finish::NAME {
            return;
        }
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
/// `task_tags`: the task's own tags (`[metadata] tags` of `task.toml`), which `tag: task` filters
/// by.
pub fn skills_note(
    layers: &[Layer],
    harness_root: &Path,
    task: &str,
    task_tags: &[String],
) -> Option<(String, Vec<String>)> {
    let cfg = layers.iter().find_map(|l| match &l.kind {
        LayerKind::ProceduralSkills(s) => Some(s),
        _ => None,
    })?;
    let index = skills::index_for(&harness_root.join("skills"));
    let tags: Vec<&str> = match cfg.tag.as_deref() {
        Some("task") => task_tags.iter().map(String::as_str).collect(),
        Some(t) => vec![t],
        None => Vec::new(),
    };
    let top = index.top(task, cfg.top_k as usize, &tags);
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

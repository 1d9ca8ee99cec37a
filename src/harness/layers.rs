//! `## Interface layers`: the runtime layers between a child and what it acts on (seeds 001 and
//! 002), one `### KIND` subsection each, whose fields set the layer's thresholds. The runtime
//! executes them in code (`crate::interface`); modules switch them on with
//! `## Append to Interface layers`.

use serde::Serialize;

use super::markdown::Field;
use crate::diag::Pos;

/// The layer kinds the runtime executes.
pub const LAYER_KINDS: [&str; 5] = [
    "action-realization",
    "trajectory-regulation",
    "contract-notes",
    "procedural-skills",
    "code-verifier",
];

/// One layer as the harness declares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    pub kind: LayerKind,
    pub pos: Pos,
}

/// A layer kind with its thresholds (defaults: Life-Harness's published ones).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LayerKind {
    ActionRealization(Realization),
    TrajectoryRegulation(Regulation),
    ContractNotes(ContractNotes),
    ProceduralSkills(Skills),
    CodeVerifier(Verifier),
}

/// What a code verifier does (AutoHarness: harness as action verifier, filter, or policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifierMode {
    /// Answers `is_legal` for each proposed action.
    Verifier,
    /// Lists the legal actions; each result the model sees carries them, and realization
    /// matches against them.
    Filter,
    /// Proposes the action itself; the model's action is replaced by it.
    Policy,
}

/// What happens after `re-prompts` rejections in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fallback {
    /// The verifier's policy chooses the action.
    Policy,
    /// The first of the verifier's legal actions.
    FirstLegal,
    /// The model's action is sent as it is.
    Pass,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verifier {
    /// A harness script (`scripts/…`), run once per child as a long-lived JSON-lines process.
    pub script: String,
    pub mode: VerifierMode,
    /// Rejected actions sent back to the model with an illegal-action warning (0–10; default 3).
    pub reprompts: u32,
    pub fallback: Fallback,
    /// Time limit of one answer, in milliseconds (10–60000; default 2000).
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Realization {
    /// An action string is repaired to the one legal candidate of the same verb at least this
    /// similar (0–1].
    pub similarity: f64,
    /// Invalid actions in a row from which the layer blocks them instead of sending them (1–10).
    pub block_after: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regulation {
    /// Identical consecutive calls that count as a repetition (2–12).
    pub identical_calls: u32,
    /// The same observation at least `repeat_count` times in the last `repeat_window` (2–12, 1–10).
    pub repeat_window: u32,
    pub repeat_count: u32,
    /// At least `oscillation_count` of the last `oscillation_window` observations in at most two
    /// states (3–12, 2–12).
    pub oscillation_window: u32,
    pub oscillation_count: u32,
    /// No new state in the last `stall_window` actions (2–12), once `min_steps` (1–30) were taken.
    pub stall_window: u32,
    pub min_steps: u32,
    /// A warning when fewer than this many model turns remain (0 turns it off; 0–30).
    pub steps_warning: u32,
    /// Soft messages before the hard directive (0–8); after the directive, repeats are blocked.
    pub soft_messages: u32,
    /// How many times a child's `finish` is refused while its environment episode is still open
    /// (0 turns it off; 0–5): small models often quit a game in the middle.
    pub open_episode_refusals: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContractNotes {
    /// Words kept of each note (5–80).
    pub max_words: u32,
    /// Per tool (as the model sees it, e.g. `shell`, `hanoi__move`): the note appended, from
    /// fields ``- note: `TOOL` text``.
    pub notes: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skills {
    /// Skills injected into a child's brief (0–5).
    pub top_k: u32,
    /// Words kept of each skill (5–120).
    pub max_words: u32,
    /// Only skills whose front matter `tags` include this tag; `task`: one of the task's own tags
    /// (`[metadata] tags` in `task.toml`).
    pub tag: Option<String>,
}

impl Default for Realization {
    fn default() -> Self {
        Realization {
            similarity: 0.55,
            block_after: 2,
        }
    }
}

impl Default for Regulation {
    fn default() -> Self {
        Regulation {
            identical_calls: 3,
            repeat_window: 4,
            repeat_count: 3,
            oscillation_window: 6,
            oscillation_count: 5,
            stall_window: 4,
            min_steps: 8,
            steps_warning: 7,
            soft_messages: 2,
            open_episode_refusals: 0,
        }
    }
}

impl LayerKind {
    pub fn name(&self) -> &'static str {
        match self {
            LayerKind::ActionRealization(_) => "action-realization",
            LayerKind::TrajectoryRegulation(_) => "trajectory-regulation",
            LayerKind::ContractNotes(_) => "contract-notes",
            LayerKind::ProceduralSkills(_) => "procedural-skills",
            LayerKind::CodeVerifier(_) => "code-verifier",
        }
    }
}

/// A problem with one field: its offset and the message (the caller positions it).
pub struct FieldError {
    pub offset: usize,
    pub message: String,
    pub hint: String,
}

fn int(f: &Field, lo: u32, hi: u32) -> Result<u32, FieldError> {
    match f.value.trim().parse::<u32>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(FieldError {
            offset: f.value_offset,
            message: format!(
                "`{}: {}` is out of range: a whole number from {lo} to {hi}",
                f.key, f.value
            ),
            hint: "the layer's defaults are in docs/FORMAT.md, Interface layers".into(),
        }),
    }
}

fn unknown(f: &Field, kind: &str, keys: &[&str]) -> FieldError {
    FieldError {
        offset: f.offset,
        message: format!("`{}` is not a threshold of the {kind} layer", f.key),
        hint: format!("its fields are: {}", keys.join(", ")),
    }
}

fn set(r: Result<u32, FieldError>, slot: &mut u32, errors: &mut Vec<FieldError>) {
    match r {
        Ok(v) => *slot = v,
        Err(e) => errors.push(e),
    }
}

/// Whether a layer's field may be given more than once (by the body and by modules alike).
pub fn repeatable(kind: &str, key: &str) -> bool {
    kind == "contract-notes" && key == "note"
}

/// Reads a layer's fields (from every `### KIND` subsection that declares it). `None` for an
/// unknown kind (the caller reports it).
pub fn read(kind: &str, fields: &[Field], errors: &mut Vec<FieldError>) -> Option<LayerKind> {
    Some(match kind {
        "action-realization" => {
            let mut r = Realization::default();
            for f in fields {
                match f.key.as_str() {
                    "similarity" => match f.value.trim().parse::<f64>() {
                        Ok(v) if v > 0.0 && v <= 1.0 => r.similarity = v,
                        _ => errors.push(FieldError {
                            offset: f.value_offset,
                            message: format!(
                                "`similarity: {}` is out of range: a number above 0 and at most 1",
                                f.value
                            ),
                            hint: "Life-Harness uses 0.55".into(),
                        }),
                    },
                    "block after" => set(int(f, 1, 10), &mut r.block_after, errors),
                    _ => errors.push(unknown(f, kind, &["similarity", "block after"])),
                }
            }
            LayerKind::ActionRealization(r)
        }
        "trajectory-regulation" => {
            let mut r = Regulation::default();
            const KEYS: [&str; 10] = [
                "identical calls",
                "repeat window",
                "repeat count",
                "oscillation window",
                "oscillation count",
                "stall window",
                "min steps",
                "steps warning",
                "soft messages",
                "open episode refusals",
            ];
            for f in fields {
                match f.key.as_str() {
                    "identical calls" => set(int(f, 2, 12), &mut r.identical_calls, errors),
                    "repeat window" => set(int(f, 2, 12), &mut r.repeat_window, errors),
                    "repeat count" => set(int(f, 1, 10), &mut r.repeat_count, errors),
                    "oscillation window" => set(int(f, 3, 12), &mut r.oscillation_window, errors),
                    "oscillation count" => set(int(f, 2, 12), &mut r.oscillation_count, errors),
                    "stall window" => set(int(f, 2, 12), &mut r.stall_window, errors),
                    "min steps" => set(int(f, 1, 30), &mut r.min_steps, errors),
                    "steps warning" => set(int(f, 0, 30), &mut r.steps_warning, errors),
                    "soft messages" => set(int(f, 0, 8), &mut r.soft_messages, errors),
                    "open episode refusals" => {
                        set(int(f, 0, 5), &mut r.open_episode_refusals, errors)
                    }
                    _ => errors.push(unknown(f, kind, &KEYS)),
                }
            }
            if r.repeat_count > r.repeat_window {
                errors.push(FieldError {
                    offset: fields.first().map_or(0, |f| f.offset),
                    message: format!(
                        "repeat count {} exceeds repeat window {}",
                        r.repeat_count, r.repeat_window
                    ),
                    hint: "the count is out of the last `repeat window` observations".into(),
                });
            }
            if r.oscillation_count > r.oscillation_window {
                errors.push(FieldError {
                    offset: fields.first().map_or(0, |f| f.offset),
                    message: format!(
                        "oscillation count {} exceeds oscillation window {}",
                        r.oscillation_count, r.oscillation_window
                    ),
                    hint: "the count is out of the last `oscillation window` observations".into(),
                });
            }
            LayerKind::TrajectoryRegulation(r)
        }
        "contract-notes" => {
            let mut c = ContractNotes {
                max_words: 20,
                notes: Vec::new(),
            };
            for f in fields {
                match f.key.as_str() {
                    "max words" => set(int(f, 5, 80), &mut c.max_words, errors),
                    "note" => {
                        // The tool in backticks first (field keys cannot hold `__`), then the note.
                        let v = f.value.trim();
                        let tool = v
                            .strip_prefix('`')
                            .and_then(|r| r.split_once('`'))
                            .filter(|(t, rest)| !t.is_empty() && !rest.trim().is_empty());
                        match tool {
                            Some((t, rest)) => c.notes.push((
                                t.to_string(),
                                rest.trim()
                                    .trim_start_matches([':', '-', '—'])
                                    .trim()
                                    .to_string(),
                            )),
                            None => errors.push(FieldError {
                                offset: f.value_offset,
                                message: format!("`note: {}` does not name a tool", f.value),
                                hint: "write ``- note: `TOOL` what the model should know``".into(),
                            }),
                        }
                    }
                    _ => errors.push(unknown(f, kind, &["note", "max words"])),
                }
            }
            LayerKind::ContractNotes(c)
        }
        "procedural-skills" => {
            let mut s = Skills {
                top_k: 1,
                max_words: 35,
                tag: None,
            };
            for f in fields {
                match f.key.as_str() {
                    "top k" => set(int(f, 0, 5), &mut s.top_k, errors),
                    "max words" => set(int(f, 5, 120), &mut s.max_words, errors),
                    "tag" => s.tag = Some(f.value.trim().to_string()),
                    _ => errors.push(unknown(f, kind, &["top k", "max words", "tag"])),
                }
            }
            LayerKind::ProceduralSkills(s)
        }
        "code-verifier" => {
            let mut v = Verifier {
                script: String::new(),
                mode: VerifierMode::Verifier,
                reprompts: 3,
                fallback: Fallback::FirstLegal,
                timeout_ms: 2000,
            };
            let mut script_at = None;
            for f in fields {
                let word = f.value.trim().trim_matches('`').to_lowercase();
                let bad = |what: &str| FieldError {
                    offset: f.value_offset,
                    message: format!("`{}: {}` is not {what}", f.key, f.value),
                    hint: "see docs/FORMAT.md, Interface layers".into(),
                };
                match f.key.as_str() {
                    "script" => {
                        script_at = Some(f.value_offset);
                        v.script = f.value.trim().trim_matches('`').to_string();
                        if !v.script.starts_with("scripts/") || v.script.contains("..") {
                            errors.push(bad("a script of the harness (`scripts/…`)"));
                        }
                    }
                    "mode" => match word.as_str() {
                        "verifier" => v.mode = VerifierMode::Verifier,
                        "filter" => v.mode = VerifierMode::Filter,
                        "policy" => v.mode = VerifierMode::Policy,
                        _ => errors.push(bad("a mode: verifier, filter or policy")),
                    },
                    "re prompts" | "reprompts" => set(int(f, 0, 10), &mut v.reprompts, errors),
                    "fallback" => match word.as_str() {
                        "policy" => v.fallback = Fallback::Policy,
                        "first legal" | "first-legal" => v.fallback = Fallback::FirstLegal,
                        "pass" => v.fallback = Fallback::Pass,
                        _ => errors.push(bad("a fallback: policy, first-legal or pass")),
                    },
                    "timeout ms" => set(int(f, 10, 60_000), &mut v.timeout_ms, errors),
                    _ => errors.push(unknown(
                        f,
                        kind,
                        &["script", "mode", "re-prompts", "fallback", "timeout ms"],
                    )),
                }
            }
            if script_at.is_none() {
                errors.push(FieldError {
                    offset: fields.first().map_or(0, |f| f.offset),
                    message: "the code-verifier layer names no `script`".into(),
                    hint: "add ``- script: `scripts/verify.py` ``".into(),
                });
            }
            LayerKind::CodeVerifier(v)
        }
        _ => return None,
    })
}

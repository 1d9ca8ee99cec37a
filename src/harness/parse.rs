//! Reads a harness body into the typed model. Structure is read; prose is kept verbatim.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use super::clauses::{self, ClauseError};
use super::frontmatter::{NAME_HINT, SkillMeta, valid_name};
use super::gate::{self, GATE_FORMS};
use super::markdown::{Field, Outline, Section, code_spans, list_values};
use super::model::*;
use super::source::Text;
use crate::diag::{Diagnostic, Diags, Pos, closest};

/// The fields a stage's list may open with (read by the parser, and left out of the compact
/// brief, which says what they mean in its own words).
pub(crate) const STAGE_KEYS: [&str; 11] = [
    "role",
    "reads",
    "produces",
    "gate",
    "gates",
    "on failure",
    "then",
    "candidates",
    "select",
    "reflection",
    "instructions",
];

/// The fields a role's list may open with.
pub(crate) const ROLE_KEYS: [&str; 2] = ["model", "tools"];

/// The six NLAH components, as level-2 sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    Contract,
    Roles,
    Stages,
    Adapters,
    State,
    Failures,
    /// `## Interface layers` (see `layers.rs`).
    Layers,
}

impl Component {
    pub fn from_title(title: &str) -> Option<Component> {
        let t = title
            .trim()
            .trim_end_matches(':')
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Some(match t.as_str() {
            "contract" => Component::Contract,
            "roles" => Component::Roles,
            "stages" => Component::Stages,
            "adapters" | "adapters and scripts" | "adapters & scripts" => Component::Adapters,
            "state" => Component::State,
            "failure taxonomy" | "failures" => Component::Failures,
            "interface layers" | "layers" => Component::Layers,
            _ => return None,
        })
    }

    pub fn title(self) -> &'static str {
        match self {
            Component::Contract => "Contract",
            Component::Roles => "Roles",
            Component::Stages => "Stages",
            Component::Adapters => "Adapters",
            Component::State => "State",
            Component::Failures => "Failure taxonomy",
            Component::Layers => "Interface layers",
        }
    }
}

/// Whether a body declares a harness (it has a `## Stages` section) rather than a plain skill.
pub fn is_harness(outline: &Outline) -> bool {
    outline
        .headings
        .iter()
        .any(|h| h.level == 2 && Component::from_title(&h.title) == Some(Component::Stages))
}

struct Reader<'a> {
    text: &'a Text,
    src: &'a str,
    outline: &'a Outline,
    diags: &'a mut Diags,
}

/// Parses a harness document. Returns `None` when it is not a harness (no `## Stages`).
pub fn harness(
    text: &Text,
    outline: &Outline,
    meta: SkillMeta,
    diags: &mut Diags,
) -> Option<Harness> {
    if !is_harness(outline) {
        return None;
    }
    let mut r = Reader {
        text,
        src: text.as_str(),
        outline,
        diags,
    };
    let mut h = Harness {
        meta,
        contract: Contract::default(),
        roles: Vec::new(),
        flow: Flow::default(),
        stages: Vec::new(),
        adapters: Adapters::default(),
        state: StateRules::default(),
        failures: Vec::new(),
        layers: Vec::new(),
    };
    let mut seen: Vec<(Component, Pos)> = Vec::new();
    for sec in outline.sections(outline.body_start..outline.len, 2) {
        let Some(c) = Component::from_title(&sec.title) else {
            continue;
        };
        let pos = r.pos(sec.heading.start);
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == c) {
            r.diags.push(
                Diagnostic::error(
                    pos,
                    "duplicate-section",
                    format!("a second `## {}` section", c.title()),
                )
                .with_hint(format!("the first one is at {first}; merge them")),
            );
            continue;
        }
        seen.push((c, pos));
        match c {
            Component::Contract => h.contract = r.contract(&sec),
            Component::Roles => h.roles = r.roles(&sec),
            Component::Stages => (h.flow, h.stages) = r.stages(&sec),
            Component::Adapters => h.adapters = r.adapters(&sec),
            Component::State => h.state = r.state(&sec),
            Component::Failures => h.failures = r.failures(&sec),
            Component::Layers => h.layers = r.layers(&sec),
        }
    }
    let top = r.pos(outline.body_start);
    if !seen.iter().any(|(c, _)| *c == Component::Roles) {
        r.diags.push(
            Diagnostic::error(
                top.clone(),
                "missing-section",
                "harness has no `## Roles` section",
            )
            .with_hint("add `## Roles` with one `### role-name` subsection per role"),
        );
    }
    if !seen.iter().any(|(c, _)| *c == Component::Contract) {
        r.diags.push(
            Diagnostic::warning(
                top,
                "missing-section",
                "harness has no `## Contract` section",
            )
            .with_hint("state inputs, outputs and budgets so the runtime can enforce them"),
        );
    }
    Some(h)
}

static STAGE_TITLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:stage\s+)?(?:\d+\s*[.):]?\s*[:.\-—–]?\s*)?(.+)$").expect("static regex")
});

/// A role or stage name from its heading: `1. Plan` becomes `plan`.
fn heading_name(title: &str, numbered: bool) -> String {
    let t = title.trim();
    let t = if numbered {
        STAGE_TITLE
            .captures(t)
            .and_then(|c| c.get(1))
            .map_or(t, |m| m.as_str())
    } else {
        t
    };
    t.trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
}

impl Reader<'_> {
    fn pos(&self, offset: usize) -> Pos {
        self.text.pos(offset)
    }

    fn error(
        &mut self,
        at: usize,
        code: &'static str,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let d = Diagnostic::error(self.pos(at), code, msg).with_hint(hint);
        self.diags.push(d);
    }

    fn fields(&self, range: Range<usize>) -> Vec<Field> {
        self.outline.fields(self.src, range)
    }

    /// A field's values: its own and those of nested items, each with an offset.
    fn values(f: &Field) -> Vec<(String, usize)> {
        let mut v = Vec::new();
        if !f.value.is_empty() {
            v.push((f.value.clone(), f.value_offset));
        }
        v.extend(f.nested.iter().cloned());
        v
    }

    /// Warns about a field whose key is a near miss of a known one.
    fn near_miss(&mut self, f: &Field, known: &[&str], context: &str) {
        if let Some(k) = closest(&f.key, known.iter().copied()) {
            let d = Diagnostic::warning(
                self.pos(f.offset),
                "unknown-field",
                format!(
                    "`{}` is not a {context} field, so it is read as prose",
                    f.key
                ),
            )
            .with_hint(format!("did you mean `{k}`?"));
            self.diags.push(d);
        }
    }

    fn gate(&mut self, text: &str, at: usize) -> Option<Gate> {
        let text = text.trim().trim_start_matches("gate:").trim();
        match gate::parse(text) {
            Ok(kind) => Some(Gate {
                kind,
                text: text.to_string(),
                pos: self.pos(at),
            }),
            Err(why) => {
                self.error(
                    at,
                    "bad-gate",
                    format!("cannot read gate: {why}"),
                    GATE_FORMS,
                );
                None
            }
        }
    }

    fn contract(&mut self, sec: &Section) -> Contract {
        let mut c = Contract::default();
        let intro = sec.body.start..self.outline.intro_end(sec.body.clone(), 3);
        self.contract_fields(intro, &mut c, None);
        for sub in self.outline.sections(sec.body.clone(), 3) {
            let kind = sub.title.to_lowercase();
            let kind = kind.trim().trim_end_matches(':');
            match kind {
                "inputs" | "outputs" => {
                    let decls = self.path_decls(sub.body.clone());
                    if kind == "inputs" {
                        c.inputs.extend(decls);
                    } else {
                        c.outputs.extend(decls);
                    }
                }
                "completion" | "completion conditions" => {
                    let items: Vec<(String, usize)> = self
                        .outline
                        .top_items(sub.body.clone())
                        .map(|(_, it)| (it.lead.clone(), it.lead_offset))
                        .collect();
                    for (lead, at) in items {
                        if lead.to_lowercase().starts_with("gate:") {
                            let gate = self.gate(&lead, at);
                            c.completion_gates.extend(gate);
                        } else {
                            c.completion.push(lead);
                        }
                    }
                }
                "stop rules" | "stopping" | "stop" => {
                    c.stop_rules.extend(
                        self.outline
                            .top_items(sub.body.clone())
                            .map(|(_, it)| it.lead.clone()),
                    );
                }
                _ => self.contract_fields(sub.body.clone(), &mut c, Some(kind)),
            }
        }
        c
    }

    fn path_decls(&mut self, range: Range<usize>) -> Vec<PathDecl> {
        let items: Vec<(String, usize)> = self
            .outline
            .top_items(range)
            .map(|(_, it)| (it.lead.clone(), it.lead_offset))
            .collect();
        items
            .into_iter()
            .filter(|(lead, _)| lead.starts_with('`'))
            .filter_map(|(lead, at)| {
                let path = code_spans(&lead).first()?.to_string();
                let rest = lead[lead[1..].find('`')? + 2..]
                    .trim_start_matches([':', ' ', '—', '-', '–'])
                    .to_string();
                Some(PathDecl {
                    path,
                    description: rest,
                    pos: self.pos(at),
                })
            })
            .collect()
    }

    const CONTRACT_KEYS: [&'static str; 15] = [
        "inputs",
        "outputs",
        "tokens",
        "tool calls",
        "llm calls",
        "wall time",
        "cost",
        "child depth",
        "write",
        "network",
        "brief",
        "memory",
        "processes",
        "cpu time",
        "file size",
    ];

    fn contract_fields(&mut self, range: Range<usize>, c: &mut Contract, sub: Option<&str>) {
        for f in self.fields(range) {
            let at = f.value_offset;
            let key = f
                .key
                .trim_start_matches("max ")
                .trim_start_matches("budget ");
            let b = &mut c.budgets;
            let res: Result<(), String> = match key {
                "tokens" | "total tokens" => clauses::count(&f.value).map(|n| b.tokens = Some(n)),
                "tool calls" => clauses::count(&f.value).map(|n| b.tool_calls = Some(n)),
                "llm calls" | "model calls" => {
                    clauses::count(&f.value).map(|n| b.llm_calls = Some(n))
                }
                "wall time" | "time" | "wall clock" => {
                    clauses::duration(&f.value).map(|d| b.wall_time = Some(d))
                }
                "cost" => clauses::cost(&f.value).map(|n| b.cost_usd = Some(n)),
                "child depth" | "depth" => clauses::count(&f.value).and_then(|n| {
                    u32::try_from(n)
                        .map(|n| b.child_depth = Some(n))
                        .map_err(|_| "child depth is too large".to_string())
                }),
                "write" | "writes" => match f.value.to_lowercase().trim_end_matches('.') {
                    v if v.contains("workspace") => {
                        c.permissions.write = WriteScope::Workspace;
                        Ok(())
                    }
                    "none" | "no" | "nothing" => {
                        c.permissions.write = WriteScope::None;
                        Ok(())
                    }
                    v => Err(format!(
                        "`{v}` is not a write scope; write `workspace` or `none`"
                    )),
                },
                "memory" => clauses::limit(&f.value, clauses::bytes)
                    .map(|v| c.permissions.limits.memory_bytes = v),
                "processes" => clauses::limit(&f.value, clauses::count)
                    .map(|v| c.permissions.limits.processes = v),
                "cpu time" | "cpu" => clauses::limit(&f.value, clauses::duration)
                    .map(|v| c.permissions.limits.cpu_seconds = v.map(|d| d.as_secs().max(1))),
                "file size" => clauses::limit(&f.value, clauses::bytes)
                    .map(|v| c.permissions.limits.file_bytes = v),
                "network" => match f.value.to_lowercase().trim_end_matches('.') {
                    "none" | "no" | "denied" | "off" => {
                        c.permissions.network = false;
                        Ok(())
                    }
                    "allowed" | "yes" | "on" => {
                        c.permissions.network = true;
                        Ok(())
                    }
                    v => Err(format!(
                        "`{v}` is not a network scope; write `none` or `allowed`"
                    )),
                },
                "inputs" | "outputs" => {
                    let pos = self.pos(f.value_offset);
                    let decls = list_values(&f.value).into_iter().map(|path| PathDecl {
                        path,
                        description: String::new(),
                        pos: pos.clone(),
                    });
                    if key == "inputs" {
                        c.inputs.extend(decls);
                    } else {
                        c.outputs.extend(decls);
                    }
                    Ok(())
                }
                "gate" => {
                    let gate = self.gate(&f.value, at);
                    c.completion_gates.extend(gate);
                    Ok(())
                }
                // Accepted in any subsection, Budgets included: a module appends it anywhere.
                "brief" => match BriefForm::parse(&f.value) {
                    Some(form) => {
                        c.brief = form;
                        Ok(())
                    }
                    None => Err(format!(
                        "`{}` is not a brief form; write {}",
                        f.value.trim(),
                        BriefForm::ALLOWED
                    )),
                },
                _ => {
                    if sub == Some("budgets") {
                        Err(format!(
                            "`{}` is not a budget; budgets are tokens, tool calls, llm calls, wall time, cost, child depth",
                            f.key
                        ))
                    } else {
                        self.near_miss(&f, &Self::CONTRACT_KEYS, "contract");
                        Ok(())
                    }
                }
            };
            if let Err(why) = res {
                let code = if key != "brief"
                    && (sub == Some("budgets") || Self::CONTRACT_KEYS[2..8].contains(&key))
                {
                    "bad-budget"
                } else {
                    "bad-contract"
                };
                self.error(at, code, why, "see docs/FORMAT.md, section Contract");
            }
        }
    }

    fn roles(&mut self, sec: &Section) -> Vec<Role> {
        let mut roles: Vec<Role> = Vec::new();
        for sub in self.outline.sections(sec.body.clone(), 3) {
            let name = heading_name(&sub.title, false);
            let pos = self.pos(sub.heading.start);
            if !valid_name(&name) {
                self.error(
                    sub.heading.start,
                    "bad-name",
                    format!("role name `{}` is not a valid name", sub.title),
                    NAME_HINT,
                );
                continue;
            }
            if let Some(first) = roles.iter().find(|r| r.name == name) {
                let hint = format!("the first is at {}", first.pos);
                self.error(
                    sub.heading.start,
                    "duplicate-role",
                    format!("role `{name}` is defined twice"),
                    hint,
                );
                continue;
            }
            let mut role = Role {
                name,
                pos,
                model: None,
                tools: None,
                body: self.src[sub.body.clone()].trim().to_string(),
            };
            for f in self.fields(sub.body.clone()) {
                match f.key.as_str() {
                    "model" => {
                        role.model = code_spans(&f.value)
                            .first()
                            .map(|s| s.to_string())
                            .or(Some(f.value.clone()))
                    }
                    // `none`: no built-in tool (an environment's tools and `finish` remain).
                    "tools" if f.value.trim() == "none" => role.tools = Some(Vec::new()),
                    "tools" => role.tools = Some(list_values(&f.value)),
                    _ => self.near_miss(&f, &ROLE_KEYS, "role"),
                }
            }
            roles.push(role);
        }
        roles
    }

    fn stages(&mut self, sec: &Section) -> (Flow, Vec<Stage>) {
        let subs = self.outline.sections(sec.body.clone(), 3);
        // Flow fields live in the section's own text, outside every stage.
        let mut own: Vec<Range<usize>> = Vec::new();
        let mut at = sec.body.start;
        for sub in &subs {
            own.push(at..sub.heading.start);
            at = sub.body.end;
        }
        own.push(at..sec.body.end);
        let mut flow = Flow::default();
        for range in own {
            for f in self.fields(range) {
                match f.key.as_str() {
                    "orchestrator" => {
                        let role = code_spans(&f.value)
                            .first()
                            .map_or(f.value.as_str(), |s| s)
                            .trim()
                            .to_string();
                        flow.orchestrator = Some(role);
                        flow.orchestrator_pos = Some(self.pos(f.value_offset));
                    }
                    "max turns" | "turns" => match clauses::count(&f.value) {
                        Ok(n) if (1..=1000).contains(&n) => flow.max_turns = Some(n as u32),
                        _ => self.error(
                            f.value_offset,
                            "bad-flow",
                            format!("`{}` is not a number of turns between 1 and 1000", f.value),
                            "write `max turns: 12`",
                        ),
                    },
                    _ => self.near_miss(&f, &["orchestrator", "max turns"], "flow"),
                }
            }
        }
        let mut stages: Vec<Stage> = Vec::new();
        for sub in subs {
            let name = heading_name(&sub.title, true);
            if !valid_name(&name) {
                self.error(
                    sub.heading.start,
                    "bad-name",
                    format!("stage name `{}` is not a valid name", sub.title),
                    NAME_HINT,
                );
                continue;
            }
            if let Some(first) = stages.iter().find(|s| s.name == name) {
                let hint = format!(
                    "the first is at {}; give each stage its own name",
                    first.pos
                );
                self.error(
                    sub.heading.start,
                    "duplicate-stage",
                    format!("stage `{name}` is declared twice"),
                    hint,
                );
                continue;
            }
            if let Some(stage) = self.stage(name, &sub) {
                stages.push(stage);
            }
        }
        if stages.is_empty() {
            self.error(
                sec.heading.start,
                "no-stages",
                "the Stages section declares no stage",
                "add `### execute` with `- role: executor`",
            );
        }
        (flow, stages)
    }

    fn stage(&mut self, name: String, sub: &Section) -> Option<Stage> {
        let pos = self.pos(sub.heading.start);
        let mut s = Stage {
            name,
            pos: pos.clone(),
            role: String::new(),
            role_pos: pos.clone(),
            reads: Vec::new(),
            produces: Vec::new(),
            gates: Vec::new(),
            on_failure: OnFailure::Stop,
            on_failure_pos: pos.clone(),
            then: Then::Next,
            then_pos: pos,
            candidates: 1,
            select: Selection::FirstPassing,
            reflection: None,
            body: self.src[sub.body.clone()].trim().to_string(),
        };
        for f in self.fields(sub.body.clone()) {
            let at = f.value_offset;
            match f.key.as_str() {
                "role" => {
                    s.role = code_spans(&f.value)
                        .first()
                        .map_or(f.value.as_str(), |v| v)
                        .trim()
                        .to_string();
                    s.role_pos = self.pos(f.offset);
                }
                "reads" => s.reads.extend(list_values(&f.value)),
                "produces" => s.produces.extend(list_values(&f.value)),
                "gate" | "gates" => {
                    for (v, at) in Self::values(&f) {
                        let gate = self.gate(&v, at);
                        s.gates.extend(gate);
                    }
                }
                "on failure" => {
                    s.on_failure_pos = self.pos(at);
                    match clauses::on_failure(&f.value) {
                        Ok(v) => s.on_failure = v,
                        Err(ClauseError::Unbounded(why)) => self.error(
                            at,
                            "unbounded-jump",
                            why,
                            "every repetition needs `at most N times`",
                        ),
                        Err(ClauseError::Invalid(why)) => self.error(
                            at,
                            "bad-transition",
                            why,
                            "see docs/FORMAT.md, section Stages",
                        ),
                    }
                }
                "then" => {
                    s.then_pos = self.pos(at);
                    match clauses::then(&f.value) {
                        Ok(v) => s.then = v,
                        Err(ClauseError::Unbounded(why)) => self.error(
                            at,
                            "unbounded-jump",
                            why,
                            "every repetition needs `at most N times`",
                        ),
                        Err(ClauseError::Invalid(why)) => self.error(
                            at,
                            "bad-transition",
                            why,
                            "see docs/FORMAT.md, section Stages",
                        ),
                    }
                }
                "candidates" => match clauses::candidates(&f.value) {
                    Ok(n) => s.candidates = n,
                    Err(why) => self.error(at, "bad-candidates", why, "write `candidates: 3`"),
                },
                "select" | "selection" => match clauses::selection(&f.value) {
                    Ok(v) => s.select = v,
                    Err(why) => self.error(
                        at,
                        "bad-selection",
                        why,
                        "write `select: ranked by selector`",
                    ),
                },
                "reflection" => match clauses::reflection(&f.value) {
                    Ok(v) => s.reflection = Some(v),
                    Err(why) => self.error(
                        at,
                        "bad-reflection",
                        why,
                        "write ``reflection: `artifacts/reflection.md`, at most 4000 bytes``",
                    ),
                },
                _ => self.near_miss(&f, &STAGE_KEYS, "stage"),
            }
        }
        if s.role.is_empty() {
            let hint = "add `- role: executor` (a role defined under `## Roles`)";
            self.error(
                sub.heading.start,
                "missing-role",
                format!("stage `{}` names no role", s.name),
                hint,
            );
            return None;
        }
        Some(s)
    }

    fn adapters(&mut self, sec: &Section) -> Adapters {
        let mut a = Adapters::default();
        let mut ranges = vec![(
            String::new(),
            sec.body.start..self.outline.intro_end(sec.body.clone(), 3),
        )];
        ranges.extend(
            self.outline
                .sections(sec.body.clone(), 3)
                .into_iter()
                .map(|s| (s.title.to_lowercase(), s.body)),
        );
        for (kind, range) in ranges {
            if kind.contains("script") {
                let items: Vec<(String, usize)> = self
                    .outline
                    .top_items(range)
                    .map(|(_, it)| (it.lead.clone(), it.lead_offset))
                    .collect();
                for (lead, at) in items {
                    if let Some(path) = code_spans(&lead).first() {
                        let path = path.split_whitespace().last().unwrap_or(path).to_string();
                        a.scripts.push(Named {
                            name: path,
                            description: lead.clone(),
                            pos: self.pos(at),
                        });
                    }
                }
                continue;
            }
            let mcp = kind.contains("mcp");
            for f in self.fields(range) {
                let pos = self.pos(f.offset);
                if mcp || f.key == "mcp" || f.key.starts_with("mcp ") {
                    let name = f.key.trim_start_matches("mcp").trim().replace(' ', "-");
                    let command = code_spans(&f.value)
                        .first()
                        .map_or(f.value.as_str(), |s| s)
                        .to_string();
                    a.mcp_servers.push(McpServer { name, command, pos });
                } else if kind.contains("tool") || f.key == "tool" {
                    a.tools.push(Named {
                        name: f.key.replace(' ', "-"),
                        description: f.value.clone(),
                        pos,
                    });
                } else if f.key == "script" {
                    for path in list_values(&f.value) {
                        a.scripts.push(Named {
                            name: path,
                            description: String::new(),
                            pos: pos.clone(),
                        });
                    }
                }
            }
        }
        a
    }

    fn state(&mut self, sec: &Section) -> StateRules {
        let mut st = StateRules::default();
        for f in self.fields(sec.body.clone()) {
            let paths = list_values(&f.value);
            match f.key.as_str() {
                "persist" | "persists" | "persistent" => st.persist.extend(paths),
                "hidden" | "hide" | "hidden from children" => st.hidden.extend(paths),
                k if k.ends_with(" sees") => st.sees.push(RoleView {
                    role: k.trim_end_matches(" sees").trim().replace(' ', "-"),
                    paths,
                    pos: self.pos(f.offset),
                }),
                _ => self.near_miss(&f, &["persist", "hidden"], "state"),
            }
        }
        st
    }

    /// A layer may be declared in several places (the body and modules appending to it): its
    /// subsections are read as one, each field set once (a contract note may be added by each).
    fn layers(&mut self, sec: &Section) -> Vec<super::layers::Layer> {
        use super::layers::{LAYER_KINDS, Layer, read, repeatable};
        // Each kind in the order first declared: where, and its fields from every subsection.
        let mut kinds: Vec<(String, usize, Vec<Field>)> = Vec::new();
        for sub in self.outline.sections(sec.body.clone(), 3) {
            let kind = heading_name(&sub.title, false);
            let fields = self.fields(sub.body.clone());
            if !LAYER_KINDS.contains(&kind.as_str()) {
                let hint = match closest(&kind, LAYER_KINDS) {
                    Some(k) => format!("did you mean `{k}`?"),
                    None => format!("the layer kinds are: {}", LAYER_KINDS.join(", ")),
                };
                self.error(
                    sub.heading.start,
                    "unknown-layer",
                    format!("`{}` is not an interface layer kind", sub.title),
                    hint,
                );
                continue;
            }
            let Some(i) = kinds.iter().position(|(k, ..)| *k == kind) else {
                kinds.push((kind, sub.heading.start, fields));
                continue;
            };
            for f in fields {
                let first = kinds[i].2.iter().find(|g| g.key == f.key);
                match first.map(|g| g.offset) {
                    Some(at) if !repeatable(&kind, &f.key) => {
                        let hint = format!("the first is at {}; set each field once", self.pos(at));
                        self.error(
                            f.offset,
                            "duplicate-layer",
                            format!("`{}` of layer `{kind}` is set twice", f.key),
                            hint,
                        );
                    }
                    _ => kinds[i].2.push(f),
                }
            }
        }
        let mut out = Vec::new();
        for (kind, at, fields) in kinds {
            let mut errors = Vec::new();
            let parsed = read(&kind, &fields, &mut errors);
            for e in errors {
                self.error(e.offset, "bad-layer", e.message, e.hint);
            }
            if let Some(kind) = parsed {
                out.push(Layer {
                    kind,
                    pos: self.pos(at),
                });
            }
        }
        out
    }

    fn failures(&mut self, sec: &Section) -> Vec<FailureClass> {
        let mut out: Vec<FailureClass> = Vec::new();
        for f in self.fields(sec.body.clone()) {
            let name = f.key.replace(' ', "-");
            if !valid_name(&name) {
                self.error(
                    f.offset,
                    "bad-name",
                    format!("failure class `{name}` is not a valid name"),
                    NAME_HINT,
                );
                continue;
            }
            if let Some(first) = out.iter().find(|c| c.name == name) {
                let hint = format!("the first is at {}", first.pos);
                self.error(
                    f.offset,
                    "duplicate-failure",
                    format!("failure class `{name}` is listed twice"),
                    hint,
                );
                continue;
            }
            out.push(FailureClass {
                name,
                response: f.value.clone(),
                pos: self.pos(f.offset),
            });
        }
        out
    }
}

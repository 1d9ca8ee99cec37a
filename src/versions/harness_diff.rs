//! What changed between two versions of a harness, in harness terms: modules, stages, roles,
//! contract, flow — then the text of each changed section.

use std::collections::BTreeSet;

use git2::Repository;
use serde::Serialize;

use super::VersionsError;
use super::files::{Built, HarnessFiles};
use super::gitread;
use super::sections::{self, SectionDiff, Status};
use crate::harness::markdown;
use crate::harness::model::{Harness, OnFailure, Reflection, Role, Selection, Stage, Then};
use crate::harness::module::{Module, OpKind};
use crate::harness::{HarnessSource, Toggles};

/// One side of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// SHA-256 of the composed SKILL.md for the toggles: the version id.
    pub version: String,
    /// The modules those toggles enable.
    pub modules: Vec<String>,
    /// Errors the harness has on this side (0 for a harness that runs).
    pub errors: usize,
    /// Those errors, as `path:line:col: error: cause`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl Side {
    pub fn short(&self) -> &str {
        &self.version[..12.min(self.version.len())]
    }
}

/// A change to one field of a stage, role, module or the contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FieldChange {
    /// A single value changed.
    Value {
        field: String,
        old: String,
        new: String,
    },
    /// Items joined or left a list.
    List {
        field: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// Prose changed; the section diff shows how.
    Text { field: String },
}

impl FieldChange {
    pub fn field(&self) -> &str {
        match self {
            FieldChange::Value { field, .. }
            | FieldChange::List { field, .. }
            | FieldChange::Text { field } => field,
        }
    }
}

/// A module, stage or role that was added, removed or changed.
#[derive(Debug, Clone, Serialize)]
pub struct ItemChange {
    pub status: Status,
    pub name: String,
    /// Where an added stage sits, whether an added module is on by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub fields: Vec<FieldChange>,
}

/// A file of the harness folder that is not read as Markdown sections (scripts, schemas,
/// nested skills).
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: String,
    pub status: Status,
    /// Lines added and removed, for text files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<(usize, usize)>,
}

/// Everything that changed in one harness folder.
#[derive(Debug, Clone, Serialize)]
pub struct HarnessDiff {
    /// The folder (repository-relative for revisions, as given for folders).
    pub path: String,
    pub name: String,
    pub old: Option<Side>,
    pub new: Option<Side>,
    pub modules: Vec<ItemChange>,
    pub stages: Vec<ItemChange>,
    /// The stage order on both sides, when the stages both sides have moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_order: Option<(Vec<String>, Vec<String>)>,
    pub roles: Vec<ItemChange>,
    pub contract: Vec<FieldChange>,
    pub flow: Vec<FieldChange>,
    /// Front matter, adapters, state and the failure taxonomy.
    pub other: Vec<FieldChange>,
    pub files: Vec<FileChange>,
    pub sections: Vec<SectionDiff>,
}

impl HarnessDiff {
    /// Whether anything at all differs.
    pub fn is_empty(&self) -> bool {
        self.old.as_ref().map(|s| &s.version) == self.new.as_ref().map(|s| &s.version)
            && self.modules.is_empty()
            && self.files.is_empty()
            && self.sections.is_empty()
    }

    /// Whether the harness-level summary has anything to say.
    pub fn has_semantic_changes(&self) -> bool {
        !(self.modules.is_empty()
            && self.stages.is_empty()
            && self.stage_order.is_none()
            && self.roles.is_empty()
            && self.contract.is_empty()
            && self.flow.is_empty()
            && self.other.is_empty())
    }
}

/// Options shared by every harness comparison.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// The toggles both sides are composed with (default: each module's `enabled`).
    pub toggles: Toggles,
    /// Lines of context around each change in the section diffs.
    pub context: usize,
}

/// Compares two versions of one harness folder; either may be absent (added or removed).
pub fn diff(
    path: &str,
    old: Option<&HarnessFiles>,
    new: Option<&HarnessFiles>,
    opts: &DiffOptions,
) -> HarnessDiff {
    let ob = old.and_then(|f| f.build(&opts.toggles));
    let nb = new.and_then(|f| f.build(&opts.toggles));
    let side = |b: &Built| Side {
        version: b.composed.hash.clone(),
        modules: b.composed.modules.clone(),
        errors: b.diags.errors(),
        problems: b
            .diags
            .0
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{}: error: {}", d.pos, d.message))
            .collect(),
    };
    let name = nb
        .as_ref()
        .or(ob.as_ref())
        .and_then(|b| b.harness.as_ref().map(|h| h.meta.name.clone()))
        .unwrap_or_else(|| path.rsplit('/').next().unwrap_or(path).to_string());
    let mut d = HarnessDiff {
        path: path.to_string(),
        name,
        old: ob.as_ref().map(side),
        new: nb.as_ref().map(side),
        modules: Vec::new(),
        stages: Vec::new(),
        stage_order: None,
        roles: Vec::new(),
        contract: Vec::new(),
        flow: Vec::new(),
        other: Vec::new(),
        files: Vec::new(),
        sections: Vec::new(),
    };
    d.files = file_changes(old, new, ob.is_none() || nb.is_none());
    let (Some(ob), Some(nb)) = (ob, nb) else {
        return d;
    };
    d.modules = module_changes(&ob.source, &nb.source);
    if let (Some(a), Some(b)) = (&ob.harness, &nb.harness) {
        d.stages = stage_changes(a, b);
        d.stage_order = stage_order(a, b);
        d.roles = role_changes(a, b);
        d.contract = contract_changes(a, b);
        d.flow = flow_changes(a, b);
        d.other = other_changes(a, b);
    }
    let (old, new) = (old.unwrap_or_default_ref(), new.unwrap_or_default_ref());
    let mut md: BTreeSet<String> = BTreeSet::from(["SKILL.md".to_string()]);
    md.extend(old.module_paths().into_iter().map(str::to_string));
    md.extend(new.module_paths().into_iter().map(str::to_string));
    for file in md {
        let (a, b) = (old.text(&file), new.text(&file));
        if a != b {
            d.sections.extend(sections::diff_file(
                &file,
                a.as_deref(),
                b.as_deref(),
                opts.context,
            ));
        }
    }
    d
}

/// `Option<&HarnessFiles>` → `&HarnessFiles`, empty when absent.
trait OrEmpty<'a> {
    fn unwrap_or_default_ref(self) -> &'a HarnessFiles;
}

static EMPTY: std::sync::LazyLock<HarnessFiles> = std::sync::LazyLock::new(HarnessFiles::default);

impl<'a> OrEmpty<'a> for Option<&'a HarnessFiles> {
    fn unwrap_or_default_ref(self) -> &'a HarnessFiles {
        self.unwrap_or(&EMPTY)
    }
}

/// Files outside the Markdown the sections cover; every file when a side is missing.
fn file_changes(
    old: Option<&HarnessFiles>,
    new: Option<&HarnessFiles>,
    all: bool,
) -> Vec<FileChange> {
    let (old, new) = (old.unwrap_or_default_ref(), new.unwrap_or_default_ref());
    let sectioned = |p: &str| {
        !all && (p == "SKILL.md"
            || p.strip_prefix("modules/")
                .is_some_and(|n| !n.contains('/') && n.ends_with(".md")))
    };
    let paths: BTreeSet<&String> = old.files.keys().chain(new.files.keys()).collect();
    let mut out = Vec::new();
    for p in paths {
        if sectioned(p) {
            continue;
        }
        let (a, b) = (old.files.get(p), new.files.get(p));
        let status = match (a, b) {
            (None, Some(_)) => Status::Added,
            (Some(_), None) => Status::Removed,
            (Some(x), Some(y)) if x != y => Status::Changed,
            _ => continue,
        };
        let text = |b: Option<&Vec<u8>>| match b {
            None => Some(String::new()),
            Some(b) => std::str::from_utf8(b).ok().map(str::to_string),
        };
        let lines = match (text(a), text(b)) {
            (Some(x), Some(y)) => Some(sections::line_counts(&x, &y)),
            _ => None,
        };
        out.push(FileChange {
            path: p.clone(),
            status,
            lines,
        });
    }
    out
}

fn module_changes(a: &HarnessSource, b: &HarnessSource) -> Vec<ItemChange> {
    let on = |m: &Module| if m.enabled { "on" } else { "off" };
    item_changes(
        &a.modules,
        &b.modules,
        |m| &m.name,
        |_, m| (Some(format!("{} by default", on(m))), Vec::new()),
        |o, m| {
            let mut fields = Vec::new();
            value(&mut fields, "enabled by default", on(o), on(m));
            value(&mut fields, "description", &o.description, &m.description);
            list(&mut fields, "operations", &ops(o), &ops(m));
            let summary = |m: &Module| m.file.text[m.summary.clone()].trim().to_string();
            if summary(o) != summary(m) {
                fields.push(FieldChange::Text {
                    field: "summary".into(),
                });
            }
            let bodies = |m: &Module| -> Vec<String> {
                m.ops
                    .iter()
                    .map(|op| m.file.text[op.body.clone()].trim().to_string())
                    .collect()
            };
            if ops(o) == ops(m) && bodies(o) != bodies(m) {
                fields.push(FieldChange::Text {
                    field: "operation bodies".into(),
                });
            }
            fields
        },
    )
}

/// The items of two versions compared by name: those only in `new` are added (`added` gives
/// their detail and settings, from their place in `new`), those in both are changed when
/// `changed` finds fields that differ, those only in `old` are removed.
fn item_changes<T>(
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &str,
    added: impl Fn(usize, &T) -> (Option<String>, Vec<FieldChange>),
    changed: impl Fn(&T, &T) -> Vec<FieldChange>,
) -> Vec<ItemChange> {
    let find = |items: &'_ [T], n: &str| items.iter().position(|i| name(i) == n);
    let mut out = Vec::new();
    for (i, item) in new.iter().enumerate() {
        let (status, detail, fields) = match find(old, name(item)) {
            None => {
                let (detail, fields) = added(i, item);
                (Status::Added, detail, fields)
            }
            Some(j) => (Status::Changed, None, changed(&old[j], item)),
        };
        if status == Status::Added || !fields.is_empty() {
            out.push(ItemChange {
                status,
                name: name(item).to_string(),
                detail,
                fields,
            });
        }
    }
    for item in old {
        if find(new, name(item)).is_none() {
            out.push(ItemChange {
                status: Status::Removed,
                name: name(item).to_string(),
                detail: None,
                fields: Vec::new(),
            });
        }
    }
    out
}

/// A module's operations as their headings read.
fn ops(m: &Module) -> Vec<String> {
    m.ops
        .iter()
        .map(|op| match &op.kind {
            OpKind::AppendTo(s) => format!("Append to {s}"),
            OpKind::Replace(s) => format!("Replace {s}"),
            OpKind::AddRole(r) => format!("Add role {r}"),
            OpKind::ReplaceRole(r) => format!("Replace role {r}"),
            OpKind::InsertStage {
                name,
                before,
                anchor,
            } => format!(
                "Insert stage {name} {} {anchor}",
                if *before { "before" } else { "after" }
            ),
            OpKind::AmendStage(s) => format!("Amend stage {s}"),
            OpKind::AmendRole(r) => format!("Amend role {r}"),
        })
        .collect()
}

fn stage_changes(a: &Harness, b: &Harness) -> Vec<ItemChange> {
    item_changes(
        &a.stages,
        &b.stages,
        |s| &s.name,
        |i, s| {
            let place = match i.checked_sub(1).and_then(|p| b.stages.get(p)) {
                Some(prev) => format!("after {}", prev.name),
                None => "first".to_string(),
            };
            (
                Some(format!("{place} · role {}", s.role)),
                stage_fields(None, s),
            )
        },
        |o, s| stage_fields(Some(o), s),
    )
}

/// The fields of a stage that differ; for an added stage (`old` is `None`), its settings.
fn stage_fields(old: Option<&Stage>, s: &Stage) -> Vec<FieldChange> {
    let mut f = Vec::new();
    let Some(o) = old else {
        f.push(FieldChange::Value {
            field: "role".into(),
            old: String::new(),
            new: s.role.clone(),
        });
        let gates: Vec<String> = s.gates.iter().map(|g| g.text.clone()).collect();
        list(&mut f, "gates", &[], &gates);
        return f;
    };
    value(&mut f, "role", &o.role, &s.role);
    list(&mut f, "reads", &o.reads, &s.reads);
    list(&mut f, "produces", &o.produces, &s.produces);
    let gates = |s: &Stage| -> Vec<String> { s.gates.iter().map(|g| g.text.clone()).collect() };
    list(&mut f, "gates", &gates(o), &gates(s));
    value(
        &mut f,
        "on failure",
        &on_failure(&o.on_failure),
        &on_failure(&s.on_failure),
    );
    value(&mut f, "then", &then(&o.then), &then(&s.then));
    value(
        &mut f,
        "candidates",
        &o.candidates.to_string(),
        &s.candidates.to_string(),
    );
    value(&mut f, "select", &select(&o.select), &select(&s.select));
    value(
        &mut f,
        "reflection",
        &reflection(o.reflection.as_ref()),
        &reflection(s.reflection.as_ref()),
    );
    if prose(&o.body) != prose(&s.body) {
        f.push(FieldChange::Text {
            field: "instructions".into(),
        });
    }
    f
}

fn stage_order(a: &Harness, b: &Harness) -> Option<(Vec<String>, Vec<String>)> {
    let common = |x: &Harness, y: &Harness| -> Vec<String> {
        x.stages
            .iter()
            .filter(|s| y.stage(&s.name).is_some())
            .map(|s| s.name.clone())
            .collect()
    };
    (common(a, b) != common(b, a)).then(|| {
        let names = |h: &Harness| h.stages.iter().map(|s| s.name.clone()).collect();
        (names(a), names(b))
    })
}

fn role_changes(a: &Harness, b: &Harness) -> Vec<ItemChange> {
    item_changes(
        &a.roles,
        &b.roles,
        |r| &r.name,
        |_, r| {
            let mut fields = Vec::new();
            value(&mut fields, "model", "", &model(r));
            value(&mut fields, "tools", "", &tools(r));
            (
                Some(format!("model {} · tools {}", model(r), tools(r))),
                fields,
            )
        },
        |o, r| {
            let mut fields = Vec::new();
            value(&mut fields, "model", &model(o), &model(r));
            match (&o.tools, &r.tools) {
                (Some(x), Some(y)) => list(&mut fields, "tools", x, y),
                _ => value(&mut fields, "tools", &tools(o), &tools(r)),
            }
            if prose(&o.body) != prose(&r.body) {
                fields.push(FieldChange::Text {
                    field: "instructions".into(),
                });
            }
            fields
        },
    )
}

fn model(r: &Role) -> String {
    r.model.clone().unwrap_or_else(|| "(the run's)".into())
}

fn tools(r: &Role) -> String {
    r.tools
        .as_ref()
        .map_or_else(|| "(all)".into(), |t| t.join(", "))
}

fn contract_changes(a: &Harness, b: &Harness) -> Vec<FieldChange> {
    let (x, y) = (&a.contract, &b.contract);
    let mut f = Vec::new();
    let paths = |d: &[crate::harness::model::PathDecl]| -> Vec<String> {
        d.iter().map(|p| p.path.clone()).collect()
    };
    list(&mut f, "inputs", &paths(&x.inputs), &paths(&y.inputs));
    list(&mut f, "outputs", &paths(&x.outputs), &paths(&y.outputs));
    let (bx, by) = (&x.budgets, &y.budgets);
    let num = |v: Option<u64>| v.map_or_else(|| "none".into(), |n| n.to_string());
    value(&mut f, "budget tokens", &num(bx.tokens), &num(by.tokens));
    value(
        &mut f,
        "budget tool calls",
        &num(bx.tool_calls),
        &num(by.tool_calls),
    );
    value(
        &mut f,
        "budget llm calls",
        &num(bx.llm_calls),
        &num(by.llm_calls),
    );
    let secs = |d: Option<std::time::Duration>| {
        d.map_or_else(|| "none".into(), |d| format!("{} s", d.as_secs()))
    };
    value(
        &mut f,
        "budget wall time",
        &secs(bx.wall_time),
        &secs(by.wall_time),
    );
    let usd = |c: Option<f64>| c.map_or_else(|| "none".into(), |c| format!("${c:.2}"));
    value(&mut f, "budget cost", &usd(bx.cost_usd), &usd(by.cost_usd));
    let depth = |d: Option<u32>| d.map_or_else(|| "none".into(), |n| n.to_string());
    value(
        &mut f,
        "budget child depth",
        &depth(bx.child_depth),
        &depth(by.child_depth),
    );
    let write = |p: &crate::harness::model::Permissions| format!("{:?}", p.write).to_lowercase();
    value(
        &mut f,
        "permission write",
        &write(&x.permissions),
        &write(&y.permissions),
    );
    let net = |p: &crate::harness::model::Permissions| {
        if p.network { "allowed" } else { "none" }.to_string()
    };
    value(
        &mut f,
        "permission network",
        &net(&x.permissions),
        &net(&y.permissions),
    );
    let gates = |g: &[crate::harness::model::Gate]| -> Vec<String> {
        g.iter().map(|g| g.text.clone()).collect()
    };
    list(
        &mut f,
        "completion gates",
        &gates(&x.completion_gates),
        &gates(&y.completion_gates),
    );
    list(&mut f, "completion", &x.completion, &y.completion);
    list(&mut f, "stop rules", &x.stop_rules, &y.stop_rules);
    f
}

fn flow_changes(a: &Harness, b: &Harness) -> Vec<FieldChange> {
    let mut f = Vec::new();
    let none = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".into());
    value(
        &mut f,
        "orchestrator",
        &none(&a.flow.orchestrator),
        &none(&b.flow.orchestrator),
    );
    let turns = |t: Option<u32>| t.map_or_else(|| "default".into(), |n| n.to_string());
    value(
        &mut f,
        "max turns",
        &turns(a.flow.max_turns),
        &turns(b.flow.max_turns),
    );
    f
}

fn other_changes(a: &Harness, b: &Harness) -> Vec<FieldChange> {
    let mut f = Vec::new();
    let (ma, mb) = (&a.meta, &b.meta);
    value(&mut f, "name", &ma.name, &mb.name);
    value(&mut f, "description", &ma.description, &mb.description);
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    value(&mut f, "license", &opt(&ma.license), &opt(&mb.license));
    value(
        &mut f,
        "compatibility",
        &opt(&ma.compatibility),
        &opt(&mb.compatibility),
    );
    value(
        &mut f,
        "allowed-tools",
        &opt(&ma.allowed_tools),
        &opt(&mb.allowed_tools),
    );
    let kv = |m: &std::collections::BTreeMap<String, String>| -> Vec<String> {
        m.iter().map(|(k, v)| format!("{k}: {v}")).collect()
    };
    list(&mut f, "metadata", &kv(&ma.metadata), &kv(&mb.metadata));
    let names = |n: &[crate::harness::model::Named]| -> Vec<String> {
        n.iter().map(|x| x.name.clone()).collect()
    };
    list(
        &mut f,
        "adapter tools",
        &names(&a.adapters.tools),
        &names(&b.adapters.tools),
    );
    let mcp = |h: &Harness| -> Vec<String> {
        h.adapters
            .mcp_servers
            .iter()
            .map(|m| format!("{}: {}", m.name, m.command))
            .collect()
    };
    list(&mut f, "mcp servers", &mcp(a), &mcp(b));
    list(
        &mut f,
        "scripts",
        &names(&a.adapters.scripts),
        &names(&b.adapters.scripts),
    );
    list(&mut f, "state persist", &a.state.persist, &b.state.persist);
    list(&mut f, "state hidden", &a.state.hidden, &b.state.hidden);
    let sees = |h: &Harness| -> Vec<String> {
        h.state
            .sees
            .iter()
            .map(|v| format!("{} sees {}", v.role, v.paths.join(", ")))
            .collect()
    };
    list(&mut f, "state views", &sees(a), &sees(b));
    let failures = |h: &Harness| -> Vec<String> {
        h.failures
            .iter()
            .map(|c| format!("{}: {}", c.name, c.response))
            .collect()
    };
    list(&mut f, "failure taxonomy", &failures(a), &failures(b));
    f
}

fn value(f: &mut Vec<FieldChange>, field: &str, old: &str, new: &str) {
    if old != new {
        f.push(FieldChange::Value {
            field: field.into(),
            old: old.into(),
            new: new.into(),
        });
    }
}

fn list(f: &mut Vec<FieldChange>, field: &str, old: &[String], new: &[String]) {
    let added: Vec<String> = new.iter().filter(|x| !old.contains(x)).cloned().collect();
    let removed: Vec<String> = old.iter().filter(|x| !new.contains(x)).cloned().collect();
    if !added.is_empty() || !removed.is_empty() {
        f.push(FieldChange::List {
            field: field.into(),
            added,
            removed,
        });
    } else if old != new {
        f.push(FieldChange::Value {
            field: format!("{field} order"),
            old: old.join(", "),
            new: new.join(", "),
        });
    }
}

pub fn on_failure(o: &OnFailure) -> String {
    match o {
        OnFailure::Stop => "stop".into(),
        OnFailure::Continue => "continue".into(),
        OnFailure::Retry { max } => format!("retry up to {max} times"),
        OnFailure::GoTo { stage, max } => format!("go back to {stage}, at most {max} times"),
    }
}

pub fn then(t: &Then) -> String {
    match t {
        Then::Next => "next".into(),
        Then::Finish => "finish".into(),
        Then::GoTo { stage, max } => format!("go to {stage}, at most {max} times"),
    }
}

fn select(s: &Selection) -> String {
    match s {
        Selection::FirstPassing => "first passing".into(),
        Selection::RankedBy { role } => format!("ranked by {role}"),
    }
}

fn reflection(r: Option<&Reflection>) -> String {
    r.map_or_else(
        || "none".into(),
        |r| format!("`{}`, at most {} bytes", r.path, r.max_bytes),
    )
}

/// A subsection's prose: its text without the `key: value` field items, whitespace-normalised,
/// so that a changed field is not also reported as changed instructions.
fn prose(body: &str) -> String {
    let o = markdown::fragment(body);
    let fields = o.fields(body, 0..body.len());
    let mut cut: Vec<std::ops::Range<usize>> = fields
        .iter()
        .filter_map(|f| f.item.map(|i| o.items[i].range.clone()))
        .collect();
    cut.sort_by_key(|r| r.start);
    let mut out = String::new();
    let mut at = 0;
    for r in cut {
        if r.start >= at {
            out.push_str(&body[at..r.start]);
            at = r.end;
        }
    }
    out.push_str(&body[at.min(body.len())..]);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Compares the harnesses of two revisions of `repo`. `path` (repository-relative) narrows the
/// comparison to one harness folder or to the harnesses under a folder; without it, every
/// harness folder whose files differ is compared.
pub fn diff_revisions(
    repo: &Repository,
    a: &str,
    b: &str,
    path: Option<&str>,
    opts: &DiffOptions,
) -> Result<Vec<HarnessDiff>, VersionsError> {
    let ta = gitread::tree_at(repo, a)?;
    let tb = gitread::tree_at(repo, b)?;
    let fa = gitread::skill_folders(&ta);
    let fb = gitread::skill_folders(&tb);
    let path = path
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty());
    let mut folders: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    if let Some(p) = path {
        let prefix = format!("{p}/");
        folders.retain(|f| *f == p || f.starts_with(&prefix));
    }
    let mut out = Vec::new();
    for folder in folders {
        if fa.get(folder) == fb.get(folder) {
            continue;
        }
        // A skill nested in a harness (`skills/x`) changes with it; report the harness only.
        if folders_contain_parent(&fa, &fb, folder) {
            continue;
        }
        let old = gitread::files_at(repo, &ta, a, folder)?;
        let new = gitread::files_at(repo, &tb, b, folder)?;
        let d = diff(folder, old.as_ref(), new.as_ref(), opts);
        let is_harness = |f: &Option<HarnessFiles>| {
            f.as_ref()
                .and_then(|f| f.text("SKILL.md"))
                .is_some_and(|t| crate::harness::parse::is_harness(&markdown::outline(&t)))
        };
        if is_harness(&old) || is_harness(&new) {
            out.push(d);
        }
    }
    Ok(out)
}

fn folders_contain_parent(
    a: &std::collections::BTreeMap<String, git2::Oid>,
    b: &std::collections::BTreeMap<String, git2::Oid>,
    folder: &str,
) -> bool {
    a.keys()
        .chain(b.keys())
        .any(|f| f != folder && (f.is_empty() || folder.starts_with(&format!("{f}/"))))
}

//! What a child is given up front: its system message and its brief (`TASK.md`), in the form the
//! harness states (`brief: full | compact`).
//!
//! Both forms put what every child of a harness shares first (the system message, then the
//! charter in the full form) and what varies after it, least varying first: role, stage, checks,
//! the previous attempt's reflection, the run's task, and last the child's id. A provider's
//! prompt cache (llama.cpp's slot, OpenAI's automatic prefix cache) then reuses the shared start
//! of every request instead of processing it again for each child.

use super::Run;
use super::child::{Kind, Request, verifier_roles};
use crate::harness::model::{BriefForm, Harness};
use crate::harness::parse;
use crate::model::ToolSpec;

/// Where the compact form points children for the runtime's full rules.
pub const CHARTER_FILE: &str = "CHARTER.md";

/// A child's first messages.
pub struct Brief {
    /// The system message: the same for every child of one composed harness.
    pub system: String,
    /// The brief, written to the child's `TASK.md` and sent as the first user message.
    pub task: String,
}

impl Brief {
    /// What an external agent CLI gets on stdin: it has no system message, so the compact
    /// form's preamble comes first (the full form's `SKILL.md` is in the workspace).
    pub fn agent_cli_text(&self, form: BriefForm) -> String {
        match form {
            BriefForm::Full => self.task.clone(),
            BriefForm::Compact => format!("{}\n{}", self.system, self.task),
        }
    }
}

/// The system message and brief of one child.
pub fn compose(run: &Run, req: &Request<'_>) -> Brief {
    let form = run.harness.contract.brief;
    let system = match form {
        BriefForm::Full => run.composed.text.as_str().to_string(),
        BriefForm::Compact => compact_system(&run.harness),
    };
    let mut task = String::new();
    if form == BriefForm::Full {
        task.push_str("# Runtime charter\n\n");
        task.push_str(&run.charter);
        task.push('\n');
    }
    task.push_str(&assignment(form, req));
    task.push_str("# The run's task\n\n");
    task.push_str(run.task.instruction.trim());
    task.push_str("\n\n");
    task.push_str(&identity(req));
    Brief { system, task }
}

/// The built-in tools as the form offers them: the compact form keeps each description's first
/// sentence (its system message says the rest once), the parameters whole.
pub fn tool_specs(form: BriefForm, specs: Vec<ToolSpec>) -> Vec<ToolSpec> {
    if form == BriefForm::Full {
        return specs;
    }
    specs
        .into_iter()
        .map(|mut t| {
            if let Some(end) = t.description.find(". ") {
                t.description.truncate(end + 1);
            }
            t
        })
        .collect()
}

/// The `CHARTER.md` the compact form points to: the charter children of the full form get in
/// their brief.
pub fn charter_file(charter: &str) -> String {
    format!(
        "<!-- The nlah runtime charter: the rules every child follows. Written by the runtime; do not edit. -->\n\n{charter}"
    )
}

fn list(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The compact form's system message: the charter's rules in short, and the run's contract.
/// It depends on the harness alone, so every child of a run (and of every run of the same
/// composed harness) sends the same bytes first.
pub fn compact_system(h: &Harness) -> String {
    let mut t = format!(
        "You are a child agent of an nlah run of the harness `{name}`: {desc} The runtime starts one child per attempt of a stage; you do one attempt of one stage, in one role, and hand on only what you leave in files.\n\n",
        name = h.meta.name,
        desc = h.meta.description.trim(),
    );
    t.push_str(COMPACT_RULES);
    let c = &h.contract;
    t.push_str("\n## The run's contract\n\n");
    for o in &c.outputs {
        t.push_str(&format!(
            "- Output `{}`: {}\n",
            o.path,
            o.description.trim()
        ));
    }
    for g in &c.completion_gates {
        t.push_str(&format!("- Checked when the run ends: {}\n", g.text));
    }
    for line in &c.completion {
        t.push_str(&format!("- {}\n", line.trim()));
    }
    if !h.state.persist.is_empty() {
        t.push_str(&format!(
            "- State that persists across stages (read it first; update it as your stage says): {}\n",
            list(&h.state.persist)
        ));
    }
    t
}

/// The charter's rules in short (`runtime-charter/` has them in full, in `CHARTER.md`).
const COMPACT_RULES: &str = "\
## Rules (in full: `CHARTER.md`)

- Paths are relative to the workspace root, your working directory: `TASK.md` (the run's task), `repo/` (the task's files: work here), `artifacts/` (what stages produce), `scripts/` (run, never edit).
- Read `SKILL.md` (the whole harness) or `CHARTER.md` when your brief is not enough. Never edit them, `TASK.md` or other children's folders; never commit.
- Shell calls are time-limited, non-interactive and capped: save long output under `artifacts/outputs/`. Writes outside the workspace and the network are denied: report `blocked` rather than work around it.
- Hidden tests check `repo/` after the last stage: fix what the task describes; never weaken a test.
- Stop when your stage is done. Never repeat a failed action unchanged. Claim only what you checked.
- Finish with `write` to your `RESPONSE.md`: first line `status: done`, `failed` or `blocked` (plain text), then any `verdict:`/`ranking:`/`next:` line your job asks for, a short summary, `## Artifacts` and `## Evidence` (backticked paths).
";

/// Whether a list item's key is one of the role and stage fields the compact form leaves out of
/// the instructions (the brief's checks, the tool schemas and the runtime say what they mean).
fn is_field_key(key: &str) -> bool {
    let key = key.replace('-', " ");
    key != "instructions"
        && (parse::STAGE_KEYS.contains(&key.as_str()) || parse::ROLE_KEYS.contains(&key.as_str()))
}

/// A role's or stage's instructions without the fields that open them.
fn without_fields(body: &str) -> &str {
    let mut rest = body;
    let mut in_field = false;
    while let Some(line) = rest.lines().next() {
        let key = line
            .strip_prefix("- ")
            .and_then(|l| l.split_once(':'))
            .map(|(k, _)| k.trim_matches('*').trim().to_lowercase());
        let skip = line.trim().is_empty()
            || key.is_some_and(|k| is_field_key(&k))
            || (in_field && line.starts_with([' ', '\t']));
        if !skip {
            break;
        }
        in_field = !line.trim().is_empty() && (in_field || !line.starts_with([' ', '\t']));
        rest = rest[line.len()..].strip_prefix('\n').unwrap_or("");
    }
    rest
}

/// The child's role, its stage and what will be checked (or its job, for the runtime's own
/// children), and a failed attempt's reflection.
fn assignment(form: BriefForm, req: &Request<'_>) -> String {
    let s = req.stage;
    let (role_body, stage_body) = match form {
        BriefForm::Full => (req.role.body.as_str(), s.body.as_str()),
        BriefForm::Compact => (without_fields(&req.role.body), without_fields(&s.body)),
    };
    let mut t = format!("# Your role: {}\n\n{role_body}\n\n", req.role.name);
    match &req.kind {
        Kind::Stage { reflection } => {
            t.push_str(&format!(
                "# Your stage: {}\n\n{stage_body}\n\n## What the runtime will check\n\n",
                s.name
            ));
            if !s.reads.is_empty() {
                t.push_str(&format!("- Read first: {}\n", list(&s.reads)));
            }
            if !s.produces.is_empty() {
                t.push_str(&format!(
                    "- You must produce (each must exist and be non-empty): {}\n",
                    list(&s.produces)
                ));
            }
            for g in &s.gates {
                t.push_str(&format!("- Gate: {}\n", g.text));
            }
            t.push_str(
                "- Your RESPONSE.md must begin with `status: done` (or `failed`/`blocked`).\n",
            );
            if verifier_roles(s).contains(&req.role.name.as_str()) {
                t.push_str("- Your verdict is this stage's gate: after the status line, write `verdict: pass` or `verdict: fail`. You cannot see other children's folders: judge the work itself.\n");
            }
            t.push('\n');
            if let Some(text) = reflection {
                t.push_str(&format!(
                    "## What the previous attempt learned\n\n{text}\n\n"
                ));
            }
        }
        Kind::Verifier { stage, of } => t.push_str(&format!(
            "# Your job: verify stage `{stage}`\n\nChild `{of}` did the work of stage `{stage}`. Judge the result in the workspace (the task's files in `repo/`, the outputs in `artifacts/`) against the task below and the stage's instructions:\n\n{stage_body}\n\nYou cannot see other children's transcripts: judge the work, not the story about it. Run what you need to run. Begin RESPONSE.md with `status: done` and then `verdict: pass` or `verdict: fail`, and explain your verdict with evidence.\n\n",
        )),
        Kind::Ranker { candidates } => t.push_str(&format!(
            "# Your job: rank the candidates of stage `{}`\n\nSeveral children attempted this stage in parallel; these passed its gates:\n\n{candidates}\n\nCompare them against the task. Begin RESPONSE.md with `status: done` and then `ranking: <ids, best first>` (e.g. `ranking: c2, c1`), then say why.\n\n",
            s.name
        )),
        Kind::Orchestrator { choices, story } => t.push_str(&format!(
            "# Your job: choose what happens next\n\nThe run so far:\n\n{story}\n\nChoose the next stage among: {}, or `finish` to end the run. Begin RESPONSE.md with `status: done` and then `next: <stage>` (or `next: finish`), then say why in one paragraph.\n\n",
            choices
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    t
}

/// Who this child is: last, because it differs for every child.
fn identity(req: &Request<'_>) -> String {
    format!(
        "# Child task: {id}\n\nYou are a child agent of an nlah run, acting as the **{role}** role for stage `{stage}`. Your working directory is the run workspace. Your own folder is `children/{id}/`: write your report to `children/{id}/RESPONSE.md`.\n",
        id = req.id,
        role = req.role.name,
        stage = req.stage.name
    )
}

#[cfg(test)]
mod tests {
    use super::without_fields;

    #[test]
    fn leading_fields_go_and_prose_stays() {
        let body = "- role: executor\n- **reads:** `TASK.md`\n- gates:\n  - `a` exists\n  - `b` exists\n- on failure: stop\n\nDo the work.\n\n- then: a list item in prose stays\n";
        assert_eq!(
            without_fields(body),
            "Do the work.\n\n- then: a list item in prose stays\n"
        );
        let prose = "- role-play the user: a prose item\n\nMore.";
        assert_eq!(without_fields(prose), prose);
        assert_eq!(without_fields("- tools: shell\n"), "");
    }
}

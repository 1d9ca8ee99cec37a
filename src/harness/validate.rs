//! Semantic checks: what makes a parsed harness unrunnable (errors) or doubtful (warnings).

use std::collections::BTreeMap;
use std::path::Path;

use super::frontmatter::valid_name;
use super::gate::script_of;
use super::model::*;
use crate::diag::{Diagnostic, Diags, Pos, closest};

/// The model-spec prefixes the runtime knows.
pub const BACKENDS: [&str; 4] = ["openai:", "anthropic:", "command:", "replay:"];

/// Checks a harness whose folder is `root` (scripts and schemas are looked up there).
pub fn harness(h: &Harness, root: &Path, diags: &mut Diags) {
    let roles: Vec<&str> = h.roles.iter().map(|r| r.name.as_str()).collect();
    let stages: Vec<&str> = h.stages.iter().map(|s| s.name.as_str()).collect();
    let mcp: Vec<&str> = h
        .adapters
        .mcp_servers
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    let role_ref = |diags: &mut Diags, name: &str, pos: &Pos, what: String| {
        if !roles.contains(&name) {
            let hint = match closest(name, roles.iter().copied()) {
                Some(c) => {
                    format!("did you mean `{c}`? Roles are defined as `### name` under `## Roles`")
                }
                None if roles.is_empty() => "define it as `### name` under `## Roles`".to_string(),
                None => format!(
                    "define `### {name}` under `## Roles`, or use one of: {}",
                    roles.join(", ")
                ),
            };
            diags.push(
                Diagnostic::error(
                    pos.clone(),
                    "unknown-role",
                    format!("{what} names role \"{name}\", which no Roles section defines"),
                )
                .with_hint(hint),
            );
        }
    };
    let stage_ref = |diags: &mut Diags, name: &str, pos: &Pos, what: String| -> bool {
        if stages.contains(&name) {
            return true;
        }
        let hint = match closest(name, stages.iter().copied()) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("stages are: {}", stages.join(", ")),
        };
        diags.push(
            Diagnostic::error(
                pos.clone(),
                "unknown-stage",
                format!("{what} names stage \"{name}\", which is not declared"),
            )
            .with_hint(hint),
        );
        false
    };

    for role in &h.roles {
        if let Some(model) = &role.model
            && !BACKENDS.iter().any(|b| model.starts_with(b))
        {
            diags.push(
                    Diagnostic::error(role.pos.clone(), "bad-model", format!("role `{}` asks for model `{model}`, which names no backend", role.name))
                        .with_hint("write `openai:<model>`, `anthropic:<model>`, `command:<template>` or `replay:<file>`"),
                );
        }
        for tool in role.tools.iter().flatten() {
            let server = tool.split(['.', '/']).next().unwrap_or(tool);
            if !BUILTIN_TOOLS.contains(&tool.as_str()) && !mcp.contains(&server) {
                diags.push(
                    Diagnostic::error(role.pos.clone(), "unknown-tool", format!("role `{}` lists tool `{tool}`, which neither the runtime nor an MCP server provides", role.name))
                        .with_hint(format!("built-in tools: {}; declare MCP servers under `## Adapters`", BUILTIN_TOOLS.join(", "))),
                );
            }
        }
    }

    if let Some(orch) = &h.flow.orchestrator {
        let pos = h
            .flow
            .orchestrator_pos
            .clone()
            .unwrap_or_else(|| Pos::file_start(root));
        role_ref(diags, orch, &pos, "the orchestrator".to_string());
    }

    for s in &h.stages {
        role_ref(diags, &s.role, &s.role_pos, format!("stage \"{}\"", s.name));
        for g in &s.gates {
            gate(g, root, &role_ref, diags);
        }
        if let Selection::RankedBy { role } = &s.select {
            role_ref(
                diags,
                role,
                &s.pos,
                format!("the selection rule of stage \"{}\"", s.name),
            );
            if s.candidates < 2 {
                diags.push(
                    Diagnostic::warning(
                        s.pos.clone(),
                        "lonely-selection",
                        format!("stage `{}` ranks candidates but asks for only one", s.name),
                    )
                    .with_hint("add `candidates: 3`"),
                );
            }
        }
        match &s.on_failure {
            OnFailure::GoTo { stage, .. } if stage == &s.name => diags.push(
                Diagnostic::error(
                    s.on_failure_pos.clone(),
                    "self-jump",
                    format!("stage `{}` jumps to itself on failure", s.name),
                )
                .with_hint("write `retry up to N times` instead"),
            ),
            OnFailure::GoTo { stage, .. } => {
                stage_ref(
                    diags,
                    stage,
                    &s.on_failure_pos,
                    format!("the on-failure jump of stage \"{}\"", s.name),
                );
            }
            _ => {}
        }
        if let Then::GoTo { stage, .. } = &s.then {
            stage_ref(
                diags,
                stage,
                &s.then_pos,
                format!("the `then` of stage \"{}\"", s.name),
            );
        }
    }
    failure_cycles(h, diags);

    for g in &h.contract.completion_gates {
        gate(g, root, &role_ref, diags);
    }
    for l in &h.layers {
        if let super::layers::LayerKind::CodeVerifier(v) = &l.kind
            && !v.script.is_empty()
            && !root.join(&v.script).is_file()
        {
            diags.push(
                Diagnostic::error(
                    l.pos.clone(),
                    "missing-script",
                    format!("the code verifier `{}` does not exist", v.script),
                )
                .with_hint(format!("create it in {}", root.display())),
            );
        }
    }
    for script in &h.adapters.scripts {
        if !root.join(&script.name).is_file() {
            diags.push(
                Diagnostic::error(
                    script.pos.clone(),
                    "missing-script",
                    format!("script `{}` does not exist", script.name),
                )
                .with_hint(format!("create it in {}", root.display())),
            );
        }
    }
    for tool in &h.adapters.tools {
        if !BUILTIN_TOOLS.contains(&tool.name.as_str()) && !mcp.contains(&tool.name.as_str()) {
            diags.push(
                Diagnostic::error(
                    tool.pos.clone(),
                    "unknown-tool",
                    format!("tool `{}` is not provided by the runtime", tool.name),
                )
                .with_hint(format!("built-in tools: {}", BUILTIN_TOOLS.join(", "))),
            );
        }
    }
    for server in &h.adapters.mcp_servers {
        if !valid_name(&server.name) || server.command.trim().is_empty() {
            diags.push(
                Diagnostic::error(
                    server.pos.clone(),
                    "bad-mcp",
                    "an MCP server needs a name and a command line",
                )
                .with_hint("write ``- tree-sitter: `python3 scripts/ts_server.py` ``"),
            );
        }
    }
    for view in &h.state.sees {
        role_ref(diags, &view.role, &view.pos, "a state rule".to_string());
    }
    if h.contract.budgets == Budgets::default()
        && h.contract.outputs.is_empty()
        && h.contract.inputs.is_empty()
    {
        return;
    }
    if h.contract.budgets.tokens.is_none() && h.contract.budgets.cost_usd.is_none() {
        let pos = h
            .contract
            .inputs
            .first()
            .map(|d| d.pos.clone())
            .unwrap_or_else(|| Pos::file_start(root));
        diags.push(
            Diagnostic::warning(
                pos,
                "no-budget",
                "the contract sets neither a token nor a cost budget",
            )
            .with_hint("add `- tokens: 400k` under `### Budgets` so runaway runs stop"),
        );
    }
}

fn gate(
    g: &Gate,
    root: &Path,
    role_ref: &dyn Fn(&mut Diags, &str, &Pos, String),
    diags: &mut Diags,
) {
    match &g.kind {
        GateKind::Command { command, .. } => {
            if let Some(script) = script_of(command)
                && !root.join(script).is_file()
            {
                diags.push(
                    Diagnostic::error(
                        g.pos.clone(),
                        "missing-script",
                        format!("gate runs `{script}`, which does not exist in the harness folder"),
                    )
                    .with_hint(format!("create {}", root.join(script).display())),
                );
            }
        }
        GateKind::Schema { schema, .. } => {
            let path = root.join(schema);
            match std::fs::read_to_string(&path) {
                Err(_) => diags.push(
                    Diagnostic::error(
                        g.pos.clone(),
                        "missing-schema",
                        format!("schema `{schema}` does not exist in the harness folder"),
                    )
                    .with_hint(format!("create {}", path.display())),
                ),
                Ok(text) => {
                    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
                        diags.push(
                            Diagnostic::error(
                                g.pos.clone(),
                                "bad-schema",
                                format!("schema `{schema}` is not JSON: {e}"),
                            )
                            .with_hint("a schema is a JSON Schema document"),
                        );
                    }
                }
            }
        }
        GateKind::Verifier { role } => role_ref(diags, role, &g.pos, "a verifier gate".to_string()),
        _ => {}
    }
}

/// Failure jumps must not form a cycle: failing over and over between stages is never progress.
fn failure_cycles(h: &Harness, diags: &mut Diags) {
    let edges: BTreeMap<&str, &str> = h
        .stages
        .iter()
        .filter_map(|s| match &s.on_failure {
            OnFailure::GoTo { stage, .. } if stage != &s.name => {
                Some((s.name.as_str(), stage.as_str()))
            }
            _ => None,
        })
        .collect();
    let mut reported: Vec<&str> = Vec::new();
    for s in &h.stages {
        let mut path = vec![s.name.as_str()];
        let mut at = s.name.as_str();
        while let Some(&next) = edges.get(at) {
            if next == s.name {
                if !path.iter().any(|p| reported.contains(p)) {
                    reported.extend(path.iter().copied());
                    path.push(next);
                    diags.push(
                        Diagnostic::error(s.on_failure_pos.clone(), "failure-cycle", format!("failure jumps form a cycle: {}", path.join(" -> ")))
                            .with_hint("end the chain with `stop` or a bounded `retry`; loops belong in `then: go to …`"),
                    );
                }
                break;
            }
            if path.contains(&next) {
                break;
            }
            path.push(next);
            at = next;
        }
    }
}

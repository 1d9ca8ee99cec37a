//! The typed harness: what the runtime executes, with source positions for every clause.

use std::time::Duration;

use serde::Serialize;

use super::frontmatter::SkillMeta;
use crate::diag::Pos;

#[derive(Debug, Clone, Serialize)]
pub struct Harness {
    pub meta: SkillMeta,
    pub contract: Contract,
    pub roles: Vec<Role>,
    pub flow: Flow,
    pub stages: Vec<Stage>,
    pub adapters: Adapters,
    pub state: StateRules,
    pub failures: Vec<FailureClass>,
    /// `## Interface layers`: what the runtime runs between a child and its tools.
    pub layers: Vec<super::layers::Layer>,
}

impl Harness {
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// A path the contract names, with what it is for.
#[derive(Debug, Clone, Serialize)]
pub struct PathDecl {
    pub path: String,
    pub description: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Contract {
    pub inputs: Vec<PathDecl>,
    pub outputs: Vec<PathDecl>,
    pub budgets: Budgets,
    pub permissions: Permissions,
    /// Gates checked when the run finishes.
    pub completion_gates: Vec<Gate>,
    /// Completion conditions in words, for the children.
    pub completion: Vec<String>,
    pub stop_rules: Vec<String>,
    /// How much each child's first request carries (`brief: full | compact`).
    pub brief: BriefForm,
}

/// What a child is given up front. `Full` is the NLAH paper's form: the composed `SKILL.md` as
/// the system message and the whole runtime charter in the brief. `Compact` gives the child its
/// role, its stage, what will be checked and the task, and points it to `SKILL.md` and
/// `CHARTER.md` in the workspace, so that a small model's context holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BriefForm {
    #[default]
    Full,
    Compact,
}

impl BriefForm {
    /// The values a harness may write, as the diagnostics name them.
    pub const ALLOWED: &'static str = "`full` or `compact`";

    pub fn parse(value: &str) -> Option<BriefForm> {
        match value.trim().trim_end_matches('.').to_lowercase().as_str() {
            "full" => Some(BriefForm::Full),
            "compact" => Some(BriefForm::Compact),
            _ => None,
        }
    }
}

/// Limits the runtime enforces in code; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Budgets {
    pub tokens: Option<u64>,
    pub tool_calls: Option<u64>,
    pub llm_calls: Option<u64>,
    #[serde(with = "secs")]
    pub wall_time: Option<Duration>,
    pub cost_usd: Option<f64>,
    pub child_depth: Option<u32>,
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteScope {
    Workspace,
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct Permissions {
    pub write: WriteScope,
    pub network: bool,
    /// Resource limits per process of every command (`memory`, `processes`, `cpu time`, `file
    /// size`); the defaults of [`crate::sandbox::Limits`] unless the contract says otherwise.
    pub limits: crate::sandbox::Limits,
}

impl Default for Permissions {
    fn default() -> Self {
        Permissions {
            write: WriteScope::Workspace,
            network: false,
            limits: crate::sandbox::Limits::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Role {
    pub name: String,
    pub pos: Pos,
    pub model: Option<String>,
    pub tools: Option<Vec<String>>,
    /// The role's subsection as written: its instructions.
    pub body: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Flow {
    pub orchestrator: Option<String>,
    pub orchestrator_pos: Option<Pos>,
    pub max_turns: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: String,
    pub pos: Pos,
    pub role: String,
    pub role_pos: Pos,
    pub reads: Vec<String>,
    pub produces: Vec<String>,
    pub gates: Vec<Gate>,
    pub on_failure: OnFailure,
    pub on_failure_pos: Pos,
    pub then: Then,
    pub then_pos: Pos,
    pub candidates: u32,
    pub select: Selection,
    pub reflection: Option<Reflection>,
    /// The stage's subsection as written: its instructions.
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OnFailure {
    Stop,
    Continue,
    Retry { max: u32 },
    GoTo { stage: String, max: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Then {
    Next,
    Finish,
    GoTo { stage: String, max: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Selection {
    FirstPassing,
    RankedBy { role: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Reflection {
    pub path: String,
    pub max_bytes: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub kind: GateKind,
    /// The gate as written.
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GateKind {
    Exists {
        path: String,
    },
    NonEmpty {
        path: String,
    },
    Command {
        command: String,
        exit_code: i32,
        timeout_secs: u64,
    },
    Schema {
        path: String,
        schema: String,
    },
    Matches {
        path: String,
        regex: String,
    },
    Verifier {
        role: String,
    },
    Evidence {
        path: String,
    },
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Adapters {
    pub tools: Vec<Named>,
    pub mcp_servers: Vec<McpServer>,
    pub scripts: Vec<Named>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub name: String,
    pub description: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, Serialize)]
pub struct McpServer {
    pub name: String,
    pub command: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StateRules {
    pub persist: Vec<String>,
    pub hidden: Vec<String>,
    pub sees: Vec<RoleView>,
}

/// The only paths children of a role see.
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub role: String,
    pub paths: Vec<String>,
    pub pos: Pos,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureClass {
    pub name: String,
    pub response: String,
    pub pos: Pos,
}

/// The built-in tools of the child agent loop.
pub const BUILTIN_TOOLS: [&str; 4] = ["shell", "read", "write", "edit"];

//! The built-in tools of the child agent loop: `shell`, `read`, `write`, `edit`.
//!
//! Every call answers with a [`ToolOutput`], never an error or a panic: malformed or mistyped
//! arguments and unknown tools get a correction the model can act on.
//!
//! **What hiding covers.** `hidden` and `visible_only` (the harness's State rules `hidden` and
//! `ROLE sees`) are enforced by `read`, `write` and `edit` only. The `shell` tool runs under
//! Landlock, which confines writing, not reading: a command can `cat` any file of the workspace,
//! hidden or not. Where hiding matters the engine keeps the files outside the workspace (the
//! task's hidden tests never enter it).

mod args;
mod edit;
pub mod finish;
mod read;
mod schema;
mod shell;
mod visibility;
mod write;

use std::path::PathBuf;
use std::time::Duration;

use self::args::{line_arg, parse_args, text_arg};
use self::schema::TOOLS;
use crate::sandbox::Confinement;
use crate::sandbox::session::ShellSession;

pub use self::schema::builtin_specs;

/// Starts `ctx`'s shell ahead of the first `shell` call, to be awaited beside the first model
/// call; `None` where there is nothing to start.
pub fn warm_shell(ctx: &ToolContext) -> Option<impl Future<Output = ()> + '_> {
    shell::warm_up(ctx)
}

/// Output kept per call unless the context says otherwise.
pub const DEFAULT_OUTPUT_CAP: usize = 16 * 1024;
/// Time limit of one shell command unless the context says otherwise.
pub const DEFAULT_SHELL_TIMEOUT: Duration = Duration::from_secs(120);

/// The names of the built-in tools.
pub const BUILTIN_TOOLS: [&str; 4] = ["shell", "read", "write", "edit"];

/// Where and how a child's tools act.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub workspace: PathBuf,
    /// Workspace-relative paths children may not see, e.g. `history/`, `tests/`.
    pub hidden: Vec<String>,
    /// If set, the only workspace-relative paths readable besides `own_dir`.
    pub visible_only: Option<Vec<String>>,
    /// The child's own folder, e.g. `children/execute-1`.
    pub own_dir: String,
    pub confinement: Confinement,
    pub shell_timeout: Duration,
    /// Bytes of output kept per call (head and tail).
    pub output_cap: usize,
    /// The child's long-lived shell, started beside its first model call ([`warm_shell`]) or by
    /// its first `shell` call (shared by the context's clones, which are the same child's).
    pub shell: ShellHandle,
}

/// A child's shell session, if one was started; see [`crate::sandbox::session`].
#[derive(Clone, Default)]
pub struct ShellHandle(pub std::sync::Arc<tokio::sync::Mutex<Option<ShellSession>>>);

impl std::fmt::Debug for ShellHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShellHandle")
    }
}

impl ToolContext {
    /// A context with the defaults: nothing hidden, writes confined to the workspace, no network.
    pub fn new(workspace: impl Into<PathBuf>, own_dir: impl Into<String>) -> Self {
        let workspace = workspace.into();
        ToolContext {
            confinement: Confinement::workspace(workspace.clone()),
            workspace,
            hidden: Vec::new(),
            visible_only: None,
            own_dir: own_dir.into(),
            shell_timeout: DEFAULT_SHELL_TIMEOUT,
            output_cap: DEFAULT_OUTPUT_CAP,
            shell: ShellHandle::default(),
        }
    }
}

/// The answer to one tool call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
    /// The shell command's exit code (None when killed by a signal, and for other tools).
    pub exit_code: Option<i32>,
    /// Part of the output was cut.
    pub truncated: bool,
}

impl ToolOutput {
    pub fn ok(content: impl Into<String>) -> Self {
        ToolOutput {
            content: content.into(),
            is_error: false,
            exit_code: None,
            truncated: false,
        }
    }

    pub fn error(content: impl Into<String>) -> Self {
        ToolOutput {
            content: content.into(),
            is_error: true,
            exit_code: None,
            truncated: false,
        }
    }
}

/// What a model probably meant by a tool name that does not exist.
fn guess_tool(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    // `functions.shell`, `tools:read`: a namespace the model made up.
    let n = n.rsplit(['.', ':', '/']).next().unwrap_or(&n);
    if let Some(t) = BUILTIN_TOOLS.iter().find(|t| **t == n) {
        return Some(t);
    }
    match n {
        "bash" | "sh" | "run" | "exec" | "execute" | "terminal" | "command" | "run_command"
        | "shell_command" | "cmd" => Some("shell"),
        "cat" | "open" | "view" | "read_file" | "open_file" | "view_file" | "ls" | "list" => {
            Some("read")
        }
        "create" | "save" | "write_file" | "create_file" | "save_file" => Some("write"),
        "str_replace" | "replace" | "patch" | "edit_file" | "str_replace_editor" | "modify" => {
            Some("edit")
        }
        _ => None,
    }
}

/// Runs one tool call. Never fails: problems come back as `is_error` outputs whose text says how
/// to call the tool correctly.
pub async fn call(ctx: &ToolContext, name: &str, arguments: &str) -> ToolOutput {
    let Some(def) = TOOLS.iter().find(|d| d.name == name) else {
        let hint = guess_tool(name)
            .map(|g| format!(" (did you mean {g:?}?)"))
            .unwrap_or_default();
        return ToolOutput::error(format!(
            "unknown tool {name:?}{hint}; the built-in tools are shell {}, read {}, write {}, edit {}",
            TOOLS[0].usage, TOOLS[1].usage, TOOLS[2].usage, TOOLS[3].usage
        ));
    };
    let args = match parse_args(def, arguments) {
        Ok(a) => a,
        Err(msg) => return ToolOutput::error(msg),
    };
    match def.name {
        "shell" => shell::shell(ctx, text_arg(&args, "command")).await,
        "read" => read::read(
            ctx,
            text_arg(&args, "path"),
            line_arg(&args, "start_line"),
            line_arg(&args, "end_line"),
        ),
        "write" => write::write(ctx, text_arg(&args, "path"), text_arg(&args, "content")),
        _ => edit::edit(
            ctx,
            text_arg(&args, "path"),
            text_arg(&args, "old"),
            text_arg(&args, "new"),
        ),
    }
}

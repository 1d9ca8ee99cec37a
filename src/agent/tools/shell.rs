//! The `shell` tool: a bash command run confined in the workspace.

use std::fmt::Write as _;
use std::time::Duration;

use super::schema::TOOLS;
use super::{ToolContext, ToolOutput};
use crate::sandbox::EnvAllowList;
use crate::sandbox::exec::{self, ShellCommand};

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

pub(super) async fn shell(ctx: &ToolContext, command: &str) -> ToolOutput {
    if command.trim().is_empty() {
        return ToolOutput::error(format!(
            "\"command\" is empty; shell expects {}",
            TOOLS[0].usage
        ));
    }
    let allow = EnvAllowList::default();
    let run = ShellCommand {
        command,
        cwd: &ctx.workspace,
        confinement: &ctx.confinement,
        allow_env: &allow,
        timeout: ctx.shell_timeout,
        output_cap: ctx.output_cap,
    };
    let r = match exec::run(&run).await {
        Ok(r) => r,
        Err(e) => return ToolOutput::error(e.to_string()),
    };
    let mut content = if r.output.is_empty() {
        "(no output)".to_string()
    } else {
        r.output
    };
    if !content.ends_with('\n') {
        content.push('\n');
    }
    if r.output_abandoned {
        content
            .push_str("[output of background processes that outlived the command was dropped]\n");
    }
    if let Some(limit) = r.killed_after {
        let _ = writeln!(content, "[killed after {}]", secs(limit));
    }
    match (r.exit_code, r.signal) {
        (Some(code), _) => {
            let _ = write!(content, "exit code: {code}");
        }
        (None, Some(sig)) => {
            let _ = write!(content, "exit code: none (terminated by signal {sig})");
        }
        (None, None) => content.push_str("exit code: unknown"),
    }
    ToolOutput {
        is_error: r.exit_code != Some(0) || r.killed_after.is_some(),
        exit_code: r.exit_code,
        truncated: r.omitted_bytes > 0,
        content,
    }
}

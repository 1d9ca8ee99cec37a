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
    if r.killed_after.is_none()
        && let Some(note) = limit_hit(r.exit_code, r.signal, &ctx.confinement.limits)
    {
        let _ = writeln!(content, "[{note}]");
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

/// Which resource limit ended the command, from the signal the kernel sends for it (or the exit
/// code 128 + signal with which bash passes it on). Memory leaves no such trace: an allocation
/// fails inside the program.
fn limit_hit(
    code: Option<i32>,
    signal: Option<i32>,
    limits: &crate::sandbox::Limits,
) -> Option<String> {
    let sig = signal.or(code.filter(|c| *c > 128).map(|c| c - 128))?;
    match sig {
        libc::SIGXCPU => Some(format!(
            "the CPU time limit ({} s per process) was hit",
            limits.cpu_seconds.unwrap_or_default()
        )),
        libc::SIGXFSZ => Some(format!(
            "the file size limit ({} MiB per file) was hit",
            limits.file_bytes.unwrap_or_default() >> 20
        )),
        // The command's first process is spared SIGXCPU (it leads a PID namespace) and is
        // killed at the hard limit, a second later.
        libc::SIGKILL => limits.cpu_seconds.map(|s| {
            format!(
                "killed by SIGKILL: the CPU time limit ({s} s per process, {} s at most) or \
                 another kill",
                s + 1
            )
        }),
        _ => None,
    }
}

//! The `shell` tool: a bash command run confined in the workspace.

use std::fmt::Write as _;
use std::time::Duration;

use super::schema::TOOLS;
use super::{ToolContext, ToolOutput};
use crate::sandbox::EnvAllowList;
use crate::sandbox::exec::{self, ShellCommand, ShellResult};
use crate::sandbox::session::ShellSession;

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
    let (r, restarted) = if ShellSession::available(&ctx.confinement) {
        match in_session(ctx, command, &allow).await {
            Ok(x) => x,
            Err(e) => return ToolOutput::error(e.to_string()),
        }
    } else {
        let run = ShellCommand {
            command,
            cwd: &ctx.workspace,
            confinement: &ctx.confinement,
            allow_env: &allow,
            timeout: ctx.shell_timeout,
            output_cap: ctx.output_cap,
        };
        match exec::run(&run).await {
            Ok(r) => (r, false),
            Err(e) => return ToolOutput::error(e.to_string()),
        }
    };
    let mut content = String::new();
    if restarted {
        content.push_str(
            "[a new shell: the working folder and variables of the previous one are gone]\n",
        );
    }
    content.push_str(if r.output.is_empty() {
        "(no output)"
    } else {
        &r.output
    });
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

/// Starts the child's shell before its first `shell` call, to run beside the first model call
/// (a child's model calls are its longest waits), so that call finds `bash` running instead of
/// waiting for it and its confinement to start. The shell's slot is taken here, before the
/// start, so a call made meanwhile waits for this shell rather than starting another; a start
/// that fails leaves the slot empty, and the first call tries again and says why. `None` where
/// calls run without a session, a shell is there already, or a writable path does not exist yet:
/// a shell's rules cover the paths there when it starts, and a declared output file the child
/// writes before its first command must stay writable to that command, as it is when the shell
/// starts with it.
pub(super) fn warm_up(ctx: &ToolContext) -> Option<impl Future<Output = ()> + '_> {
    // The scratch folder is made by the start itself, before the rules.
    let scratch = ctx.workspace.join(crate::sandbox::Scratch::DIR);
    let missing = |p: &std::path::PathBuf| *p != scratch && !p.exists();
    if !ShellSession::available(&ctx.confinement) || ctx.confinement.writable.iter().any(missing) {
        return None;
    }
    let mut slot = ctx.shell.0.clone().try_lock_owned().ok()?;
    if slot.is_some() {
        return None;
    }
    Some(async move {
        let allow = EnvAllowList::default();
        if let Ok(s) = ShellSession::start(&ctx.workspace, &ctx.confinement, &allow).await {
            *slot = Some(s);
        }
    })
}

/// Runs `command` in the child's shell, starting one when there is none (or the last ended).
/// Returns the result and whether a shell was started after an earlier one ended (`exit`, a time
/// limit): the working folder and variables then start afresh.
async fn in_session(
    ctx: &ToolContext,
    command: &str,
    allow: &EnvAllowList,
) -> Result<(ShellResult, bool), crate::sandbox::SandboxError> {
    let mut slot = ctx.shell.0.lock().await;
    // A shell that ended (or whose last call was cancelled) stays in the slot, unusable, so
    // that the next call can say that a new one replaced it.
    let restarted = slot.as_ref().is_some_and(|s| !s.usable());
    let session = match slot.take() {
        Some(s) if s.usable() => slot.insert(s),
        _ => slot.insert(ShellSession::start(&ctx.workspace, &ctx.confinement, allow).await?),
    };
    let run = session
        .run(command, ctx.shell_timeout, ctx.output_cap)
        .await?;
    Ok((run.result, restarted))
}

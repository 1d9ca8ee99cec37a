//! The `write` tool: a whole file created or replaced.

use super::{ToolContext, ToolOutput};
use crate::atomic;

pub(super) fn count_lines(s: &str) -> usize {
    s.lines().count()
}

pub(super) fn write(ctx: &ToolContext, path: &str, content: &str) -> ToolOutput {
    let r = match ctx.resolve_file(path) {
        Ok(r) => r,
        Err(e) => return ToolOutput::error(e),
    };
    if r.abs.is_dir() {
        return ToolOutput::error(format!("`{}` is a folder; give a file path", r.rel));
    }
    let existed = r.abs.exists();
    match atomic::write_keeping_mode(&r.abs, content.as_bytes()) {
        Ok(()) => ToolOutput::ok(format!(
            "{} `{}`: {} bytes, {} lines",
            if existed { "replaced" } else { "created" },
            r.rel,
            content.len(),
            count_lines(content)
        )),
        Err(e) => ToolOutput::error(format!("cannot write `{}`: {e}", r.rel)),
    }
}

//! The `read` tool: a text file, or a part of it by lines, or a folder's entries.

use std::fmt::Write as _;

use super::visibility::Resolved;
use super::{ToolContext, ToolOutput};
use crate::sandbox::exec;

/// Larger files are refused by `read` and `edit` (the shell can page through them).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// A NUL byte within this many leading bytes marks a file as binary.
const BINARY_SNIFF: usize = 8000;

fn is_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(BINARY_SNIFF).any(|b| *b == 0)
}

pub(super) fn read_bytes(r: &Resolved) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(&r.abs).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("`{}` does not exist", r.rel),
        _ => format!("cannot read `{}`: {e}", r.rel),
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "`{}` is too large ({} bytes) for this tool; look at parts of it with the shell tool \
             (head, tail, sed -n '100,200p', grep -n)",
            r.rel,
            meta.len()
        ));
    }
    let bytes = std::fs::read(&r.abs).map_err(|e| format!("cannot read `{}`: {e}", r.rel))?;
    if is_binary(&bytes) {
        return Err(format!(
            "`{}` is a binary file ({} bytes) and cannot be shown as text; inspect it with the \
             shell tool (e.g. `file {0}`, `xxd {0} | head`)",
            r.rel,
            bytes.len()
        ));
    }
    Ok(bytes)
}

pub(super) fn read(
    ctx: &ToolContext,
    path: &str,
    start: Option<usize>,
    end: Option<usize>,
) -> ToolOutput {
    let r = match ctx.resolve(path) {
        Ok(r) => r,
        Err(e) => return ToolOutput::error(e),
    };
    if r.abs.is_dir() {
        return list_dir(ctx, &r);
    }
    let r = match ctx.resolve_file(path) {
        Ok(r) => r,
        Err(e) => return ToolOutput::error(e),
    };
    let bytes = match read_bytes(&r) {
        Ok(b) => b,
        Err(e) => return ToolOutput::error(e),
    };
    let (text, lossy) = match String::from_utf8(bytes) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return ToolOutput::error(format!(
            "end_line ({e}) is before start_line ({s}); both are 1-based and inclusive"
        ));
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let first = start.unwrap_or(1);
    if text.is_empty() {
        return ToolOutput::ok(format!("(`{}` is empty)", r.rel));
    }
    if first > lines.len() {
        return ToolOutput::error(format!(
            "`{}` has {} lines; start_line {first} is past the end",
            r.rel,
            lines.len()
        ));
    }
    let last = end.unwrap_or(lines.len()).min(lines.len());
    let selected = &lines[first - 1..last];
    let (mut content, truncated) = cap_lines(selected, first, ctx.output_cap);
    if lossy {
        content.push_str("\n[the file is not valid UTF-8; invalid bytes are shown as �]");
    }
    ToolOutput {
        truncated,
        ..ToolOutput::ok(content)
    }
}

/// Caps text made of whole lines, keeping head and tail lines; the note names the omitted lines
/// so that they can be read with a line range.
fn cap_lines(lines: &[&str], first_line: usize, cap: usize) -> (String, bool) {
    let total: usize = lines.iter().map(|l| l.len()).sum();
    if total <= cap {
        return (lines.concat(), false);
    }
    let (mut head_n, mut used) = (0, 0);
    while head_n < lines.len() && used + lines[head_n].len() <= cap / 2 {
        used += lines[head_n].len();
        head_n += 1;
    }
    let mut tail_n = 0;
    let mut tail_used = 0;
    while tail_n < lines.len() - head_n
        && tail_used + lines[lines.len() - 1 - tail_n].len() <= cap - cap / 2
    {
        tail_used += lines[lines.len() - 1 - tail_n].len();
        tail_n += 1;
    }
    let omitted = total - used - tail_used;
    let from = first_line + head_n;
    let to = first_line + lines.len() - tail_n - 1;
    let mut out = lines[..head_n].concat();
    if head_n == 0 && tail_n == 0 {
        // One huge line: cut inside it.
        let mut c = exec::Capture::new(cap);
        c.push(lines.concat().as_bytes());
        return (c.finish().0, true);
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "[… {omitted} bytes omitted (lines {from}–{to}); read them with start_line and end_line …]"
    );
    out.push_str(&lines[lines.len() - tail_n..].concat());
    (out, true)
}

fn list_dir(ctx: &ToolContext, r: &Resolved) -> ToolOutput {
    let entries = match std::fs::read_dir(&r.abs) {
        Ok(e) => e,
        Err(e) => return ToolOutput::error(format!("cannot list `{}`: {e}", r.rel)),
    };
    let base = if r.rel == "." {
        String::new()
    } else {
        format!("{}/", r.rel)
    };
    let mut names: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !ctx.listable(&format!("{base}{name}")) {
            continue;
        }
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
            || (entry.file_type().map(|t| t.is_symlink()).unwrap_or(false)
                && entry.path().is_dir());
        names.push(if is_dir { format!("{name}/") } else { name });
    }
    names.sort();
    if names.is_empty() {
        return ToolOutput::ok(format!("(`{}` is an empty folder)", r.rel));
    }
    let lines: Vec<String> = names.into_iter().map(|n| n + "\n").collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (content, truncated) = cap_lines(&refs, 1, ctx.output_cap);
    ToolOutput {
        truncated,
        ..ToolOutput::ok(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_lines_names_omitted_lines() {
        let lines: Vec<String> = (1..=100).map(|i| format!("line {i}\n")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (out, cut) = cap_lines(&refs, 1, 100);
        assert!(cut);
        assert!(out.starts_with("line 1\n"));
        assert!(out.ends_with("line 100\n"));
        assert!(out.contains("omitted (lines "), "{out}");
    }
}

//! The `edit` tool: one exact piece of text replaced in a file.

use super::read::read_bytes;
use super::write::count_lines;
use super::{ToolContext, ToolOutput};
use crate::atomic;

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// 1-based line numbers where each match of `needle` starts.
fn match_lines(text: &str, needle: &str) -> Vec<usize> {
    text.match_indices(needle)
        .map(|(i, _)| text[..i].matches('\n').count() + 1)
        .collect()
}

fn squash_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn edit(ctx: &ToolContext, path: &str, old: &str, new: &str) -> ToolOutput {
    let r = match ctx.resolve_file(path) {
        Ok(r) => r,
        Err(e) => return ToolOutput::error(e),
    };
    if r.abs.is_dir() {
        return ToolOutput::error(format!("`{}` is a folder; edit changes a file", r.rel));
    }
    if old.is_empty() {
        return ToolOutput::error(
            "\"old\" is empty; give the exact text to replace (to create or replace a whole file, \
             use write)",
        );
    }
    if old == new {
        return ToolOutput::error("\"old\" and \"new\" are the same; nothing would change");
    }
    let bytes = match read_bytes(&r) {
        Ok(b) => b,
        Err(e) => return ToolOutput::error(e),
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return ToolOutput::error(format!(
            "`{}` is not valid UTF-8; edit only changes text files (use write or the shell)",
            r.rel
        ));
    };
    let at = match_lines(&text, old);
    match at.len() {
        0 => {
            let hint = if squash_ws(&text).contains(&squash_ws(old)) {
                " It does match when whitespace is ignored: copy the exact indentation and line \
                 breaks from the file (read it first)."
            } else if text.contains("\r\n") && !old.contains("\r\n") && old.contains('\n') {
                " The file uses CRLF line endings."
            } else {
                " Read the file and copy the text exactly, including whitespace."
            };
            ToolOutput::error(format!(
                "\"old\" was not found in `{}`; nothing changed.{hint}",
                r.rel
            ))
        }
        1 => {
            let updated = text.replacen(old, new, 1);
            if let Err(e) = atomic::write_keeping_mode(&r.abs, updated.as_bytes()) {
                return ToolOutput::error(format!("cannot write `{}`: {e}", r.rel));
            }
            let (old_n, new_n) = (count_lines(old), count_lines(new));
            ToolOutput::ok(format!(
                "edited `{}`: replaced {old_n} {} starting at line {} with {new_n} {}",
                r.rel,
                plural(old_n, "line"),
                at[0],
                plural(new_n, "line"),
            ))
        }
        n => {
            let shown: Vec<String> = at.iter().take(10).map(|l| l.to_string()).collect();
            ToolOutput::error(format!(
                "\"old\" occurs {n} times in `{}` (at lines {}); nothing changed. Include more \
                 surrounding lines in \"old\" so that it matches exactly once.",
                r.rel,
                shown.join(", ")
            ))
        }
    }
}

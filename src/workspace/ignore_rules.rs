//! Which new paths a commit leaves out, by git's rules: the `.gitignore` of each folder (the
//! nearest folder's first), then the repository's `info/exclude`, then the user's excludes file
//! (`core.excludesFile`, read once per process). Matched with the `ignore` crate (ripgrep's
//! gitignore matcher) instead of asking libgit2, which rereads its configuration and every
//! ignore file above a path for each path it is asked about.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The patterns of one ignore file, matched against paths relative to the folder they apply to.
pub type Rules = Arc<Gitignore>;

/// Compiles the text of an ignore file; `None` when it has no patterns. A line that is not a
/// valid pattern is skipped, as git skips it.
///
/// Compiled rules do not depend on where the file is, and the runs of one process mostly carry
/// the same few files (every workspace starts with the same `.gitignore`), so they are kept by
/// text: compiling one builds regular expressions, which costs more than a whole commit's walk.
pub fn parse(text: &[u8]) -> Option<Rules> {
    /// Texts kept before the cache starts over; far more than the distinct files of a process.
    const KEPT: usize = 64;
    static COMPILED: Mutex<Vec<(Vec<u8>, Option<Rules>)>> = Mutex::new(Vec::new());
    let lock = || COMPILED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, rules)) = lock().iter().find(|(t, _)| t == text) {
        return rules.clone();
    }
    // Compiled without the lock, so that one large file holds up no other run's commit.
    let rules = compile(text);
    let mut compiled = lock();
    if compiled.len() == KEPT {
        compiled.clear();
    }
    compiled.push((text.to_vec(), rules.clone()));
    rules
}

fn compile(text: &[u8]) -> Option<Rules> {
    let text = String::from_utf8_lossy(text);
    let mut builder = GitignoreBuilder::new(".");
    for (i, line) in text.lines().enumerate() {
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        let _ = builder.add_line(None, line);
    }
    let rules = builder.build().ok()?;
    (!rules.is_empty()).then(|| Arc::new(rules))
}

/// What `rules` say of `path` (relative to their folder): `Some(true)` ignored, `Some(false)`
/// kept by a `!` pattern, `None` when no pattern matches it.
pub fn verdict(rules: &Gitignore, path: &Path, is_dir: bool) -> Option<bool> {
    match rules.matched(path, is_dir) {
        Match::Ignore(_) => Some(true),
        Match::Whitelist(_) => Some(false),
        Match::None => None,
    }
}

/// The rules that apply to the whole work tree, in the order git asks them: the repository's
/// `info/exclude` (in `common`, the folder shared by its worktrees), then the user's.
pub fn repository_wide(common: &Path) -> Vec<Rules> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read(common.join("info/exclude"))
        && let Some(rules) = parse(&text)
    {
        out.push(rules);
    }
    out.extend(user());
    out
}

/// The user's excludes file, found the way git finds it (`core.excludesFile` in the global or
/// system configuration, else `$XDG_CONFIG_HOME/git/ignore`).
fn user() -> Option<Rules> {
    static USER: OnceLock<Option<Rules>> = OnceLock::new();
    USER.get_or_init(|| {
        let path = ignore::gitignore::gitconfig_excludes_path()?;
        parse(&std::fs::read(path).ok()?)
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn says(text: &str, path: &str, is_dir: bool) -> Option<bool> {
        verdict(&parse(text.as_bytes()).unwrap(), Path::new(path), is_dir)
    }

    #[test]
    fn follows_gitignore_patterns() {
        let text = "# notes\n*.log\n!keep.log\n/top.txt\nbuild/\ndocs/**/*.tmp\n";
        assert_eq!(says(text, "a/x.log", false), Some(true));
        assert_eq!(says(text, "a/keep.log", false), Some(false));
        assert_eq!(says(text, "top.txt", false), Some(true));
        assert_eq!(
            says(text, "a/top.txt", false),
            None,
            "anchored to the folder"
        );
        assert_eq!(says(text, "a/build", true), Some(true));
        assert_eq!(says(text, "a/build", false), None, "folders only");
        assert_eq!(says(text, "docs/a/b/c.tmp", false), Some(true));
        assert_eq!(
            says(text, "notes", false),
            None,
            "comments are not patterns"
        );
        assert!(parse(b"# only a comment\n\n").is_none());
    }

    #[test]
    fn one_text_is_compiled_once() {
        let text = b"one-text-is-compiled-once/\n";
        let first = parse(text).unwrap();
        assert!(Arc::ptr_eq(&first, &parse(text).unwrap()));
        assert_eq!(
            says(
                "one-text-is-compiled-once/\n",
                "a/one-text-is-compiled-once",
                true
            ),
            Some(true)
        );
        assert!(!Arc::ptr_eq(&first, &parse(b"other/\n").unwrap()));
    }

    #[test]
    fn a_byte_order_mark_and_carriage_returns_are_not_part_of_patterns() {
        assert_eq!(says("\u{feff}*.bak\r\n", "x.bak", false), Some(true));
    }
}

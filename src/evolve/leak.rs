//! Edits that would teach the harness the tasks instead of the work: text naming a task id, or
//! copying a task's instruction or its hidden tests. Checked on the lines an edit adds, against
//! every task of every split (naming a test task leaks as much as naming a search task).

use std::collections::HashSet;
use std::path::Path;

use crate::task::Task;

/// Word runs of this length shared with a task's text count as copied.
pub const SHINGLE: usize = 8;
/// A line of a task's text at least this long, found whole in an edit, counts as copied.
pub const LINE: usize = 24;

/// What the checks need of one task.
#[derive(Debug, Clone)]
pub struct TaskText {
    pub id: String,
    /// (what it is, its text): `TASK.md`, `tests/test.sh`, …
    pub texts: Vec<(String, String)>,
}

/// Reads a task's instruction and its hidden tests (text files only).
pub fn task_text(t: &Task) -> TaskText {
    let mut texts = vec![("TASK.md".to_string(), t.instruction.clone())];
    if let Some(tests) = &t.tests {
        for e in walkdir::WalkDir::new(tests)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
        {
            if let Ok(s) = std::fs::read_to_string(e.path()) {
                let rel = e.path().strip_prefix(&t.root).unwrap_or(Path::new("tests"));
                texts.push((rel.display().to_string(), s));
            }
        }
    }
    TaskText {
        id: t.id.clone(),
        texts,
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn shingles(s: &str) -> HashSet<Vec<String>> {
    words(s).windows(SHINGLE).map(<[String]>::to_vec).collect()
}

fn tokens(s: &str) -> HashSet<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .map(|t| t.trim_matches('.').to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Why `added` (the lines an edit adds) leaks a task, if it does. `known` is the parent
/// harness's text: what it already said is not counted against the edit.
pub fn check(added: &str, known: &str, tasks: &[TaskText]) -> Option<String> {
    let toks = tokens(added);
    let known_toks = tokens(known);
    for t in tasks {
        let id = t.id.to_lowercase();
        if toks.contains(&id) && !known_toks.contains(&id) {
            return Some(format!("names task `{}`", t.id));
        }
    }
    let known_sh = shingles(known);
    let added_sh: HashSet<Vec<String>> = shingles(added)
        .into_iter()
        .filter(|s| !known_sh.contains(s))
        .collect();
    let flat = added.split_whitespace().collect::<Vec<_>>().join(" ");
    for t in tasks {
        for (what, text) in &t.texts {
            for line in text.lines().map(str::trim) {
                let l = line.split_whitespace().collect::<Vec<_>>().join(" ");
                if l.len() >= LINE && flat.contains(&l) && !known.contains(line) {
                    return Some(format!(
                        "copies a line of task `{}`'s {what}: \"{}\"",
                        t.id,
                        crate::agent::session::clip(&l, 80)
                    ));
                }
            }
            if let Some(s) = shingles(text).iter().find(|s| added_sh.contains(*s)) {
                return Some(format!(
                    "copies text of task `{}`'s {what}: \"{}\"",
                    t.id,
                    s.join(" ")
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks() -> Vec<TaskText> {
        vec![TaskText {
            id: "fix-median".into(),
            texts: vec![
                (
                    "TASK.md".into(),
                    "The median function in stats.py returns the wrong value for lists of even length.".into(),
                ),
                ("tests/test.sh".into(), "python3 -c 'assert median([1,2,3,4]) == 2.5'\n".into()),
            ],
        }]
    }

    #[test]
    fn names_and_copies_are_caught() {
        let t = tasks();
        assert!(
            check("Before fix-median, read stats.py.\n", "", &t)
                .unwrap()
                .contains("names task")
        );
        assert!(
            check(
                "Note: the median function in stats.py returns the wrong value for lists.\n",
                "",
                &t
            )
            .unwrap()
            .contains("copies text")
        );
        assert!(
            check("run python3 -c 'assert median([1,2,3,4]) == 2.5'\n", "", &t)
                .unwrap()
                .contains("copies a line")
        );
        assert_eq!(
            check("Run the tests before reporting done.\n", "", &t),
            None
        );
        assert_eq!(
            check("see fix-median\n", "fix-median was mentioned already", &t),
            None,
            "what the parent said is not the edit's"
        );
    }
}

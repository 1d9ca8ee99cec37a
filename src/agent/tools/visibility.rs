//! The hidden-path policy: a path argument resolved inside the workspace and checked against the
//! State rules `hidden` and `ROLE sees`.

use std::path::{Component, Path, PathBuf};

use super::ToolContext;

/// A path argument checked against the workspace, its symlinks and the visibility rules.
pub(super) struct Resolved {
    /// Where to act: the workspace's canonical path joined with symlink-free components.
    pub(super) abs: PathBuf,
    /// The path as the model should see it (workspace-relative, `/`-separated).
    pub(super) rel: String,
}

/// A visibility entry in comparable form: no `./`, no leading or trailing `/`.
fn norm_entry(e: &str) -> String {
    let mut s = e.trim();
    while let Some(rest) = s.strip_prefix("./") {
        s = rest;
    }
    s.trim_matches('/').to_string()
}

/// Whether `path` is `prefix` or beneath it (component-wise; `""` is the workspace root).
fn under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.len() > prefix.len()
            && path.starts_with(prefix)
            && path.as_bytes()[prefix.len()] == b'/')
}

impl ToolContext {
    fn hidden_entry(&self, rel: &str) -> Option<String> {
        // A child's own folder is never hidden from it, even when `children/` is.
        if under(rel, &norm_entry(&self.own_dir)) {
            return None;
        }
        self.hidden
            .iter()
            .map(|h| norm_entry(h))
            .find(|h| !h.is_empty() && under(rel, h))
    }

    fn seen(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .visible_only
            .iter()
            .flatten()
            .map(|e| norm_entry(e))
            .collect();
        v.push(norm_entry(&self.own_dir));
        v
    }

    /// Whether a child may read or write `rel` itself.
    fn visible(&self, rel: &str) -> bool {
        self.hidden_entry(rel).is_none()
            && (self.visible_only.is_none() || self.seen().iter().any(|s| under(rel, s)))
    }

    /// Whether a folder may be listed: visible, or on the way to something visible.
    pub(super) fn listable(&self, rel: &str) -> bool {
        self.visible(rel)
            || (self.hidden_entry(rel).is_none() && self.seen().iter().any(|s| under(s, rel)))
    }

    fn refusal(&self, rel: &str) -> String {
        if let Some(h) = self.hidden_entry(rel) {
            return format!("`{rel}` is hidden from children (State: hidden `{h}`)");
        }
        let seen = self
            .seen()
            .iter()
            .map(|s| {
                if s.is_empty() {
                    "the whole workspace".to_string()
                } else {
                    format!("`{s}`")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!("`{rel}` is outside what this role sees: {seen}")
    }

    /// Resolves a path argument: relative to the workspace (absolute paths inside it are
    /// accepted), `..` never above the root, symlinks followed only while they stay inside, and
    /// the visibility rules checked on both the written and the resolved path.
    pub(super) fn resolve(&self, raw: &str) -> Result<Resolved, String> {
        if raw.trim().is_empty() {
            return Err("\"path\" is empty; give a path relative to the workspace root".into());
        }
        if raw.contains('\0') {
            return Err("\"path\" contains a NUL byte".into());
        }
        let ws = std::fs::canonicalize(&self.workspace).map_err(|e| {
            format!(
                "the workspace {} is not accessible: {e}",
                self.workspace.display()
            )
        })?;
        let p = Path::new(raw);
        let relative = if p.is_absolute() {
            p.strip_prefix(&self.workspace)
                .or_else(|_| p.strip_prefix(&ws))
                .map_err(|_| {
                    format!(
                        "`{raw}` is outside the workspace; use a path relative to the workspace \
                         root, e.g. `src/main.py`"
                    )
                })?
        } else {
            p
        };
        let mut parts: Vec<String> = Vec::new();
        for c in relative.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    if parts.pop().is_none() {
                        return Err(format!(
                            "`{raw}` escapes the workspace; paths must stay inside the workspace \
                             root"
                        ));
                    }
                }
            }
        }
        let rel = parts.join("/");
        if !self.listable(&rel) {
            return Err(self.refusal(&rel));
        }
        // Follow the existing prefix one component at a time, so every symlink is checked.
        let mut cur = ws.clone();
        for (i, part) in parts.iter().enumerate() {
            let next = cur.join(part);
            match std::fs::symlink_metadata(&next) {
                Ok(m) if m.file_type().is_symlink() => {
                    let shown = parts[..=i].join("/");
                    let target = std::fs::canonicalize(&next).map_err(|_| {
                        format!("`{shown}` is a symlink whose target does not exist")
                    })?;
                    if !target.starts_with(&ws) {
                        return Err(format!(
                            "`{shown}` is a symlink to {}, outside the workspace",
                            target.display()
                        ));
                    }
                    cur = target;
                }
                Ok(_) => cur = next,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    cur = next;
                    for rest in &parts[i + 1..] {
                        cur.push(rest);
                    }
                    break;
                }
                Err(e) => return Err(format!("cannot access `{}`: {e}", parts[..=i].join("/"))),
            }
        }
        let resolved_rel = cur
            .strip_prefix(&ws)
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        if !self.listable(&resolved_rel) {
            return Err(format!("`{rel}` leads to {}", self.refusal(&resolved_rel)));
        }
        Ok(Resolved {
            abs: cur,
            rel: if rel.is_empty() { ".".into() } else { rel },
        })
    }

    /// Resolves a path that will be read or written as a file: visible, not only listable.
    pub(super) fn resolve_file(&self, raw: &str) -> Result<Resolved, String> {
        let r = self.resolve(raw)?;
        let ws = std::fs::canonicalize(&self.workspace).unwrap_or_else(|_| self.workspace.clone());
        let resolved_rel = r
            .abs
            .strip_prefix(&ws)
            .map(|p| p.to_string_lossy().into_owned());
        let rel = if r.rel == "." {
            String::new()
        } else {
            r.rel.clone()
        };
        if !self.visible(&rel) {
            return Err(self.refusal(&rel));
        }
        if let Ok(rr) = resolved_rel
            && !self.visible(&rr)
        {
            return Err(format!("`{}` leads to {}", r.rel, self.refusal(&rr)));
        }
        Ok(r)
    }
}

impl ToolContext {
    /// The child's commands confined to what the child may see: reading only the visible parts
    /// of the workspace (Landlock is an allow-list, so hidden paths are left out by listing what
    /// is around them), writing only the visible parts of the writable paths, and among the
    /// children's folders only its own. The file tools check the same rules themselves; this
    /// makes them hold for shell commands too.
    pub fn confine_to_view(&mut self) {
        let root = self.workspace.clone();
        let mut readable = Vec::new();
        self.visible_roots(&root, "", &mut readable);
        let own = norm_entry(&self.own_dir);
        let mut writable = Vec::new();
        for w in &self.confinement.writable {
            let Ok(rel) = w.strip_prefix(&root) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            // The children's folder: only the child's own.
            let rel = if rel == "children" && !own.is_empty() {
                own.clone()
            } else {
                rel
            };
            for r in &readable {
                let Ok(r_rel) = r.strip_prefix(&root) else {
                    continue;
                };
                let r_rel = r_rel.to_string_lossy().replace('\\', "/");
                if under(&rel, &r_rel) {
                    writable.push(root.join(&rel));
                } else if under(&r_rel, &rel) {
                    writable.push(r.clone());
                }
            }
        }
        writable.sort();
        writable.dedup();
        // The own folder and the scratch space are always the child's.
        for own_path in [root.join(&own), root.join(crate::sandbox::Scratch::DIR)] {
            if !writable.contains(&own_path) {
                writable.push(own_path.clone());
            }
            if !readable.iter().any(|r| own_path.starts_with(r)) {
                readable.push(own_path);
            }
        }
        self.confinement.readable = readable;
        self.confinement.writable = writable;
    }

    /// Pushes the largest visible paths beneath `dir` (`rel` in the workspace): a path whole when
    /// nothing beneath it is hidden, else its visible entries one by one.
    fn visible_roots(&self, dir: &Path, rel: &str, out: &mut Vec<PathBuf>) {
        if self.whole(rel) {
            out.push(dir.to_path_buf());
            return;
        }
        if !self.listable(rel) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir {
                self.visible_roots(&e.path(), &child, out);
            } else if self.visible(&child) {
                out.push(e.path());
            }
        }
    }

    /// Whether `rel` and everything beneath it is visible: nothing hidden lies beneath it.
    fn whole(&self, rel: &str) -> bool {
        self.visible(rel)
            && !self
                .hidden
                .iter()
                .map(|h| norm_entry(h))
                .any(|h| !h.is_empty() && h != rel && under(&h, rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_is_component_wise() {
        assert!(under("history/x", "history"));
        assert!(under("history", "history"));
        assert!(!under("historyx", "history"));
        assert!(under("anything", ""));
    }
}

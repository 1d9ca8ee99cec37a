//! `git fsck --strict` on the git repositories nlah writes (run workspaces, ablation cells):
//! nlah writes its objects, index and refs by hand, so every test that makes one has the git
//! CLI read it back.

use std::path::Path;
use std::process::Command;

/// Fails the test, with git's output, unless `git fsck --strict` finds `repo` sound: exit 0
/// and no warning. Dangling objects are not faults (an abandoned candidate's commits), so they
/// are not listed.
pub fn assert_fsck(repo: &Path) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("the git CLI runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("warning") && !text.contains("error"),
        "git fsck --strict in {}: {}\n{text}\n.git holds:\n{}",
        repo.display(),
        out.status,
        listing(&repo.join(".git"))
    );
}

/// The files under `dir` with their sizes, one a line (at most 60), for a failure message.
fn listing(dir: &Path) -> String {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .take(60)
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap_or(e.path()).display();
            match e.metadata() {
                Ok(m) if m.is_file() => format!("  {rel} ({} bytes)", m.len()),
                _ => format!("  {rel}/"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// [`assert_fsck`] on every cell folder of an ablation's output folder that holds a
/// repository: each cell's workspace, and the earlier attempts kept aside.
pub fn assert_fsck_cells(out: &Path) {
    let mut checked = 0;
    for entry in std::fs::read_dir(out.join("cells")).expect("cells/") {
        let path = entry.expect("a cell folder").path();
        if path.join(".git").exists() {
            assert_fsck(&path);
            checked += 1;
        }
    }
    assert!(checked > 0, "no cell workspace in {}", out.display());
}

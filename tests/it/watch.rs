//! `nlah watch`: started as a child process; files are edited the ways editors save them, and
//! the diagnostics stream is read from its standard output.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::support::TestEnv;
use crate::support::gitrepo;

/// One check as printed: its header line and what follows.
#[derive(Debug)]
struct Block {
    header: String,
    body: Vec<String>,
    /// When the header arrived.
    at: Instant,
}

impl Block {
    fn text(&self) -> String {
        format!("{}\n{}", self.header, self.body.join("\n"))
    }
}

struct Watch {
    child: Child,
    lines: Receiver<(String, Instant)>,
    pending: Option<(String, Instant)>,
    env: TestEnv,
}

impl Watch {
    fn start(extra: &[&str]) -> Watch {
        let env = TestEnv::new();
        gitrepo::copy_dir(
            Path::new("tests/fixtures/versions/mini"),
            &env.root().join("mini"),
        );
        let mut child = env
            .nlah()
            .arg("watch")
            .arg(env.root().join("mini"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send((line, Instant::now())).is_err() {
                    return;
                }
            }
        });
        Watch {
            child,
            lines: rx,
            pending: None,
            env,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.env.root().join("mini").join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// The next check printed, within `timeout`.
    fn next(&mut self, timeout: Duration) -> Option<Block> {
        let deadline = Instant::now() + timeout;
        let (header, at) = loop {
            let line = match self.pending.take() {
                Some(l) => l,
                None => {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    match self.lines.recv_timeout(left) {
                        Ok(l) => l,
                        Err(RecvTimeoutError::Timeout) => return None,
                        Err(RecvTimeoutError::Disconnected) => panic!("nlah watch ended"),
                    }
                }
            };
            if line.0.starts_with("── ") && !line.0.starts_with("── composed") {
                break line;
            }
        };
        let mut body = Vec::new();
        // The rest of the check arrives at once; a short quiet ends it.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(150)) {
            if l.0.starts_with("── ") && !l.0.starts_with("── composed") {
                self.pending = Some(l);
                break;
            }
            body.push(l.0);
        }
        Some(Block { header, body, at })
    }

    /// Skips checks until one satisfies `pred`.
    fn until(&mut self, what: &str, pred: impl Fn(&Block) -> bool) -> Block {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while let Some(b) = self.next(deadline.saturating_duration_since(Instant::now())) {
            if pred(&b) {
                return b;
            }
            seen.push(b.text());
        }
        panic!(
            "no check {what} within 10 s; saw:\n{}",
            seen.join("\n---\n")
        );
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Only the process this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
}

#[test]
fn every_save_is_rechecked_whatever_the_editor_does() {
    let mut w = Watch::start(&[]);
    let first = w.until("at start", |b| b.header.contains("first check"));
    assert!(
        first.header.contains(" · mini ") && first.header.contains("0 errors, 0 warnings"),
        "{}",
        first.header
    );
    let good = w.read("SKILL.md");
    let mut latencies = Vec::new();

    // 1. Saved in place with an unknown role.
    let t0 = Instant::now();
    write(
        &w.path("SKILL.md"),
        &good.replace("- role: executor", "- role: execuotr"),
    );
    let b = w.until("after an in-place save", |b| b.header.contains("1 error"));
    latencies.push(b.at - t0);
    assert!(b.header.contains("changed: SKILL.md"), "{}", b.header);
    let text = b.text();
    assert!(text.contains("SKILL.md:"), "{text}");
    assert!(text.contains("execuotr"), "{text}");

    // 2. Saved by writing a temporary file and renaming it over the original.
    let t0 = Instant::now();
    write(&w.path(".SKILL.md.tmp"), &good);
    std::fs::rename(w.path(".SKILL.md.tmp"), w.path("SKILL.md")).unwrap();
    let b = w.until("after a rename-save", |b| b.header.contains("0 errors"));
    latencies.push(b.at - t0);

    // 3. Moved aside first (a backup), then written anew: briefly missing.
    let t0 = Instant::now();
    std::fs::rename(w.path("SKILL.md"), w.path("SKILL.md~")).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    write(
        &w.path("SKILL.md"),
        &good.replace("Do the work.", "Do the work well."),
    );
    std::fs::remove_file(w.path("SKILL.md~")).unwrap();
    let b = w.until("after a backup-save", |b| {
        b.header.contains("0 errors") && b.at > t0 + Duration::from_millis(80)
    });
    assert!(b.header.contains("SKILL.md"), "{}", b.header);

    // 4. Briefly invalid: broken front matter, then fixed.
    write(
        &w.path("SKILL.md"),
        "---\nname: [mini\n---\n# half-written\n",
    );
    let b = w.until("with broken front matter", |b| {
        !b.header.contains(" 0 errors")
    });
    assert!(b.text().contains("error"), "{}", b.text());
    let t0 = Instant::now();
    write(&w.path("SKILL.md"), &good);
    let b = w.until("once fixed", |b| b.header.contains("0 errors, 0 warnings"));
    latencies.push(b.at - t0);

    // 5. A module file: an operation on a stage that does not exist.
    let module = w.read("modules/reflect.md");
    write(
        &w.path("modules/reflect.md"),
        &module.replace("## Amend stage execute", "## Amend stage exekute"),
    );
    let b = w.until("after a module edit", |b| {
        b.header.contains("changed: modules/reflect.md")
    });
    assert!(b.text().contains("reflect.md:"), "{}", b.text());
    assert!(b.text().contains("exekute"), "{}", b.text());
    write(&w.path("modules/reflect.md"), &module);
    w.until("once the module is fixed", |b| {
        b.header.contains("0 errors")
    });

    // 6. Editor droppings alone cause no check.
    write(&w.path(".SKILL.md.swp"), "swap");
    write(&w.path("notes~"), "backup");
    assert!(
        w.next(Duration::from_millis(400)).is_none(),
        "a swap file is not a save"
    );

    // 7. The whole folder replaced (a checkout of another branch, a sync tool): the watch
    // follows the new folder.
    let root = w.env.root().join("mini");
    std::fs::rename(&root, w.env.root().join("mini.old")).unwrap();
    w.until("while the folder is gone", |b| {
        !b.header.contains(" 0 errors")
    });
    gitrepo::copy_dir(&w.env.root().join("mini.old"), &root);
    w.until("once the folder is back", |b| b.header.contains("0 errors"));
    write(
        &root.join("SKILL.md"),
        &good.replace("- role: executor", "- role: ghost"),
    );
    let b = w.until("after a save in the new folder", |b| {
        b.header.contains("1 error")
    });
    assert!(b.text().contains("ghost"), "{}", b.text());

    eprintln!("save → diagnostics: {latencies:?}");
    for l in &latencies {
        // The goal is 100 ms; a loaded test machine gets slack.
        assert!(*l < Duration::from_secs(2), "{latencies:?}");
    }
}

#[test]
fn show_prints_the_composed_skill_for_the_toggles() {
    let mut w = Watch::start(&["--show", "--with", "reviewer"]);
    let first = w.until("at start", |b| b.header.contains("first check"));
    let text = first.text();
    assert!(
        text.contains("── composed SKILL.md (reflect, reviewer) ──"),
        "{text}"
    );
    assert!(text.contains("### review"), "{text}");
    // The composition follows each save.
    let good = w.read("SKILL.md");
    write(
        &w.path("SKILL.md"),
        &good.replace("Do the work.", "Do the work, then stop."),
    );
    let b = w.until("after a save", |b| b.header.contains("changed: SKILL.md"));
    assert!(b.text().contains("Do the work, then stop."), "{}", b.text());
    // With errors, nothing is composed.
    write(
        &w.path("SKILL.md"),
        &good.replace("- role: planner", "- role: nobody"),
    );
    let b = w.until("with an error", |b| b.header.contains("1 error"));
    assert!(
        b.text().contains("composed skill not shown"),
        "{}",
        b.text()
    );
}

#[test]
fn an_unknown_module_in_with_is_reported() {
    let mut w = Watch::start(&["--with", "reviwer"]);
    let b = w.until("at start", |b| b.header.contains("first check"));
    assert!(b.header.contains("1 error"), "{}", b.header);
    assert!(
        b.text().contains("did you mean `reviewer`?"),
        "{}",
        b.text()
    );
}

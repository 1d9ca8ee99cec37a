//! `nlah view` in headless Chromium, driven over the DevTools protocol: a real matrix and real
//! runs made here, clicked through matrix → cell → child transcript → commit diff, two runs
//! compared, a harness toggled, a corrupt run; what the page shows is checked against
//! run.json, the history and git, and no request leaves 127.0.0.1.
//! Needs `/usr/bin/chromium`: ignored by default, failing where it is missing (`.ci/run`
//! installs it).

use std::path::Path;

use serde_json::Value;

use crate::support::cdp::{Browser, CHROMIUM};
use crate::support::gitrepo::Repo;
use crate::support::outside::require_file;
use crate::support::viewer::Viewer;
use crate::support::{TestEnv, diligent};
use crate::view::{git_count, matrix, read_json};

const NEEDS: &str = "headless Chromium (Debian's `chromium` package)";

fn transcript_messages(ws: &Path, child: &str) -> usize {
    std::fs::read_to_string(ws.join("children").join(child).join("transcript.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["type"] == "message")
        .count()
}

/// Every request the browser made went to the viewer (or stayed inside the page).
fn all_local(b: &Browser, base: &str) {
    let reqs = b.requests.lock().unwrap().clone();
    assert!(!reqs.is_empty(), "no request recorded");
    for u in &reqs {
        assert!(
            u.starts_with(&format!("{base}/")) || u.starts_with("data:") || u == "about:blank",
            "a request left the viewer: {u}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Chromium at /usr/bin/chromium; apt-get install chromium (.ci/run does)"]
async fn matrix_to_cell_to_child_to_commit_in_chromium() {
    require_file(CHROMIUM, NEEDS);
    let env = TestEnv::with_model(diligent).await;
    let out = matrix(&env).await;
    let design = read_json(&out.join("matrix.json"));
    let cells = design["cells"].as_array().unwrap().clone();
    let v = Viewer::start(&env, &[&out]);
    let url = v.url.clone();
    let id = cells[5]["id"].as_str().unwrap().to_string();
    let other = cells[0]["id"].as_str().unwrap().to_string();
    let ws = out.join("cells").join(&id);
    let record = read_json(&ws.join("run.json"));
    // The commit that adds the result, found through git's own CLI.
    let log = std::process::Command::new("git")
        .args([
            "log",
            "--format=%H",
            "--diff-filter=A",
            "--",
            "artifacts/result.txt",
        ])
        .current_dir(&ws)
        .output()
        .unwrap();
    let adding = String::from_utf8(log.stdout).unwrap().trim().to_string();
    assert_eq!(adding.len(), 40, "{adding}");

    // One cell still running when the page opens (its run.json not written yet).
    let late = out.join("cells").join(&other).join("run.json");
    let kept = std::fs::read(&late).unwrap();
    std::fs::remove_file(&late).unwrap();

    let rt = tokio::task::spawn_blocking(move || {
        let mut b = Browser::start();
        b.open(&format!("{url}/"));
        b.wait_ready("#/");
        b.wait(&format!("document.querySelectorAll('table.cells tbody tr').length === {}", cells.len()));
        let n = cells.len();
        let counts = b.text("#counts").as_str().unwrap().to_string();
        assert!(counts.contains(&format!("{} of {n} cells finished", n - 1)), "{counts}");
        assert_eq!(b.text(&format!("tr[data-id='{other}'] .outcome")), "running");
        // It finishes: the page follows without a reload.
        std::fs::write(&late, &kept).unwrap();
        b.wait(&format!("document.getElementById('counts').textContent.includes('{n} of {n} cells finished')"));
        b.wait(&format!("document.querySelector(\"tr[data-id='{other}'] .outcome\").textContent !== 'running'"));
        // The report's charts are in the frame.
        b.wait("document.getElementById('report').contentDocument.querySelector('svg.scatter')");

        // Filtered by outcome and task: the rows the run.json files say.
        let passed_beta = cells
            .iter()
            .filter(|c| c["task"] == "beta")
            .filter(|c| {
                read_json(&out.join("cells").join(c["id"].as_str().unwrap()).join("run.json"))
                    ["outcome"]
                    == "passed"
            })
            .count();
        b.eval("(() => { for (const [k, v] of [['f-task', 'beta'], ['f-outcome', 'passed']]) { const s = document.getElementById(k); s.value = v; s.dispatchEvent(new Event('change')); } })()");
        b.wait(&format!(
            "document.querySelector('.pager .range').textContent.endsWith('of {passed_beta}') && [...document.querySelectorAll('table.cells tbody tr')].every(r => r.children[3].textContent === 'beta')"
        ));
        b.eval("(() => { for (const k of ['f-task', 'f-outcome']) { const s = document.getElementById(k); s.value = ''; s.dispatchEvent(new Event('change')); } })()");
        b.wait(&format!("document.querySelectorAll('table.cells tbody tr').length === {}", cells.len()));

        let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("view");
        std::fs::create_dir_all(&shots).unwrap();
        b.screenshot(&shots.join("matrix.png"));

        // Matrix → cell: the run's header is its run.json, its timeline its history.
        b.click(&format!("a.cell[data-cell='{id}']"), &format!("#/run/{id}"));
        let h1 = b.text("h1").as_str().unwrap().to_string();
        assert_eq!(h1, format!("Run {}", record["run_id"].as_str().unwrap()));
        let outcome = b.text(".kv .outcome").as_str().unwrap().to_string();
        assert_eq!(outcome, record["outcome"].as_str().unwrap());
        let events = std::fs::read_to_string(ws.join("history/events.jsonl")).unwrap();
        let n = events.lines().count() as u64;
        assert_eq!(b.count("table.events tbody tr"), n.min(200));
        let first_text = b.text("table.events tbody tr:first-child td:nth-child(3)");
        let first: Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
        assert_eq!(first_text, first["event"]);
        assert_eq!(b.count("table.commits tbody tr"), git_count(&ws).min(100));

        b.screenshot(&shots.join("run.png"));

        // Run → child: its conversation is its transcript, its answer its RESPONSE.md.
        let child = b
            .eval("document.querySelector('table.children a.child').dataset.child")
            .as_str()
            .unwrap()
            .to_string();
        b.click(
            &format!("table.children a.child[data-child='{child}']"),
            &format!("#/run/{id}/child/{child}"),
        );
        assert_eq!(b.count("#conversation .msg"), transcript_messages(&ws, &child) as u64);
        assert!(b.count("#conversation .call") > 0, "no tool call shown");
        let response =
            std::fs::read_to_string(ws.join("children").join(&child).join("RESPONSE.md")).unwrap();
        assert_eq!(b.text("#response").as_str().unwrap(), response);

        b.screenshot(&shots.join("child.png"));

        // Back to the run, then its commit that added the result: the diff shows the file.
        b.click("a[href^='#/run/']", &format!("#/run/{id}"));
        b.wait(&format!("document.querySelector(\"a.commit[data-commit='{adding}']\")"));
        b.click(&format!("a.commit[data-commit='{adding}']"), &format!("#/run/{id}/commit/{adding}"));
        let body = std::fs::read_to_string(ws.join("artifacts/result.txt")).unwrap();
        let added: Vec<String> = serde_json::from_value(b.eval(
            "[...document.querySelectorAll(\".file[data-path='artifacts/result.txt'] .add\")].map(e => e.textContent)",
        ))
        .unwrap();
        let want: Vec<String> = body.lines().map(|l| format!("+{l}")).collect();
        assert_eq!(added, want, "the page shows:\n{}", b.text("main"));

        b.screenshot(&shots.join("commit.png"));

        // Two cells side by side from the matrix page.
        b.click("a.brand", "#/");
        b.wait(&format!("document.querySelectorAll('table.cells tbody tr').length === {}", cells.len()));
        b.eval(&format!(
            "(() => {{ for (const id of ['{other}', '{id}']) document.querySelector(`tr[data-id='${{id}}'] input.pick`).click(); }})()"
        ));
        b.click("#compare", &format!("#/diff/{other}/{id}"));
        let lib = nlah::versions::run_diff::diff(&out.join("cells").join(&other), &ws).unwrap();
        let div = b.text("#divergence").as_str().unwrap().to_string();
        match &lib.divergence {
            Some(d) => assert!(div.contains(&format!("event {} differs", d.index)), "{div}"),
            None => assert!(div.contains("agree throughout"), "{div}"),
        }
        assert!(div.contains(&lib.common.to_string()), "{div}");
        assert_eq!(b.count("table.artifacts tbody tr"), lib.artifacts.len() as u64);
        b.screenshot(&shots.join("diff.png"));
        b
    })
    .await
    .unwrap();
    all_local(&rt, &v.url);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Chromium at /usr/bin/chromium; apt-get install chromium (.ci/run does)"]
async fn a_harness_and_a_corrupt_run_in_chromium() {
    require_file(CHROMIUM, NEEDS);
    let mut r = Repo::in_env(TestEnv::with_model(diligent).await);
    r.copy("tests/fixtures/versions/mini", "harness-skills/mini");
    let v1 = r.commit("mini v1");
    r.edit(
        "harness-skills/mini/SKILL.md",
        "| tokens | 50k |",
        "| tokens | 60k |",
    );
    let v2 = r.commit("mini v2: more tokens");
    let h = r.path().join("harness-skills/mini");
    let (_, shown, _) = r
        .env
        .run(&["show", h.to_str().unwrap(), "--with", "reviewer"]);
    let with_reviewer = shown
        .lines()
        .find_map(|l| l.split("(sha256 ").nth(1))
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let v = Viewer::start(&r.env, &[&h]);
    let url = v.url.clone();
    let b = tokio::task::spawn_blocking(move || {
        let mut b = Browser::start();
        b.open(&format!("{url}/"));
        b.wait_ready("#/");
        b.wait("document.querySelectorAll('table.versions tbody tr').length === 2");
        let rows: Vec<String> = serde_json::from_value(b.eval(
            "[...document.querySelectorAll('table.versions tbody tr')].map(r => r.dataset.commit)",
        ))
        .unwrap();
        assert_eq!(rows, [v2.to_string(), v1.to_string()]);
        // Toggling a module recomposes: the version `nlah show --with reviewer` prints.
        b.eval("document.getElementById('m-reviewer').click()");
        b.wait(&format!(
            "document.getElementById('version').textContent === '{with_reviewer}'"
        ));
        assert!(b.text("#skill").as_str().unwrap().contains("reviewer"));
        // The semantic diff of the two versions names the budget change.
        b.eval("document.getElementById('diff-versions').click()");
        b.wait("document.querySelector('#harness-diff .hdiff')");
        let d = b.text("#harness-diff").as_str().unwrap().to_string();
        assert!(d.contains("50k") && d.contains("60k"), "{d}");
        b
    })
    .await
    .unwrap();
    all_local(&b, &v.url);
    drop(v);

    // A run whose run.json is corrupt: the page says what is wrong, naming the file.
    let ran = r
        .env
        .nlah_run(&[
            "tests/fixtures/versions/mini",
            "tests/fixtures/versions/tasks/write-result",
            "--model",
            "openai:mock-1",
        ])
        .await;
    std::fs::write(ran.ws.join("run.json"), "{ not json").unwrap();
    let v = Viewer::start(&r.env, &[&ran.ws]);
    let url = v.url.clone();
    let shown = tokio::task::spawn_blocking(move || {
        let mut b = Browser::start();
        b.open(&format!("{url}/"));
        b.wait("document.body.dataset.ready === 'error'");
        b.text("#problem").as_str().unwrap().to_string()
    })
    .await
    .unwrap();
    assert!(
        shown.contains("run.json") && shown.contains("key must be a string"),
        "{shown}"
    );
    assert!(v.terminal().contains("run.json"));
}

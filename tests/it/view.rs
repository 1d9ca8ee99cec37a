//! `nlah view`'s JSON endpoints against a real matrix, real runs and a harness in a real git
//! repository, with the server started as the binary (its terminal output is checked too).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::gitrepo::Repo;
use crate::support::viewer::Viewer;
use crate::support::{TestEnv, diligent, output};

/// A finished matrix: the mini harness with and without `reviewer`, two tasks, two seeds.
pub async fn matrix(env: &TestEnv) -> PathBuf {
    let out = env.root().join("out");
    let mut cmd = env.ablate_mini("tests/fixtures/ablate-tasks");
    cmd.arg("--out").arg(&out);
    let o = output(cmd).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

pub fn git_count(ws: &Path) -> u64 {
    let o = Command::new("git")
        .args(["rev-list", "--count", "HEAD"])
        .current_dir(ws)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).unwrap().lines().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_matrix_its_cells_and_its_runs_as_json() {
    let env = TestEnv::with_model(diligent).await;
    let out = matrix(&env).await;
    let v = Viewer::start(&env, &[&out]);

    assert_eq!(v.ok("/api/target").await["kind"], "matrix");
    let m = v.ok("/api/matrix").await;
    let design = read_json(&out.join("matrix.json"));
    let cells = design["cells"].as_array().unwrap();
    assert_eq!(m["total"], cells.len());
    assert_eq!(m["finished"], cells.len());
    assert_eq!(m["variants"].as_array().unwrap().len(), 2);
    assert_eq!(m["tasks"], serde_json::json!(["alpha", "beta"]));

    // Paging: one cell per page, in matrix order.
    let p = v.ok("/api/cells?offset=3&limit=1").await;
    assert_eq!(p["total"], cells.len());
    assert_eq!(p["cells"].as_array().unwrap().len(), 1);
    assert_eq!(p["cells"][0]["id"], cells[3]["id"]);

    // Filters: each keeps exactly the cells the matrix says, with their outcomes from run.json.
    let variant = design["variants"][1]["name"].as_str().unwrap();
    let f = v
        .ok(&format!(
            "/api/cells?variant={}&task=beta&seed=1",
            urlenc(variant)
        ))
        .await;
    let want: Vec<&Value> = cells
        .iter()
        .filter(|c| c["variant"] == variant && c["task"] == "beta" && c["seed"] == 1)
        .collect();
    assert_eq!(f["total"], want.len());
    assert_eq!(want.len(), 1);
    let id = f["cells"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(id, want[0]["id"].as_str().unwrap());
    let ws = out.join("cells").join(&id);
    let record = read_json(&ws.join("run.json"));
    assert_eq!(f["cells"][0]["outcome"], record["outcome"]);
    let passed = v.ok("/api/cells?outcome=passed&limit=1000").await;
    let on_disk = cells
        .iter()
        .filter(|c| {
            read_json(
                &out.join("cells")
                    .join(c["id"].as_str().unwrap())
                    .join("run.json"),
            )["outcome"]
                == "passed"
        })
        .count();
    assert_eq!(passed["total"], on_disk);
    let (code, bad) = v.get("/api/cells?seed=x").await;
    assert_eq!(code, 400);
    assert!(bad["error"].as_str().unwrap().contains("seed"), "{bad}");

    // A run: its header is run.json's, its events are the history's, a page at a time.
    let r = v.ok(&format!("/api/run/{id}")).await;
    assert_eq!(r["header"]["outcome"], record["outcome"]);
    assert_eq!(r["header"]["run_id"], record["run_id"]);
    assert_eq!(
        r["record"]["metrics"]["wall_ms"],
        record["metrics"]["wall_ms"]
    );
    assert!(r["note"].is_null());
    let n_events = lines(&ws.join("history/events.jsonl"));
    assert_eq!(r["events"], n_events);
    let page = v
        .ok(&format!("/api/run/{id}/events?offset=2&limit=3"))
        .await;
    assert_eq!(page["total"], n_events);
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4, 5]);
    let started = v
        .ok(&format!(
            "/api/run/{id}/events?kind=child-started&limit=1000"
        ))
        .await;
    let children = r["children"].as_array().unwrap();
    assert_eq!(started["total"], children.len());
    assert!(!children.is_empty());

    // A child's conversation is its transcript; its calls carry their arguments.
    let child = children[0]["id"].as_str().unwrap();
    let c = v.ok(&format!("/api/run/{id}/child/{child}")).await;
    let transcript =
        std::fs::read_to_string(ws.join("children").join(child).join("transcript.jsonl")).unwrap();
    assert_eq!(
        c["transcript"].as_array().unwrap().len(),
        transcript.lines().count()
    );
    assert_eq!(
        c["response"].as_str().unwrap(),
        std::fs::read_to_string(ws.join("children").join(child).join("RESPONSE.md")).unwrap()
    );
    let (code, _) = v.get(&format!("/api/run/{id}/child/nobody")).await;
    assert_eq!(code, 404);

    // The workspace's commits, as git counts them, each with its diff.
    let commits = v.ok(&format!("/api/run/{id}/commits?limit=1000")).await;
    assert_eq!(commits["total"].as_u64().unwrap(), git_count(&ws));
    let list = commits["commits"].as_array().unwrap();
    let last = list.last().unwrap();
    assert!(
        last["summary"]
            .as_str()
            .unwrap()
            .starts_with("run finished")
    );
    let first = list[0]["id"].as_str().unwrap();
    let d = v.ok(&format!("/api/run/{id}/commit/{first}")).await;
    assert_eq!(d["id"], first);
    assert!(d["parent"].is_null());
    let mut found = false;
    for k in list {
        let d = v
            .ok(&format!(
                "/api/run/{id}/commit/{}",
                k["id"].as_str().unwrap()
            ))
            .await;
        for f in d["files"].as_array().unwrap() {
            if f["path"] == "artifacts/result.txt" && f["status"] == "added" {
                let body = std::fs::read_to_string(ws.join("artifacts/result.txt")).unwrap();
                let first = body.lines().next().unwrap_or_default();
                assert!(
                    f["patch"].as_str().unwrap().contains(&format!("+{first}")),
                    "{f}"
                );
                found = true;
            }
        }
    }
    assert!(found, "no commit adds artifacts/result.txt");

    // Two cells side by side: what `nlah diff` computes.
    let other = cells[0]["id"].as_str().unwrap();
    let d = v.ok(&format!("/api/diff?a={other}&b={id}")).await;
    let lib = nlah::versions::run_diff::diff(&out.join("cells").join(other), &ws).unwrap();
    assert_eq!(d["diff"]["common"], lib.common);
    assert_eq!(d["diff"]["a"]["run_id"], lib.a.run_id);
    assert_eq!(d["diff"]["b"]["outcome"], lib.b.outcome);

    // The report page is the report's HTML.
    let html = reqwest::get(format!("{}/report.html", v.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<svg class=\"scatter\""), "{html}");

    // Nothing outside the matrix is reachable, and nothing was reported as wrong.
    for bad in ["..", "..%2F..%2Fetc", ".git", "nope"] {
        let (code, e) = v.get(&format!("/api/run/{bad}")).await;
        assert_eq!(code, 404, "{bad}: {e}");
    }
    let (code, _) = v.get("/api/harness").await;
    assert_eq!(code, 404);
    let term = v.terminal();
    assert!(term.contains("no run `nope` here"), "{term}");

    // A request under another host name (DNS rebinding) is refused.
    let r = reqwest::Client::new()
        .get(format!("{}/api/matrix", v.url))
        .header("Host", "evil.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_paths_say_what_is_wrong_in_the_page_and_on_the_terminal() {
    let env = TestEnv::with_model(diligent).await;

    // Not an nlah folder: refused at once, with the reason and the usage exit code.
    let empty = env.root().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, err) = env.run(&["view", empty.to_str().unwrap(), "--no-open"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an nlah folder"), "{err}");
    let (code, _, err) = env.run(&["view", "/nonexistent/run", "--no-open"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent/run: no such file or folder"),
        "{err}"
    );

    let ran = env
        .nlah_run(&[
            "tests/fixtures/versions/mini",
            "tests/fixtures/versions/tasks/write-result",
            "--model",
            "openai:mock-1",
        ])
        .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    // A corrupt run.json: said on the terminal at start, and by the page's endpoint.
    let corrupt = env.root().join("corrupt");
    crate::support::gitrepo::copy_dir(&ran.ws, &corrupt);
    std::fs::write(
        corrupt.join("run.json"),
        "{\"schema\": \"nlah.run/1\", \"run_",
    )
    .unwrap();
    let v = Viewer::start(&env, &[&corrupt]);
    let (code, e) = v.get("/api/run/0").await;
    assert_eq!(code, 422);
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("run.json") && msg.contains("EOF"), "{msg}");
    let term = v.terminal();
    assert!(
        term.contains("warning:") && term.contains("run.json"),
        "{term}"
    );
    assert!(term.contains("nlah view: run 0:"), "{term}");
    drop(v);

    // A half-written run (stopped before run.json): shown, with a note saying so.
    let half = env.root().join("half");
    crate::support::gitrepo::copy_dir(&ran.ws, &half);
    std::fs::remove_file(half.join("run.json")).unwrap();
    let v = Viewer::start(&env, &[&half]);
    let r = v.ok("/api/run/0").await;
    assert!(r["note"].as_str().unwrap().contains("no run.json"), "{r}");
    assert_eq!(r["events"], lines(&half.join("history/events.jsonl")));
    assert!(v.terminal().contains("no run.json yet"));

    // A mix of a run and something else is refused.
    let (code, _, err) = env.run(&[
        "view",
        ran.ws.to_str().unwrap(),
        empty.to_str().unwrap(),
        "--no-open",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not a run workspace"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_harness_its_toggles_versions_and_their_diff() {
    let mut r = Repo::new();
    r.copy("tests/fixtures/versions/mini", "harness-skills/mini");
    let v1 = r.commit("mini v1");
    r.edit(
        "harness-skills/mini/SKILL.md",
        "| tokens | 50k |",
        "| tokens | 60k |",
    );
    let v2 = r.commit("mini v2: more tokens");
    let h = r.path().join("harness-skills/mini");
    let v = Viewer::start(&r.env, &[&h]);

    let c = v.ok("/api/harness").await;
    let (code, shown, err) = r.env.run(&["show", h.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains(&format!("sha256 {}", c["version"].as_str().unwrap())));
    assert!(shown.ends_with(c["text"].as_str().unwrap()));
    let modules: Vec<&str> = c["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(modules.contains(&"reviewer"), "{modules:?}");

    // Toggled in the page: the text and version `nlah show --with` gives.
    let on = v.ok("/api/harness?with=reviewer").await;
    let (_, shown, _) = r
        .env
        .run(&["show", h.to_str().unwrap(), "--with", "reviewer"]);
    assert!(shown.contains(&format!("sha256 {}", on["version"].as_str().unwrap())));
    assert_ne!(on["version"], c["version"]);
    assert!(
        on["enabled"]
            .as_array()
            .unwrap()
            .contains(&"reviewer".into())
    );
    let (code, e) = v.get("/api/harness?with=nosuch").await;
    assert_eq!(code, 200);
    assert!(
        e["problems"][0]
            .as_str()
            .unwrap()
            .contains("unknown module `nosuch`")
    );

    // Versions: what `nlah log --json` lists.
    let log = v.ok("/api/harness/log").await;
    let (code, cli, err) = r.nlah(&["log", "harness-skills/mini", "--json"]);
    assert_eq!(code, 0, "{err}");
    let cli: Value = serde_json::from_str(&cli).unwrap();
    assert_eq!(log["entries"], cli["entries"]);
    assert_eq!(log["entries"][0]["commit"], v2.to_string());
    assert_eq!(log["entries"][1]["commit"], v1.to_string());

    // The semantic diff of the two: the budget changed.
    let d = v.ok(&format!("/api/harness/diff?a={v1}&b={v2}")).await;
    let text = d["harnesses"].to_string();
    assert!(text.contains("50k") && text.contains("60k"), "{text}");
    let (code, e) = v.get("/api/harness/diff?a=nosuch&b=HEAD").await;
    assert_eq!(code, 422);
    assert!(e["error"].as_str().unwrap().contains("nosuch"));
}

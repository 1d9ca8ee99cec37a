//! `nlah diff RUN_A RUN_B`: two runs of the mini harness against the scripted model, one of
//! which leaves an empty result and fails its gate.

use crate::support::{Answer, TestEnv, Turn, diligent};
use serde_json::Value;

/// An executor that writes an empty result and reports done: the command gate fails.
fn sloppy(t: &Turn) -> Answer {
    if t.role != "executor" {
        return diligent(t);
    }
    match t.turn {
        0 => Answer::write("artifacts/result.txt", ""),
        1 => Answer::write(
            &format!("children/{}/RESPONSE.md", t.child),
            "status: done\n\nWrote the result.\n",
        ),
        _ => Answer::text("Finished."),
    }
}

const ARGS: [&str; 4] = [
    "tests/fixtures/versions/mini",
    "tests/fixtures/versions/tasks/write-result",
    "--model",
    "openai:mock-1",
];

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_part_where_a_gate_fails() {
    let good = TestEnv::with_model(diligent).await;
    let bad = TestEnv::with_model(sloppy).await;
    let a = good.nlah_run(&ARGS).await;
    let b = bad.nlah_run(&ARGS).await;
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(a.record()["outcome"], "passed");
    assert_eq!(b.record()["outcome"], "failed", "{}", b.stdout);
    let (pa, pb) = (a.ws.to_str().unwrap(), b.ws.to_str().unwrap());

    let (code, out, err) = good.run(&["diff", pa, pb, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "runs");
    let d = &v["diff"];
    let div = &d["divergence"];
    // Both executors write the result; what they write is where the runs part.
    assert_eq!(div["a"]["event"], "tool-call", "{div}");
    assert_eq!(div["b"]["event"], "tool-call", "{div}");
    assert_eq!(div["a"]["key"]["child"], "execute-1");
    assert!(
        div["b"]["key"]["summary"]
            .as_str()
            .unwrap()
            .contains(r#""content":"""#)
    );
    assert_eq!(div["index"], d["common"].as_u64().unwrap() + 1);
    assert_eq!(d["a"]["outcome"], "passed");
    assert_eq!(d["b"]["outcome"], "failed");
    let arts = d["artifacts"].as_array().unwrap();
    let result = arts
        .iter()
        .find(|x| x["path"] == "artifacts/result.txt")
        .unwrap();
    assert_eq!(result["status"], "changed");
    assert_eq!(result["b"]["size"], 0);

    // Short names for the two workspaces keep the side-by-side columns stable.
    let here = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&a.ws, here.path().join("a")).unwrap();
    std::os::unix::fs::symlink(&b.ws, here.path().join("b")).unwrap();
    let (code, out, err) = good.run_in(here.path(), &["diff", "a", "b"]);
    assert_eq!(code, 0, "{err}");
    // insta's filters are a feature this crate does not enable; redact by hand.
    let out = redact(&out, r"\d+\.\d s", "[WALL]");
    // Gate reports carry timings, so artifact sizes and hashes vary; the JSON checks above pin
    // the ones that matter. Collapsing the padding keeps the columns stable.
    let out = redact(&out, r"\d+ B [0-9a-f]{8}", "[FILE]");
    // Token counts follow the engine's prompts; the JSON checks pin what matters here.
    let out = redact(&out, r"\b\d{1,3}(?:,\d{3})+\b|\b\d{3,}\b", "N");
    let out = redact(&out, r"(\S) {2,}", "$1  ");
    insta::assert_snapshot!("diff_runs", out);

    // The same run twice agrees with itself.
    let (_, same, _) = good.run(&["diff", pa, pa]);
    assert!(same.contains("the histories agree"), "{same}");
}

fn redact(text: &str, pattern: &str, with: &str) -> String {
    regex::Regex::new(pattern)
        .unwrap()
        .replace_all(text, with)
        .into_owned()
}

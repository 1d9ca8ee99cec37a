//! `nlah inspect`: a run's timeline, and its export as ATIF v1.6 trajectories, on runs made
//! against the scripted model.

use std::collections::HashSet;
use std::path::Path;

use crate::support::{Answer, TestEnv, Turn, diligent};
use serde_json::Value;

/// The plan stage fails its gate once (an empty plan), then succeeds.
fn wobbly(t: &Turn) -> Answer {
    if t.role == "planner" && t.child == "plan-1" {
        return match t.turn {
            0 => Answer::write("artifacts/plan.md", ""),
            1 => Answer::write(
                &format!("children/{}/RESPONSE.md", t.child),
                "status: done\n\nPlanned.\n",
            ),
            _ => Answer::text("Finished."),
        };
    }
    if t.role == "executor" && t.turn == 0 {
        // A failing command among the tool calls.
        return Answer::shell("false");
    }
    diligent(&Turn {
        turn: if t.role == "executor" {
            t.turn - 1
        } else {
            t.turn
        },
        ..t.clone()
    })
}

const ARGS: [&str; 4] = [
    "tests/fixtures/versions/mini",
    "tests/fixtures/versions/tasks/write-result",
    "--model",
    "openai:mock-1",
];

fn redact(text: &str, pattern: &str, with: &str) -> String {
    regex::Regex::new(pattern)
        .unwrap()
        .replace_all(text, with)
        .into_owned()
}

/// Times, durations and the machine's sandbox vary from run to run.
fn stable(out: &str) -> String {
    let out = redact(out, r"\+\d+\.\d{3}s", "+T");
    let out = redact(&out, r"started \S+", "started [TIME]");
    let out = redact(&out, r" · \d+\.\d s", " · [WALL]");
    let out = redact(&out, r"sandbox: .*", "sandbox: [SANDBOX]");
    let out = redact(&out, r"in \d+ ms", "in [MS]");
    // Token counts follow the engine's prompts and the charter, which change on their own;
    // the snapshot pins the shape of the timeline, the JSON test pins the accounting.
    let out = redact(&out, r"\b\d{1,3}(?:,\d{3})+\b|\b\d{3,}\b", "N");
    let table = regex::Regex::new(r"(\S) {2,}").unwrap();
    out.lines()
        .map(|l| {
            if l.starts_with("  ") && !l.contains("+T") {
                table.replace_all(l, "$1  ").into_owned()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_timeline_reads_as_the_run_went() {
    let env = TestEnv::with_model(wobbly).await;
    let ran = env.nlah_run(&ARGS).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let ws = ran.ws.to_str().unwrap();

    let (code, out, err) = env.run(&["inspect", ws]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("inspect_timeline", stable(&out));

    let (code, out, _) = env.run(&["inspect", ws, "--calls"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("· write "),
        "every call shows with --calls:\n{out}"
    );

    let (code, out, err) = env.run(&["inspect", ws, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["header"]["outcome"], "passed");
    let entries = v["entries"].as_array().unwrap();
    let t: Vec<i64> = entries
        .iter()
        .map(|e| e["t_ms"].as_i64().unwrap())
        .collect();
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "times only go forward");
    assert!(
        entries
            .iter()
            .any(|e| e["mark"] == "fail" && e["text"].as_str().unwrap().starts_with("gate "))
    );
    let children = v["usage"]["children"].as_array().unwrap();
    assert_eq!(children[0]["child"], "plan-1");
    let served = env.model().served();
    let sum: u64 = children
        .iter()
        .map(|c| c["usage"]["input_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(
        sum, served.prompt_tokens,
        "children account for every token"
    );
    assert_eq!(v["usage"]["total"]["calls"], served.calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn atif_export_is_structurally_valid() {
    let env = TestEnv::with_model(wobbly).await;
    let ran = env.nlah_run(&ARGS).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let out = env.root().join("traj/run.json");
    let (code, stdout, err) = env.run(&[
        "inspect",
        ran.ws.to_str().unwrap(),
        "--export",
        "atif",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("child trajectories"), "{stdout}");
    let parent = read(&out);
    validate(&parent);
    assert_eq!(parent["agent"]["name"], "nlah");
    assert_eq!(parent["agent"]["model_name"], "openai:mock-1");
    assert_eq!(parent["steps"][0]["source"], "user", "the task comes first");

    // Every delegation points at a child trajectory that exists and is valid itself.
    let mut refs = Vec::new();
    for s in parent["steps"].as_array().unwrap() {
        for r in s["observation"]["results"].as_array().into_iter().flatten() {
            for sub in r["subagent_trajectory_ref"]
                .as_array()
                .into_iter()
                .flatten()
            {
                refs.push((
                    sub["session_id"].as_str().unwrap().to_string(),
                    sub["trajectory_path"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    let children: Vec<Value> = ran
        .events()
        .into_iter()
        .filter(|e| e["event"] == "child-started")
        .collect();
    assert_eq!(refs.len(), children.len());
    assert!(refs.len() >= 3, "plan twice, execute once: {refs:?}");
    let mut prompt = 0;
    let mut calls = 0;
    for (session, file) in &refs {
        let path = out.parent().unwrap().join(file);
        assert!(path.is_file(), "{file} missing");
        let child = read(&path);
        validate(&child);
        assert_eq!(&child["session_id"], session);
        let fm = &child["final_metrics"];
        prompt += fm["total_prompt_tokens"].as_u64().unwrap();
        let steps = child["steps"].as_array().unwrap();
        calls += steps.iter().filter(|s| s["metrics"].is_object()).count() as u64;
        assert_eq!(steps[0]["source"], "system");
        assert_eq!(steps[1]["source"], "user");
        assert!(steps.iter().any(|s| s["source"] == "agent"));
    }
    // Children's trajectories hold every model call; the parent's totals equal the run's.
    let served = env.model().served();
    assert_eq!(prompt, served.prompt_tokens);
    assert_eq!(calls, served.calls);
    assert_eq!(
        parent["final_metrics"]["total_prompt_tokens"],
        served.prompt_tokens
    );
    // A failed tool call's result sits beside the call that made it.
    let exec = read(&out.parent().unwrap().join("run.execute-1.json"));
    let first = exec["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "agent")
        .unwrap();
    assert_eq!(first["tool_calls"][0]["function_name"], "shell");
    assert_eq!(first["tool_calls"][0]["arguments"]["command"], "false");
    let id = first["tool_calls"][0]["tool_call_id"].clone();
    assert_eq!(first["observation"]["results"][0]["source_call_id"], id);
    assert_eq!(
        first["extra"]["tool_results"][id.as_str().unwrap()]["is_error"],
        true
    );
}

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The structure ATIF v1.6 requires (as Harbor's validator checks it).
fn validate(t: &Value) {
    let obj = t.as_object().unwrap();
    for k in ["schema_version", "session_id", "agent", "steps"] {
        assert!(obj.contains_key(k), "missing {k}");
    }
    let allowed: HashSet<&str> = [
        "schema_version",
        "session_id",
        "agent",
        "steps",
        "notes",
        "final_metrics",
        "continued_trajectory_ref",
        "extra",
    ]
    .into();
    assert!(
        obj.keys().all(|k| allowed.contains(k.as_str())),
        "{:?}",
        obj.keys()
    );
    assert_eq!(t["schema_version"], "ATIF-v1.6");
    assert!(t["session_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(t["agent"]["name"].is_string() && t["agent"]["version"].is_string());
    let steps = t["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    let step_keys: HashSet<&str> = [
        "step_id",
        "timestamp",
        "source",
        "model_name",
        "reasoning_effort",
        "message",
        "reasoning_content",
        "tool_calls",
        "observation",
        "metrics",
        "extra",
    ]
    .into();
    for (i, s) in steps.iter().enumerate() {
        let so = s.as_object().unwrap();
        assert!(
            so.keys().all(|k| step_keys.contains(k.as_str())),
            "{:?}",
            so.keys()
        );
        assert_eq!(s["step_id"], i as u64 + 1, "step ids run 1, 2, 3, …");
        assert!(s["message"].is_string());
        let source = s["source"].as_str().unwrap();
        assert!(["system", "user", "agent"].contains(&source));
        if source != "agent" {
            for k in ["model_name", "reasoning_content", "tool_calls", "metrics"] {
                assert!(!so.contains_key(k), "{k} on a {source} step");
            }
        }
        if let Some(ts) = s["timestamp"].as_str() {
            assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        }
        let ids: Vec<&str> = s["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                assert!(c["function_name"].is_string());
                assert!(c["arguments"].is_object(), "arguments are an object");
                c["tool_call_id"].as_str().unwrap()
            })
            .collect();
        for r in s["observation"]["results"].as_array().into_iter().flatten() {
            if let Some(id) = r["source_call_id"].as_str() {
                assert!(ids.contains(&id), "result for {id} without its call");
            }
        }
        if let Some(m) = s["metrics"].as_object() {
            for k in ["prompt_tokens", "completion_tokens", "cached_tokens"] {
                assert!(m[k].is_u64(), "{k}");
            }
        }
    }
    let fm = &t["final_metrics"];
    assert_eq!(fm["total_steps"], steps.len() as u64);
    for k in [
        "total_prompt_tokens",
        "total_completion_tokens",
        "total_cached_tokens",
    ] {
        assert!(fm[k].is_u64(), "{k}");
    }
    assert!(fm["total_cost_usd"].is_number());
}

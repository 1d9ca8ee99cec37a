//! The brief a child gets first: `brief: full | compact` in the contract, set by a module; the
//! compact form's size on the bundled harnesses; and the order that lets providers' prompt
//! caches reuse the start of every child's request.

use nlah::engine::brief::{CHARTER_FILE, compact_system};
use nlah::harness::model::BriefForm;
use nlah::harness::{self, Toggles};
use nlah::model::{ChatRequest, Role};

use crate::support::{TestEnv, assert_fsck, serve};

#[path = "../../benches/support/briefs.rs"]
mod brief_support;

/// The compact form's targets (system + brief + tool schemas, as sent), from the brief: small
/// local models have 4k–8k contexts. `basic` was 1,500; the `finish` tool every child gets (so
/// that a model forced to call tools can stop) costs about 60 tokens of schema.
const BASIC_TARGET: usize = 1_600;
const SWE_TARGET: usize = 3_000;

/// The larger of the o200k_base and cl100k_base counts, and a tenth more for chat templates'
/// role and tool markers. (For the full form of `basic` o200k_base counts 5,580 tokens, more
/// than the "about 5,100" the targets were set against.)
fn conservative(req: &ChatRequest) -> usize {
    let n = brief_support::o200k_tokens(req).max(brief_support::cl100k_tokens(req));
    n + n / 10
}

fn toggles(with: &[&str]) -> Toggles {
    Toggles {
        with: with.iter().map(|s| s.to_string()).collect(),
        without: Vec::new(),
    }
}

#[test]
fn the_compact_brief_module_sets_the_form_and_full_is_the_default() {
    let basic = brief_support::root().join("harness-skills/basic");
    for (with, form) in [
        (&[][..], BriefForm::Full),
        (&["compact-brief"][..], BriefForm::Compact),
    ] {
        let (_, h, diags) = harness::build(&basic, &toggles(with)).expect("build");
        assert!(diags.0.is_empty(), "{diags:?}");
        assert_eq!(h.expect("a harness").contract.brief, form, "with {with:?}");
    }
    // The swe harness keeps the paper's six modules; the same module file works on a copy.
    let tmp = tempfile::tempdir().expect("tempdir");
    let swe = brief_support::with_compact_module("swe", tmp.path());
    let (_, h, diags) = harness::build(&swe, &toggles(&["compact-brief"])).expect("build");
    assert!(diags.0.is_empty(), "{diags:?}");
    assert_eq!(h.expect("a harness").contract.brief, BriefForm::Compact);
}

#[test]
fn an_unknown_brief_form_names_file_line_and_the_allowed_values() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("mini");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let skill =
        std::fs::read_to_string(brief_support::root().join("harness-skills/basic/SKILL.md"))
            .expect("basic")
            .replace("name: basic", "name: mini")
            .replace("## Contract\n", "## Contract\n\n- brief: tiny\n");
    let line = skill
        .lines()
        .position(|l| l == "- brief: tiny")
        .expect("the field")
        + 1;
    std::fs::write(dir.join("SKILL.md"), skill).expect("write");
    let out = TestEnv::new()
        .nlah()
        .args(["check", "--json"])
        .arg(&dir)
        .output()
        .expect("nlah check");
    assert_eq!(out.status.code(), Some(1));
    let diags: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let d = diags
        .iter()
        .find(|d| d["code"] == "bad-contract")
        .unwrap_or_else(|| panic!("no bad-contract diagnostic in {diags:?}"));
    assert_eq!(d["severity"], "error");
    assert!(
        d["path"].as_str().expect("path").ends_with("mini/SKILL.md"),
        "{d}"
    );
    assert_eq!(d["line"], line);
    assert_eq!(
        d["message"],
        "`tiny` is not a brief form; write `full` or `compact`"
    );
}

/// The first request of the first child of `harness` on hello-greeting, in each form.
fn first_request(harness: &str, compact: bool) -> (nlah::model::ChatRequest, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir").keep();
    let folder = brief_support::with_compact_module(harness, &tmp);
    let with: &[&str] = if compact { &["compact-brief"] } else { &[] };
    let ws = tmp.join("ws");
    let capture = brief_support::run(
        &folder,
        with,
        &brief_support::root().join("examples/tasks/hello-greeting"),
        ws.clone(),
        &[],
    );
    let first = capture.first_requests();
    (first.first().expect("a child ran").1.clone(), ws)
}

#[test]
fn the_compact_brief_of_hello_greeting_fits_a_small_models_context() {
    for (harness, target) in [("basic", BASIC_TARGET), ("swe", SWE_TARGET)] {
        let (full, full_ws) = first_request(harness, false);
        let (compact, ws) = first_request(harness, true);
        let (f, c) = (
            brief_support::o200k_tokens(&full),
            brief_support::o200k_tokens(&compact),
        );
        eprintln!(
            "{harness}: full {f} tokens ({} bytes), compact {c} tokens ({} bytes), bound {}",
            brief_support::body_bytes(&full),
            brief_support::body_bytes(&compact),
            conservative(&compact)
        );
        assert!(
            conservative(&compact) <= target,
            "{harness}: the compact first request is {c} o200k tokens, {} with the margin; the target is {target}",
            conservative(&compact)
        );
        assert!(
            c * 2 < f,
            "{harness}: compact {c} is not well under full {f}"
        );
        // The compact system message is the harness's, nothing else; the charter and the whole
        // skill are files in the workspace it points to.
        let h = harness::build(
            &brief_support::with_compact_module(harness, tempfile::tempdir().expect("tmp").path()),
            &toggles(&["compact-brief"]),
        )
        .expect("build")
        .1
        .expect("harness");
        assert_eq!(compact.messages[0].content, compact_system(&h));
        assert!(compact.messages[0].content.contains("`CHARTER.md`"));
        let charter = std::fs::read_to_string(ws.join(CHARTER_FILE)).expect("CHARTER.md");
        assert!(charter.contains("## Workspace protocol"), "{charter}");
        assert!(ws.join("SKILL.md").is_file());
        assert!(
            !compact.messages[1]
                .content
                .contains("## Workspace protocol")
        );
        // The full form is the paper's: the composed SKILL.md and the whole charter.
        assert_eq!(
            full.messages[0].content,
            std::fs::read_to_string(full_ws.join("SKILL.md")).expect("SKILL.md")
        );
        assert!(full.messages[1].content.contains("## Workspace protocol"));
        assert!(!full_ws.join(CHARTER_FILE).exists());
    }
}

/// Checks that what all children share comes first and the child's id last.
fn check_order(
    form: &str,
    a: &nlah::model::ChatRequest,
    a_id: &str,
    b: &nlah::model::ChatRequest,
    b_id: &str,
    same_stage: bool,
) {
    assert_eq!(a.messages[0].role, Role::System);
    assert_eq!(
        a.messages[0].content, b.messages[0].content,
        "{form}: the system message is the same for every child"
    );
    let (ua, ub) = (&a.messages[1].content, &b.messages[1].content);
    let shared = brief_support::common_prefix(ua, ub);
    let role_at = ua.find("# Your role: ").expect("the role");
    assert!(
        shared >= role_at,
        "{form}: {a_id} and {b_id} differ before the role, at {shared}: {:?}",
        &ua[shared.saturating_sub(40)..(shared + 40).min(ua.len())]
    );
    for (u, id) in [(ua, a_id), (ub, b_id)] {
        let task_at = u.find("# The run's task").expect("the task");
        // (The charter's own example id, `children/execute-1/`, is the same for everyone.)
        for mark in [
            format!("# Child task: {id}"),
            format!("`children/{id}/RESPONSE.md`"),
        ] {
            let at = u.find(&mark).expect("the child's id");
            assert!(
                at > task_at,
                "{form}: {mark} is at {at}, before the task at {task_at}"
            );
        }
    }
    if same_stage {
        // Two attempts of one stage differ only where the id is.
        let identity = ua.find("# Child task: ").expect("identity");
        assert_eq!(
            shared,
            identity + "# Child task: ".len() + brief_support::common_prefix(a_id, b_id),
            "{form}: {a_id} and {b_id} differ before their ids"
        );
        assert_eq!(a.tools, b.tools);
    }
}

#[test]
fn requests_put_what_children_share_first_and_the_child_id_last() {
    for (form, with) in [("full", &[][..]), ("compact", &["compact-brief"][..])] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folder = brief_support::with_compact_module("swe", tmp.path());
        // plan-1 reports failed, so plan is attempted again; then execute follows.
        let capture = brief_support::run(
            &folder,
            with,
            &brief_support::root().join("examples/tasks/hello-greeting"),
            tmp.path().join("ws"),
            &["plan-1"],
        );
        let first = capture.first_requests();
        let get = |id: &str| {
            first
                .iter()
                .find(|(c, _)| c == id)
                .map(|(_, r)| r)
                .unwrap_or_else(|| {
                    panic!(
                        "{form}: no {id} among {:?}",
                        first.iter().map(|(c, _)| c).collect::<Vec<_>>()
                    )
                })
        };
        let (p1, p2, e1) = (get("plan-1"), get("plan-2"), get("execute-1"));
        check_order(form, p1, "plan-1", p2, "plan-2", true);
        check_order(form, p2, "plan-2", e1, "execute-1", false);
    }
}

/// A llama.cpp-like server on loopback: every child's first call writes its RESPONSE.md; the
/// usage reports 1,000 prompt tokens, 900 of them from the prompt cache, the way llama.cpp's
/// server says it (`timings.cache_n`, streamed in the last chunk or beside a whole answer).
async fn llama_like(axum::Json(body): axum::Json<serde_json::Value>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let task = body["messages"][1]["content"].as_str().unwrap_or("");
    let child = task
        .split("# Child task: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("unknown");
    let call = serde_json::json!({"id": "call_0", "type": "function", "function": {"name": "write", "arguments": serde_json::json!({"path": format!("children/{child}/RESPONSE.md"), "content": "status: done\n\nWrote nothing else.\n"}).to_string()}});
    let usage =
        serde_json::json!({"prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020});
    let timings = serde_json::json!({"cache_n": 900, "prompt_n": 100, "predicted_n": 20});
    if body["stream"] == true {
        let chunks = [
            serde_json::json!({"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_0", "type": "function", "function": {"name": "write", "arguments": call["function"]["arguments"]}}]}, "finish_reason": null}]}),
            serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            serde_json::json!({"choices": [], "usage": usage, "timings": timings}),
        ];
        let mut sse: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
        sse.push_str("data: [DONE]\n\n");
        ([("content-type", "text/event-stream")], sse).into_response()
    } else {
        axum::Json(serde_json::json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "", "tool_calls": [call]}, "finish_reason": "tool_calls"}],
            "usage": usage,
            "timings": timings,
        }))
        .into_response()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_prompt_tokens_from_llama_cpp_reach_run_json_and_inspect() {
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(llama_like));
    let (base, _server) = serve(app).await;
    let env = TestEnv::with_base_url(&format!("{base}/v1"));
    let ws = env.root().join("ws");
    let (run, inspect) = {
        let (mut run_cmd, mut inspect_cmd) = (env.nlah(), env.nlah());
        let ws = ws.clone();
        tokio::task::spawn_blocking(move || {
            let run = run_cmd
                .args([
                    "run",
                    "basic",
                    "examples/tasks/hello-greeting",
                    "--model",
                    "openai:llama-like",
                    "--with",
                    "compact-brief",
                    "--workspace",
                ])
                .arg(&ws)
                .output()
                .expect("nlah run");
            let inspect = inspect_cmd
                .arg("inspect")
                .arg(&ws)
                .output()
                .expect("nlah inspect");
            (run, inspect)
        })
        .await
        .expect("join")
    };
    // The model wrote no greeting, so the hidden verifier fails: exit 1, a finished run.
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.join("run.json")).expect("run.json"))
            .expect("json");
    let m = &record["metrics"];
    assert_eq!(m["total"]["input_tokens"], 1000);
    assert_eq!(m["total"]["cached_input_tokens"], 900);
    assert_eq!(m["children"]["cached_input_tokens"], 900);
    assert_eq!(m["stages"][0]["usage"]["cached_input_tokens"], 900);
    let text = String::from_utf8_lossy(&inspect.stdout);
    let child_row = text
        .lines()
        .find(|l| l.trim_start().starts_with("execute-1 "))
        .unwrap_or_else(|| panic!("no child row in\n{text}"));
    assert!(child_row.contains("1,000 (900 cached)"), "{child_row}");
    assert!(text.contains("1,000 input (900 cached)"), "{text}");
    assert!(ws.join(CHARTER_FILE).is_file());
    assert_fsck(&ws);
}

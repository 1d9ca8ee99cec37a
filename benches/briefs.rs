//! The size of a child's first request: `basic` and `swe` on `examples/tasks/hello-greeting`,
//! each in the full brief and the compact one (the `compact-brief` module).
//!
//! For each, the first request of the first child, as a real run sends it: bytes of the JSON
//! body an OpenAI-compatible server receives, and tokens in o200k_base (GPT-4o's tokenizer) and
//! cl100k_base (GPT-4's), through `tiktoken-rs`: the messages' text with OpenAI's per-message
//! overhead, and the tool schemas as JSON. With `NLAH_LOCAL_LLM_URL` and `NLAH_LOCAL_LLM_MODEL` set, the request is
//! also sent to that server with `max_tokens: 1`, and the prompt tokens it reports (its own
//! tokenizer and chat template, tool schemas included) are printed beside them.
//!
//! Run: `cargo bench --bench briefs`.

use std::time::Duration;

use nlah::model::openai::OpenAiBackend;
use nlah::model::{ChatBackend, ChatRequest};

#[path = "support/briefs.rs"]
mod briefs;

/// The prompt tokens a real server counts for `req`, when one is configured.
fn server_tokens(req: &ChatRequest) -> Option<Result<u64, String>> {
    let url = std::env::var("NLAH_LOCAL_LLM_URL").ok()?;
    let model = std::env::var("NLAH_LOCAL_LLM_MODEL").ok()?;
    let backend = match OpenAiBackend::new(url, None, model.clone(), Duration::from_secs(600)) {
        Ok(b) => b,
        Err(e) => return Some(Err(e.to_string())),
    };
    let mut req = req.clone();
    req.model = model;
    req.max_tokens = Some(1);
    let rt = tokio::runtime::Runtime::new().ok()?;
    Some(
        rt.block_on(backend.complete(&req))
            .map(|r| r.usage.input_tokens)
            .map_err(|e| e.to_string()),
    )
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let task = briefs::root().join("examples/tasks/hello-greeting");
    println!("first request of the first child, examples/tasks/hello-greeting");
    println!(
        "{:<6} {:<8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}  server",
        "", "brief", "bytes", "o200k", "cl100k", "system", "user", "tools"
    );
    for harness in ["basic", "swe"] {
        let folder = briefs::with_compact_module(harness, tmp.path());
        for (form, with) in [("full", &[][..]), ("compact", &["compact-brief"][..])] {
            let ws = tmp.path().join(format!("ws-{harness}-{form}"));
            let capture = briefs::run(&folder, with, &task, ws, &[]);
            let first = capture.first_requests();
            let (_, req) = first.first().expect("a child ran");
            let server = match server_tokens(req) {
                None => "(set NLAH_LOCAL_LLM_URL)".to_string(),
                Some(Ok(n)) => format!("{n} tokens"),
                Some(Err(e)) => format!("error: {e}"),
            };
            println!(
                "{:<6} {:<8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}  {server}",
                harness,
                form,
                briefs::body_bytes(req),
                briefs::o200k_tokens(req),
                briefs::cl100k_tokens(req),
                req.messages[0].content.len(),
                req.messages[1].content.len(),
                serde_json::to_string(&req.tools).map_or(0, |t| t.len()),
            );
        }
    }
    println!(
        "(bytes: the JSON body; o200k, cl100k: tokens of messages and tool schemas; system, user, tools: bytes of each; targets for compact: basic 1,500, swe 3,000 tokens)"
    );
}

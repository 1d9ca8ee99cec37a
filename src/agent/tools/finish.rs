//! `finish`: the child's way to end its turn with a report, like Inspect's `submit`. It writes
//! the child's `RESPONSE.md` (the `status:` head line the runtime reads, then the report) and
//! the agent loop stops after it. Every chat child gets it, whatever its role's tool list, so
//! that a model that is forced to call tools can still stop.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::{ToolContext, ToolOutput};
use crate::model::ToolSpec;

/// The tool's name.
pub const NAME: &str = "finish";

/// The statuses the charter defines.
const STATUSES: [&str; 3] = ["done", "failed", "blocked"];

/// What the model is offered (made once; children share it).
pub fn spec() -> ToolSpec {
    SPEC.clone()
}

static SPEC: LazyLock<ToolSpec> = LazyLock::new(|| ToolSpec {
    name: NAME.into(),
    description: "End your turn: writes your RESPONSE.md (status, then report). Call it \
            when your work is done, or when you cannot go on."
        .into(),
    parameters: json!({
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": STATUSES},
            "report": {"type": "string", "description": "What you did and produced."},
        },
        "required": ["status", "report"],
        "additionalProperties": false,
    })
    .into(),
});

/// Writes the report. An error output (and nothing written) when the arguments are wrong, so
/// that the model can call it again.
pub fn call(ctx: &ToolContext, arguments: &str) -> ToolOutput {
    let expects =
        r#"finish expects {"status": "done" | "failed" | "blocked", "report": "<what you did>"}"#;
    let v: Value = match serde_json::from_str(arguments) {
        Ok(v) => v,
        Err(e) => {
            return ToolOutput::error(format!("the arguments are not valid JSON ({e}); {expects}"));
        }
    };
    let status = v["status"].as_str().unwrap_or("").trim().to_lowercase();
    if !STATUSES.contains(&status.as_str()) {
        return ToolOutput::error(format!(
            "\"status\" must be one of done, failed, blocked; {expects}"
        ));
    }
    let report = v["report"].as_str().unwrap_or("").trim();
    let rel = format!("{}/RESPONSE.md", ctx.own_dir);
    let path = ctx.workspace.join(&rel);
    let text = format!("status: {status}\n\n{report}\n");
    match crate::atomic::write(&path, text.as_bytes()) {
        Ok(()) => ToolOutput::ok(format!(
            "wrote {rel} (status: {status}); your turn ends here"
        )),
        Err(e) => ToolOutput::error(format!("cannot write {rel}: {e}")),
    }
}

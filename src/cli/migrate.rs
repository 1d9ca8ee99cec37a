//! `nlah migrate SRC --out harness-skills/NAME`: a code harness into an nlah harness.

use std::path::PathBuf;

use nlah::engine::backends::Backends;
use nlah::migrate::{self, MigrateError, Options};
use nlah::model::ModelSpec;
use nlah::model::retry::RetryPolicy;

use super::exit;

#[derive(clap::Args)]
pub struct Args {
    /// The code harness: a file or a folder (Python, TypeScript/JavaScript, YAML agent configs).
    src: PathBuf,
    /// The new harness folder (must not exist, or be empty); its name is the harness's name.
    #[arg(long)]
    out: PathBuf,
    /// The model that drafts: openai:MODEL, anthropic:MODEL or replay:FILE (default: $NLAH_MODEL).
    #[arg(long, env = "NLAH_MODEL")]
    model: Option<String>,
    /// Repair rounds after the first draft when `nlah check` finds errors.
    #[arg(long, default_value_t = 3)]
    repairs: u32,
    /// Record the model calls to this cassette (replay it with --model replay:FILE).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Attempts per model call on 429, 5xx, timeouts and malformed answers.
    #[arg(long, default_value_t = nlah::engine::settings::defaults::RETRIES)]
    retries: u32,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let prepared = match migrate::prepare(&a.src, &a.out) {
        Ok(p) => p,
        Err(e) => return Ok(fail(&e, a.json)),
    };
    let Some(model) = a.model.as_deref() else {
        anyhow::bail!(
            "no model: give --model (e.g. openai:gpt-4.1-mini, replay:cassette.jsonl) or set NLAH_MODEL"
        );
    };
    let spec: ModelSpec = model.parse()?;
    let model_name = match &spec {
        ModelSpec::OpenAi { model } | ModelSpec::Anthropic { model } => model.clone(),
        other => other.to_string(),
    };
    let mut opts = Options {
        model: model_name,
        repairs: a.repairs,
        retry: RetryPolicy::default(),
    };
    opts.retry.max_attempts = a.retries.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let work = async {
            let backend = Backends::new(a.record.clone(), None).chat(&spec).await?;
            migrate::draft(&prepared, backend.as_ref(), &opts).await
        };
        tokio::select! {
            r = work => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let report = match result {
        // Dropping the unfinished migration removes its temporary folder.
        None => {
            eprintln!("interrupted: nothing was written to {}", a.out.display());
            return Ok(130);
        }
        Some(Ok(r)) => r,
        Some(Err(e)) => return Ok(fail(&e, a.json)),
    };
    if a.json {
        let line = serde_json::json!({"ok": true, "report": report});
        println!("{line}");
        return Ok(exit::OK);
    }
    println!(
        "migrated {} -> {}: {} prompt(s), {} tool(s), {} script(s) written by nlah; {} model call(s)",
        a.src.display(),
        report.out.display(),
        report.prompts,
        report.tools,
        report.scripts.len(),
        report.rounds
    );
    for w in &report.warnings {
        eprintln!("{w}");
    }
    if !report.not_mapped.is_empty() {
        eprintln!(
            "note: the draft's mapping missed {} construct(s); MIGRATION.md lists them under \"Not mapped by the draft\"",
            report.not_mapped.len()
        );
    }
    for u in &report.unreadable {
        eprintln!("note: not read: {}: {}", u.path, u.why);
    }
    Ok(exit::OK)
}

fn fail(e: &MigrateError, json: bool) -> u8 {
    let code = if e.is_bad_input() {
        exit::USAGE
    } else {
        exit::FAILED
    };
    if json {
        let line = serde_json::json!({"ok": false, "error": e.to_string()});
        println!("{line}");
    }
    eprintln!("error: {e}");
    code
}

//! `nlah migrate`: turn a code harness (a Python agent loop, a YAML agent config) into an nlah
//! harness. Extraction is deterministic; the model drafts the Markdown under the migration
//! charter; nlah validates the draft with its own checker, sends diagnostics back for a bounded
//! number of repairs, writes the checks that should stay code as scripts itself, verifies the
//! mapping in `MIGRATION.md`, and moves the result into place with one rename.

pub mod answer;
pub mod extract;
pub mod mapping;
pub mod scripts;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::diag::Diags;
use crate::model::retry::{RetryPolicy, with_retries};
use crate::model::{ChatBackend, ChatRequest, Message, ModelError};
pub use extract::{ExtractError, Extraction};

/// The migration charter, kept in the repository and built into the binary.
pub const CHARTER: &str = include_str!("../../migration-charter/MIGRATION-CHARTER.md");

/// At most this many characters of source text go to the model.
pub const SOURCE_CAP: usize = 60_000;

/// Why a migration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error("{path}: nothing nlah can read:\n{why}")]
    NothingReadable { path: PathBuf, why: String },
    #[error(
        "{0}: found no prompt, tool, loop or check in it; is it an agent harness? (nlah reads Python, TypeScript, JavaScript and YAML agent configs)"
    )]
    NothingFound(PathBuf),
    #[error("{0}: already exists and is not empty; give a new folder for --out")]
    OutExists(PathBuf),
    #[error(
        "`{0}` is not a harness name: the last part of --out must be 1-64 characters of a-z, 0-9 and single hyphens"
    )]
    BadName(String),
    #[error("the model: {0}")]
    Model(#[from] ModelError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the model produced no valid harness in {rounds} round(s); nothing was written. Remaining diagnostics:\n{}",
        diagnostics.join("\n")
    )]
    NeverValid {
        rounds: u32,
        diagnostics: Vec<String>,
    },
}

impl MigrateError {
    /// Bad input or usage (exit 2), as opposed to a model that never got it right (exit 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, MigrateError::NeverValid { .. })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MigrateError + '_ {
    move |source| MigrateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A source read and checked, ready for drafting.
#[derive(Debug)]
pub struct Prepared {
    pub src: PathBuf,
    pub out: PathBuf,
    pub name: String,
    pub extraction: Extraction,
    pub texts: extract::Texts,
    /// The scripts nlah writes itself: (path in the harness, content).
    pub scripts: Vec<(String, String)>,
}

/// Options of the drafting pass.
#[derive(Debug, Clone)]
pub struct Options {
    /// The model name sent in each request.
    pub model: String,
    /// Repair rounds after the first draft.
    pub repairs: u32,
    /// Retries of each model call on 429, 5xx, timeouts and malformed answers.
    pub retry: RetryPolicy,
}

/// What a migration did.
#[derive(Debug, Serialize)]
pub struct MigrationReport {
    pub out: PathBuf,
    pub name: String,
    pub prompts: usize,
    pub tools: usize,
    pub scripts: Vec<String>,
    /// Model calls made (1 + repair rounds used).
    pub rounds: u32,
    /// Warnings `nlah check` left on the harness.
    pub warnings: Vec<String>,
    /// Constructs the draft's mapping missed; nlah listed them in MIGRATION.md.
    pub not_mapped: Vec<String>,
    pub unreadable: Vec<extract::Unreadable>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks the output folder and reads the source: everything that can fail before a model call.
pub fn prepare(src: &Path, out: &Path) -> Result<Prepared, MigrateError> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !valid_name(&name) {
        return Err(MigrateError::BadName(name));
    }
    if out.exists() {
        let empty = out.is_dir() && std::fs::read_dir(out).map_err(io(out))?.next().is_none();
        if !empty {
            return Err(MigrateError::OutExists(out.to_path_buf()));
        }
    }
    let (extraction, texts) = extract::extract(src)?;
    if extraction.files.is_empty() {
        let why = extraction
            .unreadable
            .iter()
            .map(|u| format!("  {}: {}", u.path, u.why))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(MigrateError::NothingReadable {
            path: src.to_path_buf(),
            why,
        });
    }
    if extraction.is_empty() {
        return Err(MigrateError::NothingFound(src.to_path_buf()));
    }
    let scripts = scripts::generate(&extraction);
    Ok(Prepared {
        src: src.to_path_buf(),
        out: out.to_path_buf(),
        name,
        extraction,
        texts,
        scripts,
    })
}

/// The first user message: the extraction, the scripts nlah wrote, the sources (capped).
pub fn first_message(p: &Prepared) -> String {
    let json = serde_json::to_string_pretty(&p.extraction).unwrap_or_default();
    let mut m = format!(
        "Migrate the code harness `{}` into the nlah harness `{}` (the folder name and the `name` \
         in the front matter).\n\n## Extraction (by nlah)\n\n```json\n{json}\n```\n\n",
        p.src.display(),
        p.name
    );
    m.push_str(
        "## Scripts nlah wrote into the harness (call them from gates; do not rewrite them)\n\n",
    );
    if p.scripts.is_empty() {
        m.push_str("None: the source has no verifier function or test command.\n");
    }
    for (path, body) in &p.scripts {
        let usage = body
            .lines()
            .find_map(|l| l.trim_start_matches(['#', ' ']).strip_prefix("Usage: "))
            .unwrap_or("");
        m.push_str(&format!("- `{path}`: {usage}\n"));
    }
    m.push_str("\n## Source files\n");
    let mut left = SOURCE_CAP;
    for (rel, text) in &p.texts {
        if left == 0 {
            m.push_str(&format!(
                "\n(`{rel}` and later files left out: the source cap was reached)\n"
            ));
            break;
        }
        let cut: String = text.chars().take(left).collect();
        left = left.saturating_sub(cut.len());
        m.push_str(&format!("\n### `{rel}`\n\n````\n{cut}\n````\n"));
    }
    m.push_str(
        "\nAnswer with `SKILL.md` and `MIGRATION.md` as fenced blocks headed by their paths, as \
         the charter's output protocol says.\n",
    );
    m
}

/// What one round of validation found.
struct Round {
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// Writes the scripts and the draft into `dir` (emptied first) and checks it.
fn stage(dir: &Path, p: &Prepared, draft: &answer::Draft) -> Result<Round, MigrateError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut errors: Vec<String> = draft.problems.clone();
    for (rel, body) in &p.scripts {
        write_file(&dir.join(rel), body, rel.starts_with("scripts/"))?;
    }
    for (rel, body) in &draft.files {
        if p.scripts.iter().any(|(s, _)| s == rel) {
            // nlah's extracted script is the source's own logic; a model's rewrite is not.
            continue;
        }
        write_file(&dir.join(rel), body, rel.starts_with("scripts/"))?;
    }
    for required in ["SKILL.md", "MIGRATION.md"] {
        if !draft.files.iter().any(|(r, _)| r == required) {
            errors.push(format!(
                "{required}: error: the answer has no `{required}` block (use ````markdown path={required})"
            ));
        }
    }
    let mut warnings = Vec::new();
    if dir.join("SKILL.md").is_file() {
        let diags = check_dir(dir);
        let prefix = format!("{}/", dir.display());
        for d in diags.into_sorted() {
            let line = d.to_string().replace(&prefix, "");
            if d.is_error() {
                errors.push(line);
            } else {
                warnings.push(line);
            }
        }
        if !skill_is_harness(dir) && errors.is_empty() {
            errors.push(
                "SKILL.md: error: no `## Stages` section: this is a plain skill, not a harness"
                    .into(),
            );
        }
    }
    Ok(Round { errors, warnings })
}

fn skill_is_harness(dir: &Path) -> bool {
    match crate::harness::build(dir, &crate::harness::Toggles::default()) {
        Ok((_, h, _)) => h.is_some(),
        Err(_) => false,
    }
}

fn check_dir(dir: &Path) -> Diags {
    match crate::check::discover(dir) {
        Ok(targets) => crate::check::check_all(&targets),
        Err(e) => {
            let mut d = Diags::default();
            d.push(crate::diag::Diagnostic::error(
                crate::diag::Pos::file_start(dir),
                "io",
                e.to_string(),
            ));
            d
        }
    }
}

fn write_file(path: &Path, body: &str, executable: bool) -> Result<(), MigrateError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(path, body).map_err(io(path))?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(io(path))?;
    }
    Ok(())
}

/// The message that sends diagnostics back to the model.
pub fn repair_message(errors: &[String]) -> String {
    format!(
        "`nlah check` found errors in your harness:\n\n```\n{}\n```\n\nAnswer with the complete \
         corrected files (at least `SKILL.md` and `MIGRATION.md`), in the same protocol.",
        errors.join("\n")
    )
}

/// Drafts, validates and repairs; on success moves the harness into `p.out`.
pub async fn draft(
    p: &Prepared,
    backend: &dyn ChatBackend,
    opts: &Options,
) -> Result<MigrationReport, MigrateError> {
    let parent = match p.out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    // In the parent of --out, so that the final move is a rename on one file system.
    let tmp = tempfile::Builder::new()
        .prefix(".nlah-migrate-")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    let dir = tmp.path().join(&p.name);
    let mut messages = vec![Message::system(CHARTER), Message::user(first_message(p))];
    let mut last_errors = Vec::new();
    for round in 0..=opts.repairs {
        let req = ChatRequest {
            model: opts.model.clone(),
            messages: messages.clone(),
            tools: Vec::new(),
            tool_choice: Default::default(),
            max_tokens: None,
            temperature: None,
            seed: None,
            trace: Some(format!("migrate#{}", round + 1)),
        };
        let resp = with_retries(opts.retry.clone(), |_| {}, || backend.complete(&req)).await?;
        let text = resp.message.content;
        let draft = answer::parse(&text);
        messages.push(Message::assistant(text));
        let checked = stage(&dir, p, &draft)?;
        if checked.errors.is_empty() {
            let mapping_path = dir.join("MIGRATION.md");
            let current = std::fs::read_to_string(&mapping_path).map_err(io(&mapping_path))?;
            let (text, not_mapped) = mapping::complete(&current, &p.extraction, &p.scripts);
            std::fs::write(&mapping_path, text).map_err(io(&mapping_path))?;
            if p.out.exists() {
                // Checked empty in `prepare`; rename cannot replace a folder.
                std::fs::remove_dir(&p.out).map_err(io(&p.out))?;
            }
            std::fs::rename(&dir, &p.out).map_err(io(&p.out))?;
            return Ok(MigrationReport {
                out: p.out.clone(),
                name: p.name.clone(),
                prompts: p.extraction.prompts.len(),
                tools: p.extraction.tools.len(),
                scripts: p.scripts.iter().map(|s| s.0.clone()).collect(),
                rounds: round + 1,
                warnings: checked.warnings,
                not_mapped,
                unreadable: p.extraction.unreadable.clone(),
            });
        }
        if round < opts.repairs {
            messages.push(Message::user(repair_message(&checked.errors)));
        }
        last_errors = checked.errors;
    }
    Err(MigrateError::NeverValid {
        rounds: opts.repairs + 1,
        diagnostics: last_errors,
    })
}

//! `nlah diagnose RUN|OUT... [--json] [--examples N]`

use std::io::Write;
use std::path::{Path, PathBuf};

use nlah::diagnose::{self, Category, Diagnosis, RunDiagnosis};
use nlah::engine::backends::Backends;
use nlah::inspect::align;
use nlah::model::ModelSpec;
use nlah::record::Usage;

use super::exit;

#[derive(clap::Args)]
pub struct Args {
    /// Run workspaces, or folders holding them (an ablation's output folder).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print the whole diagnosis as one JSON document.
    #[arg(long)]
    json: bool,
    /// Examples shown per category.
    #[arg(long, default_value_t = 3, value_name = "N")]
    examples: usize,
    /// A model that places the runs no detector placed (those left to residual reasoning by
    /// elimination), e.g. `openai:gpt-4.1-mini`; each says it was placed by the judge.
    #[arg(long, value_name = "SPEC")]
    judge: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let mut d = diagnose::diagnose(&a.paths)?;
    if let Some(spec) = &a.judge {
        judge(&mut d, spec)?;
    }
    let mut out = std::io::stdout().lock();
    let text = if a.json {
        serde_json::to_string_pretty(&d)? + "\n"
    } else {
        render(&d, a.examples).join("\n") + "\n"
    };
    let _ = out.write_all(text.as_bytes());
    Ok(exit::OK)
}

/// Asks the judge about every run placed by elimination.
fn judge(d: &mut Diagnosis, spec: &str) -> anyhow::Result<()> {
    let spec: ModelSpec = spec.parse()?;
    nlah::engine::backends::preflight(&spec)?;
    let model = match &spec {
        ModelSpec::OpenAi { model } | ModelSpec::Anthropic { model } => model.clone(),
        other => other.to_string(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let backend = Backends::new(None, None).chat(&spec).await?;
        let mut usage = Usage::default();
        for r in d.runs.iter_mut() {
            if r.method.as_deref() != Some("elimination") {
                continue;
            }
            match diagnose::judge::place(backend.as_ref(), &model, r).await {
                Ok(v) => {
                    usage.add(&v.usage);
                    diagnose::judge::apply(r, &v);
                }
                Err(e) => d.judge_errors.push((r.path.clone(), e.to_string())),
            }
        }
        d.judge_usage = Some(usage);
        anyhow::Ok(())
    })?;
    d.regroup();
    Ok(())
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        "-".to_string()
    } else {
        format!("{:.0}% ({n})", 100.0 * n as f64 / of as f64)
    }
}

/// Where a run is, as the user would type it: relative to the current folder when beneath it.
fn shown(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
        .display()
        .to_string()
}

pub fn render(d: &Diagnosis, examples: usize) -> Vec<String> {
    let failed: Vec<&RunDiagnosis> = d.runs.iter().filter(|r| r.category.is_some()).collect();
    let by_elimination = failed
        .iter()
        .filter(|r| r.method.as_deref() == Some("elimination"))
        .count();
    let by_judge = failed
        .iter()
        .filter(|r| r.method.as_deref() == Some("judge"))
        .count();
    let judged = if d.judge_usage.is_some() {
        format!(", {by_judge} by the judge")
    } else {
        String::new()
    };
    let mut out = vec![format!(
        "{} run{}, {} failed: {} placed by a detector{judged}, {} by elimination (no interface failure left unrecovered)",
        d.runs.len(),
        if d.runs.len() == 1 { "" } else { "s" },
        failed.len(),
        failed.len() - by_elimination - by_judge,
        by_elimination
    )];
    for (p, e) in &d.judge_errors {
        out.push(format!("the judge could not place {}: {e}", shown(p)));
    }
    if let Some(u) = &d.judge_usage {
        out.push(format!(
            "the judge: {} call{}, {} input and {} output tokens",
            u.calls,
            if u.calls == 1 { "" } else { "s" },
            u.input_tokens,
            u.output_tokens
        ));
    }
    out.push(String::new());
    let mut rows = vec![vec![
        "env / task set".to_string(),
        "model".into(),
        "runs".into(),
        "failed".into(),
        "realization".into(),
        "contract".into(),
        "degeneration".into(),
        "reasoning".into(),
        "infrastructure".into(),
        "env refusals".into(),
        "interventions".into(),
    ]];
    for g in &d.groups {
        let mut row = vec![
            g.scope.clone(),
            g.model.clone(),
            g.runs.to_string(),
            g.failed.to_string(),
        ];
        for c in Category::ALL {
            row.push(pct(g.by_category.get(&c).copied().unwrap_or(0), g.failed));
        }
        row.push(g.env_refusals.to_string());
        row.push(interventions(&g.interventions));
        rows.push(row);
    }
    out.extend(align(&rows));
    out.push(
        "(shares of the failed runs; env refusals and interventions over all runs, by layer)"
            .to_string(),
    );
    for c in Category::ALL {
        let runs: Vec<&&RunDiagnosis> = failed.iter().filter(|r| r.category == Some(c)).collect();
        if runs.is_empty() {
            continue;
        }
        out.push(String::new());
        out.push(format!(
            "{} ({} run{})",
            c.as_str(),
            runs.len(),
            if runs.len() == 1 { "" } else { "s" }
        ));
        for r in runs.iter().take(examples) {
            let place = match &r.cause {
                Some(f) if !f.child.is_empty() => match f.step {
                    Some(s) => format!("child {} step {s}", f.child),
                    None => format!("child {}", f.child),
                },
                _ => "the run".to_string(),
            };
            let why = match (&r.method, &r.cause) {
                (Some(m), Some(f)) => format!("{}: {}", m.trim_start_matches("detector:"), f.note),
                (Some(m), None) => format!(
                    "{m}: {}",
                    r.signature.as_deref().unwrap_or("the verifier failed")
                ),
                _ => String::new(),
            };
            out.push(format!(
                "  {} · {} · {place} · {why}",
                shown(&r.path),
                r.task
            ));
            out.push(format!("    nlah inspect {} --calls", shown(&r.path)));
        }
    }
    if !d.clusters.is_empty() {
        out.push(String::new());
        out.push("clusters (verifier signature and category)".to_string());
        for c in &d.clusters {
            out.push(format!(
                "  {} run{} · {} · {}",
                c.count,
                if c.count == 1 { "" } else { "s" },
                c.category.as_str(),
                c.signature
            ));
        }
    }
    out
}

/// `action-realization 2, loop 1`, or `0`.
fn interventions(by_layer: &std::collections::BTreeMap<String, usize>) -> String {
    if by_layer.is_empty() {
        return "0".to_string();
    }
    by_layer
        .iter()
        .map(|(l, n)| format!("{l} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

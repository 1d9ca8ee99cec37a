//! The human report of an evolution (`OUT/report.md`, and what `nlah evolve` prints at the end).

use super::compare::RULE;
use super::split::Split;
use super::{Phase, State, Status, short};

/// Dollars; an empty sum of floats is -0.0, shown as 0.
fn usd(x: f64) -> String {
    format!("${:.4}", x + 0.0)
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

pub fn render(s: &State) -> String {
    let mut o = String::new();
    let p = |o: &mut String, line: String| {
        o.push_str(&line);
        o.push('\n');
    };
    p(&mut o, format!("# nlah evolve: {}", s.name));
    p(&mut o, String::new());
    p(
        &mut o,
        format!(
            "Harness `{}` with `{}` (proposer `{}`), {} seed(s) per task, up to {} iteration(s) of {} edit(s). Lineage: branch `{}` from {}.",
            s.harness.display(),
            s.model,
            s.proposer,
            s.seeds,
            s.iterations,
            s.edits,
            s.branch,
            short(&s.start)
        ),
    );
    p(&mut o, String::new());
    p(&mut o, "## Split".into());
    p(&mut o, String::new());
    p(&mut o, format!("Rule: {}.", s.split.rule));
    for sp in Split::ALL {
        p(
            &mut o,
            format!("- {}: {}", sp.as_str(), s.split.tasks(sp).join(", ")),
        );
    }
    p(
        &mut o,
        "\nThe proposer saw only the search split's failures. The validation split gated acceptance. The test split was never run during the search: it runs once, at the end, on the starting and the accepted harness.".into(),
    );
    p(&mut o, String::new());
    p(&mut o, "## Acceptance".into());
    p(&mut o, String::new());
    p(
        &mut o,
        format!(
            "Rule: {RULE}. A one-seed screen on the search split may only reject (a drop of a quarter of the search tasks, at least one)."
        ),
    );
    for r in &s.rounds {
        p(&mut o, String::new());
        p(
            &mut o,
            format!("## Iteration {} (from {})", r.n, short(&r.parent)),
        );
        p(&mut o, String::new());
        p(
            &mut o,
            format!(
                "Weaknesses mined: {}.",
                if r.weaknesses.is_empty() {
                    "none".to_string()
                } else {
                    r.weaknesses
                        .iter()
                        .map(|w| format!("`{}` ×{}", w.signature, w.runs))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        );
        if let Some(call) = &r.proposer {
            p(
                &mut o,
                format!(
                    "Proposer: {}{} ({} tokens).",
                    call.status,
                    call.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default(),
                    call.usage.total_tokens()
                ),
            );
        }
        for c in &r.candidates {
            let mut line = format!(
                "- {} `{}` — {}: **{}**",
                c.label,
                c.edit.surface,
                super::first_line(&c.edit.mechanism),
                c.status.as_str()
            );
            if let Some(why) = &c.reason {
                line.push_str(&format!(" ({why})"));
            }
            p(&mut o, line);
            if let Some((a, b)) = c.screen {
                p(
                    &mut o,
                    format!("  - screen (search, seed 0): parent {a}, candidate {b} passed"),
                );
            }
            if let Some(x) = &c.search {
                p(&mut o, format!("  - search: {}", x.sentence()));
            }
            if let Some(x) = &c.validation {
                p(&mut o, format!("  - validation: {}", x.sentence()));
            }
            for (sp, pc) in &c.prediction {
                p(
                    &mut o,
                    format!(
                        "  - predicted {} Δ {:+.2}, observed {:+.2}: {}",
                        sp.as_str(),
                        pc.predicted,
                        pc.observed,
                        if pc.held {
                            "held (inside the interval)"
                        } else {
                            "missed"
                        }
                    ),
                );
            }
            if let Some(id) = &c.commit
                && c.status != Status::Rejected
            {
                p(&mut o, format!("  - commit {}", short(id)));
            }
        }
        p(
            &mut o,
            format!(
                "Accepted: {}. Cost: proposer {}, evaluation {}.",
                r.accepted.as_deref().unwrap_or("nothing"),
                usd(r.cost_proposer),
                usd(r.cost_evaluation)
            ),
        );
    }
    p(&mut o, String::new());
    p(&mut o, "## Result".into());
    p(&mut o, String::new());
    let accepted: Vec<&str> = s
        .rounds
        .iter()
        .filter_map(|r| r.accepted.as_deref())
        .collect();
    p(
        &mut o,
        format!(
            "{} edit(s) accepted ({}); the accepted harness is {} on branch `{}`.",
            accepted.len(),
            if accepted.is_empty() {
                "none".into()
            } else {
                accepted.join(", ")
            },
            short(&s.current),
            s.branch
        ),
    );
    if let Some(why) = &s.stop {
        p(&mut o, format!("The search stopped early: {why}."));
    }
    match (&s.final_, s.phase) {
        (Some(f), Phase::Done) => {
            let rate = |t: &super::TaskScores| {
                let n = t.len().max(1) as f64;
                t.values()
                    .map(|(a, b)| if *b == 0 { 0.0 } else { f64::from(*a) / f64::from(*b) })
                    .sum::<f64>()
                    / n
            };
            p(
                &mut o,
                format!(
                    "Test split (run once, after the search): starting harness {}, accepted harness {}.",
                    pct(rate(&f.start)),
                    pct(rate(&f.accepted))
                ),
            );
            match &f.comparison {
                Some(c) => p(&mut o, format!("Paired over the test tasks: {}.", c.sentence())),
                None => p(
                    &mut o,
                    "Nothing was accepted: the test split ran on the starting harness alone."
                        .into(),
                ),
            }
        }
        _ => p(
            &mut o,
            "The test split has not been run: the search did not reach its end (rerun to continue).".into(),
        ),
    }
    let total = s.spent();
    p(
        &mut o,
        format!(
            "Cost: ${total:.4} in all{} (the starting harness's evaluation ${:.4}, each iteration's above, the test split ${:.4}).",
            s.max_cost
                .map(|m| format!(" of --max-cost ${m:.4}"))
                .unwrap_or_default(),
            s.evals
                .values()
                .filter(|e| e.owner == 0)
                .map(|e| e.cost)
                .sum::<f64>(),
            s.final_.as_ref().map_or(0.0, |f| f.cost)
        ),
    );
    p(
        &mut o,
        format!(
            "See the lineage with `nlah log {} --rev {}` and what the accepted edits changed with `nlah diff {} {} -- {}` (in {}).",
            s.harness.display(),
            s.branch,
            short(&s.start),
            s.branch,
            if s.harness_rel.is_empty() {
                "."
            } else {
                s.harness_rel.as_str()
            },
            s.repo.display()
        ),
    );
    o
}

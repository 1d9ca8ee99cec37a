//! One stage attempt: its child (or candidates), the artifact contract, the gates, the
//! reflection a failed attempt leaves, and the orchestrator's choice of what comes next.

use std::path::Path;

use super::child::{self, ChildReport, Kind, Request};
use super::flow::Next;
use super::gates::{self, GateEnv};
use super::{Run, candidates};
use crate::agent::budget::Exhausted;
use crate::harness::model::{GateKind, Stage};
use crate::record::EventKind;
use crate::record::Usage;
use crate::workspace::WorkspaceError;

#[derive(Debug, Default)]
pub struct StageOutcome {
    pub passed: bool,
    pub reason: String,
    pub usage: Usage,
    pub tool_calls: u64,
    /// The class of an infrastructure failure (`auth`, `unreachable`, …), if one ended it.
    pub infra: Option<String>,
    pub budget: Option<Exhausted>,
    /// The attempt's lines of history not committed yet (its end first, then its child's end
    /// when that waited for it), committed by the caller with the transition they lead to;
    /// empty when the attempt never started.
    pub commit_lines: Vec<String>,
}

/// Whether judging a stage's work runs anything that waits (a command gate, a verifier
/// child): then its child's end is committed before the judging, not with the stage's end.
pub fn judging_waits(s: &Stage) -> bool {
    s.gates
        .iter()
        .any(|g| matches!(g.kind, GateKind::Command { .. } | GateKind::Verifier { .. }))
}

/// The verdict on one child's work for a stage, and a report of every check.
#[derive(Debug, Default)]
pub struct Judged {
    pub passed: bool,
    pub reason: String,
    pub details: String,
    pub infra: Option<String>,
    pub budget: Option<Exhausted>,
    /// Usage of verifier children the judging started.
    pub usage: Usage,
    pub tool_calls: u64,
}

/// Checks a child's work in `root`: its report, the artifacts it owes, then every gate (verifier
/// gates last, since they cost a child).
pub async fn judge(
    run: &Run,
    s: &Stage,
    rep: &ChildReport,
    root: &Path,
    attempt_id: &str,
) -> Result<Judged, WorkspaceError> {
    let mut j = Judged {
        passed: true,
        ..Judged::default()
    };
    let fail = |j: &mut Judged, why: String| {
        if j.passed {
            j.passed = false;
            j.reason = why.clone();
        }
        j.details.push_str(&format!("- FAILED: {why}\n"));
    };
    if let Some(problem) = rep.problem() {
        j.infra = rep.infra.clone();
        j.budget = rep.budget.clone();
        fail(&mut j, problem);
        return Ok(j);
    }
    for p in &s.produces {
        let c = gates::non_empty(root, p);
        if c.passed {
            j.details
                .push_str(&format!("- passed: artifact {}\n", c.detail));
        } else {
            run.emit(EventKind::GateFailed {
                stage: s.name.clone(),
                child: rep.id.clone(),
                gate: format!("produces `{p}`"),
                reason: c.detail.clone(),
            });
            fail(&mut j, format!("artifact missing: {}", c.detail));
        }
    }
    let confinement = run.confinement(root);
    let env = GateEnv {
        root,
        harness_root: &run.harness_root,
        confinement: &confinement,
        output_cap: run.opts.output_cap,
    };
    let (verifiers, plain): (Vec<_>, Vec<_>) = s
        .gates
        .iter()
        .partition(|g| matches!(g.kind, GateKind::Verifier { .. }));
    for g in plain {
        if !j.passed {
            break;
        }
        let c = gates::check(g, &env).await;
        j.details.push_str(&format!(
            "- {}: {}\n\n```\n{}\n```\n",
            if c.passed { "passed" } else { "FAILED" },
            g.text,
            c.detail.trim()
        ));
        let result = if c.passed {
            Ok(())
        } else {
            Err(gates::cap(&c.detail, 2000))
        };
        gate_event(run, s, &rep.id, &g.text, result);
        if !c.passed && j.passed {
            j.passed = false;
            j.reason = format!("gate failed: {}", g.text);
        }
    }
    for g in verifiers {
        if !j.passed {
            break;
        }
        let GateKind::Verifier { role } = &g.kind else {
            continue;
        };
        let Some(role) = run.harness.role(role) else {
            continue;
        };
        // A stage whose own child is the verifier role already holds the verdict: a second
        // verifier child would judge the same work again.
        let own = role.name == s.role;
        let vid = if own {
            rep.id.clone()
        } else {
            format!("{attempt_id}-verify-{}", role.name)
        };
        let fresh;
        let v = if own {
            rep
        } else {
            fresh = child::run(
                run,
                Request {
                    id: vid.clone(),
                    role,
                    stage: s,
                    kind: Kind::Verifier {
                        stage: &s.name,
                        of: &rep.id,
                    },
                    root,
                    parent: false,
                },
            )
            .await?;
            &fresh
        };
        if !own {
            j.usage.add(&v.usage);
            j.tool_calls += v.tool_calls;
        }
        let verdict = v.head.verdict.clone();
        let ok = v.problem().is_none() && verdict.as_deref() == Some("pass");
        let why = match (&verdict, v.problem()) {
            (_, Some(p)) => format!("the verifier could not judge: {p}"),
            (Some(x), None) => format!("verdict: {x} (see children/{vid}/RESPONSE.md)"),
            (None, None) => {
                format!("the verifier gave no `verdict:` (see children/{vid}/RESPONSE.md)")
            }
        };
        j.details.push_str(&format!(
            "- {}: {} — {why}\n",
            if ok { "passed" } else { "FAILED" },
            g.text
        ));
        gate_event(
            run,
            s,
            &rep.id,
            &g.text,
            if ok { Ok(()) } else { Err(why.clone()) },
        );
        if !ok {
            j.infra = j.infra.take().or(v.infra.clone());
            j.budget = j.budget.take().or(v.budget.clone());
            j.passed = false;
            // When the verifier child could not run (infrastructure, budget), that is the cause;
            // the gate it was to judge comes second.
            j.reason = if v.infra.is_some() || v.budget.is_some() {
                format!("{why} (gate: {})", g.text)
            } else {
                format!("gate failed: {} ({why})", g.text)
            };
        }
    }
    if j.passed {
        j.reason = format!("child {} finished and every check passed", rep.id);
    }
    Ok(j)
}

/// Records a gate's result in history: passed, or failed with the reason.
fn gate_event(run: &Run, s: &Stage, child: &str, gate: &str, result: Result<(), String>) {
    let (stage, child, gate) = (s.name.clone(), child.to_string(), gate.to_string());
    run.emit(match result {
        Ok(()) => EventKind::GatePassed { stage, child, gate },
        Err(reason) => EventKind::GateFailed {
            stage,
            child,
            gate,
            reason,
        },
    });
}

/// Runs attempt `n` of stage `idx`.
pub async fn attempt(run: &Run, idx: usize, n: u32) -> Result<StageOutcome, WorkspaceError> {
    let s = &run.harness.stages[idx];
    run.emit(EventKind::StageStarted {
        stage: s.name.clone(),
        attempt: n,
    });
    let reflection = s
        .reflection
        .as_ref()
        .filter(|_| n > 1)
        .and_then(|r| std::fs::read_to_string(run.ws.path(&r.path)).ok())
        .filter(|t| !t.trim().is_empty());
    let attempt_id = format!("{}-{n}", s.name);
    let mut lines = Vec::new();
    let (judged, usage, tool_calls) = if s.candidates > 1 {
        candidates::run(run, s, &attempt_id, reflection).await?
    } else {
        let Some(role) = run.harness.role(&s.role) else {
            return Ok(StageOutcome {
                reason: format!("stage {} names an unknown role", s.name),
                ..StageOutcome::default()
            });
        };
        let mut rep = child::run(
            run,
            Request {
                id: attempt_id.clone(),
                role,
                stage: s,
                kind: Kind::Stage { reflection },
                root: &run.ws.root,
                parent: false,
            },
        )
        .await?;
        lines.extend(rep.commit_line.take());
        let j = judge(run, s, &rep, &run.ws.root, &attempt_id).await?;
        let mut usage = rep.usage;
        usage.add(&j.usage);
        let calls = rep.tool_calls + j.tool_calls;
        if !j.passed {
            reflect(run, s, n, &j, &rep.response)?;
        }
        (j, usage, calls)
    };
    run.ws.write(
        &format!("artifacts/gates/{attempt_id}.md"),
        format!("# Checks of {attempt_id}\n\n{}\n", judged.details),
    )?;
    restore_state(run)?;
    run.emit(EventKind::StageFinished {
        stage: s.name.clone(),
        attempt: n,
        passed: judged.passed,
        reason: judged.reason.clone(),
        usage,
    });
    lines.insert(
        0,
        format!(
            "stage {} attempt {n} {}: {}",
            s.name,
            if judged.passed { "passed" } else { "failed" },
            judged.reason
        ),
    );
    Ok(StageOutcome {
        commit_lines: lines,
        passed: judged.passed,
        reason: judged.reason,
        usage,
        tool_calls,
        infra: judged.infra,
        budget: judged.budget,
    })
}

/// After a failed attempt, leaves what was learned where the next attempt reads it, bounded.
pub fn reflect(
    run: &Run,
    s: &Stage,
    n: u32,
    j: &Judged,
    response: &str,
) -> Result<(), WorkspaceError> {
    let Some(r) = &s.reflection else {
        return Ok(());
    };
    if j.infra.is_some() {
        return Ok(());
    }
    let mut text = format!(
        "# Reflection on {} attempt {n}\n\n## Why it failed\n\n{}\n\n## The checks\n\n{}\n## What the attempt reported\n\n{}\n\n## Next time\n\nAddress the failure above first. Do not repeat an approach that produced it; if a command failed, read its output before changing code.\n",
        s.name,
        j.reason,
        j.details,
        if response.trim().is_empty() {
            "(no RESPONSE.md)"
        } else {
            response.trim()
        }
    );
    let max = r.max_bytes as usize;
    if text.len() > max {
        let mut cut = max.saturating_sub(24);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n[… truncated …]\n");
        while text.len() > max {
            text.pop();
        }
    }
    run.ws.write(&r.path, &text)?;
    run.emit(EventKind::Reflection {
        stage: s.name.clone(),
        path: r.path.clone(),
        bytes: text.len() as u64,
    });
    Ok(())
}

/// Persisted state files a child deleted are restored from the last commit.
fn restore_state(run: &Run) -> Result<(), WorkspaceError> {
    for p in run
        .harness
        .state
        .persist
        .iter()
        .filter(|p| !p.ends_with('/'))
    {
        if run.ws.path(p).exists() {
            continue;
        }
        let restored = run.ws.with_repo(|repo| {
            let tree = repo.head()?.peel_to_tree()?;
            let Ok(entry) = tree.get_path(Path::new(p)) else {
                return Ok(None);
            };
            let blob = repo.find_blob(entry.id())?;
            Ok(Some(blob.content().to_vec()))
        })?;
        if let Some(bytes) = restored {
            run.ws.write(p, bytes)?;
            run.emit(EventKind::Error {
                class: "state-restored".into(),
                message: format!(
                    "persisted state {p} was deleted by a child and has been restored"
                ),
            });
        }
    }
    Ok(())
}

/// Asks the orchestrator what comes next. `None` when it gave no acceptable answer (the declared
/// transition applies).
pub async fn orchestrate(
    run: &Run,
    orch: &str,
    idx: usize,
    turn: u32,
    story: &str,
) -> Result<Option<(Next, String)>, WorkspaceError> {
    let Some(role) = run.harness.role(orch) else {
        return Ok(None);
    };
    let stages = &run.harness.stages;
    let choices: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
    let id = format!("orchestrator-{turn}");
    let rep = child::run(
        run,
        Request {
            id: id.clone(),
            role,
            stage: &stages[idx],
            kind: Kind::Orchestrator {
                choices: choices.clone(),
                story: story.to_string(),
            },
            root: &run.ws.root,
            parent: true,
        },
    )
    .await?;
    let choice = rep.head.next.clone().unwrap_or_default();
    let decided = if rep.problem().is_some() || choice.is_empty() {
        None
    } else if choice == "finish" {
        Some((
            Next::Finish,
            format!("the orchestrator chose to finish (turn {turn})"),
        ))
    } else {
        choices.iter().position(|c| *c == choice).map(|i| {
            (
                Next::Stage(i),
                format!("the orchestrator chose {choice} (turn {turn})"),
            )
        })
    };
    let reason = match (&decided, rep.problem()) {
        (Some(_), _) => "a declared stage".to_string(),
        (None, Some(p)) => format!("no usable answer: {p}"),
        (None, None) if choice.is_empty() => "no `next:` line".to_string(),
        (None, None) => format!(
            "`{choice}` is not a declared stage; choices are {}",
            choices.join(", ")
        ),
    };
    run.emit(EventKind::OrchestratorChoice {
        turn,
        choice: if choice.is_empty() {
            "(none)".into()
        } else {
            choice
        },
        accepted: decided.is_some(),
        reason,
    });
    Ok(decided)
}

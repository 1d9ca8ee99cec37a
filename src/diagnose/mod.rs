//! `nlah diagnose`: what went wrong in finished runs, placed in the taxonomy of interface
//! failures of seed `001_*` (Life-Harness): action realization, environment contract mismatch,
//! trajectory degeneration, residual reasoning, and infrastructure besides.
//!
//! Deterministic detectors read each child's transcript step by step ([`detect`]) and the run's
//! events ([`events`]: environment refusals, interface-layer interventions, how the episode
//! ended); a run's category is that of its first failure it never recovered from, in the order
//! the failures of that taxonomy happen (an action must realize before it can break a contract,
//! and must be valid before repetition is the problem); a run with none is residual reasoning by
//! elimination. Each run says which detector placed it. Runs are grouped by environment (for a
//! task that runs in one) or task set, and model; failed runs are clustered by the signature of
//! their verifier's output and their category ([`cluster`]).

pub mod cluster;
pub mod detect;
pub mod events;
pub mod judge;
pub mod steps;

pub use cluster::{Cluster, Example, clusters};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::inspect::RunDir;
use crate::record::{EventKind, RunOutcome};

/// The taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// The intent was plausible but the action not executable: malformed arguments, an unknown
    /// tool, text instead of a call, an empty answer.
    ActionRealization,
    /// A valid action that breaks the tool's or the workspace's protocol: a hidden or missing
    /// path, an edit that does not match, a tool that is not installed, a required output not
    /// produced.
    ContractMismatch,
    /// Valid actions going nowhere: the same call again, failures in a row, steps or budget
    /// spent without a report.
    TrajectoryDegeneration,
    /// The protocol was followed and the result is still wrong.
    ResidualReasoning,
    /// The model provider, the verifier or the workspace failed, not the child.
    Infrastructure,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::ActionRealization,
        Category::ContractMismatch,
        Category::TrajectoryDegeneration,
        Category::ResidualReasoning,
        Category::Infrastructure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::ActionRealization => "action realization",
            Category::ContractMismatch => "contract mismatch",
            Category::TrajectoryDegeneration => "trajectory degeneration",
            Category::ResidualReasoning => "residual reasoning",
            Category::Infrastructure => "infrastructure",
        }
    }
}

/// One placed failure: a step of a child, or a child's or the run's end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub category: Category,
    pub detector: String,
    /// The child, empty for the run itself.
    pub child: String,
    /// The child's step (1-based), when the finding is about one.
    pub step: Option<usize>,
    pub note: String,
}

/// One run, diagnosed.
#[derive(Debug, Clone, Serialize)]
pub struct RunDiagnosis {
    pub path: PathBuf,
    pub run_id: String,
    pub task: String,
    /// The task set (the folder holding the task).
    pub task_set: String,
    /// The environment the task ran in (`[env] name`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub model: String,
    pub outcome: String,
    /// `None` for a run that passed (or is still running).
    pub category: Option<Category>,
    /// How the category was found: `detector:<name>`, or `elimination` (no interface failure
    /// left unrecovered).
    pub method: Option<String>,
    /// The finding that placed the run.
    pub cause: Option<Finding>,
    /// Every finding, recovered or not.
    pub findings: Vec<Finding>,
    /// The verifier's output reduced to what identifies the failure.
    pub signature: Option<String>,
    /// Actions the environment refused.
    pub env_refusals: usize,
    /// Interventions of the interface layers (and the child loop's repairs), by layer.
    pub interventions: BTreeMap<String, usize>,
}

impl RunDiagnosis {
    /// What the run is grouped by: `env:NAME` for a task in an environment, else its task set.
    pub fn scope(&self) -> String {
        match &self.environment {
            Some(e) => format!("env:{e}"),
            None => self.task_set.clone(),
        }
    }
}

/// The runs of one environment (or task set) and model, failed ones by category.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// `env:NAME` for tasks in an environment, else the task set.
    pub scope: String,
    pub task_set: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub model: String,
    pub runs: usize,
    pub failed: usize,
    pub by_category: BTreeMap<Category, usize>,
    /// Actions the environment refused, over all runs of the group.
    pub env_refusals: usize,
    /// Interventions over all runs of the group, by layer.
    pub interventions: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub runs: Vec<RunDiagnosis>,
    pub groups: Vec<Group>,
    pub clusters: Vec<Cluster>,
    /// What the judge model cost, when one was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge_usage: Option<crate::record::Usage>,
    /// Runs the judge could not place (its error), which keep their placement by elimination.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub judge_errors: Vec<(PathBuf, String)>,
}

impl Diagnosis {
    /// Recomputes the groups and clusters after runs were placed again (by the judge).
    pub fn regroup(&mut self) {
        self.groups = group(&self.runs);
        self.clusters = clusters(&self.runs);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error("{0}: no such folder")]
    Missing(PathBuf),
    #[error(
        "{0}: no finished run here (a run workspace has run.json; an ablation folder has cells/)"
    )]
    NoRuns(PathBuf),
    #[error(transparent)]
    Inspect(#[from] crate::inspect::InspectError),
}

/// Diagnoses every run under `paths`: run workspaces, or folders that hold them (an ablation's
/// `OUT`, whose cells are run workspaces).
pub fn diagnose(paths: &[PathBuf]) -> Result<Diagnosis, DiagnoseError> {
    let mut runs = Vec::new();
    for p in paths {
        if !p.is_dir() {
            return Err(DiagnoseError::Missing(p.clone()));
        }
        let found = find_runs(p);
        if found.is_empty() {
            return Err(DiagnoseError::NoRuns(p.clone()));
        }
        for r in found {
            runs.push(run(&r)?);
        }
    }
    let groups = group(&runs);
    let clusters = clusters(&runs);
    Ok(Diagnosis {
        runs,
        groups,
        clusters,
        judge_usage: None,
        judge_errors: Vec::new(),
    })
}

/// Run workspaces at or beneath `dir`, in path order; kept attempts (`.attempt-N`) are not runs.
fn find_runs(dir: &Path) -> Vec<PathBuf> {
    if dir.join("run.json").is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .max_depth(3)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "run.json")
        .filter_map(|e| e.path().parent().map(Path::to_path_buf))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".attempt-"))
        })
        .collect();
    out.sort();
    out
}

/// Diagnoses one run workspace.
pub fn run(path: &Path) -> Result<RunDiagnosis, DiagnoseError> {
    let dir = RunDir::open(path)?;
    let record = dir.record.as_ref();
    let outcome = record.map_or(RunOutcome::Running, |r| r.outcome);
    let task_path = record.map(|r| PathBuf::from(&r.task.path));
    // The transcripts' findings, after those of the events: of two findings of one category, the
    // runtime's own record (a refusal, a block) names the cause more exactly than its text.
    let mut from_steps = Vec::new();
    let mut by_child: HashMap<String, Vec<steps::Step>> = HashMap::new();
    for child in dir.children() {
        let steps = steps::read(
            &path
                .join("children")
                .join(&child.id)
                .join("transcript.jsonl"),
        );
        for f in detect::child(&child.id, &steps) {
            let recovered = matches!(
                f.category,
                Category::ActionRealization | Category::ContractMismatch
            ) && detect::recovered(&f, &steps);
            from_steps.push((f, recovered));
        }
        let status = child.status.as_deref().unwrap_or("unfinished");
        if matches!(status, "no-response" | "unfinished") {
            let f = Finding {
                category: Category::TrajectoryDegeneration,
                detector: "no-report".into(),
                child: child.id.clone(),
                step: None,
                note: child.reason.clone().unwrap_or_default(),
            };
            from_steps.push((f, false));
        }
        by_child.insert(child.id.clone(), steps);
    }
    let mut findings = Vec::new();
    let mut unrecovered = Vec::new();
    let from_events = events::findings(&dir.events, &by_child)
        .into_iter()
        .map(|ef| (ef.finding, ef.recovered));
    for (f, recovered) in from_events.chain(from_steps) {
        if !recovered {
            unrecovered.push(f.clone());
        }
        findings.push(f);
    }
    let mut env_refusals = 0;
    let mut interventions: BTreeMap<String, usize> = BTreeMap::new();
    for e in &dir.events {
        if matches!(e.kind, EventKind::EnvironmentStep { invalid: true, .. }) {
            env_refusals += 1;
        }
        if let Some(iv) = events::intervention(&e.kind) {
            *interventions.entry(iv.layer.to_string()).or_default() += 1;
        }
    }
    for e in &dir.events {
        let f = match &e.kind {
            EventKind::BudgetHit { budget, limit, .. } => Finding {
                category: Category::TrajectoryDegeneration,
                detector: "budget-hit".into(),
                child: String::new(),
                step: None,
                note: format!("{budget} budget of {limit} spent"),
            },
            EventKind::GateFailed {
                child,
                gate,
                reason,
                ..
            } if is_missing_output(reason) => Finding {
                category: Category::ContractMismatch,
                detector: "output-missing".into(),
                child: child.clone(),
                step: None,
                note: format!("{gate}: {reason}"),
            },
            EventKind::Error { class, message } if class == "tampering" => Finding {
                category: Category::ContractMismatch,
                detector: "tampering".into(),
                child: String::new(),
                step: None,
                note: message.clone(),
            },
            _ => continue,
        };
        unrecovered.push(f.clone());
        findings.push(f);
    }
    let failed = matches!(outcome, RunOutcome::Failed | RunOutcome::Error);
    let (category, method, cause) = if !failed {
        (None, None, None)
    } else if outcome == RunOutcome::Error {
        let f = Finding {
            category: Category::Infrastructure,
            detector: "outcome-error".into(),
            child: String::new(),
            step: None,
            note: record.map(|r| r.reason.clone()).unwrap_or_default(),
        };
        (
            Some(Category::Infrastructure),
            Some("detector:outcome-error".to_string()),
            Some(f),
        )
    } else {
        // The earliest category in the taxonomy's order among the unrecovered failures, the
        // first such failure in the run's order.
        match unrecovered.iter().min_by_key(|f| f.category) {
            Some(f) => (
                Some(f.category),
                Some(format!("detector:{}", f.detector)),
                Some(f.clone()),
            ),
            None => (
                Some(Category::ResidualReasoning),
                Some("elimination".to_string()),
                None,
            ),
        }
    };
    let signature = failed
        .then(|| std::fs::read_to_string(path.join("history/verifier-output.txt")).ok())
        .flatten()
        .and_then(|out| signature(&out));
    Ok(RunDiagnosis {
        path: path.to_path_buf(),
        run_id: dir.run_id(),
        task: record.map(|r| r.task.id.clone()).unwrap_or_default(),
        task_set: task_path
            .as_deref()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        environment: record
            .and_then(|r| r.episode.as_ref())
            .map(|e| e.environment.clone())
            .or_else(|| {
                dir.events.iter().find_map(|e| match &e.kind {
                    EventKind::EnvironmentStarted { environment, .. } => Some(environment.clone()),
                    _ => None,
                })
            }),
        model: record.map(|r| r.model.clone()).unwrap_or_default(),
        outcome: outcome.as_str().to_string(),
        category,
        method,
        cause,
        findings,
        signature,
        env_refusals,
        interventions,
    })
}

fn is_missing_output(reason: &str) -> bool {
    let r = reason.to_lowercase();
    r.contains("missing") || r.contains("does not exist") || r.contains("no response")
}

/// The line of a verifier's output that names its failure, with what differs between runs of
/// the same failure (numbers, hex ids, temporary paths) blanked: the last line that mentions an
/// error, an assertion or an exception, else the last that mentions a failure, else the last
/// line.
pub fn signature(output: &str) -> Option<String> {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mentions = |words: &[&str]| {
        lines.iter().rev().find(|l| {
            let l = l.to_lowercase();
            words.iter().any(|w| l.contains(w))
        })
    };
    // A named error before a summary line such as `1 failed in 0.12s`.
    let pick = mentions(&["error", "assert", "exception", "panicked", "expected"])
        .or_else(|| mentions(&["fail"]))
        .or(lines.last())?;
    let mut sig = String::new();
    let mut last_blank = false;
    for word in pick.split_whitespace() {
        let w = if word.contains('/') {
            "<path>".to_string()
        } else {
            numbers_blanked(word)
        };
        if w == "<path>" && last_blank {
            continue;
        }
        last_blank = w == "<path>";
        if !sig.is_empty() {
            sig.push(' ');
        }
        sig.push_str(&w);
    }
    let mut end = sig.len().min(200);
    while !sig.is_char_boundary(end) {
        end -= 1;
    }
    Some(sig[..end].to_string())
}

/// Every number in `word` (`0.12`, `40`) as one `#`.
fn numbers_blanked(word: &str) -> String {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|n| n.is_ascii_digit() || *n == '.')
            {
                chars.next();
            }
            out.push('#');
        } else {
            out.push(c);
        }
    }
    out
}

fn group(runs: &[RunDiagnosis]) -> Vec<Group> {
    let mut map: BTreeMap<(String, String), Group> = BTreeMap::new();
    for r in runs {
        let g = map
            .entry((r.scope(), r.model.clone()))
            .or_insert_with(|| Group {
                scope: r.scope(),
                task_set: r.task_set.clone(),
                environment: r.environment.clone(),
                model: r.model.clone(),
                runs: 0,
                failed: 0,
                by_category: BTreeMap::new(),
                env_refusals: 0,
                interventions: BTreeMap::new(),
            });
        g.runs += 1;
        if let Some(c) = r.category {
            g.failed += 1;
            *g.by_category.entry(c).or_default() += 1;
        }
        g.env_refusals += r.env_refusals;
        for (layer, n) in &r.interventions {
            *g.interventions.entry(layer.clone()).or_default() += n;
        }
    }
    map.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_blank_what_differs_between_runs() {
        let a = "collected 3 items\ntests/test_x.py F\nE   AssertionError: assert 41 == 42\n1 failed in 0.12s";
        let b = "collected 3 items\n/tmp/x/tests/test_x.py F\nE   AssertionError: assert 40 == 42\n1 failed in 0.31s";
        assert_eq!(signature(a), signature(b));
        assert_eq!(
            signature(a).unwrap(),
            "E AssertionError: assert # == #",
            "the error, not the summary line"
        );
        assert_eq!(
            signature("ok\n2 failed in 0.5s\n").unwrap(),
            "# failed in #s"
        );
        assert_eq!(signature("all good\n").unwrap(), "all good");
        assert_eq!(signature("\n \n"), None);
    }
}

//! Results recorded on harness commits as git notes under `refs/notes/nlah`: one JSON line per
//! run, so that scores travel with the repository (`git push origin refs/notes/nlah`) without
//! touching the history itself. Lines of another shape (`nlah synthesize`'s
//! `{"synthesize": …}` scores) belong to other writers: readers skip them, appending keeps them.

use git2::{Oid, Repository, Signature};
use serde::{Deserialize, Serialize};

use crate::record::RunRecord;

pub const NOTES_REF: &str = "refs/notes/nlah";

/// One recorded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteLine {
    pub run_id: String,
    /// When the run started: with the run id, what tells two runs apart (run ids are
    /// workspace names, which need not be unique across machines).
    #[serde(default)]
    pub started: String,
    /// The composed harness's SHA-256: the version the run used.
    pub version: String,
    #[serde(default)]
    pub modules: Vec<String>,
    pub task: String,
    pub model: String,
    pub seed: u64,
    pub outcome: String,
    /// Prompt + completion tokens of the whole run.
    pub tokens: u64,
    #[serde(default)]
    pub cost_usd: f64,
}

impl NoteLine {
    /// Whether two lines record the same run.
    pub fn same_run(&self, o: &NoteLine) -> bool {
        self.run_id == o.run_id && self.started == o.started
    }

    pub fn from_record(r: &RunRecord) -> NoteLine {
        NoteLine {
            run_id: r.run_id.clone(),
            started: r.started.clone(),
            version: r.harness.version.clone(),
            modules: r.harness.modules.clone(),
            task: r.task.id.clone(),
            model: r.model.clone(),
            seed: r.seed,
            outcome: r.outcome.as_str().to_string(),
            tokens: r.metrics.total.total_tokens(),
            cost_usd: r.metrics.total.cost_usd,
        }
    }
}

/// The runs recorded on a commit; lines that are not ours are skipped.
pub fn read(repo: &Repository, commit: Oid) -> Vec<NoteLine> {
    let Ok(note) = repo.find_note(Some(NOTES_REF), commit) else {
        return Vec::new();
    };
    note.message()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Adds a run to a commit's note. A run already recorded there (same run id and start) is replaced, so
/// recording twice changes nothing. Returns whether the run was new.
pub fn append(repo: &Repository, commit: Oid, line: &NoteLine) -> Result<bool, git2::Error> {
    let mut lines = read(repo, commit);
    let new = match lines.iter_mut().find(|l| l.same_run(line)) {
        Some(l) => {
            *l = line.clone();
            false
        }
        None => {
            lines.push(line.clone());
            true
        }
    };
    // Lines of other writers (`nlah synthesize`'s scores) are kept as they are.
    let mut text: String = repo
        .find_note(Some(NOTES_REF), commit)
        .ok()
        .and_then(|n| n.message().map(str::to_string))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && serde_json::from_str::<NoteLine>(l).is_err())
        .map(|l| format!("{l}\n"))
        .collect();
    for l in &lines {
        text.push_str(
            &serde_json::to_string(l).map_err(|e| git2::Error::from_str(&e.to_string()))?,
        );
        text.push('\n');
    }
    // A repository without user.name still gets notes, signed by nlah.
    let sig = repo
        .signature()
        .or_else(|_| Signature::now("nlah", "nlah@localhost"))?;
    repo.note(&sig, &sig, Some(NOTES_REF), commit, &text, true)?;
    Ok(new)
}

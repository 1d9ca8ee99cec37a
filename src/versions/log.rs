//! A harness's versions: the commits that touched its folder, the composed version id at each,
//! and the scores recorded for that id in results folders and in git notes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{FixedOffset, TimeZone};
use git2::{Oid, Repository};
use serde::Serialize;
use walkdir::WalkDir;

use super::files::exact_toggles;
use super::notes::{self, NoteLine};
use super::{VersionsError, gitread};
use crate::harness::Toggles;
use crate::record::RunRecord;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub toggles: Toggles,
    /// Where the walk starts (default `HEAD`).
    pub rev: Option<String>,
    /// Folders searched recursively for `run.json` files.
    pub results: Vec<PathBuf>,
    /// At most this many versions.
    pub max: Option<usize>,
}

/// Runs of one model on one version.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelScore {
    pub model: String,
    pub runs: usize,
    pub passed: usize,
    pub failed: usize,
    pub unverified: usize,
    /// Infrastructure failures: not a verdict on the harness.
    pub errors: usize,
    /// `results`, `notes` or both.
    pub sources: BTreeSet<String>,
}

impl ModelScore {
    /// Runs that reached a verdict (or finished without a verifier).
    pub fn finished(&self) -> usize {
        self.passed + self.failed + self.unverified
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub commit: String,
    pub short: String,
    /// Commit time in its own offset, `2025-03-01 14:02`.
    pub time: String,
    pub author: String,
    pub summary: String,
    /// The composed version id at this commit; `None` when the harness is not there.
    pub version: Option<String>,
    pub modules: Vec<String>,
    pub scores: Vec<ModelScore>,
    /// Runs noted on this commit with other module toggles (another version id).
    pub other_toggles: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct HarnessLog {
    /// The harness folder relative to the repository.
    pub harness: String,
    pub repo: PathBuf,
    pub entries: Vec<LogEntry>,
}

/// The versions of the harness at `harness_dir`, newest first.
pub fn log(harness_dir: &Path, opts: &LogOptions) -> Result<HarnessLog, VersionsError> {
    let (repo, workdir) = gitread::discover(harness_dir)?;
    let rel = gitread::rel_path(&workdir, harness_dir)?;
    let rev = opts.rev.clone().unwrap_or_else(|| "HEAD".into());
    let start = repo
        .revparse_single(&rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|_| VersionsError::NoRevision(rev.clone()))?
        .id();
    let mut commits = gitread::touching(&repo, start, &rel)?;
    if commits.is_empty() {
        return Err(VersionsError::NoHistory {
            path: harness_dir.to_path_buf(),
            rel,
            rev,
        });
    }
    if let Some(max) = opts.max {
        commits.truncate(max);
    }
    let mut pool: Vec<(NoteLine, &'static str)> = results(&opts.results)
        .into_iter()
        .map(|l| (l, "results"))
        .collect();
    let mut noted: BTreeMap<Oid, Vec<NoteLine>> = BTreeMap::new();
    for c in &commits {
        let lines = notes::read(&repo, *c);
        pool.extend(lines.iter().cloned().map(|l| (l, "notes")));
        noted.insert(*c, lines);
    }
    let mut entries = Vec::new();
    for oid in commits {
        let commit = repo.find_commit(oid)?;
        let files = gitread::files_at(&repo, &commit.tree()?, &oid.to_string()[..10], &rel)?;
        let composed = files.as_ref().and_then(|f| f.version(&opts.toggles));
        let version = composed.as_ref().map(|c| c.hash.clone());
        let scores = version
            .as_deref()
            .map(|v| score(&pool, v))
            .unwrap_or_default();
        let other_toggles = noted.get(&oid).map_or(0, |ls| {
            ls.iter()
                .filter(|l| Some(&l.version) != version.as_ref())
                .count()
        });
        let id = oid.to_string();
        entries.push(LogEntry {
            short: id[..10].to_string(),
            commit: id,
            time: commit_time(&commit),
            author: commit.author().name().unwrap_or_default().to_string(),
            summary: commit.summary().unwrap_or_default().to_string(),
            version,
            modules: composed.map(|c| c.modules).unwrap_or_default(),
            scores,
            other_toggles,
        });
    }
    Ok(HarnessLog {
        harness: rel,
        repo: workdir,
        entries,
    })
}

fn commit_time(c: &git2::Commit) -> String {
    let t = c.time();
    FixedOffset::east_opt(t.offset_minutes() * 60)
        .and_then(|off| off.timestamp_opt(t.seconds(), 0).single())
        .map_or_else(String::new, |d| d.format("%Y-%m-%d %H:%M").to_string())
}

/// Scores of one version, per model; a run found in several places counts once.
fn score(pool: &[(NoteLine, &'static str)], version: &str) -> Vec<ModelScore> {
    let mut by_model: BTreeMap<String, ModelScore> = BTreeMap::new();
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (l, source) in pool.iter().filter(|(l, _)| l.version == version) {
        let s = by_model
            .entry(l.model.clone())
            .or_insert_with(|| ModelScore {
                model: l.model.clone(),
                ..ModelScore::default()
            });
        s.sources.insert(source.to_string());
        if !seen.insert((&l.run_id, &l.started)) {
            continue;
        }
        s.runs += 1;
        match l.outcome.as_str() {
            "passed" => s.passed += 1,
            "failed" => s.failed += 1,
            "unverified" => s.unverified += 1,
            "error" => s.errors += 1,
            _ => {}
        }
    }
    by_model.into_values().collect()
}

/// Every `run.json` under the folders, as note lines.
pub fn results(dirs: &[PathBuf]) -> Vec<NoteLine> {
    let mut out = Vec::new();
    for dir in dirs {
        let walk = WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git");
        for e in walk.flatten() {
            if e.file_type().is_file()
                && e.file_name() == "run.json"
                && let Some(r) = std::fs::read_to_string(e.path())
                    .ok()
                    .and_then(|t| serde_json::from_str::<RunRecord>(&t).ok())
            {
                out.push(NoteLine::from_record(&r));
            }
        }
    }
    out
}

/// Where a run was recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub commit: String,
    pub run_id: String,
    pub version: String,
    /// `false` when the run was already noted there (the note is unchanged).
    pub new: bool,
}

/// Notes a run's result on the newest commit (reachable from `rev`) whose harness composes to
/// the run's version with the run's modules.
pub fn record(
    harness_dir: &Path,
    run_dir: &Path,
    rev: Option<&str>,
) -> Result<Recorded, VersionsError> {
    let path = run_dir.join("run.json");
    if !path.is_file() {
        return Err(VersionsError::NotARun(run_dir.to_path_buf()));
    }
    let text = std::fs::read_to_string(&path).map_err(VersionsError::io(&path))?;
    let r: RunRecord = serde_json::from_str(&text).map_err(|e| VersionsError::BadRecord {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let (repo, workdir) = gitread::discover(harness_dir)?;
    let rel = gitread::rel_path(&workdir, harness_dir)?;
    let commit = find_version(&repo, &rel, &r.harness.version, &r.harness.modules, rev)?
        .ok_or_else(|| VersionsError::NoMatchingCommit {
            run: r.run_id.clone(),
            version: r.harness.version.clone(),
            rel: rel.clone(),
        })?;
    let new = notes::append(&repo, commit, &NoteLine::from_record(&r))?;
    Ok(Recorded {
        commit: commit.to_string(),
        run_id: r.run_id,
        version: r.harness.version,
        new,
    })
}

/// The newest commit touching `rel` whose harness, with exactly `modules` enabled, has
/// `version`.
pub fn find_version(
    repo: &Repository,
    rel: &str,
    version: &str,
    modules: &[String],
    rev: Option<&str>,
) -> Result<Option<Oid>, VersionsError> {
    let rev = rev.unwrap_or("HEAD");
    let start = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|_| VersionsError::NoRevision(rev.to_string()))?
        .id();
    for oid in gitread::touching(repo, start, rel)? {
        let tree = repo.find_commit(oid)?.tree()?;
        let Some(files) = gitread::files_at(repo, &tree, &oid.to_string()[..10], rel)? else {
            continue;
        };
        let Some(src) = files.source() else {
            continue;
        };
        let toggles = exact_toggles(&src, modules);
        if files.version(&toggles).is_some_and(|c| c.hash == version) {
            return Ok(Some(oid));
        }
    }
    Ok(None)
}

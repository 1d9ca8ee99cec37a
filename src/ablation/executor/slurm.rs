//! The Slurm executor: the cells become array tasks, each running `nlah run-cell` on whatever
//! node Slurm picks; progress and completion are read from the cells' run.json files (the output
//! folder is shared), and `squeue` says whether jobs are still queued or running.
//!
//! Array task ids must stay below the cluster's MaxArraySize, so the pending cells are cut into
//! chunks of that width: a chunk's script adds its offset to `SLURM_ARRAY_TASK_ID` to get the
//! cell's index in the matrix. Each chunk after the first waits for the one before
//! (`--dependency=afterany`), so `%K` bounds the whole matrix, not each chunk.
//!
//! `--max-cost` here counts finished cells only: each array task is a process of its own on
//! some node, and no meter spans them, so the live counting of the local pool
//! ([`crate::ablation::spend`]) is out of reach. Once finished cells reach the limit, the tasks
//! still pending are cancelled and the running ones finish: the overshoot is bounded by the
//! tasks running at once (`--concurrency`), each up to a whole cell's cost.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::process::Command;

use super::{Event, Sink};
use crate::ablation::error::AblationError;
use crate::ablation::index::Summary;
use crate::ablation::resume::{self, is_result};
use crate::ablation::{Cell, Matrix};
use crate::record::{RunOutcome, RunRecord};

pub const SLURM_DIR: &str = "slurm";
const JOBS_FILE: &str = "jobs.json";
/// Slurm's own default.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;
/// squeue may fail for a while (a controller restarting); this many failures in a row end the
/// wait.
const SQUEUE_FAILURES: u32 = 30;

/// How the cells are submitted and watched.
#[derive(Debug, Clone)]
pub struct Slurm {
    /// Array tasks running at once (`%K`).
    pub concurrency: usize,
    pub max_cost: Option<f64>,
    /// How often run.json files and squeue are looked at.
    pub poll: Duration,
    /// The nlah binary the array tasks run (on a shared file system).
    pub exe: PathBuf,
    /// The jobs' working directory.
    pub workdir: PathBuf,
}

/// What one invocation did.
#[derive(Debug, Clone, Default)]
pub struct SlurmSubmission {
    pub results: usize,
    pub errors: usize,
    /// Cells cancelled before they started, because the cost ceiling was reached.
    pub unscheduled: usize,
    pub spent: f64,
    /// The job ids submitted.
    pub jobs: Vec<String>,
}

/// One sbatch submission, remembered in `OUT/slurm/jobs.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub offset: usize,
    pub array: String,
    pub cells: usize,
    pub submitted: String,
}

/// The `MaxArraySize` line of `scontrol show config`.
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "MaxArraySize")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

/// The cluster's MaxArraySize, or Slurm's default when scontrol cannot say.
pub async fn max_array_size() -> usize {
    match Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .await
    {
        Ok(o) if o.status.success() => parse_max_array_size(&String::from_utf8_lossy(&o.stdout))
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_ARRAY_SIZE),
        _ => DEFAULT_MAX_ARRAY_SIZE,
    }
}

/// Sorted indexes as an array spec: `0-3,5,7-9`.
pub fn array_spec(sorted: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// Cuts matrix indexes into chunks of array ids below `max`: (offset, ids relative to it).
pub fn chunks(indexes: &[usize], max: usize) -> Vec<(usize, Vec<usize>)> {
    let max = max.max(1);
    let mut sorted = indexes.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in sorted {
        let offset = i / max * max;
        match out.last_mut() {
            Some((o, ids)) if *o == offset => ids.push(i - offset),
            _ => out.push((offset, vec![i - offset])),
        }
    }
    out
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The batch script of the chunk at `offset`.
pub fn script(exe: &Path, out: &Path, offset: usize) -> String {
    format!(
        "#!/usr/bin/env bash\n\
         # nlah ablate: each array task runs one cell of {matrix}.\n\
         # The cell's index is OFFSET + the array task id (array ids stay below MaxArraySize).\n\
         OFFSET={offset}\n\
         exec {exe} run-cell --matrix {matrix} --index \"$((OFFSET + SLURM_ARRAY_TASK_ID))\"\n",
        exe = quote(exe),
        matrix = quote(&out.join(crate::ablation::matrix::MATRIX_FILE)),
    )
}

fn jobs_path(out: &Path) -> PathBuf {
    out.join(SLURM_DIR).join(JOBS_FILE)
}

/// The jobs submitted for this output folder so far.
pub fn jobs(out: &Path) -> Vec<Job> {
    std::fs::read(jobs_path(out))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_jobs(out: &Path, jobs: &[Job]) -> Result<(), AblationError> {
    let p = jobs_path(out);
    let json = serde_json::to_vec_pretty(jobs).map_err(|source| AblationError::Json {
        path: p.clone(),
        source,
    })?;
    crate::atomic::write(&p, &json).map_err(AblationError::io(&p))
}

/// Whether a job still has tasks queued or running. `None`: squeue could not say.
async fn active(job: &str) -> Option<bool> {
    let o = Command::new("squeue")
        .args(["--noheader", "--format=%i", "--jobs", job])
        .output()
        .await
        .ok()?;
    if o.status.success() {
        return Some(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| !l.trim().is_empty()),
        );
    }
    // A job the controller has forgotten is long finished.
    String::from_utf8_lossy(&o.stderr)
        .contains("Invalid job id")
        .then_some(false)
}

/// The submitted jobs that are still queued or running; `None` when squeue fails.
async fn still_active(jobs: &[String]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for j in jobs {
        if active(j).await? {
            out.push(j.clone());
        }
    }
    Some(out)
}

/// Refuses to submit while jobs of an earlier invocation still run cells of this folder: both
/// would run the same cells. When Slurm cannot be asked, there is nothing to refuse.
pub async fn check_no_active_jobs(out: &Path) -> Result<(), AblationError> {
    let ids: Vec<String> = jobs(out).into_iter().map(|j| j.id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    if let Some(active) = still_active(&ids).await
        && !active.is_empty()
    {
        return Err(AblationError::Slurm(format!(
            "Slurm jobs {} of an earlier `nlah ablate` are still running cells of {}; wait for them (squeue), or stop them with `scancel {}`, then rerun",
            active.join(", "),
            out.display(),
            active.join(" ")
        )));
    }
    Ok(())
}

async fn sbatch(args: &[String]) -> Result<String, AblationError> {
    let o = Command::new("sbatch")
        .args(args)
        .output()
        .await
        .map_err(|source| AblationError::NoSlurm {
            command: "sbatch",
            source,
        })?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() {
        return Err(AblationError::Slurm(format!(
            "sbatch failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    // --parsable prints `jobid` or `jobid;cluster`.
    let id = stdout
        .lines()
        .next()
        .and_then(|l| l.split(';').next())
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AblationError::Slurm(format!(
            "sbatch printed no job id: {stdout:?}"
        )));
    }
    Ok(id)
}

async fn scancel(args: &[&str]) {
    // Best effort: the jobs end on their own otherwise.
    let _ = Command::new("scancel").args(args).output().await;
}

/// Writes `OUT/slurm/cells.txt`: line i is the id of cell i.
fn write_cells_txt(out: &Path, matrix: &Matrix) -> Result<(), AblationError> {
    let p = out.join(SLURM_DIR).join("cells.txt");
    let mut text = String::with_capacity(matrix.cells.len() * 17);
    for c in &matrix.cells {
        text.push_str(&c.id);
        text.push('\n');
    }
    crate::atomic::write(&p, text.as_bytes()).map_err(AblationError::io(&p))
}

/// Submits the pending cells and waits for them, reporting progress from their run.json files.
pub async fn run(
    out: &Path,
    matrix: &Matrix,
    pending: Vec<Cell>,
    spent: f64,
    opts: &Slurm,
    sink: Sink,
) -> Result<SlurmSubmission, AblationError> {
    let mut report = SlurmSubmission {
        spent,
        ..SlurmSubmission::default()
    };
    if pending.is_empty() {
        return Ok(report);
    }
    if let Some(limit) = opts.max_cost
        && spent >= limit
    {
        report.unscheduled = pending.len();
        sink(&Event::CostCeiling {
            spent,
            limit,
            unscheduled: pending.len(),
        });
        return Ok(report);
    }
    check_no_active_jobs(out).await?;
    let dir = out.join(SLURM_DIR);
    std::fs::create_dir_all(&dir).map_err(AblationError::io(&dir))?;
    write_cells_txt(out, matrix)?;
    // Folders of earlier attempts go aside now, so that any run.json seen from here on is new.
    for c in &pending {
        resume::clear(out, &c.id)?;
    }

    let max = max_array_size().await;
    let indexes: Vec<usize> = pending.iter().map(|c| c.index).collect();
    let mut all_jobs = jobs(out);
    let mut submitted: Vec<String> = Vec::new();
    let mut job_at: HashMap<usize, String> = HashMap::new();
    let log = dir.join("%A_%a.log");
    for (offset, ids) in chunks(&indexes, max) {
        let path = dir.join(format!("array-{offset}.sh"));
        crate::atomic::write(&path, script(&opts.exe, out, offset).as_bytes())
            .map_err(AblationError::io(&path))?;
        let array = format!("{}%{}", array_spec(&ids), opts.concurrency.max(1));
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name=nlah-{}", matrix.harness_name),
            format!("--array={array}"),
            format!("--output={}", log.display()),
            format!("--chdir={}", opts.workdir.display()),
        ];
        if let Some(prev) = submitted.last() {
            args.push(format!("--dependency=afterany:{prev}"));
        }
        args.push(path.display().to_string());
        let id = match sbatch(&args).await {
            Ok(id) => id,
            Err(e) => {
                // Half a submission would leave cells nobody waits for.
                if !submitted.is_empty() {
                    let ids: Vec<&str> = submitted.iter().map(String::as_str).collect();
                    scancel(&ids).await;
                }
                return Err(e);
            }
        };
        all_jobs.push(Job {
            id: id.clone(),
            offset,
            array,
            cells: ids.len(),
            submitted: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        save_jobs(out, &all_jobs)?;
        job_at.insert(offset, id.clone());
        submitted.push(id);
    }
    report.jobs = submitted.clone();

    let mut waiting: HashMap<usize, Watch> = pending
        .into_iter()
        .map(|c| {
            (
                c.index,
                Watch {
                    cell: c,
                    seen: None,
                    started: false,
                },
            )
        })
        .collect();
    let mut cancelled = false;
    let mut failures = 0u32;
    loop {
        tokio::time::sleep(opts.poll).await;
        collect(out, &mut waiting, &mut report, &sink);
        if !cancelled
            && let Some(limit) = opts.max_cost
            && report.spent >= limit
        {
            cancelled = true;
            let mut args = vec!["--state=PENDING"];
            args.extend(submitted.iter().map(String::as_str));
            scancel(&args).await;
            let unscheduled = waiting.values().filter(|w| !w.started).count();
            sink(&Event::CostCeiling {
                spent: report.spent,
                limit,
                unscheduled,
            });
        }
        if waiting.is_empty() {
            break;
        }
        match still_active(&submitted).await {
            Some(a) if a.is_empty() => {
                // The jobs are gone: whatever they wrote last is read once more.
                collect(out, &mut waiting, &mut report, &sink);
                break;
            }
            Some(_) => failures = 0,
            None => {
                failures += 1;
                if failures >= SQUEUE_FAILURES {
                    return Err(AblationError::Slurm(format!(
                        "squeue failed {failures} times in a row; the jobs ({}) may still be running: rerun when they are done",
                        submitted.join(", ")
                    )));
                }
            }
        }
    }
    let mut left: Vec<Watch> = waiting.into_values().collect();
    left.sort_by_key(|w| w.cell.index);
    for w in left {
        if cancelled
            && !w.started
            && resume::outcome_of(&resume::run_json(out, &w.cell.id)).is_none()
        {
            report.unscheduled += 1;
            continue;
        }
        report.errors += 1;
        let offset = w.cell.index / max.max(1) * max.max(1);
        let job = job_at.get(&offset).map_or("?", String::as_str);
        let logs = dir.join(format!("{job}_{}.log", w.cell.index - offset));
        sink(&Event::Failed {
            error: format!(
                "its Slurm job ended without a result (see {}, the job's log)",
                logs.display()
            ),
            cell: w.cell,
        });
    }
    Ok(report)
}

struct Watch {
    cell: Cell,
    /// The run.json version looked at last.
    seen: Option<(i64, u64, u64)>,
    started: bool,
}

fn stamp(p: &Path) -> Option<(i64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((
        m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        m.size(),
        m.ino(),
    ))
}

/// Reads the run.json files that changed since the last look.
fn collect(
    out: &Path,
    waiting: &mut HashMap<usize, Watch>,
    report: &mut SlurmSubmission,
    sink: &Sink,
) {
    let mut done = Vec::new();
    for (i, w) in waiting.iter_mut() {
        let path = resume::run_json(out, &w.cell.id);
        let st = stamp(&path);
        if st.is_none() || st == w.seen {
            continue;
        }
        w.seen = st;
        let Some(record) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok())
        else {
            continue;
        };
        if !w.started {
            w.started = true;
            sink(&Event::Started {
                cell: w.cell.clone(),
                moved_aside: None,
            });
        }
        if record.outcome == RunOutcome::Running {
            continue;
        }
        let s = Summary::of(&record);
        report.spent += s.cost_usd;
        if is_result(record.outcome) {
            report.results += 1;
        } else {
            report.errors += 1;
        }
        sink(&Event::Finished {
            cell: w.cell.clone(),
            record: std::sync::Arc::new(record),
        });
        done.push(*i);
    }
    for i in done {
        waiting.remove(&i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_and_chunks() {
        assert_eq!(array_spec(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
        assert_eq!(array_spec(&[4]), "4");
        assert_eq!(
            chunks(&[0, 1, 2, 3, 4, 9, 10], 4),
            vec![(0, vec![0, 1, 2, 3]), (4, vec![0]), (8, vec![1, 2])]
        );
        assert_eq!(chunks(&[], 4), Vec::<(usize, Vec<usize>)>::new());
    }

    #[test]
    fn max_array_size_from_scontrol() {
        let cfg = "Configuration data as of 2024-01-01T00:00:00\nMailProg                = /bin/mail\nMaxArraySize            = 1001\nMaxJobCount             = 10000\n";
        assert_eq!(parse_max_array_size(cfg), Some(1001));
        assert_eq!(parse_max_array_size("x = 1\n"), None);
    }

    #[test]
    fn scripts_quote_paths() {
        let s = script(Path::new("/opt/n'lah"), Path::new("/out"), 1001);
        assert!(s.contains("OFFSET=1001"));
        assert!(s.contains(r"'/opt/n'\''lah' run-cell --matrix '/out/matrix.json'"));
        assert!(s.contains("$((OFFSET + SLURM_ARRAY_TASK_ID))"));
    }
}

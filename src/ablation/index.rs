//! `OUT/index.sqlite`: an index over the cells' run.json files, so reports and resumes need no
//! file reads for cells that have not changed.
//!
//! The run.json files are the source of truth; the index is a cache of them. Each row remembers
//! the mtime, size and inode of the run.json it was read from (an atomic rewrite always makes a
//! new inode), and a row whose file changed is read again. A missing, corrupt or outdated index is
//! rebuilt from the files; when the index cannot be written at all (a read-only folder, a lock
//! held too long), the files are read directly.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use super::error::AblationError;
use super::matrix::MATRIX_FILE;
use super::resume::run_json;
use super::{Cell, CellResult, Matrix, matrix};
use crate::record::{RunOutcome, RunRecord};
use rusqlite::{Connection, OptionalExtension, params};

pub const INDEX_FILE: &str = "index.sqlite";
/// Bumped whenever the table changes; an index of another version is rebuilt.
const VERSION: &str = "3";

/// The figures of one cell's run.json that tables and schedulers need, without the full record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub outcome: RunOutcome,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub tool_calls: u64,
    pub llm_calls: u64,
    pub wall_ms: u64,
    pub cost_usd: f64,
    /// The runtime's own share (orchestrator turns, candidate ranking).
    pub parent_input_tokens: u64,
    pub parent_output_tokens: u64,
    pub parent_tool_calls: u64,
    pub parent_llm_calls: u64,
    /// The delegated children's share.
    pub children_input_tokens: u64,
    pub children_output_tokens: u64,
    pub children_tool_calls: u64,
    pub children_llm_calls: u64,
    /// The interface layers' counts, for a harness that declares layers.
    pub interface: Option<InterfaceSummary>,
    /// The environment's last reward, for a task that runs in one.
    pub reward: Option<f64>,
}

/// What the report needs of `run.json`'s `interface`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct InterfaceSummary {
    pub actions: u64,
    pub legal_first_try: u64,
    pub legal_final: u64,
    pub interventions: u64,
    pub reprompts: u64,
    pub fallbacks: u64,
}

impl Summary {
    pub fn of(r: &RunRecord) -> Summary {
        let m = &r.metrics;
        Summary {
            outcome: r.outcome,
            input_tokens: m.total.input_tokens,
            output_tokens: m.total.output_tokens,
            cached_input_tokens: m.total.cached_input_tokens,
            tool_calls: m.tool_calls,
            llm_calls: m.total.calls,
            wall_ms: m.wall_ms,
            cost_usd: m.total.cost_usd,
            parent_input_tokens: m.parent.input_tokens,
            parent_output_tokens: m.parent.output_tokens,
            parent_tool_calls: m.parent_tool_calls,
            parent_llm_calls: m.parent.calls,
            children_input_tokens: m.children.input_tokens,
            children_output_tokens: m.children.output_tokens,
            children_tool_calls: m.tool_calls.saturating_sub(m.parent_tool_calls),
            children_llm_calls: m.children.calls,
            interface: r.interface.as_ref().map(|i| InterfaceSummary {
                actions: i.actions,
                legal_first_try: i.legal_first_try,
                legal_final: i.legal_final,
                interventions: i.interventions,
                reprompts: i.reprompts,
                fallbacks: i.fallbacks,
            }),
            reward: r.episode.as_ref().and_then(|e| e.reward),
        }
    }
}

/// Identifies one version of a run.json file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime_ns: i64,
    size: i64,
    ino: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        mtime_ns: m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
        size: m.size() as i64,
        ino: m.ino() as i64,
    })
}

/// One cell as the index knows it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `None`: the cell has no readable run.json.
    pub summary: Option<Summary>,
    /// The record as compact JSON, when asked for.
    record: Option<String>,
}

impl Entry {
    pub fn outcome(&self) -> Option<RunOutcome> {
        self.summary.map(|s| s.outcome)
    }
}

struct Row {
    stamp: Stamp,
    summary: Summary,
    record: Option<String>,
}

fn outcome_from(s: &str) -> Option<RunOutcome> {
    Some(match s {
        "passed" => RunOutcome::Passed,
        "failed" => RunOutcome::Failed,
        "unverified" => RunOutcome::Unverified,
        "error" => RunOutcome::Error,
        "running" => RunOutcome::Running,
        "budget" => RunOutcome::Budget,
        _ => return None,
    })
}

const COLUMNS: &str = "id, mtime_ns, size, ino, outcome, input_tokens, output_tokens, cached_input_tokens, tool_calls, llm_calls, wall_ms, cost_usd, parent_input_tokens, parent_output_tokens, parent_tool_calls, parent_llm_calls, children_input_tokens, children_output_tokens, children_tool_calls, children_llm_calls, if_actions, if_legal_first_try, if_legal_final, if_interventions, if_reprompts, if_fallbacks, reward";

fn create(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS cells (
            id TEXT PRIMARY KEY,
            idx INTEGER NOT NULL,
            variant TEXT NOT NULL,
            task TEXT NOT NULL,
            model TEXT NOT NULL,
            seed INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            size INTEGER NOT NULL,
            ino INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cached_input_tokens INTEGER NOT NULL,
            tool_calls INTEGER NOT NULL,
            llm_calls INTEGER NOT NULL,
            wall_ms INTEGER NOT NULL,
            cost_usd REAL NOT NULL,
            parent_input_tokens INTEGER NOT NULL,
            parent_output_tokens INTEGER NOT NULL,
            parent_tool_calls INTEGER NOT NULL,
            parent_llm_calls INTEGER NOT NULL,
            children_input_tokens INTEGER NOT NULL,
            children_output_tokens INTEGER NOT NULL,
            children_tool_calls INTEGER NOT NULL,
            children_llm_calls INTEGER NOT NULL,
            if_actions INTEGER,
            if_legal_first_try INTEGER,
            if_legal_final INTEGER,
            if_interventions INTEGER,
            if_reprompts INTEGER,
            if_fallbacks INTEGER,
            reward REAL,
            record TEXT NOT NULL
         );",
    )?;
    db.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('version', ?1)",
        params![VERSION],
    )?;
    Ok(())
}

/// Whether an index is beyond use (rather than busy or read-only): such a file is replaced.
fn is_broken(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
        ),
        // What `open` says of an index of another version.
        rusqlite::Error::InvalidQuery => true,
        _ => false,
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let db = Connection::open(path)?;
    db.busy_timeout(Duration::from_secs(10))?;
    // The index can always be rebuilt from the files, so a commit need not wait for the disk
    // more than the journal requires.
    db.pragma_update(None, "synchronous", "NORMAL")?;
    create(&db)?;
    let v: Option<String> = db
        .query_row("SELECT value FROM meta WHERE key = 'version'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if v.as_deref() != Some(VERSION) {
        return Err(rusqlite::Error::InvalidQuery);
    }
    Ok(db)
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

fn read_rows(db: &Connection, with_records: bool) -> rusqlite::Result<HashMap<String, Row>> {
    let sql = if with_records {
        format!("SELECT {COLUMNS}, record FROM cells")
    } else {
        format!("SELECT {COLUMNS} FROM cells")
    };
    let mut st = db.prepare(&sql)?;
    let mut rows = st.query([])?;
    let mut out = HashMap::new();
    while let Some(r) = rows.next()? {
        let outcome: String = r.get(4)?;
        let Some(outcome) = outcome_from(&outcome) else {
            continue;
        };
        let summary = Summary {
            outcome,
            input_tokens: u(r.get(5)?),
            output_tokens: u(r.get(6)?),
            cached_input_tokens: u(r.get(7)?),
            tool_calls: u(r.get(8)?),
            llm_calls: u(r.get(9)?),
            wall_ms: u(r.get(10)?),
            cost_usd: r.get(11)?,
            parent_input_tokens: u(r.get(12)?),
            parent_output_tokens: u(r.get(13)?),
            parent_tool_calls: u(r.get(14)?),
            parent_llm_calls: u(r.get(15)?),
            children_input_tokens: u(r.get(16)?),
            children_output_tokens: u(r.get(17)?),
            children_tool_calls: u(r.get(18)?),
            children_llm_calls: u(r.get(19)?),
            interface: match r.get::<_, Option<i64>>(20)? {
                None => None,
                Some(a) => Some(InterfaceSummary {
                    actions: u(a),
                    legal_first_try: u(r.get(21)?),
                    legal_final: u(r.get(22)?),
                    interventions: u(r.get(23)?),
                    reprompts: u(r.get(24)?),
                    fallbacks: u(r.get(25)?),
                }),
            },
            reward: r.get(26)?,
        };
        let stamp = Stamp {
            mtime_ns: r.get(1)?,
            size: r.get(2)?,
            ino: r.get(3)?,
        };
        let record = if with_records { Some(r.get(25)?) } else { None };
        out.insert(
            r.get(0)?,
            Row {
                stamp,
                summary,
                record,
            },
        );
    }
    Ok(out)
}

/// A run.json read from disk.
struct Fresh {
    stamp: Stamp,
    summary: Summary,
    json: String,
}

fn read_file(path: &Path) -> Option<Fresh> {
    // Stamp first: if the file is replaced while it is read, the row is merely stale and is read
    // again next time, never newer than its stamp says.
    let stamp = stamp(path)?;
    let bytes = std::fs::read(path).ok()?;
    let record: RunRecord = serde_json::from_slice(&bytes).ok()?;
    let json = serde_json::to_string(&record).ok()?;
    Some(Fresh {
        stamp,
        summary: Summary::of(&record),
        json,
    })
}

/// What the files say of each cell whose run.json differs from `known` (or that `known` lacks).
/// `None` in the result: the row is current. Runs on a few threads, since 10,000 cells are 10,000
/// stats and possibly as many reads.
fn look(out: &Path, cells: &[Cell], known: &HashMap<String, Row>) -> Vec<Option<Option<Fresh>>> {
    let one = |c: &Cell| -> Option<Option<Fresh>> {
        let path = run_json(out, &c.id);
        let st = stamp(&path);
        match (st, known.get(&c.id)) {
            (Some(s), Some(row)) if row.stamp == s => None,
            (None, None) => None,
            (None, Some(_)) => Some(None),
            (Some(_), _) => Some(read_file(&path)),
        }
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    if threads == 1 || cells.len() < 256 {
        return cells.iter().map(one).collect();
    }
    let chunk = cells.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = cells
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn upsert(db: &mut Connection, changes: &[(&Cell, Option<&Fresh>)]) -> rusqlite::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let tx = db.transaction()?;
    {
        let mut del = tx.prepare_cached("DELETE FROM cells WHERE id = ?1")?;
        let mut ins = tx.prepare_cached(
            "INSERT OR REPLACE INTO cells (id, idx, variant, task, model, seed, mtime_ns, size, ino, outcome, input_tokens, output_tokens, cached_input_tokens, tool_calls, llm_calls, wall_ms, cost_usd, parent_input_tokens, parent_output_tokens, parent_tool_calls, parent_llm_calls, children_input_tokens, children_output_tokens, children_tool_calls, children_llm_calls, if_actions, if_legal_first_try, if_legal_final, if_interventions, if_reprompts, if_fallbacks, reward, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33)",
        )?;
        for (c, f) in changes {
            match f {
                None => {
                    del.execute(params![c.id])?;
                }
                Some(f) => {
                    let s = &f.summary;
                    let i = |v: u64| v.min(i64::MAX as u64) as i64;
                    ins.execute(params![
                        c.id,
                        c.index as i64,
                        c.variant,
                        c.task,
                        c.model,
                        i(c.seed),
                        f.stamp.mtime_ns,
                        f.stamp.size,
                        f.stamp.ino,
                        s.outcome.as_str(),
                        i(s.input_tokens),
                        i(s.output_tokens),
                        i(s.cached_input_tokens),
                        i(s.tool_calls),
                        i(s.llm_calls),
                        i(s.wall_ms),
                        s.cost_usd,
                        i(s.parent_input_tokens),
                        i(s.parent_output_tokens),
                        i(s.parent_tool_calls),
                        i(s.parent_llm_calls),
                        i(s.children_input_tokens),
                        i(s.children_output_tokens),
                        i(s.children_tool_calls),
                        i(s.children_llm_calls),
                        s.interface.map(|x| i(x.actions)),
                        s.interface.map(|x| i(x.legal_first_try)),
                        s.interface.map(|x| i(x.legal_final)),
                        s.interface.map(|x| i(x.interventions)),
                        s.interface.map(|x| i(x.reprompts)),
                        s.interface.map(|x| i(x.fallbacks)),
                        s.reward,
                        f.json,
                    ])?;
                }
            }
        }
    }
    tx.commit()
}

/// Removes rows of cells the matrix does not have (left by an older matrix in the folder).
fn prune(db: &Connection, cells: &[Cell], known: &HashMap<String, Row>) -> rusqlite::Result<()> {
    if known.len() <= cells.len() && cells.iter().all(|c| known.contains_key(&c.id)) {
        return Ok(());
    }
    let ids: std::collections::HashSet<&str> = cells.iter().map(|c| c.id.as_str()).collect();
    let mut del = db.prepare_cached("DELETE FROM cells WHERE id = ?1")?;
    for id in known.keys().filter(|k| !ids.contains(k.as_str())) {
        del.execute(params![id])?;
    }
    Ok(())
}

fn merge(
    cells: &[Cell],
    mut known: HashMap<String, Row>,
    fresh: Vec<Option<Option<Fresh>>>,
) -> Vec<Entry> {
    cells
        .iter()
        .zip(fresh)
        .map(|(c, f)| match f {
            Some(Some(f)) => Entry {
                summary: Some(f.summary),
                record: Some(f.json),
            },
            Some(None) => Entry {
                summary: None,
                record: None,
            },
            None => match known.remove(&c.id) {
                Some(row) => Entry {
                    summary: Some(row.summary),
                    record: row.record,
                },
                None => Entry {
                    summary: None,
                    record: None,
                },
            },
        })
        .collect()
}

fn with_db(
    path: &Path,
    out: &Path,
    cells: &[Cell],
    with_records: bool,
) -> rusqlite::Result<Vec<Entry>> {
    let mut db = open(path)?;
    let known = read_rows(&db, with_records)?;
    let fresh = look(out, cells, &known);
    let changes: Vec<(&Cell, Option<&Fresh>)> = cells
        .iter()
        .zip(&fresh)
        .filter_map(|(c, f)| f.as_ref().map(|f| (c, f.as_ref())))
        .collect();
    upsert(&mut db, &changes)?;
    prune(&db, cells, &known)?;
    Ok(merge(cells, known, fresh))
}

/// Brings the index of `out` up to date with the cells' files and returns every cell's entry, in
/// matrix order; `with_records` keeps each record's JSON for [`Entry`] parsing.
pub fn refresh(
    out: &Path,
    matrix: &Matrix,
    with_records: bool,
) -> Result<Vec<Entry>, AblationError> {
    let path = out.join(INDEX_FILE);
    match with_db(&path, out, &matrix.cells, with_records) {
        Ok(v) => return Ok(v),
        Err(e) if is_broken(&e) => {
            // Corrupt or of another version: rebuilt from the files.
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(out.join(format!("{INDEX_FILE}-journal")));
            if let Ok(v) = with_db(&path, out, &matrix.cells, with_records) {
                return Ok(v);
            }
        }
        // Locked by another process for too long, or read-only: left alone.
        Err(_) => {}
    }
    // No index can be written here: the files alone answer.
    let fresh = look(out, &matrix.cells, &HashMap::new());
    Ok(merge(&matrix.cells, HashMap::new(), fresh))
}

/// The matrix of `out` and a summary of each of its cells, without parsing any record.
pub fn summaries(out: &Path) -> Result<(Matrix, Vec<Option<Summary>>), AblationError> {
    let m = matrix::read_matrix(&out.join(MATRIX_FILE))?;
    let entries = refresh(out, &m, false)?;
    Ok((m, entries.into_iter().map(|e| e.summary).collect()))
}

fn parse_records(entries: Vec<Entry>) -> Vec<Option<RunRecord>> {
    let parse = |e: Entry| -> Option<RunRecord> {
        e.record
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    if threads == 1 || entries.len() < 256 {
        return entries.into_iter().map(parse).collect();
    }
    let chunk = entries.len().div_ceil(threads);
    let mut parts: Vec<Vec<Entry>> = Vec::new();
    let mut it = entries.into_iter().peekable();
    while it.peek().is_some() {
        parts.push(it.by_ref().take(chunk).collect());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|p| s.spawn(move || p.into_iter().map(parse).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Every cell of the matrix in `out` with its run record (`None` when it has no run.json yet),
/// in matrix order. Reads only the run.json files that changed since the index last saw them.
pub fn load(out: &Path) -> Result<Vec<CellResult>, AblationError> {
    let m = matrix::read_matrix(&out.join(MATRIX_FILE))?;
    let entries = refresh(out, &m, true)?;
    let records = parse_records(entries);
    Ok(m.cells
        .into_iter()
        .zip(records)
        .map(|(cell, record)| CellResult { cell, record })
        .collect())
}

/// Throws the index away and builds it again from the files; returns the number of cells that
/// have a run.json.
pub fn rebuild(out: &Path) -> Result<usize, AblationError> {
    let m = matrix::read_matrix(&out.join(MATRIX_FILE))?;
    let path = out.join(INDEX_FILE);
    for p in [path.clone(), out.join(format!("{INDEX_FILE}-journal"))] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(AblationError::Io { path: p, source }),
        }
    }
    let entries = with_db(&path, out, &m.cells, false).map_err(|source| AblationError::Index {
        path: path.clone(),
        source,
    })?;
    Ok(entries.iter().filter(|e| e.summary.is_some()).count())
}

/// The index file of an output folder.
pub fn path(out: &Path) -> PathBuf {
    out.join(INDEX_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ablation::MATRIX_SCHEMA;
    use crate::ablation::matrix::{MatrixFile, write};
    use crate::engine::RunSettings;
    use crate::record::{HarnessRef, Metrics, SCHEMA, TaskRef};

    fn cell(i: usize) -> Cell {
        Cell {
            id: format!("{i:016x}"),
            index: i,
            variant: "basic".into(),
            task: "t".into(),
            task_path: PathBuf::from("/t"),
            task_set: "tasks".into(),
            task_hash: "h".into(),
            model: "openai:m".into(),
            seed: i as u64,
        }
    }

    fn record(outcome: RunOutcome, cost: f64) -> RunRecord {
        let mut metrics = Metrics::default();
        metrics.total.cost_usd = cost;
        metrics.total.input_tokens = 10;
        metrics.tool_calls = 3;
        metrics.parent_tool_calls = 1;
        RunRecord {
            schema: SCHEMA.into(),
            run_id: "r".into(),
            harness: HarnessRef {
                name: "h".into(),
                version: "v".into(),
                modules: vec![],
            },
            task: TaskRef {
                id: "t".into(),
                hash: "h".into(),
                path: "/t".into(),
            },
            model: "openai:m".into(),
            seed: 0,
            started: "2025-01-01T00:00:00Z".into(),
            finished: None,
            outcome,
            reason: "x".into(),
            verifier: None,
            error_class: None,
            metrics,
            requests: Default::default(),
            sandbox: String::new(),
            episode: None,
            interface: None,
        }
    }

    fn put(out: &Path, c: &Cell, r: &RunRecord) {
        let p = run_json(out, &c.id);
        crate::atomic::write(&p, serde_json::to_string_pretty(r).unwrap().as_bytes()).unwrap();
    }

    fn outcomes(out: &Path) -> Vec<Option<RunOutcome>> {
        let (_, s) = summaries(out).unwrap();
        s.iter().map(|s| s.map(|s| s.outcome)).collect()
    }

    #[test]
    fn follows_the_files_and_rebuilds_when_broken() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let cells: Vec<Cell> = (0..3).map(cell).collect();
        let m = Matrix {
            schema: MATRIX_SCHEMA.into(),
            harness: PathBuf::from("/h"),
            harness_name: "h".into(),
            design: "d".into(),
            baseline: "basic".into(),
            variants: vec![],
            models: vec!["openai:m".into()],
            seeds: 3,
            cells: cells.clone(),
            created: "now".into(),
        };
        write(
            out,
            &MatrixFile {
                matrix: m,
                settings: RunSettings::default(),
            },
        )
        .unwrap();
        put(out, &cells[0], &record(RunOutcome::Passed, 0.5));
        put(out, &cells[1], &record(RunOutcome::Running, 0.0));
        assert_eq!(
            outcomes(out),
            [Some(RunOutcome::Passed), Some(RunOutcome::Running), None]
        );
        assert!(path(out).is_file());

        // A rewritten run.json is read again; a removed one drops out.
        put(out, &cells[1], &record(RunOutcome::Failed, 0.25));
        std::fs::remove_file(run_json(out, &cells[0].id)).unwrap();
        assert_eq!(outcomes(out), [None, Some(RunOutcome::Failed), None]);
        let (_, s) = summaries(out).unwrap();
        let s1 = s[1].unwrap();
        assert_eq!(s1.cost_usd, 0.25);
        assert_eq!((s1.parent_tool_calls, s1.children_tool_calls), (1, 2));
        let loaded = load(out).unwrap();
        assert_eq!(loaded[1].record.as_ref().unwrap().reason, "x");
        assert!(loaded[0].record.is_none());

        // Rows come from the index when nothing changed: even a bogus row is believed...
        let db = Connection::open(path(out)).unwrap();
        db.execute("UPDATE cells SET outcome = 'passed'", [])
            .unwrap();
        assert_eq!(outcomes(out), [None, Some(RunOutcome::Passed), None]);
        // ...until the index is rebuilt from the files.
        assert_eq!(rebuild(out).unwrap(), 1);
        assert_eq!(outcomes(out), [None, Some(RunOutcome::Failed), None]);

        // An index of another version, or not a database at all, is replaced.
        drop(db);
        let db = Connection::open(path(out)).unwrap();
        db.execute("UPDATE meta SET value = '0' WHERE key = 'version'", [])
            .unwrap();
        drop(db);
        assert_eq!(outcomes(out), [None, Some(RunOutcome::Failed), None]);
        std::fs::write(path(out), b"garbage").unwrap();
        assert_eq!(outcomes(out), [None, Some(RunOutcome::Failed), None]);
        let db = Connection::open(path(out)).unwrap();
        let n: i64 = db
            .query_row("SELECT count(*) FROM cells", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}

//! `history/events.jsonl`: the append-only log of a run's events ([`crate::record::Event`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::record::{Event, EventKind};

/// The open log. Appends are serialised and flushed line by line, so a killed run keeps every
/// event it recorded (the file is synced at each commit).
pub struct EventLog {
    path: PathBuf,
    inner: Mutex<(File, u64)>,
}

impl EventLog {
    pub fn open(path: &Path) -> std::io::Result<EventLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let existing = std::fs::read_to_string(path)
            .map(|s| s.lines().count() as u64)
            .unwrap_or(0);
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog {
            path: path.to_path_buf(),
            inner: Mutex::new((file, existing)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an event and returns it as recorded.
    pub fn append(&self, kind: EventKind) -> std::io::Result<Event> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1 += 1;
        let event = Event {
            seq: g.1,
            t: now(),
            kind,
        };
        let mut line = serde_json::to_string(&event).map_err(std::io::Error::other)?;
        line.push('\n');
        g.0.write_all(line.as_bytes())?;
        Ok(event)
    }

    pub fn sync(&self) -> std::io::Result<()> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0.sync_data()
    }
}

pub fn now() -> String {
    let t: DateTime<Utc> = Utc::now();
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads a log back (for inspect, diff and tests). A torn last line (a kill mid-write) is
/// skipped.
pub fn read(path: &Path) -> std::io::Result<Vec<Event>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

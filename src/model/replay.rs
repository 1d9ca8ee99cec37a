//! Recording model calls to a cassette and replaying them, so that a run can be repeated
//! deterministically and without a model (tests, ablations of everything but the model).
//!
//! A cassette is JSON Lines, one line per call, in the order calls finished:
//! `{"trace": "execute-1#3", "request": {…}, "response": {…}}`, or `"error": {"class", "message"}`
//! in place of `response` for a failed call, or `"cut": true` for a call still in flight when its
//! session was cut off (the child's time ran out: the run's wall time or its own timeout): a
//! replay cuts the session at the same call, since replayed calls take no time. Requests carry
//! no credentials and no headers are recorded, so cassettes hold no API keys.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{ChatBackend, ChatRequest, ChatResponse, ModelError};

/// One line of a cassette.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CassetteLine {
    #[serde(default)]
    pub trace: Option<String>,
    pub request: ChatRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ChatResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordedError>,
    /// The call was in flight when its session was cut off; it has no answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
}

/// A failed call as recorded: enough to fail the same way on replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedError {
    /// [`ModelError::class`].
    pub class: String,
    pub message: String,
    /// The HTTP status, so that a replay keeps 401 apart from 403 and 529 apart from 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl RecordedError {
    pub fn of(e: &ModelError) -> Self {
        let status = match e {
            ModelError::Http { status, .. } => Some(*status),
            _ => None,
        };
        RecordedError {
            class: e.class().to_string(),
            message: e.to_string(),
            status,
        }
    }

    /// An error of the recorded class. Recorded HTTP errors come back with a zero `Retry-After`
    /// so that replaying a rate limit does not wait.
    pub fn to_error(&self) -> ModelError {
        let url = "replay".to_string();
        let http = |status: u16| ModelError::Http {
            url: url.clone(),
            status,
            body: self.message.clone(),
            retry_after: Some(Duration::ZERO),
        };
        let inner = |prefix: &str| {
            self.message
                .strip_prefix(prefix)
                .unwrap_or(&self.message)
                .to_string()
        };
        match (self.class.as_str(), self.status) {
            (_, Some(status)) => http(status),
            ("auth", None) => http(401),
            ("rate-limited", None) => http(429),
            ("server-error", None) => http(500),
            ("client-error", None) => http(400),
            ("timeout", None) => ModelError::Timeout { url, secs: 0 },
            ("unreachable", None) => ModelError::Unreachable {
                url,
                reason: self.message.clone(),
            },
            ("malformed", None) => ModelError::Malformed(inner("malformed response: ")),
            ("config", None) => ModelError::Config(self.message.clone()),
            ("context-overflow", None) => ModelError::ContextOverflow {
                prompt_tokens: 0,
                window: 0,
            },
            _ => ModelError::Replay(inner("replay: ")),
        }
    }
}

/// Wraps a backend and appends every call, answered, failed or cut off, to a cassette. Each line
/// is written and flushed before the answer is returned, so a killed run keeps what it recorded.
/// Writes are synchronous: a line is a few kilobytes after a model call of tenths of a second, and
/// a call cut off (its future dropped) must still be written from `Drop`.
pub struct Recorder<B> {
    inner: B,
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl<B: ChatBackend> Recorder<B> {
    /// Appends to `path` (created if missing), so several runs can share a cassette.
    pub async fn new(inner: B, path: impl Into<PathBuf>) -> Result<Self, ModelError> {
        let path = path.into();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                ModelError::Replay(format!("cannot open the cassette {}: {e}", path.display()))
            })?;
        Ok(Recorder {
            inner,
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    async fn record(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let in_flight = InFlight {
            recorder: self,
            req,
            answered: false,
        };
        let result = self.inner.complete(req).await;
        in_flight.answered(&result)?;
        result
    }
}

/// Appends `line` to the cassette at `path`, open as `file`.
fn write_line(
    file: &Mutex<std::fs::File>,
    path: &Path,
    line: &CassetteLine,
) -> Result<(), ModelError> {
    let write_err =
        |e: String| ModelError::Replay(format!("cannot record to {}: {e}", path.display()));
    let mut text = serde_json::to_string(line).map_err(|e| write_err(e.to_string()))?;
    text.push('\n');
    // One write per line under the lock, so lines of parallel calls never interleave.
    let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| write_err(e.to_string()))
}

/// A call the recorder has sent: recorded with its answer, or, when dropped unanswered (its
/// session was cut off), as cut.
struct InFlight<'a, B> {
    recorder: &'a Recorder<B>,
    req: &'a ChatRequest,
    answered: bool,
}

impl<B> InFlight<'_, B> {
    fn line(&self) -> CassetteLine {
        CassetteLine {
            trace: self.req.trace.clone(),
            request: self.req.clone(),
            response: None,
            error: None,
            cut: false,
        }
    }
}

impl<B: ChatBackend> InFlight<'_, B> {
    fn answered(mut self, result: &Result<ChatResponse, ModelError>) -> Result<(), ModelError> {
        self.answered = true;
        let line = CassetteLine {
            response: result.as_ref().ok().cloned(),
            error: result.as_ref().err().map(RecordedError::of),
            ..self.line()
        };
        write_line(&self.recorder.file, &self.recorder.path, &line)
    }
}

impl<B> Drop for InFlight<'_, B> {
    fn drop(&mut self) {
        if !self.answered {
            let line = CassetteLine {
                cut: true,
                ..self.line()
            };
            // Nothing is left to report to: the session that asked is gone. A cut not written
            // shows as a replay that runs out of answers for this trace.
            let _ = write_line(&self.recorder.file, &self.recorder.path, &line);
        }
    }
}

impl<B: ChatBackend> ChatBackend for Recorder<B> {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(self.record(req))
    }
}

/// Answers requests from a cassette: by `trace` when the request has one the cassette knows
/// (lines of one trace in file order, e.g. a failure and then its retry), otherwise the next
/// unused line in file order. Every line answers once. A line recorded as cut never answers: it
/// cuts off the session of the child that asked ([`ChatBackend::cut_off`]).
#[derive(Debug)]
pub struct ReplayBackend {
    path: PathBuf,
    lines: Vec<CassetteLine>,
    state: Mutex<ReplayState>,
    /// Wakes the children waiting in `cut_off` when a cut line is reached.
    cuts: tokio::sync::Notify,
}

#[derive(Debug)]
struct ReplayState {
    used: Vec<bool>,
    by_trace: HashMap<String, VecDeque<usize>>,
    /// Children whose session reached a cut line.
    cut: HashSet<String>,
}

/// What a cassette line gives a request.
enum Answer {
    Now(Result<ChatResponse, ModelError>),
    Cut,
}

/// The child a request's trace names (`<child id>#<step>`).
fn child_of(trace: &str) -> &str {
    trace.rsplit_once('#').map_or(trace, |(child, _)| child)
}

impl ReplayBackend {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ModelError::Replay(format!("cannot read the cassette {}: {e}", path.display()))
        })?;
        let mut lines = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed: CassetteLine = serde_json::from_str(line).map_err(|e| {
                ModelError::Replay(format!("{} line {}: {e}", path.display(), n + 1))
            })?;
            if parsed.response.is_none() && parsed.error.is_none() && !parsed.cut {
                return Err(ModelError::Replay(format!(
                    "{} line {}: neither a response, an error nor a cut",
                    path.display(),
                    n + 1
                )));
            }
            lines.push(parsed);
        }
        Ok(Self::from_lines(path, lines))
    }

    /// A replay of lines already in memory; `path` only names them in messages.
    pub fn from_lines(path: impl Into<PathBuf>, lines: Vec<CassetteLine>) -> Self {
        let mut by_trace: HashMap<String, VecDeque<usize>> = HashMap::new();
        for (i, l) in lines.iter().enumerate() {
            if let Some(t) = &l.trace {
                by_trace.entry(t.clone()).or_default().push_back(i);
            }
        }
        let state = ReplayState {
            used: vec![false; lines.len()],
            by_trace,
            cut: HashSet::new(),
        };
        ReplayBackend {
            path: path.into(),
            lines,
            state: Mutex::new(state),
            cuts: tokio::sync::Notify::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines not answered yet.
    pub fn remaining(&self) -> usize {
        let state = self.lock();
        state.used.iter().filter(|u| !**u).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answer(&self, req: &ChatRequest) -> Answer {
        let mut state = self.lock();
        let ReplayState {
            used,
            by_trace,
            cut,
        } = &mut *state;
        let index = match req.trace.as_deref().and_then(|t| by_trace.get_mut(t)) {
            // A known trace answers only from its own lines: taking another's would desync.
            Some(queue) => std::iter::from_fn(|| queue.pop_front()).find(|i| !used[*i]),
            None => used.iter().position(|u| !*u),
        };
        let Some(index) = index else {
            let trace = req.trace.as_deref().unwrap_or("an untraced request");
            return Answer::Now(Err(ModelError::Replay(format!(
                "the cassette has no recorded answer for {trace} ({})",
                self.path.display()
            ))));
        };
        used[index] = true;
        let line = &self.lines[index];
        Answer::Now(match (&line.response, &line.error) {
            (Some(resp), _) => {
                let mut resp = resp.clone();
                resp.usage.latency_ms = 0;
                Ok(resp)
            }
            (None, Some(err)) => Err(err.to_error()),
            (None, None) if line.cut => {
                let trace = line.trace.as_deref().or(req.trace.as_deref());
                cut.insert(child_of(trace.unwrap_or_default()).to_string());
                self.cuts.notify_waiters();
                return Answer::Cut;
            }
            (None, None) => Err(ModelError::Replay(format!(
                "{} line {index}: empty",
                self.path.display()
            ))),
        })
    }
}

impl ChatBackend for ReplayBackend {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        match self.answer(req) {
            Answer::Now(result) => Box::pin(async move { result }),
            // The recorded call never answered: it waits until its session is cut off.
            Answer::Cut => Box::pin(std::future::pending()),
        }
    }

    fn cut_off<'a>(&'a self, child: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            loop {
                // Registered before the check, so a cut between the two is not missed.
                let notified = self.cuts.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.lock().cut.contains(child) {
                    return;
                }
                notified.await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_errors_keep_their_class() {
        let errors = [
            ModelError::Http {
                url: "u".into(),
                status: 529,
                body: "overloaded".into(),
                retry_after: None,
            },
            ModelError::Http {
                url: "u".into(),
                status: 403,
                body: "no".into(),
                retry_after: None,
            },
            ModelError::MissingKey {
                var: "OPENAI_API_KEY",
            },
            ModelError::Timeout {
                url: "u".into(),
                secs: 3,
            },
            ModelError::Unreachable {
                url: "u".into(),
                reason: "refused".into(),
            },
            ModelError::Malformed("cut".into()),
            ModelError::Replay("gone".into()),
            ModelError::Config("bad".into()),
        ];
        for e in errors {
            let back = RecordedError::of(&e).to_error();
            assert_eq!(back.class(), e.class(), "{e}");
        }
        let m = RecordedError::of(&ModelError::Malformed("cut".into())).to_error();
        assert_eq!(m.to_string(), "malformed response: cut");
    }
}

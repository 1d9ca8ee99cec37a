//! Recording model calls to a cassette and replaying them, so that a run can be repeated
//! deterministically and without a model (tests, ablations of everything but the model).
//!
//! A cassette is JSON Lines, one line per call, in the order calls finished:
//! `{"trace": "execute-1#3", "request": {…}, "response": {…}}`, or `"error": {"class", "message"}`
//! in place of `response` for a failed call. Requests carry no credentials and no headers are
//! recorded, so cassettes hold no API keys.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

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

/// Wraps a backend and appends every call, answered or failed, to a cassette. Each line is
/// written and flushed before the answer is returned, so a killed run keeps what it recorded.
pub struct Recorder<B> {
    inner: B,
    path: PathBuf,
    file: tokio::sync::Mutex<tokio::fs::File>,
}

impl<B: ChatBackend> Recorder<B> {
    /// Appends to `path` (created if missing), so several runs can share a cassette.
    pub async fn new(inner: B, path: impl Into<PathBuf>) -> Result<Self, ModelError> {
        let path = path.into();
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|e| {
                ModelError::Replay(format!("cannot open the cassette {}: {e}", path.display()))
            })?;
        Ok(Recorder {
            inner,
            path,
            file: tokio::sync::Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    async fn record(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let result = self.inner.complete(req).await;
        let line = CassetteLine {
            trace: req.trace.clone(),
            request: req.clone(),
            response: result.as_ref().ok().cloned(),
            error: result.as_ref().err().map(RecordedError::of),
        };
        let write_err = |e: String| {
            ModelError::Replay(format!("cannot record to {}: {e}", self.path.display()))
        };
        let mut text = serde_json::to_string(&line).map_err(|e| write_err(e.to_string()))?;
        text.push('\n');
        // One write per line under the lock, so lines of parallel calls never interleave.
        let mut file = self.file.lock().await;
        file.write_all(text.as_bytes())
            .await
            .map_err(|e| write_err(e.to_string()))?;
        file.flush().await.map_err(|e| write_err(e.to_string()))?;
        result
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
/// unused line in file order. Every line answers once.
#[derive(Debug)]
pub struct ReplayBackend {
    path: PathBuf,
    lines: Vec<CassetteLine>,
    state: std::sync::Mutex<ReplayState>,
}

#[derive(Debug)]
struct ReplayState {
    used: Vec<bool>,
    by_trace: HashMap<String, VecDeque<usize>>,
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
            if parsed.response.is_none() && parsed.error.is_none() {
                return Err(ModelError::Replay(format!(
                    "{} line {}: neither a response nor an error",
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
        };
        ReplayBackend {
            path: path.into(),
            lines,
            state: std::sync::Mutex::new(state),
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
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.used.iter().filter(|u| !**u).count()
    }

    fn answer(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ReplayState { used, by_trace } = &mut *state;
        let index = match req.trace.as_deref().and_then(|t| by_trace.get_mut(t)) {
            // A known trace answers only from its own lines: taking another's would desync.
            Some(queue) => std::iter::from_fn(|| queue.pop_front()).find(|i| !used[*i]),
            None => used.iter().position(|u| !*u),
        };
        let Some(index) = index else {
            let trace = req.trace.as_deref().unwrap_or("an untraced request");
            return Err(ModelError::Replay(format!(
                "the cassette has no recorded answer for {trace} ({})",
                self.path.display()
            )));
        };
        used[index] = true;
        let line = &self.lines[index];
        match (&line.response, &line.error) {
            (Some(resp), _) => {
                let mut resp = resp.clone();
                resp.usage.latency_ms = 0;
                Ok(resp)
            }
            (None, Some(err)) => Err(err.to_error()),
            (None, None) => Err(ModelError::Replay(format!(
                "{} line {index}: empty",
                self.path.display()
            ))),
        }
    }
}

impl ChatBackend for ReplayBackend {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        let result = self.answer(req);
        Box::pin(async move { result })
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

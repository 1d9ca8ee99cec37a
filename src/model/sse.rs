//! Reading an answer's body: a whole JSON document, or a server-sent-event stream read
//! incrementally into events, whatever the chunking.

use std::time::Duration;

use futures::StreamExt;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use super::ModelError;
use super::http::{body_error, clip};

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// An incremental SSE reader: bytes in, complete events out, whatever the chunking.
#[derive(Default)]
pub(crate) struct SseReader {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseReader {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            let line = String::from_utf8_lossy(&self.buf[start..end])
                .trim_end_matches('\r')
                .to_string();
            start = end + 1;
            if let Some(ev) = self.line(&line) {
                out.push(ev);
            }
        }
        self.buf.drain(..start);
        out
    }

    /// The event still pending when the body ends without a final blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let rest = std::mem::take(&mut self.buf);
        let line = String::from_utf8_lossy(&rest)
            .trim_end_matches('\r')
            .to_string();
        let ev = if line.is_empty() {
            None
        } else {
            self.line(&line)
        };
        ev.or_else(|| self.line(""))
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            return self.data.take().map(|data| SseEvent { event, data });
        }
        if line.starts_with(':') {
            return None; // a comment (OpenRouter's keep-alives)
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        None
    }
}

/// A response body: a whole JSON document, or the events of a stream.
pub(crate) enum Answer {
    Json(Value),
    Events(Vec<SseEvent>),
}

/// Reads a successful body. Streams are expected, but a server may ignore `stream` and answer
/// with plain JSON: the content type, or a body starting with `{`, tells.
pub(crate) async fn read_answer(
    resp: reqwest::Response,
    url: &str,
    timeout: Duration,
) -> Result<Answer, ModelError> {
    let declared = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut json_mode = match (declared.contains("json"), declared.contains("event-stream")) {
        (true, false) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let mut raw = Vec::new();
    let mut sse = SseReader::default();
    let mut events = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| body_error(e, url, timeout))?;
        match json_mode {
            Some(true) => raw.extend_from_slice(&chunk),
            Some(false) => events.extend(sse.push(&chunk)),
            None => {
                raw.extend_from_slice(&chunk);
                if let Some(first) = raw.iter().find(|b| !b.is_ascii_whitespace()) {
                    let is_json = *first == b'{';
                    json_mode = Some(is_json);
                    if !is_json {
                        events.extend(sse.push(&raw));
                        raw.clear();
                    }
                }
            }
        }
    }
    if json_mode == Some(true) {
        let v = serde_json::from_slice(&raw).map_err(|e| {
            ModelError::Malformed(format!(
                "invalid JSON from {url} ({e}): {}",
                clip(&String::from_utf8_lossy(&raw), 200)
            ))
        })?;
        return Ok(Answer::Json(v));
    }
    events.extend(sse.finish());
    if events.is_empty() {
        return Err(ModelError::Malformed(format!(
            "{url} answered with an empty body"
        )));
    }
    Ok(Answer::Events(events))
}

/// The JSON of each event's data, skipping blank events and the markers in `skip` (such as
/// `[DONE]`); data that is not JSON ends the stream with an error.
pub(crate) fn json_events<'a>(
    events: &'a [SseEvent],
    skip: &'a [&str],
) -> impl Iterator<Item = Result<Value, ModelError>> + 'a {
    events.iter().filter_map(move |ev| {
        let data = ev.data.trim();
        if data.is_empty() || skip.contains(&data) {
            return None;
        }
        Some(serde_json::from_str(data).map_err(|e| {
            ModelError::Malformed(format!(
                "invalid JSON in the stream ({e}): {}",
                clip(data, 200)
            ))
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn sse_survives_any_chunking() {
        let body = b"event: a\r\ndata: {\"x\":1}\r\n\r\n: keep-alive\n\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        for split in 0..body.len() {
            let mut r = SseReader::default();
            let mut evs = r.push(&body[..split]);
            evs.extend(r.push(&body[split..]));
            evs.extend(r.finish());
            assert_eq!(
                data(&evs),
                ["{\"x\":1}", "one\ntwo", "[DONE]"],
                "split at {split}"
            );
            assert_eq!(evs[0].event.as_deref(), Some("a"));
        }
        let mut r = SseReader::default();
        let mut evs = r.push(b"data: last");
        evs.extend(r.finish());
        assert_eq!(data(&evs), ["last"]);
    }

    #[test]
    fn json_events_skip_blanks_and_markers() {
        let ev = |d: &str| SseEvent {
            event: None,
            data: d.to_string(),
        };
        let events = [ev("{\"a\":1}"), ev("  "), ev("[DONE]"), ev("{\"b\":2}")];
        let got: Vec<Value> = json_events(&events, &["[DONE]"])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            got,
            [serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
        let err = json_events(&events, &[]).find_map(Result::err).unwrap();
        assert!(
            matches!(&err, ModelError::Malformed(m) if m.contains("[DONE]")),
            "{err:?}"
        );
    }
}

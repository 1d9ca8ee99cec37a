//! A scripted provider endpoint on 127.0.0.1 for the model backends' own tests: it answers each
//! request with the next scripted [`Reply`], whatever the request says, and keeps every request
//! (headers and JSON body) for the test to look at.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use futures::StreamExt;
use serde_json::Value;

/// What the endpoint answers to one request.
#[derive(Clone)]
pub enum Reply {
    /// Status, extra headers, body (sent as JSON).
    Json(u16, Vec<(&'static str, &'static str)>, String),
    /// An event stream sent in these pieces.
    Sse(Vec<String>),
    /// An event stream whose connection breaks after these pieces.
    Truncated(Vec<String>),
    /// Answers `{}` only after this long.
    Slow(Duration),
    /// An event stream that sends this piece every 50 ms and never ends; `ended` is set when
    /// the client hangs up (the stream is dropped).
    Endless(String, Arc<std::sync::atomic::AtomicBool>),
}

/// The endpoint's memory: the requests it received, and the replies it has still to give.
#[derive(Clone)]
pub struct Script {
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
}

impl Script {
    /// Serves `replies` in order at `route` (e.g. `/v1/chat/completions`); returns
    /// `http://127.0.0.1:PORT` and the script. Past the last reply it answers HTTP 500.
    pub async fn serve(route: &str, replies: Vec<Reply>) -> (String, Script) {
        let script = Script {
            received: Arc::default(),
            replies: Arc::new(Mutex::new(replies.into())),
        };
        let app = Router::new()
            .route(route, post(answer))
            .with_state(script.clone());
        let (origin, _) = super::serve(app).await;
        (origin, script)
    }

    /// The JSON bodies received, in order.
    pub fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The headers of the `i`th request.
    pub fn headers(&self, i: usize) -> HeaderMap {
        self.received.lock().unwrap()[i].0.clone()
    }
}

async fn answer(State(script): State<Script>, headers: HeaderMap, body: Bytes) -> Response {
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    script.received.lock().unwrap().push((headers, json));
    let reply = script.replies.lock().unwrap().pop_front();
    match reply {
        Some(Reply::Json(status, extra, body)) => {
            let mut r = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            for (k, v) in extra {
                r = r.header(k, v);
            }
            r.body(Body::from(body)).unwrap()
        }
        Some(Reply::Sse(pieces)) => stream(pieces, false),
        Some(Reply::Truncated(pieces)) => stream(pieces, true),
        Some(Reply::Endless(piece, ended)) => endless(piece, ended),
        Some(Reply::Slow(d)) => {
            tokio::time::sleep(d).await;
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::from("{}"))
                .unwrap()
        }
        None => Response::builder()
            .status(500)
            .body(Body::from("no reply scripted"))
            .unwrap(),
    }
}

/// An event stream of `pieces`; with `cut`, the connection then breaks.
fn stream(pieces: Vec<String>, cut: bool) -> Response {
    let items = pieces
        .into_iter()
        .map(|p| Ok::<_, std::io::Error>(Bytes::from(p)));
    // The break comes a little later, so that the head and the first pieces are out.
    let tail = futures::stream::once(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(std::io::Error::other("connection lost"))
    })
    .filter(move |_| futures::future::ready(cut));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(futures::stream::iter(items).chain(tail)))
        .unwrap()
}

/// Sets its flag when dropped: the response body it lives in was abandoned.
struct OnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `piece` every 50 ms, forever, until the client goes away.
fn endless(piece: String, ended: Arc<std::sync::atomic::AtomicBool>) -> Response {
    let guard = Arc::new(OnDrop(ended));
    let body = futures::stream::unfold((piece, guard), |(piece, guard)| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Some((
            Ok::<_, std::io::Error>(Bytes::from(piece.clone())),
            (piece, guard),
        ))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap()
}

/// A chat request for `model` with these messages and nothing else set.
pub fn chat_request(model: &str, messages: Vec<nlah::model::Message>) -> nlah::model::ChatRequest {
    nlah::model::ChatRequest {
        model: model.into(),
        messages,
        tools: vec![],
        tool_choice: nlah::model::ToolChoice::Auto,
        max_tokens: None,
        temperature: None,
        seed: None,
        trace: None,
    }
}

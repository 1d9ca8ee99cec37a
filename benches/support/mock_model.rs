//! The mock model the benchmarks run against: an OpenAI-compatible chat endpoint on loopback that
//! answers every call after a fixed latency, on its own thread and runtime — a server elsewhere
//! that shares this machine's cores but not nlah's scheduler.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

/// What the mock answers: text, and maybe one tool call (name, JSON arguments).
pub type Answer = (String, Option<(String, String)>);

/// The request fields the mock reads; the rest of the body is skipped, not parsed.
#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    messages: Vec<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

/// The child id the engine names in a child's task ("# Child task: <id> …").
pub fn child_of(task: &str) -> String {
    task.split("# Child task: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("")
        .to_string()
}

/// Starts the server; returns its base URL. `answer` gets the number of assistant messages so
/// far (the turn) and the child id.
pub fn serve(
    latency: Duration,
    answer: impl Fn(usize, &str) -> Answer + Clone + Send + Sync + 'static,
) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: gettid takes nothing and cannot fail.
        MOCK_TID.store(unsafe { libc::gettid() }, Ordering::Relaxed);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let app = Router::new().route(
                "/v1/chat/completions",
                post(move |body: Bytes| async move {
                    sleep_exactly(latency).await;
                    let req: Request = serde_json::from_slice(&body).expect("a chat request");
                    let task = req
                        .messages
                        .iter()
                        .find(|m| m.role == "user")
                        .and_then(|m| m.content.as_deref())
                        .unwrap_or("");
                    let turn = req.messages.iter().filter(|m| m.role == "assistant").count();
                    let (text, call) = answer(turn, &child_of(task));
                    let mut message = json!({"role": "assistant", "content": text});
                    if let Some((name, args)) = call {
                        message["tool_calls"] = json!([{"id": format!("c{turn}"), "type": "function", "function": {"name": name, "arguments": args}}]);
                    }
                    axum::Json(json!({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": {"prompt_tokens": 100, "completion_tokens": 10}}))
                }),
            );
            let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tx.send(format!("http://{addr}/v1")).expect("send");
            axum::serve(listener, app).await
        })
    });
    rx.recv().expect("the mock server's address")
}

/// The thread the last server started runs on (its runtime is single-threaded).
static MOCK_TID: AtomicI32 = AtomicI32::new(0);

/// CPU seconds the mock server's thread has used so far (0 when unknown): a benchmark of the
/// same process subtracts it, since the model's server is not part of what nlah costs.
#[allow(dead_code)]
pub fn cpu_seconds() -> f64 {
    let tid = MOCK_TID.load(Ordering::Relaxed);
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

/// Waits `d` on the kernel's high-resolution timer (a timerfd). tokio's timer counts whole
/// milliseconds and rounds up, so its 200 ms are 201 to 202: time the benchmarks would count as
/// nlah's, since their ideal is the stated latency.
async fn sleep_exactly(d: Duration) {
    // SAFETY: timerfd_create takes flags and returns a new descriptor or -1.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    assert!(
        fd >= 0,
        "timerfd_create: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a descriptor just made, owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        },
    };
    // SAFETY: a valid timerfd, a filled itimerspec, no old value asked for.
    let set = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    assert_eq!(
        set,
        0,
        "timerfd_settime: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the OwnedFd keeps the descriptor open and unchanged for as long as the AsyncFd
    // that owns it.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }
    .expect("a timerfd in the runtime's poller");
    // Readable once the timer has fired; the count it holds is not needed.
    let _ = fd.readable().await.expect("the timerfd fires");
}

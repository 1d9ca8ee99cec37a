//! The routes: the embedded page and the JSON endpoints, each answered off the async workers
//! (they read files and git objects).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State as Ext};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{Kind, Reporter, RunCache, Target, ViewError, assets, harness, matrix, run};

#[derive(Clone)]
struct State {
    target: Arc<Target>,
    report: Reporter,
    runs: Arc<RunCache>,
    matrix: Arc<matrix::MatrixCache>,
}

type Params = Query<HashMap<String, String>>;

/// The whole application for one target.
pub fn router(target: Target, report: Reporter) -> axum::Router {
    let state = State {
        target: Arc::new(target),
        report,
        runs: Arc::new(RunCache::default()),
        matrix: Arc::new(matrix::MatrixCache::default()),
    };
    axum::Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", assets::INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", assets::SCRIPT) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", assets::STYLE) }),
        )
        .route("/api/target", get(target_info))
        .route("/api/matrix", get(matrix_summary))
        .route("/api/cells", get(cells))
        .route("/report.html", get(report_page))
        .route("/api/run/{id}", get(run_summary))
        .route("/api/run/{id}/events", get(run_events))
        .route("/api/run/{id}/child/{child}", get(run_child))
        .route("/api/run/{id}/commits", get(run_commits))
        .route("/api/run/{id}/commit/{oid}", get(run_commit))
        .route("/api/diff", get(runs_diff))
        .route("/api/harness", get(harness_composed))
        .route("/api/harness/log", get(harness_log))
        .route("/api/harness/diff", get(harness_diff))
        .fallback(|| async {
            ViewError::NotFound("no such page or endpoint".into()).into_response()
        })
        .layer(axum::middleware::from_fn(local_only))
        .with_state(state)
}

/// Answers only requests addressed to loopback by name: a page elsewhere whose name was made to
/// resolve to 127.0.0.1 (DNS rebinding) gets nothing.
async fn local_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
    if matches!(name, "127.0.0.1" | "localhost") {
        return next.run(req).await;
    }
    let body = json!({ "error": format!("host `{host}` is not this computer's loopback; open the address nlah view printed") });
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Runs `f` on a blocking thread; an error is answered as JSON and reported.
async fn answer<F>(st: &State, what: String, f: F) -> Response
where
    F: FnOnce() -> Result<Value, ViewError> + Send + 'static,
{
    let e = match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => return Json(v).into_response(),
        Ok(Err(e)) => e,
        Err(join) => ViewError::BadRequest(format!("the request failed: {join}")),
    };
    (st.report)(format!("{what}: {e}"));
    e.into_response()
}

fn need_kind(t: &Target, kind: Kind) -> Result<(), ViewError> {
    if t.kind == kind {
        Ok(())
    } else {
        Err(ViewError::NotFound(format!(
            "this server shows {}, not {}",
            name(t.kind),
            name(kind)
        )))
    }
}

fn name(k: Kind) -> &'static str {
    match k {
        Kind::Matrix => "a matrix",
        Kind::Runs => "runs",
        Kind::Harness => "a harness",
    }
}

/// A run's folder from its id in the URL: a cell id of the matrix, or the position of a run
/// given on the command line. Nothing outside the target is reachable.
fn run_path(t: &Target, id: &str) -> Result<PathBuf, ViewError> {
    let unknown = || ViewError::NotFound(format!("no run `{id}` here"));
    match t.kind {
        Kind::Matrix => {
            let plain = !id.is_empty()
                && !id.starts_with('.')
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
            if !plain {
                return Err(unknown());
            }
            let p = t.root.join("cells").join(id);
            if p.is_dir() {
                Ok(p)
            } else {
                Err(ViewError::NotFound(format!(
                    "no run `{id}` here: no cell folder by that name (not a cell, or not started yet)"
                )))
            }
        }
        Kind::Runs => id
            .parse::<usize>()
            .ok()
            .and_then(|i| t.runs.get(i).cloned())
            .ok_or_else(unknown),
        Kind::Harness => Err(unknown()),
    }
}

fn num(q: &HashMap<String, String>, key: &str, default: usize) -> Result<usize, ViewError> {
    match q.get(key).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ViewError::BadRequest(format!("`{key}`: not a number: {v}"))),
    }
}

/// Paging: at most 1,000 rows per request.
fn page(q: &HashMap<String, String>) -> Result<(usize, usize), ViewError> {
    Ok((num(q, "offset", 0)?, num(q, "limit", 100)?.clamp(1, 1000)))
}

fn list(q: &HashMap<String, String>, key: &str) -> Vec<String> {
    q.get(key)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

async fn target_info(Ext(st): Ext<State>) -> Response {
    let t = &st.target;
    Json(json!({
        "kind": t.kind,
        "path": t.root.display().to_string(),
        "runs": t.runs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn matrix_summary(Ext(st): Ext<State>) -> Response {
    let (t, cache) = (st.target.clone(), st.matrix.clone());
    answer(&st, "matrix".into(), move || {
        need_kind(&t, Kind::Matrix)?;
        matrix::summary(&cache, &t.root)
    })
    .await
}

async fn cells(Ext(st): Ext<State>, Query(q): Params) -> Response {
    let (t, cache) = (st.target.clone(), st.matrix.clone());
    answer(&st, "cells".into(), move || {
        need_kind(&t, Kind::Matrix)?;
        let (offset, limit) = page(&q)?;
        let f = matrix::Filter {
            variant: q.get("variant").cloned().filter(|s| !s.is_empty()),
            task: q.get("task").cloned().filter(|s| !s.is_empty()),
            model: q.get("model").cloned().filter(|s| !s.is_empty()),
            seed: match q.get("seed").filter(|s| !s.is_empty()) {
                Some(s) => Some(
                    s.parse()
                        .map_err(|_| ViewError::BadRequest(format!("`seed`: not a number: {s}")))?,
                ),
                None => None,
            },
            outcome: q.get("outcome").cloned().filter(|s| !s.is_empty()),
        };
        matrix::cells(&cache, &t.root, &f, offset, limit)
    })
    .await
}

async fn report_page(Ext(st): Ext<State>) -> Response {
    let t = st.target.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<String, ViewError> {
        need_kind(&t, Kind::Matrix)?;
        matrix::report_html(&t.root)
    })
    .await;
    let e = match made {
        Ok(Ok(html)) => return asset_owned(html),
        Ok(Err(e)) => e,
        Err(join) => ViewError::BadRequest(format!("the report failed: {join}")),
    };
    (st.report)(format!("report: {e}"));
    let body = format!(
        "<!doctype html><meta charset=utf-8><p class=error>No report: {}</p>",
        escape(&e.to_string())
    );
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn asset_owned(html: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn run_summary(Ext(st): Ext<State>, UrlPath(id): UrlPath<String>) -> Response {
    let (t, cache) = (st.target.clone(), st.runs.clone());
    answer(&st, format!("run {id}"), move || {
        let p = run_path(&t, &id)?;
        run::summary(&cache, &p)
    })
    .await
}

async fn run_events(
    Ext(st): Ext<State>,
    UrlPath(id): UrlPath<String>,
    Query(q): Params,
) -> Response {
    let (t, cache) = (st.target.clone(), st.runs.clone());
    answer(&st, format!("run {id}: events"), move || {
        let p = run_path(&t, &id)?;
        let (offset, limit) = page(&q)?;
        let f = run::EventFilter {
            kinds: list(&q, "kind"),
            child: q.get("child").cloned().filter(|s| !s.is_empty()),
        };
        run::events(&cache, &p, &f, offset, limit)
    })
    .await
}

async fn run_child(
    Ext(st): Ext<State>,
    UrlPath((id, child)): UrlPath<(String, String)>,
) -> Response {
    let (t, cache) = (st.target.clone(), st.runs.clone());
    answer(&st, format!("run {id}: child {child}"), move || {
        let p = run_path(&t, &id)?;
        run::child(&cache, &p, &child)
    })
    .await
}

async fn run_commits(
    Ext(st): Ext<State>,
    UrlPath(id): UrlPath<String>,
    Query(q): Params,
) -> Response {
    let t = st.target.clone();
    answer(&st, format!("run {id}: commits"), move || {
        let p = run_path(&t, &id)?;
        let (offset, limit) = page(&q)?;
        run::commits(&p, offset, limit)
    })
    .await
}

async fn run_commit(
    Ext(st): Ext<State>,
    UrlPath((id, oid)): UrlPath<(String, String)>,
) -> Response {
    let t = st.target.clone();
    answer(&st, format!("run {id}: commit {oid}"), move || {
        let p = run_path(&t, &id)?;
        run::commit(&p, &oid)
    })
    .await
}

async fn runs_diff(Ext(st): Ext<State>, Query(q): Params) -> Response {
    let t = st.target.clone();
    answer(&st, "diff".into(), move || {
        let (Some(a), Some(b)) = (q.get("a"), q.get("b")) else {
            return Err(ViewError::BadRequest("give two runs: ?a=RUN&b=RUN".into()));
        };
        let (pa, pb) = (run_path(&t, a)?, run_path(&t, b)?);
        let d = crate::versions::run_diff::diff(&pa, &pb)?;
        Ok(json!({ "a": a, "b": b, "diff": d }))
    })
    .await
}

fn toggles(q: &HashMap<String, String>) -> crate::harness::Toggles {
    crate::harness::Toggles {
        with: list(q, "with"),
        without: list(q, "without"),
    }
}

async fn harness_composed(Ext(st): Ext<State>, Query(q): Params) -> Response {
    let t = st.target.clone();
    answer(&st, "harness".into(), move || {
        need_kind(&t, Kind::Harness)?;
        harness::composed(&t.root, &toggles(&q))
    })
    .await
}

async fn harness_log(Ext(st): Ext<State>, Query(q): Params) -> Response {
    let t = st.target.clone();
    answer(&st, "harness versions".into(), move || {
        need_kind(&t, Kind::Harness)?;
        harness::log(&t.root, &toggles(&q))
    })
    .await
}

async fn harness_diff(Ext(st): Ext<State>, Query(q): Params) -> Response {
    let t = st.target.clone();
    answer(&st, "harness diff".into(), move || {
        need_kind(&t, Kind::Harness)?;
        let (Some(a), Some(b)) = (q.get("a"), q.get("b")) else {
            return Err(ViewError::BadRequest(
                "give two revisions: ?a=REV&b=REV".into(),
            ));
        };
        harness::diff(&t.root, a, b, &toggles(&q))
    })
    .await
}

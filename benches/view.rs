//! `nlah view` on large records: a matrix of 10,000 cells (5 variants × 100 tasks × 2 models ×
//! 10 seeds, tests/fixtures/report/build.rs) and a run of 10,000 events (50 stages × 4
//! children × 24 tool calls, each child with its transcript, one workspace commit per child).
//!
//! Measured: the time from the first request to the first page's data, as the page asks for
//! it (the target, then the matrix's summary and its first 50 cells; or the run's header, then
//! its first 200 events and first 100 commits), over HTTP on 127.0.0.1 against the library's
//! server, a fresh server (empty run cache) for every sample; the matrix with its index cold
//! (deleted before each sample: every run.json read again) and warm. Also a later page of
//! events from a warm server, and the report frame. Target: under one second.
//! Run: `cargo bench --bench view`.
//!
//! Measured (release, 2 shared cores, load average 2.6, files in the page cache), medians of 9:
//! matrix first page 353 ms with the index cold (min 324, max 458), 163 ms warm (135–222); run
//! first page 57 ms (51–74); a later page of 200 events 15 ms; a child's transcript 0.6 ms;
//! the report frame 88 ms.

#[path = "../tests/fixtures/report/build.rs"]
mod build;
#[path = "support/stats.rs"]
mod stats;

use stats::median_min_max as stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nlah::record::{ChildStatus, Event, EventKind, Usage};
use nlah::view::{self, Kind, Target};

const ITERATIONS: usize = 9;
const TARGET: Duration = Duration::from_secs(1);

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A run workspace with `stages × children × calls` tool calls and their surroundings.
fn big_run(ws: &Path, record: &Path, stages: usize, children: usize, calls: usize) -> Res<usize> {
    std::fs::create_dir_all(ws.join("history"))?;
    std::fs::copy(record, ws.join("run.json"))?;
    let repo = git2::Repository::init(ws)?;
    let sig = git2::Signature::new("nlah", "nlah@localhost", &git2::Time::new(1_767_225_600, 0))?;
    let mut parent: Option<git2::Oid> = None;
    let mut events = Vec::new();
    let mut seq = 0u64;
    let mut push = |kind: EventKind, events: &mut Vec<Event>| {
        seq += 1;
        let s = seq;
        events.push(Event {
            seq: s,
            t: format!(
                "2026-01-01T00:{:02}:{:02}.{:03}Z",
                s / 60_000 % 60,
                s / 1000 % 60,
                s % 1000
            ),
            kind,
        });
    };
    push(
        EventKind::RunStarted {
            run_id: "big".into(),
            harness: "swe".into(),
            version: "0".repeat(64),
            modules: vec!["verifier".into()],
            model: "openai:gpt-5.4".into(),
            seed: 0,
            task: "django-11000".into(),
            sandbox: "landlock".into(),
        },
        &mut events,
    );
    let usage = Usage {
        input_tokens: 1200,
        output_tokens: 80,
        calls: 1,
        ..Usage::default()
    };
    for s in 0..stages {
        let stage = format!("stage-{s}");
        push(
            EventKind::StageStarted {
                stage: stage.clone(),
                attempt: 1,
            },
            &mut events,
        );
        for c in 0..children {
            let child = format!("{stage}-{c}");
            push(
                EventKind::ChildStarted {
                    child: child.clone(),
                    stage: stage.clone(),
                    role: "executor".into(),
                    model: "openai:gpt-5.4".into(),
                },
                &mut events,
            );
            let mut transcript = String::new();
            for k in 0..calls {
                push(
                    EventKind::ModelCall {
                        child: child.clone(),
                        finish_reason: "tool_calls".into(),
                        tool_calls: 1,
                        usage,
                    },
                    &mut events,
                );
                push(
                    EventKind::ToolCall {
                        child: child.clone(),
                        tool: "shell".into(),
                        ok: k % 7 != 3,
                        exit_code: Some(i32::from(k % 7 == 3)),
                        duration_ms: 40,
                        summary: format!("shell {{\"command\":\"pytest tests/test_{k}.py -q\"}}"),
                    },
                    &mut events,
                );
                transcript.push_str(&serde_json::to_string(&serde_json::json!({
                    "type": "message",
                    "message": {"role": "assistant", "content": "", "tool_calls": [
                        {"id": format!("call_{k}"), "name": "shell", "arguments": format!("{{\"command\":\"pytest tests/test_{k}.py -q\"}}")}
                    ]}
                }))?);
                transcript.push('\n');
                transcript.push_str(&serde_json::to_string(&serde_json::json!({
                    "type": "message",
                    "message": {"role": "tool", "tool_call_id": format!("call_{k}"), "content": "1 passed in 0.02s"}
                }))?);
                transcript.push('\n');
            }
            push(
                EventKind::ChildFinished {
                    child: child.clone(),
                    status: ChildStatus::Done,
                    reason: String::new(),
                    usage,
                    tool_calls: calls as u64,
                },
                &mut events,
            );
            let dir = ws.join("children").join(&child);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("transcript.jsonl"), &transcript)?;
            std::fs::write(dir.join("RESPONSE.md"), "status: done\n\nDone.\n")?;
            // One commit per child: its report.
            let blob = repo.blob(format!("status: done\n\n{child} done.\n").as_bytes())?;
            let mut tb = repo.treebuilder(
                match parent {
                    Some(p) => Some(repo.find_commit(p)?.tree()?),
                    None => None,
                }
                .as_ref(),
            )?;
            tb.insert(format!("{child}.md"), blob, 0o100644)?;
            let tree = repo.find_tree(tb.write()?)?;
            let parents: Vec<git2::Commit> = parent
                .map(|p| repo.find_commit(p))
                .transpose()?
                .into_iter()
                .collect();
            let refs: Vec<&git2::Commit> = parents.iter().collect();
            parent = Some(repo.commit(
                Some("HEAD"),
                &sig,
                &sig,
                &format!("{child} finished"),
                &tree,
                &refs,
            )?);
        }
        push(
            EventKind::GatePassed {
                stage: stage.clone(),
                child: format!("{stage}-0"),
                gate: "tests pass".into(),
            },
            &mut events,
        );
        push(
            EventKind::StageFinished {
                stage,
                attempt: 1,
                passed: true,
                reason: String::new(),
                usage,
            },
            &mut events,
        );
    }
    let mut text = String::new();
    for e in &events {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    std::fs::write(ws.join("history/events.jsonl"), text)?;
    Ok(events.len())
}

/// A fresh server for `target` on 127.0.0.1; its address.
async fn serve(target: Target) -> Res<String> {
    let listener = view::bind(0).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(view::serve(listener, target, Arc::new(|_| {})));
    Ok(url)
}

async fn get(client: &reqwest::Client, url: String) -> Res<usize> {
    let r = client.get(&url).send().await?;
    if !r.status().is_success() {
        return Err(format!("{url}: {}", r.status()).into());
    }
    Ok(r.bytes().await?.len())
}

async fn matrix_first_page(client: &reqwest::Client, base: &str) -> Res<usize> {
    let mut n = get(client, format!("{base}/api/target")).await?;
    n += get(client, format!("{base}/api/matrix")).await?;
    n += get(client, format!("{base}/api/cells?offset=0&limit=50")).await?;
    Ok(n)
}

async fn run_first_page(client: &reqwest::Client, base: &str) -> Res<usize> {
    let mut n = get(client, format!("{base}/api/target")).await?;
    n += get(client, format!("{base}/api/run/0")).await?;
    let (a, b) = tokio::join!(
        get(
            client,
            format!("{base}/api/run/0/events?offset=0&limit=200")
        ),
        get(
            client,
            format!("{base}/api/run/0/commits?offset=0&limit=100")
        )
    );
    Ok(n + a? + b?)
}

fn main() -> Res<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let start = Instant::now();
    let m = build::paperlike(&out, 5, 100, 2, 10)?;
    let record = out.join("cells").join(&m.cells[0].id).join("run.json");
    let ws: PathBuf = dir.path().join("run");
    let n_events = big_run(&ws, &record, 50, 4, 24)?;
    println!(
        "wrote a matrix of {} cells and a run of {n_events} events in {:.1} s",
        m.cells.len(),
        start.elapsed().as_secs_f64()
    );
    let client = reqwest::Client::new();
    let matrix = Target {
        kind: Kind::Matrix,
        root: out.clone(),
        runs: Vec::new(),
    };
    let run = Target {
        kind: Kind::Runs,
        root: ws.clone(),
        runs: vec![ws.clone()],
    };
    let mut verdicts = Vec::new();

    let mut sample = |name: &str, before: &dyn Fn(), target: &Target, first: bool| -> Res<()> {
        let mut samples = Vec::new();
        let mut bytes = 0;
        for _ in 0..ITERATIONS {
            before();
            let base = rt.block_on(serve(target.clone()))?;
            let t = Instant::now();
            bytes = rt.block_on(async {
                if target.kind == Kind::Matrix {
                    matrix_first_page(&client, &base).await
                } else {
                    run_first_page(&client, &base).await
                }
            })?;
            samples.push(t.elapsed());
        }
        let (median, text) = stats(samples);
        println!("{name}: {text}, {bytes} bytes");
        if first {
            verdicts.push((name.to_string(), median));
        }
        Ok(())
    };
    let index = out.join("index.sqlite");
    let drop_index = || {
        let _ = std::fs::remove_file(&index);
        let _ = std::fs::remove_file(out.join("index.sqlite-journal"));
    };
    sample(
        "matrix of 10,000 cells, first page, cold index",
        &drop_index,
        &matrix,
        true,
    )?;
    sample(
        "matrix of 10,000 cells, first page, warm index",
        &|| {},
        &matrix,
        true,
    )?;
    sample(
        "run of 10,000 events, first page, fresh server",
        &|| {},
        &run,
        true,
    )?;

    // Later pages from a server that has read the run once.
    let base = rt.block_on(serve(run.clone()))?;
    rt.block_on(run_first_page(&client, &base))?;
    let mut samples = Vec::new();
    for i in 0..ITERATIONS {
        let t = Instant::now();
        rt.block_on(get(
            &client,
            format!(
                "{base}/api/run/0/events?offset={}&limit=200",
                9000 + i * 100
            ),
        ))?;
        samples.push(t.elapsed());
    }
    println!(
        "run, a later page of 200 events (warm): {}",
        stats(samples).1
    );
    let mut samples = Vec::new();
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        rt.block_on(get(&client, format!("{base}/api/run/0/child/stage-49-3")))?;
        samples.push(t.elapsed());
    }
    println!("run, one child's transcript (warm): {}", stats(samples).1);

    let base = rt.block_on(serve(matrix.clone()))?;
    let mut samples = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        rt.block_on(get(&client, format!("{base}/report.html")))?;
        samples.push(t.elapsed());
    }
    println!(
        "matrix, the report frame (warm index): {}",
        stats(samples).1
    );

    let mut missed = false;
    for (what, median) in verdicts {
        let ok = median < TARGET;
        missed |= !ok;
        println!(
            "{what}: {} (target under {} s)",
            if ok { "meets" } else { "MISSES" },
            TARGET.as_secs()
        );
    }
    if missed {
        return Err("a first page took a second or more".into());
    }
    Ok(())
}

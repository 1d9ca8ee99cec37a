//! `nlah report` over 10,000 cells: 5 variants × 100 tasks × 2 models × 10 seeds, written as
//! synthetic `matrix.json` + `cells/<id>/run.json` files (tests/fixtures/report/build.rs).
//!
//! Times, each over several iterations (median, min, max):
//! - end to end through the binary, as a user runs it, with the ablation index
//!   (`OUT/index.sqlite`) warm, and cold (deleted before each run, so every run.json is read,
//!   parsed and indexed again);
//! - in-process: the report from index summaries, and from the files alone (no index);
//! - rendering alone, per format.
//!
//! Files are in the page cache (just written), as they are right after a matrix finishes.
//! Run: `cargo bench --bench report`.

#[path = "../tests/fixtures/report/build.rs"]
mod build;
#[path = "support/stats.rs"]
mod stats;

use stats::median_min_max as stats;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nlah::report::{self, Format};

const ITERATIONS: usize = 9;
const TARGET: Duration = Duration::from_secs(2);

fn time<T>(
    mut before: impl FnMut(),
    mut f: impl FnMut() -> Result<T, Box<dyn std::error::Error>>,
) -> Result<(Duration, String), Box<dyn std::error::Error>> {
    let mut samples = Vec::new();
    for _ in 0..ITERATIONS {
        before();
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed());
    }
    Ok(stats(samples))
}

fn run_binary(out: &Path, format: &str) -> Result<(), Box<dyn std::error::Error>> {
    let o = Command::new(env!("CARGO_BIN_EXE_nlah"))
        .args(["report", "--format", format])
        .arg(out)
        .output()?;
    if !o.status.success() || o.stdout.is_empty() {
        return Err(format!("nlah report failed: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let out = dir.path();
    let start = Instant::now();
    let m = build::paperlike(out, 5, 100, 2, 10)?;
    println!(
        "wrote {} cells ({} run.json files) in {:.1} s",
        m.cells.len(),
        m.cells.len(),
        start.elapsed().as_secs_f64()
    );
    let index = out.join("index.sqlite");
    let drop_index = || {
        let _ = std::fs::remove_file(&index);
        let _ = std::fs::remove_file(out.join("index.sqlite-journal"));
    };

    let mut verdicts = Vec::new();
    for format in ["md", "html"] {
        let (cold, text) = time(drop_index, || run_binary(out, format))?;
        println!(
            "`nlah report OUT --format {format}`, cold index (rebuilt from 10,000 files): {text}"
        );
        verdicts.push((format!("cold {format}"), cold));
        run_binary(out, format)?;
        let (warm, text) = time(|| {}, || run_binary(out, format))?;
        println!("`nlah report OUT --format {format}`, warm index: {text}");
        verdicts.push((format!("warm {format}"), warm));
    }

    let (_, text) = time(|| {}, || Ok(report::report(out, None)?))?;
    println!("in-process, index summaries + tables (warm): {text}");
    let (_, text) = time(
        || {},
        || {
            let (m, cells) = report::load_files(out)?;
            Ok(report::build(&m, &cells, None)?)
        },
    )?;
    println!("in-process, every run.json read and parsed, no index: {text}");
    let (_, text) = time(
        || {},
        || {
            let (m, cells) = report::load(out)?;
            Ok(report::build(&m, &cells, None)?)
        },
    )?;
    println!("in-process, full records through the index (warm): {text}");

    let r = report::report(out, None)?;
    for (name, format) in [
        ("md", Format::Markdown),
        ("csv", Format::Csv),
        ("json", Format::Json),
        ("html", Format::Html),
    ] {
        let (_, text) = time(|| {}, || Ok(report::render(&r, format)?))?;
        println!("render {name}: {text}");
    }

    for (what, median) in verdicts {
        println!(
            "{what}: {} (target under {} s)",
            if median < TARGET { "meets" } else { "MISSES" },
            TARGET.as_secs()
        );
    }
    Ok(())
}

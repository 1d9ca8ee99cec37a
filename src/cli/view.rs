//! `nlah view PATH [PATH] [--port N] [--no-open]`: a local, read-only web page for a matrix, a
//! run (or two side by side) or a harness.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::Context;
use nlah::view::{self, Kind, Reporter};

use super::exit;

#[derive(clap::Args)]
pub struct Args {
    /// An ablation output folder, a run workspace (two: side by side), or a harness folder.
    #[arg(required = true, num_args = 1..=2, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The port on 127.0.0.1 (default: a free one, printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Print the address only; do not open a browser.
    #[arg(long)]
    no_open: bool,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let target = match view::detect(&a.paths) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    for p in view::problems(&target) {
        eprintln!("warning: {p}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    rt.block_on(async move {
        let listener = view::bind(a.port)
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", a.port))?;
        let url = format!("http://{}/", listener.local_addr()?);
        let what = match target.kind {
            Kind::Matrix => "matrix",
            Kind::Runs if target.runs.len() > 1 => "two runs",
            Kind::Runs => "run",
            Kind::Harness => "harness",
        };
        println!(
            "nlah view: {url} ({what} {}); Ctrl-C stops",
            target.root.display()
        );
        let _ = std::io::stdout().flush();
        if !a.no_open {
            open(&url);
        }
        let report: Reporter = Arc::new(|m| eprintln!("nlah view: {m}"));
        tokio::select! {
            r = view::serve(listener, target, report) => r.context("serving the page")?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(exit::OK)
    })
}

/// Opens the page where there is a desktop to open it on; elsewhere the printed address does.
fn open(url: &str) {
    let desktop =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if !desktop && !cfg!(target_os = "macos") {
        eprintln!("nlah view: no desktop here; open {url} in a browser");
        return;
    }
    if Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_err()
    {
        eprintln!("nlah view: could not start {opener}; open {url} in a browser");
    }
}

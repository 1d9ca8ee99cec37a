//! The HTML report is self-contained, and it draws: rendered in headless Chromium (Debian's
//! `chromium`), its screenshot is not blank and its charts have colour, and the DOM holds the
//! SVG charts. The drawing test needs `/usr/bin/chromium`: ignored by default, it fails where
//! the browser is missing (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nlah::report::{self, Format};

use crate::support::outside::require_file;
use crate::support::report_build as build;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs Chromium headless on a file with one extra flag; kills it after two minutes.
fn chromium(page: &Path, profile: &Path, extra: &str) -> std::process::Output {
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--window-size=1200,900")
        .arg(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    // Reading stdout to the end while waiting: --dump-dom writes more than a pipe buffer holds.
    let reader = {
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut out, &mut v).ok();
            v
        })
    };
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = Vec::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_end(&mut e, &mut stderr).ok();
            }
            return std::process::Output {
                status,
                stdout: reader.join().unwrap(),
                stderr,
            };
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().ok();
            panic!("chromium did not finish in two minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

fn decode(path: &Path) -> Image {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "8-bit screenshot");
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Image {
        width: info.width as usize,
        height: info.height as usize,
        rgb,
    }
}

/// Saturated pixels: chart marks, not grey text or lines.
fn coloured(p: [u8; 3]) -> bool {
    let (max, min) = (*p.iter().max().unwrap(), *p.iter().min().unwrap());
    max - min > 60
}

fn work_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The page of a paper-like matrix: seven variants, 125 tasks, three seeds.
fn page() -> String {
    let out = tempfile::tempdir().unwrap();
    build::paperlike(out.path(), 7, 125, 1, 3).unwrap();
    let (m, cells) = report::load(out.path()).unwrap();
    let r = report::build(&m, &cells, None).unwrap();
    report::render(&r, Format::Html).unwrap()
}

#[test]
fn the_html_report_is_self_contained() {
    let html = page();
    for remote in [
        "http://",
        "https://",
        "<script src",
        "<link",
        "@import",
        "url(",
    ] {
        let hit = html
            .find(remote)
            .map(|i| &html[i.saturating_sub(80)..(i + 80).min(html.len())]);
        // The SVG namespace is an identifier, not a fetch.
        assert!(
            hit.is_none_or(|h| h.contains("xmlns=\"http://www.w3.org/2000/svg\"")),
            "the page reaches out: {hit:?}"
        );
    }
}

#[test]
#[ignore = "needs Chromium at /usr/bin/chromium; apt-get install chromium (.ci/run does)"]
fn the_html_report_draws_in_headless_chromium() {
    require_file(CHROMIUM, "headless Chromium (Debian's `chromium` package)");
    let html = page();
    let dir = work_dir();
    let page = dir.join("report.html");
    std::fs::write(&page, &html).unwrap();
    let png = dir.join("report.png");
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();

    let shot = chromium(
        &page,
        profile.path(),
        &format!("--screenshot={}", png.display()),
    );
    assert!(
        png.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let img = decode(&png);
    assert_eq!((img.width, img.height), (1200, 900));

    // Not blank: a good share of pixels differ from the background (the most common colour).
    let mut counts = std::collections::HashMap::new();
    for p in &img.rgb {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let (bg, _) = counts.iter().max_by_key(|(_, n)| **n).unwrap();
    let differing = img.rgb.iter().filter(|p| *p != bg).count();
    let share = differing as f64 / img.rgb.len() as f64;
    assert!(
        share > 0.15,
        "only {:.1}% of pixels differ from the background",
        share * 100.0
    );

    // The charts sit side by side below the header: each half of that band has coloured marks.
    let band = |x0: usize, x1: usize| {
        let mut n = 0;
        for y in 150..img.height.min(650) {
            for x in x0..x1 {
                n += usize::from(coloured(img.rgb[y * img.width + x]));
            }
        }
        n
    };
    let (left, right) = (band(0, 600), band(600, 1200));
    assert!(left > 500, "the scatter has {left} coloured pixels");
    assert!(right > 2000, "the Δ bars have {right} coloured pixels");

    // The DOM after layout holds both charts with one mark per variant.
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(&page, profile.path(), "--dump-dom");
    let dom = String::from_utf8(dom.stdout).unwrap();
    assert!(
        dom.contains("<svg class=\"scatter\""),
        "no scatter in the DOM"
    );
    assert!(
        dom.contains("<svg class=\"delta-bars\""),
        "no Δ bars in the DOM"
    );
    assert_eq!(dom.matches("class=\"point\"").count(), 7);
    assert_eq!(dom.matches("class=\"bar\"").count(), 6);
    assert!(dom.contains("Flips versus"));
}

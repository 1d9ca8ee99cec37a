//! The report as one self-contained HTML page: inline CSS, charts drawn as inline SVG here (no
//! script, no network), then the same tables as the Markdown.

use std::fmt::Write as _;

use super::fmt::{self, human};
use super::markdown::{counts_sentence, method_sentences};
use super::table::{self, Table};
use super::{AblationReport, Group};

// Dark enough for label text on white; the labels take their point's colour.
const PALETTE: [&str; 10] = [
    "#1f77b4", "#e0700b", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#d6409f", "#0f95a8",
    "#7f7f12", "#5a6b7b",
];
const BASELINE_COLOR: &str = "#2f2f2f";
const GAIN: &str = "#3a9a5b";
const LOSS: &str = "#d1495b";

const CSS: &str = r#"
:root { --ink: #1f2430; --muted: #5d6472; --line: #e3e6ec; --card: #ffffff; --bg: #f5f6f8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 24px; margin: 0 0 6px; }
h2 { font-size: 18px; margin: 32px 0 12px; }
h3 { font-size: 15px; margin: 20px 0 8px; color: var(--muted); }
p { margin: 6px 0; }
.muted { color: var(--muted); font-size: 13.5px; }
code { background: #eceef2; padding: 1px 5px; border-radius: 4px; font-size: 13px; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; margin-bottom: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 14px 16px; }
.card h4 { margin: 0 0 6px; font-size: 14px; }
svg { display: block; width: 100%; height: auto; }
svg text { font-family: inherit; fill: var(--ink); }
svg .axis text, svg .tick { fill: var(--muted); font-size: 11px; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis-line { stroke: #9aa1ad; stroke-width: 1; }
svg .label { font-size: 12px; font-weight: 600; }
svg .halo { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
table { border-collapse: collapse; background: var(--card); border: 1px solid var(--line);
  font-size: 12.5px; min-width: 55%; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { background: #f0f2f5; font-weight: 600; text-align: left; white-space: normal;
  vertical-align: bottom; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: none; }
tr.baseline td { background: #fafbfc; font-weight: 600; }
.table-wrap { overflow-x: auto; }
ul.flips { padding-left: 20px; }
ul.flips li { margin: 4px 0; }
.gain { color: #2c7a47; } .loss { color: #b3303f; }
"#;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Inline `code` spans of the method sentences, as HTML.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(s).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn html_table(t: &Table, baseline_col0: Option<&str>) -> String {
    let mut s = String::from("<div class=\"table-wrap\"><table>\n<thead><tr>");
    for (h, &r) in t.header.iter().zip(&t.right) {
        let _ = write!(
            s,
            "<th{}>{}</th>",
            if r { " class=\"num\"" } else { "" },
            esc(h)
        );
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        let is_base = baseline_col0.is_some_and(|b| row.first().is_some_and(|c| c == b));
        s.push_str(if is_base {
            "<tr class=\"baseline\">"
        } else {
            "<tr>"
        });
        for (c, &r) in row.iter().zip(&t.right) {
            let _ = write!(
                s,
                "<td{}>{}</td>",
                if r { " class=\"num\"" } else { "" },
                esc(c)
            );
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table></div>\n");
    s
}

/// About five round ticks covering [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut v = Vec::new();
    let mut t = (lo / step).ceil() * step;
    // Bounded, in case rounding ever keeps `t` from passing `hi`.
    while t <= hi + step * 1e-9 && v.len() < 50 {
        v.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    v
}

/// A padded range around values, never empty.
fn padded(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON {
        let w = if lo.abs() > 0.0 { lo.abs() * 0.1 } else { 1.0 };
        return (lo - w, hi + w);
    }
    (lo - span * pad, hi + span * pad)
}

struct Point {
    name: String,
    x: f64,
    y: f64,
    y_lo: Option<f64>,
    y_hi: Option<f64>,
    color: &'static str,
}

/// The width of a label at 12px semi-bold, estimated (no font metrics without a browser).
fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * 7.4 + 2.0
}

fn overlap(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> f64 {
    let w = (a.2.min(b.2) - a.0.max(b.0)).max(0.0);
    let h = (a.3.min(b.3) - a.1.max(b.1)).max(0.0);
    w * h
}

/// Where each point's label goes: of eight spots around the point, the one that overlaps
/// earlier labels, the points and the plot's edges least (ties go to the earlier spot).
/// Returns (x, baseline y, text-anchor) per point.
fn place_labels(
    pts: &[(f64, f64, &str)],
    plot: (f64, f64, f64, f64),
) -> Vec<(f64, f64, &'static str)> {
    const SPOTS: [(f64, f64, &str); 8] = [
        (11.0, 4.0, "start"),
        (-11.0, 4.0, "end"),
        (0.0, -13.0, "middle"),
        (0.0, 22.0, "middle"),
        (8.0, -10.0, "start"),
        (-8.0, -10.0, "end"),
        (8.0, 19.0, "start"),
        (-8.0, 19.0, "end"),
    ];
    let dots: Vec<(f64, f64, f64, f64)> = pts
        .iter()
        .map(|&(x, y, _)| (x - 8.0, y - 8.0, x + 8.0, y + 8.0))
        .collect();
    // Crowded points first: they have the fewest good spots.
    let mut order: Vec<usize> = (0..pts.len()).collect();
    let crowd = |i: usize| {
        pts.iter()
            .filter(|q| (q.0 - pts[i].0).abs() < 120.0 && (q.1 - pts[i].1).abs() < 30.0)
            .count()
    };
    order.sort_by_key(|&i| std::cmp::Reverse(crowd(i)));
    let mut boxes: Vec<(f64, f64, f64, f64)> = Vec::new();
    let mut out = vec![(0.0, 0.0, "start"); pts.len()];
    for i in order {
        let (x, y, name) = pts[i];
        let w = text_width(name);
        let mut best = (f64::INFINITY, SPOTS[0], (0.0, 0.0, 0.0, 0.0));
        for (k, &(dx, dy, anchor)) in SPOTS.iter().enumerate() {
            let (tx, ty) = (x + dx, y + dy);
            let x0 = match anchor {
                "start" => tx,
                "end" => tx - w,
                _ => tx - w / 2.0,
            };
            let b = (x0, ty - 11.0, x0 + w, ty + 3.0);
            let outside = (plot.0 - b.0).max(0.0)
                + (b.2 - plot.2 - 20.0).max(0.0)
                + (plot.1 - b.1).max(0.0)
                + (b.3 - plot.3).max(0.0);
            let cost = boxes.iter().map(|o| overlap(b, *o)).sum::<f64>()
                + dots.iter().map(|d| overlap(b, *d)).sum::<f64>()
                + outside * 40.0
                + k as f64 * 0.5;
            if cost < best.0 {
                best = (cost, (tx, ty, anchor), b);
            }
        }
        boxes.push(best.2);
        out[i] = best.1;
    }
    out
}

/// Cost (or tokens) against Perf, one labelled point per variant.
fn scatter(report: &AblationReport, g: &Group) -> String {
    let cost = report.has_cost();
    let mut pts = Vec::new();
    let mut colors = PALETTE.iter().cycle();
    for r in &g.rows {
        let x = if cost { r.cost_usd } else { r.total_tokens };
        let color = if r.is_baseline {
            BASELINE_COLOR
        } else {
            colors.next().copied().unwrap_or(PALETTE[0])
        };
        if let (Some(x), Some(p)) = (x, r.perf) {
            pts.push(Point {
                name: r.variant.clone(),
                x: x.mean,
                y: p.mean,
                y_lo: p.lo,
                y_hi: p.hi,
                color,
            });
        }
    }
    let (w, h) = (520.0, 340.0);
    let (ml, mr, mt, mb) = (58.0, 22.0, 14.0, 46.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let fold =
        |f: fn(f64, f64) -> f64, init: f64, v: &mut dyn Iterator<Item = f64>| v.fold(init, f);
    let (x0, x1) = padded(
        fold(f64::min, f64::INFINITY, &mut pts.iter().map(|p| p.x)),
        fold(f64::max, f64::NEG_INFINITY, &mut pts.iter().map(|p| p.x)),
        0.12,
    );
    let (y0, y1) = padded(
        fold(
            f64::min,
            f64::INFINITY,
            &mut pts.iter().map(|p| p.y_lo.unwrap_or(p.y)),
        ),
        fold(
            f64::max,
            f64::NEG_INFINITY,
            &mut pts.iter().map(|p| p.y_hi.unwrap_or(p.y)),
        ),
        0.15,
    );
    let (x0, y0, y1) = (x0.max(0.0), y0.max(0.0), y1.min(100.0));
    let (y0, y1) = if y1 <= y0 { (0.0, 100.0) } else { (y0, y1) };
    let sx = |x: f64| ml + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| mt + ph - (y - y0) / (y1 - y0) * ph;
    let xlabel = if cost {
        "Mean cost per cell (USD)"
    } else {
        "Mean tokens per cell (prompt + completion)"
    };
    let fx = |v: f64| if cost { fmt::dollars(v) } else { human(v) };

    let mut s = format!(
        "<svg class=\"scatter\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Cost versus \
         performance per variant\" xmlns=\"http://www.w3.org/2000/svg\">\n"
    );
    s.push_str("<g class=\"axis\">\n");
    for t in ticks(y0, y1) {
        let y = sy(t);
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{ml}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            ml + pw,
            ml - 8.0,
            y + 4.0,
            fmt::fixed1(t).trim_end_matches(".0")
        );
    }
    for t in ticks(x0, x1) {
        let x = sx(t);
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{mt}\" y2=\"{:.1}\"/>\
             <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            mt + ph,
            mt + ph + 18.0,
            esc(&fx(t))
        );
    }
    let _ = writeln!(
        s,
        "<line class=\"axis-line\" x1=\"{ml}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
         <line class=\"axis-line\" x1=\"{ml}\" x2=\"{ml}\" y1=\"{mt}\" y2=\"{:.1}\"/>",
        ml + pw,
        mt + ph,
        mt + ph,
        mt + ph
    );
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{xlabel}</text>\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">Perf. \
         (resolved %)</text>",
        ml + pw / 2.0,
        h - 8.0,
        mt + ph / 2.0
    );
    s.push_str("</g>\n");

    // The baseline's Perf as a reference line.
    if let Some(b) = pts.iter().find(|p| p.color == BASELINE_COLOR) {
        let y = sy(b.y);
        let _ = writeln!(
            s,
            "<line x1=\"{ml}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{BASELINE_COLOR}\" \
             stroke-width=\"1\" stroke-dasharray=\"4 4\" opacity=\"0.5\"/>",
            ml + pw
        );
    }

    let labels = place_labels(
        &pts.iter()
            .map(|p| (sx(p.x), sy(p.y), p.name.as_str()))
            .collect::<Vec<_>>(),
        (ml, mt, ml + pw, mt + ph),
    );
    for (p, label) in pts.iter().zip(&labels) {
        let (px, py) = (sx(p.x), sy(p.y));
        s.push_str("<g class=\"variant\">");
        if let (Some(lo), Some(hi)) = (p.y_lo, p.y_hi) {
            let _ = write!(
                s,
                "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" \
                 stroke-width=\"1.5\" opacity=\"0.55\"/>",
                sy(lo.max(y0)),
                sy(hi.min(y1)),
                p.color
            );
        }
        let _ = write!(
            s,
            "<circle class=\"point\" cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"7\" fill=\"{}\" \
             stroke=\"#fff\" stroke-width=\"2\"><title>{}: {} at {}</title></circle>",
            p.color,
            esc(&p.name),
            fmt::fixed1(p.y),
            esc(&fx(p.x))
        );
        let _ = writeln!(
            s,
            "<text class=\"label halo\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{}\" \
             style=\"fill: {}\">{}</text></g>",
            label.0,
            label.1,
            label.2,
            p.color,
            esc(&p.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Δ Perf per variant against the baseline, as horizontal bars around zero.
fn delta_bars(g: &Group) -> String {
    let bars: Vec<(&str, f64, Option<f64>, Option<f64>)> = g
        .rows
        .iter()
        .filter(|r| !r.is_baseline)
        .filter_map(|r| r.delta.map(|d| (r.variant.as_str(), d.mean, d.lo, d.hi)))
        .collect();
    let longest = bars.iter().map(|b| text_width(b.0)).fold(60.0, f64::max);
    let (w, mr, mt, mb) = (520.0, 48.0, 14.0, 40.0);
    let ml = (longest + 16.0).min(250.0);
    // As tall as the scatter beside it while the bars fit; taller beyond nine variants.
    let n = bars.len().max(1) as f64;
    let row_h = ((340.0 - mt - mb) / n).clamp(22.0, 60.0);
    let h = (mt + mb + row_h * n).max(340.0);
    // Few bars sit in the middle of the plot rather than at its top.
    let top = mt + (h - mt - mb - row_h * n) / 2.0;
    let pw = w - ml - mr;
    let ext = bars
        .iter()
        .flat_map(|b| {
            [
                b.1.abs(),
                b.2.map_or(0.0, f64::abs),
                b.3.map_or(0.0, f64::abs),
            ]
        })
        .fold(1.0_f64, f64::max)
        * 1.1;
    let sx = |v: f64| ml + (v + ext) / (2.0 * ext) * pw;
    let mut s = format!(
        "<svg class=\"delta-bars\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Change in \
         Perf. versus the baseline per variant\" xmlns=\"http://www.w3.org/2000/svg\">\n<g class=\"axis\">\n"
    );
    let plot_bottom = h - mb;
    for t in ticks(-ext, ext) {
        let x = sx(t);
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{mt}\" y2=\"{plot_bottom:.1}\"/>\
             <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            plot_bottom + 16.0,
            fmt::delta(t)
        );
    }
    let _ = writeln!(
        s,
        "<line class=\"axis-line\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{mt}\" y2=\"{plot_bottom:.1}\"/>\
         <text x=\"{1:.1}\" y=\"{2:.1}\" text-anchor=\"middle\">Δ Perf. versus the baseline (points)</text>\n</g>",
        sx(0.0),
        ml + pw / 2.0,
        h - 6.0
    );
    if bars.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"tick\">no variant to \
             compare</text>",
            ml + pw / 2.0,
            mt + 30.0
        );
    }
    for (i, (name, d, lo, hi)) in bars.iter().enumerate() {
        let bh = (row_h * 0.6).min(22.0);
        let y = top + row_h * i as f64 + (row_h - bh) / 2.0;
        let (x_a, x_b) = (sx(0.0_f64.min(*d)), sx(0.0_f64.max(*d)));
        let color = if *d >= 0.0 { GAIN } else { LOSS };
        let _ = write!(
            s,
            "<g class=\"variant\"><text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" \
             text-anchor=\"end\">{}</text><rect class=\"bar\" x=\"{x_a:.1}\" y=\"{y:.1}\" \
             width=\"{:.1}\" height=\"{bh:.1}\" rx=\"3\" fill=\"{color}\"><title>{}: {}</title></rect>",
            ml - 10.0,
            y + bh / 2.0 + 4.0,
            esc(name),
            (x_b - x_a).max(1.5),
            esc(name),
            fmt::delta(*d)
        );
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let cy = y + bh / 2.0;
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{cy:.1}\" y2=\"{cy:.1}\" stroke=\"#1f2430\" \
                 stroke-width=\"1.2\" opacity=\"0.6\"/>",
                sx(*lo),
                sx(*hi)
            );
        }
        let (tx, anchor) = if *d >= 0.0 {
            (sx(hi.unwrap_or(*d).max(*d)) + 6.0, "start")
        } else {
            (sx(lo.unwrap_or(*d).min(*d)) - 6.0, "end")
        };
        let _ = writeln!(
            s,
            "<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" font-size=\"12\">{}</text></g>",
            y + bh / 2.0 + 4.0,
            fmt::delta(*d)
        );
    }
    s.push_str("</svg>\n");
    s
}

pub fn render(r: &AblationReport) -> String {
    let title = format!("Ablation report: {} ({})", r.harness, r.design);
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&title)
    );
    let _ = writeln!(s, "<h1>{}</h1>", esc(&title));
    let _ = writeln!(
        s,
        "<p>Baseline: <code>{}</code>. {}</p>",
        esc(&r.baseline),
        esc(&counts_sentence(&r.counts))
    );
    if let Some(spend) = &r.spend {
        let _ = writeln!(s, "<p>Spend: {}</p>", esc(&spend.sentence()));
    }
    for line in method_sentences(r) {
        let _ = writeln!(s, "<p class=\"muted\">{}</p>", inline(&line));
    }

    for g in &r.groups {
        if r.several_groups() {
            let _ = writeln!(s, "<h2>{}</h2>", esc(&table::group_label(g)));
        } else {
            s.push_str("<h2>Cost and performance</h2>\n");
        }
        s.push_str("<div class=\"charts\">\n<div class=\"card\"><h4>Cost versus Perf.</h4>\n");
        s.push_str(&scatter(r, g));
        s.push_str("</div>\n<div class=\"card\"><h4>Δ Perf. per variant</h4>\n");
        s.push_str(&delta_bars(g));
        s.push_str("</div>\n</div>\n");
        if r.several_groups() {
            s.push_str(&html_table(&table::main_table(r, g), Some(&r.baseline)));
        }
    }
    if let Some(g) = r.groups.first().filter(|_| !r.several_groups()) {
        s.push_str("<h2>Main table</h2>\n");
        s.push_str(&html_table(&table::main_table(r, g), Some(&r.baseline)));
    }

    if !r.episodes.is_empty() {
        let _ = writeln!(
            s,
            "<h2>Episodes</h2>\n<p class=\"muted\">{}</p>",
            esc(table::EPISODES_METHOD)
        );
        s.push_str(&html_table(&table::episode_table(r), None));
    }

    if r.groups.iter().map(|g| g.rows.len()).max().unwrap_or(0) > 1 {
        let _ = writeln!(
            s,
            "<h2>Module effects</h2>\n<p class=\"muted\">Perf. and Δ versus <code>{}</code>, in \
             points.</p>",
            esc(&r.baseline)
        );
        s.push_str(&html_table(&table::module_table(r), None));
    }

    s.push_str(
        "<h2>Parent versus children</h2>\n<p class=\"muted\">Shares of everything the finished \
         cells spent: the runtime-owned parent versus the delegated child agents.</p>\n",
    );
    s.push_str(&html_table(&table::share_table(&r.share), None));
    s.push_str("<h3>The parent's share by variant</h3>\n");
    s.push_str(&html_table(&table::share_by_variant(r), None));

    if r.groups.iter().any(|g| !g.flips.is_empty()) {
        let _ = writeln!(
            s,
            "<h2>Flips versus <code>{}</code></h2>\n<p class=\"muted\">Flips are {}. The McNemar \
             test is exact (two-sided binomial on the flipping tasks).</p>",
            esc(&r.baseline),
            esc(super::FLIP_RULE)
        );
        s.push_str(&html_table(&table::flip_table(r), None));
        s.push_str("<ul class=\"flips\">\n");
        for g in &r.groups {
            for f in &g.flips {
                let who = if r.several_groups() {
                    format!("{} ({})", esc(&f.variant), esc(&table::group_label(g)))
                } else {
                    esc(&f.variant)
                };
                let _ = write!(
                    s,
                    "<li><strong>{who}</strong>: {}",
                    esc(&table::flip_sentence(f))
                );
                if !f.gained_tasks.is_empty() {
                    let _ = write!(
                        s,
                        " <span class=\"gain\">Gain: {}.</span>",
                        esc(&f.gained_tasks.join(", "))
                    );
                }
                if !f.lost_tasks.is_empty() {
                    let _ = write!(
                        s,
                        " <span class=\"loss\">Lose: {}.</span>",
                        esc(&f.lost_tasks.join(", "))
                    );
                }
                s.push_str("</li>\n");
            }
        }
        s.push_str("</ul>\n");
    }
    if let Some(t) = &r.transfer {
        s.push_str("<h2>Transfer</h2>\n");
        for line in super::transfer::sentences(t) {
            let _ = writeln!(s, "<p class=\"muted\">{}</p>", inline(&line));
        }
        s.push_str(&html_table(&super::transfer::table(t), None));
    }
    if let Some(line) = super::transfer::other_folders_note(&r.other_folders) {
        let _ = writeln!(s, "<p class=\"muted\">{}</p>", inline(&line));
    }
    s.push_str("</main>\n</body>\n</html>\n");
    s
}

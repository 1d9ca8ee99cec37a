//! `nlah report`: statistics, number formatting, figures on synthetic output folders whose
//! answers are known by hand, and snapshots of the Markdown and CSV.

use std::path::Path;

use nlah::ablation::Cell;
use nlah::record::{RunOutcome, RunRecord};
use nlah::report::{self, AblationReport, Format, fmt, stats};

use crate::support::TestEnv;
use crate::support::report_build::{self as build, Spend};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// ---------------------------------------------------------------------------------------------
// Statistics.

#[test]
fn t_quantiles_come_from_the_table_then_the_normal_expansion() {
    assert_eq!(stats::t975(0), None);
    assert_eq!(stats::t975(1), Some(12.706_204_736));
    assert_eq!(stats::t975(2), Some(4.302_652_730));
    assert_eq!(stats::t975(9), Some(2.262_157_163));
    assert_eq!(stats::t975(30), Some(2.042_272_456));
    // Reference t_{0.975, df} beyond the table; the bare normal 1.96 would miss by 0.08 at 31.
    for (df, want) in [
        (31, 2.039_513_4),
        (40, 2.021_075_4),
        (60, 2.000_297_8),
        (120, 1.979_930_4),
        (1000, 1.962_339_1),
    ] {
        let got = stats::t975(df).unwrap();
        assert!(close(got, want, 2e-4), "df {df}: {got} vs {want}");
    }
    // Monotone across the seam between table and expansion.
    assert!(stats::t975(31).unwrap() < stats::t975(30).unwrap());
}

#[test]
fn means_and_t_intervals() {
    assert_eq!(stats::mean(&[]), None);
    assert_eq!(stats::mean(&[1.0, 2.0, 6.0]), Some(3.0));
    assert_eq!(stats::sample_sd(&[4.0]), None);
    // sd of [2, 4, 4, 4, 5, 5, 7, 9] with n − 1: sqrt(32 / 7).
    let sd = stats::sample_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
    assert!(close(sd, (32.0f64 / 7.0).sqrt(), 1e-12));
    // Two seeds at 50% and 25%: sd = 17.678, half-width = 12.706 · 17.678 / √2 = 12.706 · 12.5.
    let hw = stats::t_half_width(&[50.0, 25.0]).unwrap();
    assert!(close(hw, 12.706_204_736 * 12.5, 1e-9), "{hw}");
    // Five seeds: 10, 12, 14, 16, 18: sd = sqrt(10), t(4) = 2.776445105.
    let hw = stats::t_half_width(&[10.0, 12.0, 14.0, 16.0, 18.0]).unwrap();
    assert!(close(hw, 2.776_445_105 * 10f64.sqrt() / 5f64.sqrt(), 1e-9));
    assert_eq!(stats::t_half_width(&[3.0]), None);
    let e = stats::Estimate::new(40.0, &[50.0, 25.0]);
    assert_eq!(e.seeds, 2);
    assert!(close(e.lo.unwrap(), 40.0 - 158.827_559_2, 1e-6));
    let one = stats::Estimate::new(40.0, &[40.0]);
    assert_eq!((one.half_width, one.lo, one.hi), (None, None, None));
}

#[test]
fn mcnemar_exact_matches_the_binomial_by_hand() {
    // Reference values: 2 · Σ_{i ≤ min(b,c)} C(b+c, i) / 2^(b+c), capped at 1, computed with
    // exact integer arithmetic.
    for (b, c, want) in [
        (0, 0, 1.0),
        (1, 0, 1.0),
        (3, 3, 1.0),
        (5, 0, 0.0625),
        (0, 10, 0.001_953_125),
        (9, 6, 0.607_238_769_531_25),
        (12, 30, 0.007_915_897_334_896_727),
        (100, 50, 5.447_533_103_392_586e-5),
        (400, 350, 0.073_507_774_058_435_45),
        (2000, 1900, 0.112_893_652_259_348_89),
    ] {
        let got = stats::mcnemar_exact(b, c);
        assert!(
            (got - want).abs() <= 1e-9 * want.max(1e-300) + 1e-15,
            "b={b} c={c}: {got} vs {want}"
        );
        assert_eq!(got, stats::mcnemar_exact(c, b), "symmetric");
    }
    // Far in the tail the log-space sum stays exact: 2 · 2^-1000 = 2^-999.
    let tiny = stats::mcnemar_exact(0, 1000);
    let want = 2f64.powi(-999);
    assert!(((tiny - want) / want).abs() < 1e-9, "{tiny:e} vs {want:e}");
    // 20,000 discordant pairs split evenly: p = 1.
    assert_eq!(stats::mcnemar_exact(10_000, 10_000), 1.0);
}

// ---------------------------------------------------------------------------------------------
// Formatting.

#[test]
fn numbers_print_like_the_paper() {
    for (x, want) in [
        (16_300_000.0, "16.3M"),
        (211_000.0, "211k"),
        (13_600.0, "13.6k"),
        (137_000.0, "137k"),
        (1_200.0, "1.2k"),
        (642.6, "642.6"),
        (32.5, "32.5"),
        (0.0, "0.0"),
        (999.96, "1.0k"),
        (99_960.0, "100k"),
        (999_600.0, "1.0M"),
        (123_400_000.0, "123M"),
        (2_500_000_000.0, "2.5B"),
        (-0.04, "0.0"),
    ] {
        assert_eq!(fmt::human(x), want, "{x}");
    }
    assert_eq!(fmt::human_pm(16_300_000.0, 400_000.0), "16.3M ± 0.4M");
    assert_eq!(fmt::human_pm(211_000.0, 3_200.0), "211k ± 3.2k");
    for (d, want) in [
        (1.6, "+1.6"),
        (-0.8, "-0.8"),
        (0.0, "0.0"),
        (-0.04, "0.0"),
        (0.04, "0.0"),
        (4.8, "+4.8"),
        (-8.4, "-8.4"),
        (48.214, "+48.2"),
    ] {
        assert_eq!(fmt::delta(d), want, "{d}");
    }
}

// ---------------------------------------------------------------------------------------------
// Fixture A: one task set, one model, three variants, four tasks, two seeds.
//
//            seed 0         seed 1
//   basic    P P F F        P F F F        3/8 = 37.5
//   +verif   P P P F        P P P error    6/7 = 85.7   (t4 seed 1 is an infrastructure error)
//   +evolve  F P F F        F P F (none)   2/7 = 28.6   (t4 seed 1 has not run)

const VARIANTS_A: [(&str, &[&str]); 3] = [
    ("basic", &[]),
    ("+verifier", &["verifier"]),
    ("+self-evolution", &["self-evolution"]),
];

fn outcome_a(c: &Cell) -> Option<RunOutcome> {
    use RunOutcome::{Error, Failed as F, Passed as P};
    let t: usize = c.task[1..].parse().unwrap();
    let rows: [[[Option<RunOutcome>; 4]; 2]; 3] = [
        [
            [Some(P), Some(P), Some(F), Some(F)],
            [Some(P), Some(F), Some(F), Some(F)],
        ],
        [
            [Some(P), Some(P), Some(P), Some(F)],
            [Some(P), Some(P), Some(P), Some(Error)],
        ],
        [
            [Some(F), Some(P), Some(F), Some(F)],
            [Some(F), Some(P), Some(F), None],
        ],
    ];
    let v = VARIANTS_A
        .iter()
        .position(|(n, _)| *n == c.variant)
        .unwrap();
    rows[v][c.seed as usize][t - 1]
}

/// Variant v spends (v + 1) times basic's; seed 1 spends more prompt tokens, tool calls, time.
fn spend_a(c: &Cell) -> Spend {
    let v = VARIANTS_A
        .iter()
        .position(|(n, _)| *n == c.variant)
        .unwrap() as u64
        + 1;
    Spend {
        prompt: (1_000_000 + 200_000 * c.seed) * v,
        completion: 10_000 * v,
        tool_calls: 50 * v + 10 * c.seed,
        llm_calls: 40 * v,
        wall_ms: 60_000 * (c.seed + 1) * v,
        cost_usd: 0.0,
    }
}

fn fixture_a(out: &Path) {
    let tasks = [("swe", "t1"), ("swe", "t2"), ("swe", "t3"), ("swe", "t4")];
    let m = build::matrix(&VARIANTS_A, &tasks, &["mock:model"], 2, "basic");
    build::write(out, &m, |c| {
        outcome_a(c).map(|o| build::record(c, o, spend_a(c)))
    })
    .unwrap();
}

fn report_of(out: &Path, baseline: Option<&str>) -> AblationReport {
    let (m, cells) = report::load(out).unwrap();
    report::build(&m, &cells, baseline).unwrap()
}

#[test]
fn fixture_a_figures_are_the_hand_computed_ones() {
    let dir = tempfile::tempdir().unwrap();
    fixture_a(dir.path());
    let r = report_of(dir.path(), None);

    assert_eq!(r.baseline, "basic");
    assert_eq!(
        (
            r.counts.cells,
            r.counts.passed,
            r.counts.failed,
            r.counts.errors,
            r.counts.not_run
        ),
        (24, 11, 11, 1, 1)
    );
    assert_eq!(r.groups.len(), 1);
    let g = &r.groups[0];
    assert_eq!(
        (g.task_set.as_str(), g.model.as_str(), g.tasks),
        ("swe", "mock:model", 4)
    );
    let names: Vec<&str> = g.rows.iter().map(|r| r.variant.as_str()).collect();
    assert_eq!(names, ["basic", "+verifier", "+self-evolution"]);

    let [basic, verif, evolve] = [&g.rows[0], &g.rows[1], &g.rows[2]];
    let t1 = 12.706_204_736;

    // Perf and its interval over the per-seed rates 50% and 25%.
    let p = basic.perf.unwrap();
    assert!(close(p.mean, 37.5, 1e-12));
    assert!(close(p.half_width.unwrap(), t1 * 12.5, 1e-9));
    assert_eq!(p.seeds, 2);
    assert!(basic.delta.is_some_and(|d| d.mean == 0.0));

    // +verifier: 6 of 7 scored (the error is left out); per seed 3/4 and 3/3.
    let p = verif.perf.unwrap();
    assert!(close(p.mean, 600.0 / 7.0, 1e-9));
    assert!(close(p.half_width.unwrap(), t1 * 12.5, 1e-9));
    let d = verif.delta.unwrap();
    assert!(close(d.mean, 600.0 / 7.0 - 37.5, 1e-9));
    // Per-seed differences 25 and 75: sd 35.36, half-width t1 · 25.
    assert!(close(d.half_width.unwrap(), t1 * 25.0, 1e-9));
    assert_eq!(fmt::delta(d.mean), "+48.2");
    assert_eq!(verif.counts.errors, 1);
    assert_eq!(verif.counts.scored(), 7);

    // +self-evolution: 2 of 7 (one cell not run).
    let p = evolve.perf.unwrap();
    assert!(close(p.mean, 200.0 / 7.0, 1e-9));
    assert_eq!(fmt::delta(evolve.delta.unwrap().mean), "-8.9");
    assert_eq!(evolve.counts.not_run, 1);

    // Costs: per-cell means over finished cells, intervals over the per-seed means.
    let pt = basic.prompt_tokens.unwrap();
    assert!(close(pt.mean, 1_100_000.0, 1e-6));
    assert!(close(pt.half_width.unwrap(), t1 * 100_000.0, 1e-6));
    // +verifier: four cells at 2.0M (seed 0), three at 2.4M (seed 1).
    let pt = verif.prompt_tokens.unwrap();
    assert!(close(pt.mean, 15_200_000.0 / 7.0, 1e-6));
    assert!(close(pt.half_width.unwrap(), t1 * 200_000.0, 1e-6));
    assert!(close(basic.completion_tokens.unwrap().mean, 10_000.0, 1e-9));
    assert!(close(basic.tool_calls.unwrap().mean, 55.0, 1e-9));
    assert!(close(basic.llm_calls.unwrap().mean, 40.0, 1e-9));
    assert!(close(basic.runtime_min.unwrap().mean, 1.5, 1e-9));
    assert!(close(
        basic.runtime_min.unwrap().half_width.unwrap(),
        t1 * 0.5,
        1e-9
    ));
    assert!(close(
        evolve.runtime_min.unwrap().mean,
        (4.0 * 3.0 + 3.0 * 6.0) / 7.0,
        1e-9
    ));

    // Shares: the fixture's parent takes 10% / 8% / 10% / 10%.
    for share in [&r.share, &basic.share, &g.share] {
        assert!(close(share.prompt_tokens.parent_pct.unwrap(), 10.0, 1e-9));
        assert!(close(
            share.completion_tokens.parent_pct.unwrap(),
            8.0,
            1e-9
        ));
        assert!(close(
            share.completion_tokens.children_pct.unwrap(),
            92.0,
            1e-9
        ));
        assert!(close(share.tool_calls.parent_pct.unwrap(), 10.0, 1e-9));
        assert!(close(share.llm_calls.parent_pct.unwrap(), 10.0, 1e-9));
    }

    // Flips by task, majority over seeds. basic resolves only t1 (t2 is 1 of 2: no majority).
    let f = &g.flips[0];
    assert_eq!(f.variant, "+verifier");
    assert_eq!(f.gained_tasks, ["t2", "t3"]);
    assert!(f.lost_tasks.is_empty());
    assert_eq!(
        (f.paired, f.unchanged, f.both_resolved, f.neither_resolved),
        (4, 2, 1, 1)
    );
    assert_eq!(f.summary, "2 of 4 tasks do not flip; 2 gain, 0 lose");
    assert!(close(f.mcnemar_p, 0.5, 1e-12));
    let f = &g.flips[1];
    assert_eq!(f.variant, "+self-evolution");
    assert_eq!(
        (f.gained_tasks.as_slice(), f.lost_tasks.as_slice()),
        (&["t2".to_string()][..], &["t1".to_string()][..])
    );
    assert_eq!(f.summary, "2 of 4 tasks do not flip; 1 gains, 1 loses");
    assert!(close(f.mcnemar_p, 1.0, 1e-12));
}

#[test]
fn fixture_a_markdown_and_csv_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    fixture_a(dir.path());
    let r = report_of(dir.path(), None);
    insta::assert_snapshot!("report_a_md", report::render(&r, Format::Markdown).unwrap());
    insta::assert_snapshot!("report_a_csv", report::render(&r, Format::Csv).unwrap());
}

#[test]
fn another_baseline_changes_delta_and_flips() {
    let dir = tempfile::tempdir().unwrap();
    fixture_a(dir.path());
    let r = report_of(dir.path(), Some("+verifier"));
    let g = &r.groups[0];
    assert!(g.rows[1].is_baseline);
    let basic = &g.rows[0];
    assert_eq!(fmt::delta(basic.delta.unwrap().mean), "-48.2");
    let f = g.flips.iter().find(|f| f.variant == "basic").unwrap();
    assert_eq!(f.lost_tasks, ["t2", "t3"]);
    assert_eq!(f.baseline, "+verifier");
}

#[test]
fn json_carries_every_figure_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    fixture_a(dir.path());
    let r = report_of(dir.path(), None);
    let json = report::render(&r, Format::Json).unwrap();
    let back: AblationReport = serde_json::from_str(&json).unwrap();
    // Equal up to the last digit of a float (serde_json's parser may round it differently).
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(same(&serde_json::to_value(&back).unwrap(), &v));
    assert!(same(&serde_json::to_value(&r).unwrap(), &v));
    assert_eq!(v["schema"], "nlah.report/1");
    let row = &v["groups"][0]["rows"][1];
    for key in [
        "perf",
        "delta",
        "prompt_tokens",
        "completion_tokens",
        "tool_calls",
        "llm_calls",
        "runtime_min",
        "cost_usd",
    ] {
        for part in ["mean", "half_width", "lo", "hi", "seeds"] {
            assert!(!row[key][part].is_null(), "{key}.{part}");
        }
    }
    assert_eq!(v["groups"][0]["flips"][0]["gained_tasks"][1], "t3");
}

fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0)
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// Fixture B: two task sets, two models, one seed, prices known, every kind of cell.

fn fixture_b(out: &Path) {
    let tasks = [("swe", "s1"), ("swe", "s2"), ("os", "o1")];
    let variants: [(&str, &[&str]); 2] = [
        ("full", &["file-backed-state", "verifier"]),
        ("-verifier", &["file-backed-state"]),
    ];
    let m = build::matrix(&variants, &tasks, &["m1", "m2"], 1, "full");
    build::write(out, &m, |c| {
        use RunOutcome::*;
        let full = c.variant == "full";
        let outcome = match (c.task.as_str(), c.model.as_str(), full) {
            ("s1", _, _) => Passed,
            ("s2", "m1", true) => Passed,
            ("s2", "m1", false) => Failed,
            ("s2", "m2", true) => Failed,
            ("s2", "m2", false) => Passed,
            ("o1", "m1", true) => Unverified,
            ("o1", "m1", false) => Running,
            ("o1", "m2", _) => Failed,
            _ => Error,
        };
        let spend = Spend {
            prompt: if full { 16_300_000 } else { 1_200_000 },
            completion: if full { 211_000 } else { 13_600 },
            tool_calls: if full { 640 } else { 50 },
            llm_calls: if full { 410 } else { 30 },
            wall_ms: if full { 1_950_000 } else { 402_000 },
            cost_usd: if full { 12.5 } else { 0.75 },
        };
        Some(build::record(c, outcome, spend))
    })
    .unwrap();
}

#[test]
fn fixture_b_groups_by_task_set_and_model_without_intervals() {
    let dir = tempfile::tempdir().unwrap();
    fixture_b(dir.path());
    let r = report_of(dir.path(), None);
    let labels: Vec<String> = r
        .groups
        .iter()
        .map(|g| format!("{}/{}", g.task_set, g.model))
        .collect();
    assert_eq!(labels, ["os/m1", "os/m2", "swe/m1", "swe/m2"]);
    assert!(!r.has_intervals());
    assert!(r.has_cost());
    assert_eq!((r.counts.unverified, r.counts.running), (1, 1));
    // os/m1: nothing scored under either variant.
    assert!(r.groups[0].rows.iter().all(|row| row.perf.is_none()));
    assert_eq!(r.groups[0].flips[0].paired, 0);
    // swe/m2: full 1/2, -verifier 2/2; s2 gains.
    let g = &r.groups[3];
    assert_eq!(fmt::delta(g.rows[1].delta.unwrap().mean), "+50.0");
    assert_eq!(g.flips[0].gained_tasks, ["s2"]);
    let md = report::render(&r, Format::Markdown).unwrap();
    assert!(md.contains("95% intervals: n/a (one seed)."));
    insta::assert_snapshot!("report_b_md", md);
    insta::assert_snapshot!("report_b_csv", report::render(&r, Format::Csv).unwrap());
}

// ---------------------------------------------------------------------------------------------
// The command.

#[test]
fn the_command_prints_markdown_and_writes_files_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    fixture_a(dir.path());
    let r = report_of(dir.path(), None);
    let env = TestEnv::new();
    let out = env.nlah().arg("report").arg(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        report::render(&r, Format::Markdown).unwrap()
    );

    for (name, format) in [
        ("r.csv", Format::Csv),
        ("r.json", Format::Json),
        ("r.html", Format::Html),
    ] {
        let file = dir.path().join(name);
        let out = env
            .nlah()
            .arg("report")
            .arg(dir.path())
            .arg("--out")
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(out.stdout.is_empty());
        let written = std::fs::read_to_string(&file).unwrap();
        assert_eq!(written, report::render(&r, format).unwrap(), "{name}");
    }
    let out = env
        .nlah()
        .args(["report", "--format", "csv"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("task_set,model,variant,")
    );
}

#[test]
fn the_command_explains_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::new();
    let out = env.nlah().arg("report").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no matrix here"), "{err}");

    fixture_a(dir.path());
    let out = env
        .nlah()
        .args(["report", "--baseline", "nope"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no variant named \"nope\"") && err.contains("+verifier"),
        "{err}"
    );

    let out = env
        .nlah()
        .args(["report", "--format", "pdf"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // A torn run.json: reading the files alone names it; through the index (as the command
    // reads) the cell counts as not run, the way `nlah ablate --resume` sees it.
    let first = dir.path().join("cells/c00000/run.json");
    std::fs::write(&first, "{\"schema\": ").unwrap();
    let err = report::load_files(dir.path()).unwrap_err().to_string();
    assert!(err.contains("c00000/run.json"), "{err}");
    let r = report::report(dir.path(), None).unwrap();
    assert_eq!((r.counts.not_run, r.counts.passed), (2, 10));
    let out = env.nlah().arg("report").arg(dir.path()).output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("2 not run yet")
    );
}

#[test]
fn files_index_and_summaries_give_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    fixture_b(dir.path());
    let (m, cells) = report::load_files(dir.path()).unwrap();
    let from_files = report::build(&m, &cells, None).unwrap();
    let (m, cells) = report::load(dir.path()).unwrap();
    assert!(dir.path().join("index.sqlite").is_file());
    let from_index = report::build(&m, &cells, None).unwrap();
    let from_summaries = report::report(dir.path(), None).unwrap();
    assert_eq!(from_files, from_index);
    assert_eq!(from_files, from_summaries);
    // Once more from a warm index, after one cell changed on disk.
    let c = &m.cells[0];
    let mut rec = cells[0].record.clone().unwrap();
    rec.outcome = RunOutcome::Failed;
    std::fs::write(
        dir.path().join("cells").join(&c.id).join("run.json"),
        serde_json::to_vec(&rec).unwrap(),
    )
    .unwrap();
    let warm = report::report(dir.path(), None).unwrap();
    let (m, cells) = report::load_files(dir.path()).unwrap();
    assert_eq!(warm, report::build(&m, &cells, None).unwrap());
    assert_ne!(warm, from_files);
}

#[test]
fn an_empty_matrix_is_an_error_not_a_blank_table() {
    let dir = tempfile::tempdir().unwrap();
    let m = build::matrix(&VARIANTS_A, &[], &["m"], 1, "basic");
    build::write(dir.path(), &m, |_| None::<RunRecord>).unwrap();
    let err = report::report(dir.path(), None).unwrap_err();
    assert_eq!(err.to_string(), "the matrix has no cells");
}

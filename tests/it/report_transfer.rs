//! `nlah report`'s transfer table: a harness learned with one model run on others, per model
//! baseline, learned and Δ with its interval paired per task, on synthetic output folders whose
//! answers are worked out by hand here.

use std::path::Path;

use nlah::ablation::Cell;
use nlah::record::RunOutcome;
use nlah::report::{self, Format, fmt};

use crate::support::TestEnv;
use crate::support::report_build::{self as build, Spend};

const SPEND: Spend = Spend {
    prompt: 1_000,
    completion: 100,
    tool_calls: 5,
    llm_calls: 4,
    wall_ms: 60_000,
    cost_usd: 0.0,
};

// Outcomes by (model, harness, task), one letter per seed (P passed, F failed):
//
//   model  harness   t1  t2  t3  t4    task scores        mean
//   m1     basic     PP  PF  FF  FF    1  .5  0   0        37.5
//   m1     learned   PP  PP  PF  FF    1  1   .5  0        62.5   Δ per task 0 50 50 0: +25.0
//   m2     basic     PP  PP  PF  FF    1  1   .5  0        62.5
//   m2     learned   PP  FF  PP  PP    1  0   1   1        75.0   Δ 0 -100 50 100: +12.5
//   m3     basic     (not run)
//   m3     learned   PP  PP  PP  PP
//
// m1: sd of (0, 50, 50, 0) = 28.868; t(0.975, 3) = 3.182446305; ± 3.1824 · 28.868 / 2 = 45.93.
// Resolved (strict majority): m1 gains t2; m2 gains t3 and t4, loses t2.
fn outcome(c: &Cell) -> Option<RunOutcome> {
    let learned = c.variant == "+learned";
    let t: usize = c.task[1..].parse().unwrap();
    let row = match (c.model.as_str(), learned) {
        ("m1", false) => ["PP", "PF", "FF", "FF"],
        ("m1", true) => ["PP", "PP", "PF", "FF"],
        ("m2", false) => ["PP", "PP", "PF", "FF"],
        ("m2", true) => ["PP", "FF", "PP", "PP"],
        ("m3", false) => return None,
        _ => ["PP", "PP", "PP", "PP"],
    };
    Some(match row[t - 1].as_bytes()[c.seed as usize] {
        b'P' => RunOutcome::Passed,
        _ => RunOutcome::Failed,
    })
}

const TASKS: [(&str, &str); 4] = [("swe", "t1"), ("swe", "t2"), ("swe", "t3"), ("swe", "t4")];

fn toggled(out: &Path) {
    let variants: [(&str, &[&str]); 2] = [("basic", &[]), ("+learned", &["learned-rules"])];
    let m = build::matrix(&variants, &TASKS, &["m1", "m2", "m3"], 2, "basic");
    build::write(out, &m, |c| outcome(c).map(|o| build::record(c, o, SPEND))).unwrap();
}

fn nlah_report(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let env = TestEnv::new();
    let out = env
        .nlah()
        .arg("report")
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The report's text from `## Transfer` on.
fn transfer_section(md: &str) -> &str {
    &md[md.find("## Transfer").expect("a transfer section")..]
}

#[test]
fn a_module_toggle_on_several_models_gets_a_transfer_table_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    toggled(&dir.path().join("out"));
    let r = report::report_folders(&[dir.path().join("out")], None, None).unwrap();
    let t = r.transfer.as_ref().expect("two harnesses, three models");
    assert_eq!(
        (t.baseline.label.as_str(), t.learned.label.as_str()),
        ("basic", "+learned")
    );
    let m1 = &t.rows[0];
    assert_eq!((m1.model.as_str(), m1.tasks), ("m1", 4));
    assert_eq!((m1.baseline, m1.learned), (Some(37.5), Some(62.5)));
    let d = m1.delta.unwrap();
    assert_eq!(d.mean, 25.0);
    let sd = (2500.0f64 / 3.0).sqrt();
    assert!((d.half_width.unwrap() - 3.182_446_305 * sd / 2.0).abs() < 1e-9);
    assert_eq!((m1.gained, m1.lost), (1, 0));
    let m2 = &t.rows[1];
    assert_eq!(fmt::delta(m2.delta.unwrap().mean), "+12.5");
    assert_eq!((m2.gained, m2.lost), (2, 1));
    // m3's baseline never ran: nothing is paired, and the four tasks are counted as left out.
    let m3 = &t.rows[2];
    assert_eq!((m3.tasks, m3.unpaired, m3.delta), (0, 4, None));

    // The command shows it without being asked (the matrix has more than one model).
    let (code, md, err) = nlah_report(dir.path(), &["out"]);
    assert_eq!(code, 0, "{err}");
    let full = dir.path().join("out").display().to_string();
    assert_eq!(
        md,
        report::render(&r, Format::Markdown)
            .unwrap()
            .replace(&full, "out")
    );
    insta::assert_snapshot!("transfer_toggle_md", transfer_section(&md));
    let html = report::render(&r, Format::Html)
        .unwrap()
        .replace(&full, "out");
    let at = html.find("<h2>Transfer</h2>").unwrap();
    let end = html[at..].find("</table>").unwrap() + at;
    insta::assert_snapshot!("transfer_toggle_html", &html[at..end]);
    let json: serde_json::Value =
        serde_json::from_str(&report::render(&r, Format::Json).unwrap()).unwrap();
    assert_eq!(json["transfer"]["rows"][0]["delta"]["mean"], 25.0);
}

#[test]
fn two_harness_versions_in_two_folders_are_compared_per_model() {
    let dir = tempfile::tempdir().unwrap();
    // The same tasks and models run with the starting harness (v1) and the learned one (v2):
    // in each folder the variant is `basic`, with another version id.
    for (name, learned) in [("v1", false), ("v2", true)] {
        let variants: [(&str, &[&str]); 1] = [("basic", &[])];
        let mut m = build::matrix(&variants, &TASKS, &["m1", "m2"], 2, "basic");
        m.variants[0].version = format!("{name}-0123456789abcdef");
        build::write(&dir.path().join(name), &m, |c| {
            let mut c = c.clone();
            if learned {
                c.variant = "+learned".into();
            }
            outcome(&c).map(|o| build::record(&c, o, SPEND))
        })
        .unwrap();
    }
    let (code, md, err) = nlah_report(dir.path(), &["v1", "v2"]);
    assert_eq!(code, 0, "{err}");
    let section = transfer_section(&md);
    assert!(
        section.contains("Baseline: `v1/basic` (version v1-012345678")
            && section.contains("Learned: `v2/basic`"),
        "{section}"
    );
    assert!(
        section.contains("| m1 | 4 | 37.5 | 62.5 | +25.0 |"),
        "{section}"
    );
    assert!(
        section.contains("`v2` joined the transfer table only"),
        "{section}"
    );

    // Named by version prefix, the same table.
    let (code, md2, _) = nlah_report(dir.path(), &["v1", "v2", "--learned", "v2-0123"]);
    assert_eq!(code, 0);
    assert_eq!(md2, md);
    // A name that is no harness of the folders is a usage error listing them.
    let (code, _, err) = nlah_report(dir.path(), &["v1", "v2", "--learned", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no harness named \"nope\"") && err.contains("v2/basic (v2-012345678"),
        "{err}"
    );
}

#[test]
fn one_model_gets_the_table_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let variants: [(&str, &[&str]); 2] = [("basic", &[]), ("+learned", &["learned-rules"])];
    let m = build::matrix(&variants, &TASKS, &["m1"], 2, "basic");
    build::write(&dir.path().join("out"), &m, |c| {
        outcome(c).map(|o| build::record(c, o, SPEND))
    })
    .unwrap();
    let (code, md, _) = nlah_report(dir.path(), &["out"]);
    assert_eq!(code, 0);
    assert!(!md.contains("## Transfer"), "{md}");
    let (code, md, _) = nlah_report(dir.path(), &["out", "--learned", "+learned"]);
    assert_eq!(code, 0);
    assert!(
        transfer_section(&md)
            .contains("| m1 | 4 | 37.5 | 62.5 | +25.0 | [-20.9, +70.9] | 1 | 0 | 1.000 |"),
        "{md}"
    );
}

//! The interface layers' speed (issue 17, §4): the layers' own work per action (action
//! realization, trajectory regulation and contract notes through the child loop's hooks, the
//! tool and the environment excluded); one `is_legal` check through a long-lived code-verifier
//! process (the bundled `harness-skills/arena/scripts/hanoi_verifier.py`); BM25 retrieval over
//! 10,000 skills. Targets: ≤ 0.5 ms, ≤ 2 ms, ≤ 5 ms.
//! Run: `cargo bench --bench interface`.

use std::path::Path;
use std::time::{Duration, Instant};

use nlah::agent::session::Hooks;
use nlah::agent::tools::{ToolOutput, builtin_specs};
use nlah::harness::layers::{ContractNotes, Layer, LayerKind, Realization, Regulation};
use nlah::interface::skills::{Index, parse};
use nlah::interface::verifier::VerifierProcess;
use nlah::interface::{Layers, realization};
use nlah::model::{ChatRequest, ToolCall, ToolChoice, ToolSpec};
use nlah::sandbox::Confinement;
use serde_json::json;

fn stats(name: &str, mut samples: Vec<Duration>, target_ms: f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = ms(samples[samples.len() / 2]);
    let p90 = ms(samples[samples.len() * 9 / 10]);
    println!(
        "{name}: median {median:.4} ms, p90 {p90:.4} ms, min {:.4} ms, max {:.4} ms (n={}); target ≤ {target_ms} ms: {}",
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len(),
        if median <= target_ms { "met" } else { "MISSED" }
    );
}

fn layer(kind: LayerKind) -> Layer {
    Layer {
        kind,
        pos: nlah::diag::Pos::file_start(Path::new("bench.md")),
    }
}

fn per_action() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut specs = builtin_specs(None);
    specs.push(ToolSpec {
        name: "game__act".into(),
        description: "Take one action.".into(),
        parameters: json!({"type": "object", "properties": {"action": {"type": "string"}}, "required": ["action"]}).into(),
    });
    let layers = [
        layer(LayerKind::ActionRealization(Realization::default())),
        layer(LayerKind::TrajectoryRegulation(Regulation::default())),
        layer(LayerKind::ContractNotes(ContractNotes {
            max_words: 20,
            notes: vec![(
                "shell".into(),
                "Quote paths with spaces; prefer short commands.".into(),
            )],
        })),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let l = rt
        .block_on(Layers::new(
            "bench-1",
            &layers,
            specs.clone(),
            None,
            100_000,
            dir.path(),
            &Confinement::workspace(dir.path()),
        ))
        .expect("layers");
    let output = "x".repeat(4096);
    let mut req = ChatRequest {
        model: "m".into(),
        messages: vec![],
        tools: specs.clone(),
        tool_choice: ToolChoice::Auto,
        max_tokens: None,
        temperature: None,
        seed: None,
        trace: None,
    };
    let mut samples = Vec::new();
    for i in 0..20_000u32 {
        // A mix: a near-miss argument name (repaired), a valid call, a repeated one.
        let args = match i % 3 {
            0 => json!({"comand": format!("echo {i}")}),
            1 => json!({"path": format!("src/file{i}.rs")}),
            _ => json!({"command": "ls"}),
        };
        let name = if i % 3 == 1 { "read" } else { "shell" };
        let mut call = ToolCall {
            id: format!("c{i}"),
            name: name.into(),
            arguments: args.to_string(),
        };
        let mut out = ToolOutput::ok(format!("{output}{}", i % 7));
        let t = Instant::now();
        req.tools.clone_from(&specs);
        l.before_model(&mut req);
        if l.before_tool(&mut call).is_none() {
            l.after_tool(&call, &mut out);
        }
        samples.push(t.elapsed());
        l.take_events();
    }
    stats(
        "layers per action (notes + realization + regulation)",
        samples,
        0.5,
    );

    let legal: Vec<String> = ["A", "B", "C"]
        .iter()
        .flat_map(|a| ["A", "B", "C"].map(move |b| format!("[{a} {b}]")))
        .collect();
    let mut samples = Vec::new();
    for i in 0..20_000 {
        let action = if i % 2 == 0 { "[a to c]" } else { "[A C]" };
        let t = Instant::now();
        let _ = realization::check(
            "game__act",
            &json!({"action": action}).to_string(),
            &specs,
            Some(&legal),
            0.55,
        );
        samples.push(t.elapsed());
    }
    stats("realization against 9 legal actions", samples, 0.5);
}

fn verifier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scripts = dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).expect("scripts");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("harness-skills/arena/scripts/hanoi_verifier.py"),
        scripts.join("hanoi_verifier.py"),
    )
    .expect("copy");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let started = Instant::now();
    let p = rt
        .block_on(VerifierProcess::start(
            "scripts/hanoi_verifier.py",
            dir.path(),
            &Confinement::workspace(dir.path()),
            Duration::from_secs(5),
        ))
        .expect("the verifier starts");
    let obs = "Tower of Hanoi with 5 disks: move all disks from peg A to peg C.\nA: 5 4 3\nB: 2\nC: 1\nmoves: 3";
    // The first answer includes the interpreter's start.
    p.is_legal(obs, "hanoi__act", &json!({}), Some("move A B"))
        .expect("answer");
    println!(
        "verifier start and first answer: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut samples = Vec::new();
    for i in 0..3_000 {
        let action = if i % 2 == 0 { "move A B" } else { "move C B" };
        let t = Instant::now();
        p.is_legal(obs, "hanoi__act", &json!({}), Some(action))
            .expect("answer");
        samples.push(t.elapsed());
    }
    stats(
        "verifier is_legal through the long-lived process",
        samples,
        2.0,
    );
}

fn bm25() {
    // 10,000 skills over a 3,000-word vocabulary, 40 to 80 words each (a fixed LCG).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 33
    };
    let words: Vec<String> = (0..3_000).map(|i| format!("w{i:04}x")).collect();
    let skills: Vec<_> = (0..10_000)
        .map(|i| {
            let n = 40 + next() % 41;
            let body: Vec<&str> = (0..n)
                .map(|_| words[(next() % 3_000) as usize].as_str())
                .collect();
            parse(
                &format!("skill-{i:05}"),
                &format!("---\ntags: [t{}]\n---\n{}", i % 10, body.join(" ")),
            )
        })
        .collect();
    let t = Instant::now();
    let ix = Index::new(skills);
    println!(
        "BM25 index over {} skills built in {:.1} ms",
        ix.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut samples = Vec::new();
    for q in 0..300 {
        let query: Vec<&str> = (0..12)
            .map(|k| words[(q * 37 + k * 101) % 3_000].as_str())
            .collect();
        let query = query.join(" ");
        let t = Instant::now();
        let top = ix.top(&query, 3, &[]);
        samples.push(t.elapsed());
        assert!(!top.is_empty());
    }
    stats("BM25 top-3 over 10,000 skills", samples, 5.0);
}

fn main() {
    per_action();
    verifier();
    bm25();
}

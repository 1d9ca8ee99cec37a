//! The committed experiments (`examples/experiments/*/results/`) replay offline: each one's
//! cassettes, run through `examples/experiments/replay.sh`, give its committed report, runtimes
//! aside. Needs TextArena for the games' environments (`NLAH_TEXTARENA_PYTHON`; .ci/run installs
//! it), as the recorded runs did.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The experiments that have recorded cells.
fn recorded() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/experiments");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples/experiments")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            std::fs::read_dir(p.join("results/cassettes")).is_ok_and(|mut d| d.next().is_some())
        })
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "needs TextArena: NLAH_TEXTARENA_PYTHON (.ci/run installs it)"]
fn committed_experiments_replay_to_their_reports() {
    let python = crate::support::outside::require_env(
        "NLAH_TEXTARENA_PYTHON",
        "a Python with examples/environments/textarena/requirements.txt installed",
    );
    let bin = Path::new(&python).parent().expect("the python's folder");
    let experiments = recorded();
    assert!(
        !experiments.is_empty(),
        "no experiment under examples/experiments has recorded cells"
    );
    for dir in experiments {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(dir.parent().unwrap().join("replay.sh"))
            .arg(&name)
            .arg(tmp.path().join("replay"))
            .env("NLAH", env!("CARGO_BIN_EXE_nlah"))
            .env("NLAH_CI_CACHE", tmp.path().join("no-cache"))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env_remove("OPENAI_BASE_URL")
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{name}: the replay differs from the committed report (exit {:?})\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("the replay reproduces"),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

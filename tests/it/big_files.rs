//! A large file in the workspace is committed by streaming: nlah's memory stays far below the
//! file's size, and git reads the blob back whole.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::model::{Answer, Turn, diligent};
use crate::support::{TestEnv, assert_fsck};

/// The file a child writes: 300 MB of pseudo-random bytes (incompressible, so nothing a
/// compressor does can hide a whole-file read).
const BIG: u64 = 300_000_000;

/// The bound on the peak resident memory of the `nlah run` process that commits it. Without
/// streaming the commit held the file, its deflated copy and the pack built from it (over three
/// times the file's size); with streaming, one 1 MiB chunk and the compressor's window on top of
/// what a run always uses.
const PEAK_RSS_BOUND: u64 = 150 << 20;

/// Runs `cmd` to its end and returns its exit code and peak resident set in bytes, from the
/// kernel's accounting of that one process (`wait4`, which counts its waited-for children too:
/// the shell command that wrote the file, a few megabytes).
fn exit_and_peak_rss(mut cmd: Command) -> (i32, u64) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nlah starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data the kernel fills; the child is ours and not waited for
    // elsewhere (`child` is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // Linux reports ru_maxrss in kilobytes.
    (code, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024)
}

fn git(repo: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env_remove("GIT_DIR")
        .output()
        .expect("the git CLI runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_300_mb_file_is_committed_by_streaming_within_a_small_memory_bound() {
    // The child's first step writes the file; then it does its stage's work as usual.
    let cmd = format!("head -c {BIG} /dev/urandom > repo/big.bin");
    let env = TestEnv::with_model(move |t: &Turn| {
        if t.turn == 0 {
            return Answer::shell(&cmd);
        }
        diligent(&Turn {
            turn: t.turn - 1,
            ..t.clone()
        })
    })
    .await;
    let ws = env.root().join("ws");
    let mut cmd = env.nlah();
    cmd.args([
        "run",
        "tests/fixtures/tiny",
        "tests/fixtures/tasks/write-result",
        "--model",
        "openai:mock-1",
        "--workspace",
    ])
    .arg(&ws);
    let (code, peak) = tokio::task::spawn_blocking(move || exit_and_peak_rss(cmd))
        .await
        .unwrap();
    assert_eq!(
        code,
        0,
        "the run ends as it should (workspace {})",
        ws.display()
    );
    let file = ws.join("repo/big.bin");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), BIG);
    eprintln!(
        "peak RSS of nlah run committing a {} MB file: {:.1} MiB",
        BIG / 1_000_000,
        peak as f64 / f64::from(1 << 20)
    );
    assert!(
        peak < PEAK_RSS_BOUND,
        "nlah's peak RSS was {peak} bytes committing a {BIG}-byte file (bound {PEAK_RSS_BOUND})"
    );

    // git reads the commit back: sound, and the blob is the file, byte for byte.
    assert_fsck(&ws);
    let committed = git(&ws, &["rev-parse", "HEAD:repo/big.bin"]);
    let hashed = git(&ws, &["hash-object", "repo/big.bin"]);
    assert!(committed.status.success() && hashed.status.success());
    assert_eq!(committed.stdout, hashed.stdout);
    let size = git(&ws, &["cat-file", "-s", "HEAD:repo/big.bin"]);
    assert_eq!(
        String::from_utf8_lossy(&size.stdout).trim(),
        BIG.to_string()
    );
    let same = Command::new("sh")
        .arg("-c")
        .arg("git cat-file blob HEAD:repo/big.bin | cmp -s - repo/big.bin")
        .current_dir(&ws)
        .status()
        .unwrap();
    assert!(same.success(), "git cat-file gives the file's bytes");
    // Streamed into a pack of its own, kept out of pack merging.
    let keeps = std::fs::read_dir(ws.join(".git/objects/pack"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("keep".as_ref()))
        .count();
    assert_eq!(keeps, 1);
}

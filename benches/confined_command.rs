//! One confined command, start to end: what every `shell` tool call, command gate and verifier
//! pays for its confinement (Landlock, network and PID namespaces, resource limits, the guardian).
//!
//! Runs `bash -c true` through `sandbox::exec::run` N times in a row (N = `NLAH_BENCH_N`, 300),
//! confined to a temporary workspace, and prints the median and spread of the wall time and of
//! the CPU time per command (user + system, nlah's and the command's: `getrusage` of the process
//! and of its waited-for children); then `true` (a builtin) and `/bin/true` (a program) sent to
//! one long-lived confined shell (`sandbox::session`, what the `shell` tool uses: its CPU is the
//! whole loop's, the shell's start and end included, per command, so it has no spread); then
//! the check the `shell` tool makes before each call, as `assess` (the whole plan) and as
//! `processes_enforced` (what it uses); then the unconfined reference (`bash -c true` from `std::process::Command`).
//!
//! Run: `cargo bench --bench confined_command`.

use std::time::{Duration, Instant};

use nlah::sandbox::{self, Confinement, EnvAllowList, exec::ShellCommand};

fn cpu() -> Duration {
    let usage = |who| {
        // SAFETY: getrusage writes only the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
        t(u.ru_utime) + t(u.ru_stime)
    };
    usage(libc::RUSAGE_SELF) + usage(libc::RUSAGE_CHILDREN)
}

fn stats(name: &str, mut wall: Vec<Duration>, mut cpu: Vec<Duration>) {
    let q = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    println!(
        "{name:<12} wall median {:>7.3} ms (p10 {:.3}, p90 {:.3})   cpu median {:>7.3} ms (p10 {:.3}, p90 {:.3})",
        q(&mut wall, 0.5).as_secs_f64() * 1e3,
        q(&mut wall, 0.1).as_secs_f64() * 1e3,
        q(&mut wall, 0.9).as_secs_f64() * 1e3,
        q(&mut cpu, 0.5).as_secs_f64() * 1e3,
        q(&mut cpu, 0.1).as_secs_f64() * 1e3,
        q(&mut cpu, 0.9).as_secs_f64() * 1e3,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("NLAH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let ws = tempfile::tempdir().expect("tempdir");
    let confinement = Confinement::workspace(ws.path());
    println!("{}", sandbox::assess(&confinement).summary());
    let allow = EnvAllowList::default();
    let cmd = ShellCommand {
        command: "true",
        cwd: ws.path(),
        confinement: &confinement,
        allow_env: &allow,
        timeout: Duration::from_secs(10),
        output_cap: 16 * 1024,
    };
    // Warm-up: the probes, the guardian, the pooled namespaces.
    for _ in 0..10 {
        sandbox::exec::run(&cmd).await.expect("runs");
    }
    let (mut wall, mut used) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (t, c) = (Instant::now(), cpu());
        let r = sandbox::exec::run(&cmd).await.expect("runs");
        assert!(r.success(), "{}", r.output);
        wall.push(t.elapsed());
        used.push(cpu() - c);
    }
    stats("confined", wall, used);
    // The same command sent to a child's long-lived shell. The shell's own CPU is counted once
    // it has ended and been reaped, so the CPU figure is the whole loop's, per command.
    if sandbox::session::ShellSession::available(&confinement) {
        for command in ["true", "/bin/true"] {
            let before = cpu();
            let mut session =
                sandbox::session::ShellSession::start(ws.path(), &confinement, &allow)
                    .await
                    .expect("a shell starts");
            let mut wall = Vec::new();
            for _ in 0..n {
                let t = Instant::now();
                let r = session
                    .run(command, Duration::from_secs(10), 16 * 1024)
                    .await
                    .expect("runs");
                assert_eq!(r.result.exit_code, Some(0), "{}", r.result.output);
                wall.push(t.elapsed());
            }
            session.close().await;
            let per = (cpu() - before) / n as u32;
            stats(&format!("session {command}"), wall, vec![per]);
        }
    }
    // What the shell tool asks before each call: whether sessions hold. `assess` prepares the
    // whole plan (a Landlock ruleset: a system call per readable path), which the tool paid per
    // call before `processes_enforced`.
    for (name, f) in [
        (
            "assess",
            (|c: &Confinement| sandbox::assess(c).processes == sandbox::Level::Enforced)
                as fn(&Confinement) -> bool,
        ),
        ("processes?", sandbox::processes_enforced),
    ] {
        let (mut wall, mut used) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (t, c) = (Instant::now(), cpu());
            std::hint::black_box(f(&confinement));
            wall.push(t.elapsed());
            used.push(cpu() - c);
        }
        stats(name, wall, used);
    }
    let (mut wall, mut used) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (t, c) = (Instant::now(), cpu());
        let s = std::process::Command::new("bash")
            .args(["-c", "true"])
            .current_dir(ws.path())
            .status()
            .expect("runs");
        assert!(s.success());
        wall.push(t.elapsed());
        used.push(cpu() - c);
    }
    stats("unconfined", wall, used);
}

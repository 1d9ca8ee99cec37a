//! `nlah ablate --executor slurm` on a real single-node Slurm (Debian's slurm-wlm and munge),
//! started by this test with a generated slurm.conf and stopped afterwards.
//!
//! Ignored by default: it needs NLAH_SLURM=1 (`.ci/run` installs the packages, creates the munge
//! key and sets it), and root, since slurmd runs jobs as their submitter. Run anyway without
//! them, it fails.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::outside::require_env;
use crate::support::{TestEnv, assert_fsck_cells, diligent, output};

/// Daemons this test started, stopped (SIGTERM, then SIGKILL) when it ends, however it ends.
struct Daemons(Vec<(&'static str, Child)>);

impl Drop for Daemons {
    fn drop(&mut self) {
        // In reverse: slurmd before slurmctld before munged.
        for (_, child) in self.0.iter_mut().rev() {
            // SAFETY: signalling a child process this test spawned and still owns.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up in {secs} s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn id_of(flag: &str, user: &str) -> u32 {
    let o = Command::new("id").args([flag, user]).output().expect("id");
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no user {user}"))
}

fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> (&'static str, Child) {
    let f = std::fs::File::create(log).expect("log file");
    let child = cmd
        .stdout(f.try_clone().expect("log"))
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    (name, child)
}

/// munged (unless one already answers), slurmctld and slurmd, in the foreground as our children.
fn start(dir: &Path) -> (Daemons, std::path::PathBuf) {
    let mut daemons = Daemons(Vec::new());
    if !ok(Command::new("munge").arg("-n")) {
        std::fs::create_dir_all("/run/munge").expect("/run/munge");
        let (uid, gid) = (id_of("-u", "munge"), id_of("-g", "munge"));
        // SAFETY: chown of a path we just created, to the munge user.
        let c = std::ffi::CString::new("/run/munge").expect("path");
        unsafe { libc::chown(c.as_ptr(), uid, gid) };
        use std::os::unix::process::CommandExt;
        daemons.0.push(spawn(
            "munged",
            Command::new("/usr/sbin/munged")
                .arg("--foreground")
                .uid(uid)
                .gid(gid),
            &dir.join("munged.log"),
        ));
        wait_for("munged", 20, || ok(Command::new("munge").arg("-n")));
    }
    let host = String::from_utf8_lossy(
        &Command::new("hostname")
            .arg("-s")
            .output()
            .expect("hostname")
            .stdout,
    )
    .trim()
    .to_string();
    let d = dir.display();
    for sub in ["state", "spool", "log"] {
        std::fs::create_dir_all(dir.join(sub)).expect("folders");
    }
    let conf = dir.join("slurm.conf");
    std::fs::write(
        &conf,
        format!(
            "ClusterName=nlahtest\n\
             SlurmctldHost={host}\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             AuthType=auth/munge\n\
             MpiDefault=none\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             SelectType=select/cons_tres\n\
             AccountingStorageType=accounting_storage/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             StateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\n\
             SlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/log/slurmctld.log\n\
             SlurmdLogFile={d}/log/slurmd.log\n\
             SlurmctldPort={}\n\
             SlurmdPort={}\n\
             ReturnToService=2\n\
             MaxArraySize=1001\n\
             NodeName={host} CPUs=2 State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            free_port(),
            free_port()
        ),
    )
    .expect("slurm.conf");
    daemons.0.push(spawn(
        "slurmctld",
        Command::new("slurmctld")
            .args(["-D", "-i", "-f"])
            .arg(&conf)
            .current_dir(dir),
        &dir.join("slurmctld.out"),
    ));
    wait_for("slurmctld", 30, || {
        ok(Command::new("scontrol")
            .arg("ping")
            .env("SLURM_CONF", &conf))
    });
    daemons.0.push(spawn(
        "slurmd",
        Command::new("slurmd")
            .args(["-D", "-f"])
            .arg(&conf)
            .current_dir(dir),
        &dir.join("slurmd.out"),
    ));
    wait_for("an idle slurmd", 60, || {
        Command::new("sinfo")
            .args(["--noheader", "--format=%T"])
            .env("SLURM_CONF", &conf)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("idle"))
    });
    (daemons, conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a real single-node Slurm (slurm-wlm, munge, root); set NLAH_SLURM=1 (.ci/run does)"]
async fn a_small_matrix_runs_on_a_real_single_node_slurm() {
    let what = "slurm-wlm and munge installed, and root";
    assert_eq!(
        require_env("NLAH_SLURM", what),
        "1",
        "NLAH_SLURM=1 turns it on"
    );
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "NLAH_SLURM=1 needs root");
    let env = TestEnv::with_model(diligent).await;
    let model = env.model();
    let dir = tempfile::tempdir().unwrap();
    let (daemons, conf) = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || start(&d)
    })
    .await
    .unwrap();

    let out = dir.path().join("out");
    let mut cmd = env.ablate_mini("tests/fixtures/ablate-tasks/alpha");
    cmd.args([
        "--executor",
        "slurm",
        "--concurrency",
        "2",
        "--poll-ms",
        "500",
        "--out",
    ])
    .arg(&out)
    .env("SLURM_CONF", &conf);
    let o = output(cmd).await;
    let logs = || {
        [
            "slurmctld.out",
            "slurmd.out",
            "log/slurmctld.log",
            "log/slurmd.log",
        ]
        .iter()
        .map(|f| {
            format!(
                "--- {f}\n{}",
                std::fs::read_to_string(dir.path().join(f)).unwrap_or_default()
            )
        })
        .collect::<String>()
    };
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        logs()
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(out.join("matrix.json")).unwrap()).unwrap();
    let cells = m["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4, "2 variants × 1 task × 2 seeds");
    for c in cells {
        let id = c["id"].as_str().unwrap();
        let r: Value = serde_json::from_slice(
            &std::fs::read(out.join("cells").join(id).join("run.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(r["outcome"], "passed", "cell {id}: {r}");
    }
    let jobs: Value =
        serde_json::from_slice(&std::fs::read(out.join("slurm/jobs.json")).unwrap()).unwrap();
    let job = jobs[0]["id"].as_str().unwrap().to_string();
    for a in 0..4 {
        let log = out.join(format!("slurm/{job}_{a}.log"));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("finished: passed"),
            "{}: {text}",
            log.display()
        );
    }
    assert!(model.served().calls > 0);
    assert_fsck_cells(&out);
    drop(daemons);
}

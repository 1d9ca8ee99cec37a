//! Where a run's time goes: named phases of a cell (workspace creation, commits, tool commands,
//! the verifier, model requests…) with process-wide atomic counters of nanoseconds and entries.
//!
//! Always on, so that a benchmark (or a curious user) can read the split without a special
//! build: a phase costs two `Instant::now()` calls and two relaxed atomic adds. Times are wall
//! time spent inside the phase, summed over every thread and task of the process; under load
//! they include waiting for a core, which is what a benchmark's per-phase figure should show.
//!
//! Use: `let _p = profile::phase(Phase::Commit);` at the top of the code the phase covers (the
//! guard counts when it is dropped), and [`snapshot`] before and after what is measured.
//!
//! Phases that never wait (a commit, a record written, a request built) also count the CPU time
//! of their thread, which is what a machine full of cells runs out of; a phase that awaits moves
//! between threads and shares them with other tasks, so only its wall time means anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The phases of a cell that are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The workspace made: git repository, TASK.md, SKILL.md, the task's files, scripts.
    Workspace,
    /// A git commit of the workspace (stat cache, objects, ref move).
    Commit,
    /// A line appended to `history/events.jsonl`.
    Event,
    /// `run.json` written (the last one with fsync).
    Record,
    /// The end of a run: the git index written, the history flushed to disk.
    Sync,
    /// A child's tool call, whatever the tool (the shell's phases are part of it).
    Tool,
    /// A child's confined shell started (process, namespaces, Landlock).
    ShellStart,
    /// A command sent to a child's shell until its exit status came back.
    ShellRun,
    /// The hidden verifier: its tests copied out, run confined, read back.
    Verifier,
    /// A model request's body built and serialized.
    Request,
    /// A model answer parsed into a message.
    Response,
    /// A line of a child's transcript written.
    Transcript,
    /// A model call from send to parsed answer (mostly the model's latency).
    ModelCall,
    /// A whole run, from prepare to its final commit.
    Run,
}

impl Phase {
    /// Every phase, in the order they are printed.
    pub const ALL: [Phase; 14] = [
        Phase::Workspace,
        Phase::Commit,
        Phase::Event,
        Phase::Record,
        Phase::Sync,
        Phase::Tool,
        Phase::ShellStart,
        Phase::ShellRun,
        Phase::Verifier,
        Phase::Request,
        Phase::Response,
        Phase::Transcript,
        Phase::ModelCall,
        Phase::Run,
    ];

    /// The phase's short name, as benchmarks print it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Workspace => "workspace creation",
            Phase::Commit => "git commits",
            Phase::Event => "event lines",
            Phase::Record => "run.json writes",
            Phase::Sync => "final sync (index, fsync)",
            Phase::Tool => "tool calls (all)",
            Phase::ShellStart => "  of which shell start",
            Phase::ShellRun => "  of which shell command",
            Phase::Verifier => "hidden verifier",
            Phase::Request => "request building",
            Phase::Response => "response parsing",
            Phase::ModelCall => "model call (send to parsed)",
            Phase::Transcript => "transcript lines",
            Phase::Run => "whole run",
        }
    }

    /// Whether the phase runs on one thread without waiting for anything (no `.await` inside),
    /// so that its thread's CPU time is the phase's own.
    pub fn on_one_thread(self) -> bool {
        matches!(
            self,
            Phase::Workspace
                | Phase::Commit
                | Phase::Event
                | Phase::Record
                | Phase::Sync
                | Phase::Request
                | Phase::Response
                | Phase::Transcript
        )
    }

    fn slot(self) -> usize {
        self as usize
    }
}

const N: usize = Phase::ALL.len();

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static NANOS: [AtomicU64; N] = [ZERO; N];
static COUNTS: [AtomicU64; N] = [ZERO; N];
static CPU_NANOS: [AtomicU64; N] = [ZERO; N];

/// Counts the time until it is dropped against its phase.
#[must_use = "the phase ends when the guard is dropped"]
pub struct Guard {
    phase: Phase,
    started: Instant,
    /// The thread's CPU time at the start, for phases [on one thread](Phase::on_one_thread).
    cpu_started: Option<u64>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        NANOS[self.phase.slot()].fetch_add(ns, Ordering::Relaxed);
        COUNTS[self.phase.slot()].fetch_add(1, Ordering::Relaxed);
        if let (Some(start), Some(now)) = (self.cpu_started, thread_cpu_nanos()) {
            CPU_NANOS[self.phase.slot()].fetch_add(now.saturating_sub(start), Ordering::Relaxed);
        }
    }
}

/// Starts timing `phase`; the time counts when the guard is dropped.
pub fn phase(phase: Phase) -> Guard {
    Guard {
        phase,
        started: Instant::now(),
        cpu_started: phase.on_one_thread().then(thread_cpu_nanos).flatten(),
    }
}

/// The CPU time (user and system) the calling thread has used, in nanoseconds.
fn thread_cpu_nanos() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    ok.then(|| secs * 1_000_000_000 + nanos)
}

/// One phase's totals so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub phase: Phase,
    /// Wall time inside the phase.
    pub nanos: u64,
    pub count: u64,
    /// CPU time of the phase's thread inside it; 0 for phases not [on one
    /// thread](Phase::on_one_thread).
    pub cpu_nanos: u64,
}

/// The totals of every phase since the process started (subtract two for an interval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(pub Vec<Total>);

impl Snapshot {
    /// What was counted between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot(
            self.0
                .iter()
                .zip(&earlier.0)
                .map(|(a, b)| Total {
                    phase: a.phase,
                    nanos: a.nanos.saturating_sub(b.nanos),
                    count: a.count.saturating_sub(b.count),
                    cpu_nanos: a.cpu_nanos.saturating_sub(b.cpu_nanos),
                })
                .collect(),
        )
    }

    /// The totals of `phase`.
    pub fn get(&self, phase: Phase) -> Total {
        self.0
            .iter()
            .copied()
            .find(|t| t.phase == phase)
            .unwrap_or(Total {
                phase,
                nanos: 0,
                count: 0,
                cpu_nanos: 0,
            })
    }
}

/// The totals of every phase now.
pub fn snapshot() -> Snapshot {
    Snapshot(
        Phase::ALL
            .iter()
            .map(|&p| Total {
                phase: p,
                nanos: NANOS[p.slot()].load(Ordering::Relaxed),
                count: COUNTS[p.slot()].load(Ordering::Relaxed),
                cpu_nanos: CPU_NANOS[p.slot()].load(Ordering::Relaxed),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_in_slot_order() {
        for (i, p) in Phase::ALL.iter().enumerate() {
            assert_eq!(p.slot(), i, "{p:?}");
        }
    }

    #[test]
    fn a_guard_counts_once_when_dropped() {
        let before = snapshot();
        {
            let _p = phase(Phase::Tool);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let d = snapshot().since(&before).get(Phase::Tool);
        // Other tests of this process may count the same phase at the same time.
        assert!(d.count >= 1);
        assert!(d.nanos >= 2_000_000, "{d:?}");
    }

    #[test]
    fn a_phase_on_one_thread_counts_its_cpu_time_and_not_its_sleep() {
        let before = snapshot();
        {
            let _p = phase(Phase::Response);
            // Spins until the thread itself has run 5 ms, however busy the machine is.
            let started = thread_cpu_nanos().unwrap();
            let mut x = 0u64;
            while thread_cpu_nanos().unwrap() - started < 5_000_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let d = snapshot().since(&before).get(Phase::Response);
        assert!(d.cpu_nanos >= 5_000_000, "{d:?}");
        // Other tests may count the same phase, but none of them sleeps inside it.
        assert!(d.cpu_nanos + 15_000_000 <= d.nanos, "{d:?}");
        assert_eq!(snapshot().since(&before).get(Phase::Tool).cpu_nanos, 0);
    }
}

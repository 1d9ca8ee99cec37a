//! The run's side of an environment (docs/ENVIRONMENTS.md): start it before the first stage,
//! close it after the last, judge the run by its reward when the task asks for that.

use std::sync::Arc;
use std::time::Duration;

use super::Run;
use crate::env::Episode;
use crate::record::{EpisodeEnd, EpisodeRecord, EventKind};
use crate::task::Verdict;

/// The failure class of runs whose environment failed.
pub const ERROR_CLASS: &str = "environment";

/// Starts the task's environment, if it names one. `Err` is why it could not start (recorded).
pub async fn start(run: &Run) -> Result<(), String> {
    let Some(config) = &run.task.config.env else {
        return Ok(());
    };
    let mut config = config.clone();
    if let Some(n) = run.opts.settings.max_actions {
        config.max_steps = Some(n);
    }
    let config = &config;
    // The environment's server is the task's code: it also reads the task folder and the files
    // its command names (its script, its interpreter's folders).
    let mut confinement = run.confinement(&run.ws.root);
    confinement
        .readable
        .extend(crate::env::read_paths(config, &run.task.root));
    match Episode::start(
        config,
        &run.task.root,
        &run.ws.root,
        &confinement,
        run.opts.seed,
    )
    .await
    {
        Ok(ep) => {
            let ep = ep.stop_at_invalid(run.opts.settings.stop_at_invalid);
            for e in ep.take_events() {
                run.emit(e);
            }
            *run.episode.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(ep));
            Ok(())
        }
        Err(e) => {
            let message = e.to_string();
            run.emit(EventKind::Error {
                class: ERROR_CLASS.into(),
                message: message.clone(),
            });
            Err(message)
        }
    }
}

/// The fault that ended the episode, if one did.
pub fn fault(run: &Run) -> Option<String> {
    run.episode().and_then(|e| e.fault())
}

/// Records what the environment reported since the last call.
pub fn flush(run: &Run) {
    if let Some(ep) = run.episode() {
        for e in ep.take_events() {
            run.emit(e);
        }
    }
}

/// Closes the episode, records its end and stops the server.
pub async fn close(run: &Run) -> Option<EpisodeRecord> {
    let ep = run
        .episode
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()?;
    let (record, events) = ep.close();
    for e in events {
        run.emit(e);
    }
    // Children have let go of it by now; if one has not, dropping it kills the server.
    if let Ok(ep) = Arc::try_unwrap(ep) {
        ep.shutdown().await;
    }
    Some(record)
}

/// The verdict of a task judged by its environment's reward (`[verifier] reward_at_least`).
pub fn judge(min: f64, episode: Option<&EpisodeRecord>) -> Verdict {
    let reward = episode.and_then(|e| e.reward);
    let passed = reward.is_some_and(|r| r >= min);
    let output = match (episode, reward) {
        (None, _) => "[nlah] the task is judged by its environment's reward, but no episode ran\n"
            .to_string(),
        (Some(e), None) => format!(
            "[nlah] the environment reported no reward ({} steps, ended: {:?}); at least {min} was needed\n",
            e.steps, e.end
        ),
        (Some(e), Some(r)) => format!(
            "[nlah] reward {r} {} {min} after {} steps ({} invalid){}\n",
            if passed { ">=" } else { "<" },
            e.steps,
            e.invalid_actions,
            if e.end == EpisodeEnd::Done {
                ""
            } else {
                "; the episode did not finish"
            }
        ),
    };
    Verdict {
        passed,
        reward,
        exit_code: None,
        output,
        duration: Duration::ZERO,
        timed_out: false,
    }
}

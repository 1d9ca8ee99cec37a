//! Multi-candidate search: several children attempt a stage in parallel, each in its own git
//! worktree on its own branch (`candidates/<stage>-<n>-c<k>`); the gates filter them, the
//! declared rule picks one, its work becomes the run's, and every branch stays for inspection.

use std::path::{Path, PathBuf};

use futures::future::join_all;
use git2::{Repository, WorktreeAddOptions, WorktreePruneOptions};

use super::Run;
use super::child::{self, ChildReport, Kind, Request};
use super::stage::{self, Judged};
use crate::harness::model::{Selection, Stage};
use crate::record::EventKind;
use crate::record::Usage;
use crate::workspace::{WorkspaceError, commit_all};

/// Entries of a workspace root that belong to the run, not to a candidate's work.
const RUN_OWNED: [&str; 6] = [
    ".git",
    ".candidates",
    "history",
    "children",
    ".tmp",
    ".gitignore",
];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies a tree, keeping file modes; symbolic links are copied as links.
fn copy_tree(from: &Path, to: &Path) -> Result<(), WorkspaceError> {
    for entry in walkdir::WalkDir::new(from)
        .into_iter()
        .filter_map(Result::ok)
    {
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let dest = to.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest).map_err(io(&dest))?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(io(entry.path()))?;
            let _ = std::fs::remove_file(&dest);
            std::os::unix::fs::symlink(target, &dest).map_err(io(&dest))?;
        } else {
            std::fs::copy(entry.path(), &dest).map_err(io(&dest))?;
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), WorkspaceError> {
    let r = if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(WorkspaceError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Makes the run's workspace hold the winner's work (everything but the run's own folders).
fn adopt(main: &Path, winner: &Path) -> Result<(), WorkspaceError> {
    let entries = |dir: &Path| -> Result<Vec<PathBuf>, WorkspaceError> {
        Ok(std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(Result::ok)
            .filter(|e| !RUN_OWNED.contains(&e.file_name().to_string_lossy().as_ref()))
            .map(|e| e.path())
            .collect())
    };
    for p in entries(main)? {
        remove(&p)?;
    }
    for p in entries(winner)? {
        let name = p.file_name().map(PathBuf::from).unwrap_or_default();
        let dest = main.join(name);
        if p.is_dir() {
            copy_tree(&p, &dest)?;
        } else {
            std::fs::copy(&p, &dest).map_err(io(&dest))?;
        }
    }
    Ok(())
}

/// A summary of what a candidate changed, for the ranking child.
fn diff_summary(repo: &Repository, branch: &str) -> String {
    let summarise = || -> Result<String, git2::Error> {
        let head = repo.head()?.peel_to_tree()?;
        let cand = repo.revparse_single(branch)?.peel_to_tree()?;
        let diff = repo.diff_tree_to_tree(Some(&head), Some(&cand), None)?;
        let stats = diff.stats()?;
        let mut patch = String::new();
        diff.print(git2::DiffFormat::Patch, |_, _, line| {
            if patch.len() < 6000 {
                let origin = line.origin();
                if matches!(origin, '+' | '-' | ' ') {
                    patch.push(origin);
                }
                patch.push_str(&String::from_utf8_lossy(line.content()));
            }
            true
        })?;
        Ok(format!(
            "{} files changed, {} insertions, {} deletions\n\n```diff\n{}\n```",
            stats.files_changed(),
            stats.insertions(),
            stats.deletions(),
            patch.trim_end()
        ))
    };
    summarise().unwrap_or_else(|e| format!("(no diff: {e})"))
}

/// Runs the candidates of one stage attempt. Returns the verdict on the chosen candidate (or
/// on the best failure when none passed), the stage's usage and tool calls.
pub async fn run(
    run: &Run,
    s: &Stage,
    attempt_id: &str,
    reflection: Option<String>,
) -> Result<(Judged, Usage, u64), WorkspaceError> {
    let Some(role) = run.harness.role(&s.role) else {
        return Ok((
            Judged {
                reason: format!("stage {} names an unknown role", s.name),
                ..Judged::default()
            },
            Usage::default(),
            0,
        ));
    };
    run.commit(&format!(
        "stage {} attempt {attempt_id}: {} candidates start",
        s.name, s.candidates
    ))?;
    let mut roots: Vec<(String, PathBuf)> = Vec::new();
    for k in 1..=s.candidates {
        let cid = format!("{attempt_id}-c{k}");
        let path = run.ws.path(&format!(".candidates/{cid}"));
        run.ws.with_repo(|repo| {
            let head = repo.head()?.peel_to_commit()?;
            let branch = repo.branch(&format!("candidates/{cid}"), &head, true)?;
            let mut opts = WorktreeAddOptions::new();
            opts.reference(Some(branch.get()));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            repo.worktree(&cid, &path, Some(&opts))?;
            Ok(())
        })?;
        roots.push((cid, path));
    }
    let reports: Vec<ChildReport> = join_all(roots.iter().map(|(cid, root)| {
        child::run(
            run,
            Request {
                id: cid.clone(),
                role,
                stage: s,
                kind: Kind::Stage {
                    reflection: reflection.clone(),
                },
                root,
                parent: false,
            },
        )
    }))
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;
    let judged: Vec<Judged> = join_all(
        reports
            .iter()
            .zip(&roots)
            .map(|(r, (cid, root))| stage::judge(run, s, r, root, cid)),
    )
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;
    let mut usage = Usage::default();
    let mut calls = 0;
    for (r, j) in reports.iter().zip(&judged) {
        usage.add(&r.usage);
        usage.add(&j.usage);
        calls += r.tool_calls + j.tool_calls;
    }
    for ((cid, root), j) in roots.iter().zip(&judged) {
        let repo = Repository::open(root)?;
        commit_all(
            &repo,
            &format!(
                "candidate {cid} {}: {}",
                if j.passed { "passed" } else { "failed" },
                j.reason
            ),
        )?;
    }
    let passing: Vec<usize> = judged
        .iter()
        .enumerate()
        .filter(|(_, j)| j.passed)
        .map(|(i, _)| i)
        .collect();
    let (winner, why) = match (&s.select, passing.as_slice()) {
        (_, []) => (None, "no candidate passed the gates".to_string()),
        (_, [only]) => (
            Some(*only),
            format!(
                "{} is the only candidate that passed the gates",
                roots[*only].0
            ),
        ),
        (Selection::FirstPassing, [first, ..]) => (
            Some(*first),
            format!(
                "{} is the first candidate that passed the gates",
                roots[*first].0
            ),
        ),
        (Selection::RankedBy { role: ranker }, _) => {
            rank(run, s, ranker, attempt_id, &roots, &passing).await?
        }
    };
    // Every candidate's child folder joins the run's, chosen or not.
    for (cid, root) in &roots {
        for entry in std::fs::read_dir(root.join("children"))
            .map_err(io(root))?
            .filter_map(Result::ok)
        {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(cid.as_str())
            {
                copy_tree(
                    &entry.path(),
                    &run.ws.path("children").join(entry.file_name()),
                )?;
            }
        }
    }
    if let Some(w) = winner {
        adopt(&run.ws.root, &roots[w].1)?;
        run.emit(EventKind::CandidateSelected {
            stage: s.name.clone(),
            child: roots[w].0.clone(),
            reason: why.clone(),
        });
    }
    run.ws.with_repo(|repo| {
        for (cid, root) in &roots {
            remove(root)?;
            if let Ok(wt) = repo.find_worktree(cid) {
                wt.prune(Some(
                    WorktreePruneOptions::new().valid(true).working_tree(true),
                ))?;
            }
        }
        Ok(())
    })?;
    let _ = std::fs::remove_dir(run.ws.path(".candidates"));
    let pick = winner.unwrap_or(0);
    let mut verdict = judged.into_iter().nth(pick).unwrap_or_default();
    verdict.reason = format!("{} ({why})", verdict.reason);
    if winner.is_none() {
        stage::reflect(
            run,
            s,
            attempt_number(attempt_id),
            &verdict,
            &reports[pick].response,
        )?;
    }
    run.commit(&format!("stage {} attempt {attempt_id}: {why}", s.name))?;
    Ok((verdict, usage, calls))
}

fn attempt_number(attempt_id: &str) -> u32 {
    attempt_id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Asks a ranking child to order the passing candidates; the first it names wins.
async fn rank(
    run: &Run,
    s: &Stage,
    ranker: &str,
    attempt_id: &str,
    roots: &[(String, PathBuf)],
    passing: &[usize],
) -> Result<(Option<usize>, String), WorkspaceError> {
    let first = passing[0];
    let Some(role) = run.harness.role(ranker) else {
        return Ok((
            Some(first),
            format!(
                "ranking role {ranker} is missing; {} passed first",
                roots[first].0
            ),
        ));
    };
    let mut text = String::new();
    run.ws.with_repo(|repo| {
        for &i in passing {
            let (cid, _) = &roots[i];
            text.push_str(&format!("## {cid}\n\nIts files: `.candidates/{cid}/`; its report: `.candidates/{cid}/children/{cid}/RESPONSE.md`.\n\n{}\n\n", diff_summary(repo, &format!("candidates/{cid}"))));
        }
        Ok(())
    })?;
    let id = format!("{attempt_id}-rank");
    let rep = child::run(
        run,
        Request {
            id,
            role,
            stage: s,
            kind: Kind::Ranker { candidates: text },
            root: &run.ws.root,
            parent: true,
        },
    )
    .await?;
    let chosen = rep.head.ranking.iter().find_map(|name| {
        let name = name.trim();
        passing
            .iter()
            .copied()
            .find(|&i| roots[i].0 == name || roots[i].0.ends_with(&format!("-{name}")))
    });
    Ok(match chosen {
        Some(i) => (
            Some(i),
            format!(
                "{ranker} ranked {} first among {} passing candidates",
                roots[i].0,
                passing.len()
            ),
        ),
        None => (
            Some(first),
            format!(
                "{ranker} gave no usable ranking; {} passed first",
                roots[first].0
            ),
        ),
    })
}

//! `nlah synthesize`: AutoHarness's search for a harness written as code, on nlah's parts.
//!
//! A tree of versions of one script in the harness's `scripts/` (target `verifier`: `is_legal`;
//! `filter`: `legal_actions`; `policy`: `policy`, the code-verifier protocol of
//! `interface::verifier`), each with the **proposer's guidance**: the text the module adds to
//! the acting role (what the model that proposes actions is told). Each node is run as a module
//! of the harness (`modules/synthesized-<target>.md`, its interface layer running the script)
//! in rollouts that stop at the first action the environment refuses or the script's first
//! fault ([`rollouts`], [`critic`]); its value is the legal-action rate, and Thompson sampling
//! ([`thompson`]) picks the node to refine next. The refiner ([`refine`]) gets the script and up
//! to five failed steps: when the check accepted an illegal action (or failed), it rewrites the
//! script and the guidance; when the check rejected it but the player sent it anyway, only the
//! guidance. For target `policy` the script is both the check and the proposer.
//!
//! Every node is a commit on `nlah/synthesize/<harness>/<target>` with its score in git notes
//! ([`tree`]); the record in `OUT/search.json` ([`search`]) makes the search resumable; at the
//! end the best node is written into the harness as its module and script.

pub mod critic;
pub mod error;
pub mod refine;
pub mod rollouts;
pub mod search;
pub mod thompson;
pub mod tree;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ablation::executor::choice::Choice;
use crate::charter::Charter;
use crate::engine::RunSettings;
use crate::engine::backends::Backends;
use crate::harness::{self, Toggles, compose::sha256_hex};
use crate::model::retry::with_retries;
use crate::model::{ChatRequest, Message, ModelSpec};
use crate::versions::gitread;
use crate::versions::notes::NoteLine;
use error::SynthError;
use refine::Ask;
use rollouts::Plan;
use search::{Fault, Identity, Iteration, Node, Search, Stop};

/// What the search writes: a check, a legal-action lister or a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Verifier,
    Filter,
    Policy,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Verifier => "verifier",
            Target::Filter => "filter",
            Target::Policy => "policy",
        }
    }

    /// The protocol method the script implements.
    pub fn method(self) -> &'static str {
        match self {
            Target::Verifier => "is_legal",
            Target::Filter => "legal_actions",
            Target::Policy => "policy",
        }
    }

    /// The module written into the harness.
    pub fn module(self) -> String {
        format!("synthesized-{}", self.name())
    }

    /// The script's path in the harness.
    pub fn script(self) -> String {
        format!("scripts/synthesized_{}.py", self.name())
    }
}

/// The module file of a node: the code-verifier layer running its script and, for a check or a
/// lister, the proposer's guidance added to the acting role. A rejected action is sent once the
/// re-prompts are spent (`fallback: pass`), so that a failure shows whether the check or the
/// proposer was wrong.
pub fn module_text(target: Target, role: &str, guidance: &str) -> String {
    let (what, mode) = match target {
        Target::Verifier => ("checks each action before it is taken", "verifier"),
        Target::Filter => ("lists the legal actions; others are not taken", "filter"),
        Target::Policy => ("chooses every action", "policy"),
    };
    let mut s = format!(
        "---\nname: {}\ndescription: A script written by nlah synthesize {what} (AutoHarness); the player's guidance is refined with it.\nenabled: true\n---\n\n\
         Written by `nlah synthesize --target {}`: a tree search over versions of \
         `{}`, refined from failed rollouts and scored by their legal-action rate. The search's \
         nodes are the commits of its branch `nlah/synthesize/…/{}` (`nlah log`).\n\n\
         ## Append to Interface layers\n\n### code-verifier\n- script: `{}`\n- mode: {mode}\n- re-prompts: 3\n- fallback: pass\n- timeout ms: 2000\n",
        target.module(),
        target.name(),
        target.script(),
        target.name(),
        target.script(),
    );
    if target != Target::Policy && !guidance.trim().is_empty() {
        s.push_str(&format!("\n## Amend role {role}\n\n{}\n", guidance.trim()));
    }
    s
}

/// Everything a search runs with.
pub struct Options {
    pub harness: PathBuf,
    pub tasks: PathBuf,
    pub model: String,
    pub refiner: String,
    pub target: Target,
    pub rollouts: usize,
    pub max_steps: u64,
    pub iterations: usize,
    pub max_cost: Option<f64>,
    pub seed: u64,
    pub out: PathBuf,
    /// The rollouts' run settings (`--stop-at-invalid` and `--max-actions` are set here).
    pub settings: RunSettings,
    pub charter: Charter,
    pub executor: Choice,
}

/// What the search tells the CLI as it goes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Progress {
    Started {
        out: PathBuf,
        branch: String,
        resumed: bool,
        nodes: usize,
        iterations: usize,
    },
    Refined {
        iteration: usize,
        refined: Option<usize>,
        draws: Vec<(usize, f64)>,
        what: String,
        shown: usize,
        node: Option<usize>,
        fault: Option<Fault>,
        cost_usd: f64,
    },
    Evaluated {
        node: usize,
        legal: u64,
        illegal: u64,
        code_errors: u64,
        infra_errors: u64,
        rate: Option<f64>,
        cost_usd: f64,
        commit: String,
    },
}

pub type Sink = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How a search ended.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub stop: Stop,
    pub branch: String,
    pub nodes: usize,
    pub iterations: usize,
    pub best: Option<usize>,
    pub best_rate: Option<f64>,
    pub best_commit: Option<String>,
    /// The files written into the harness (module, script), when a node was evaluated.
    pub written: Vec<PathBuf>,
    /// `nlah check`'s errors on the harness with the module, if any.
    pub check_errors: Vec<String>,
    pub cost_usd: f64,
}

/// The statements of the task set, each once: a script for a set of games must handle them all.
fn task_statements(tasks: &[crate::task::Task]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for t in tasks {
        let s = t.instruction.trim();
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen.join("\n\n---\n\n")
}

/// What the search knows of its harness.
struct Setup {
    root: PathBuf,
    name: String,
    role: String,
    repo: Repository,
    rel: String,
    base: Oid,
    task_text: String,
}

fn setup(o: &Options) -> Result<Setup, SynthError> {
    let bad = |m: String| Err(SynthError::Input(m));
    if o.rollouts == 0 {
        return bad("--rollouts must be at least 1".into());
    }
    if o.max_steps == 0 {
        return bad("--max-steps must be at least 1".into());
    }
    if o.iterations == 0 {
        return bad("--iterations must be at least 1".into());
    }
    if let Some(c) = o.max_cost
        && !(c.is_finite() && c >= 0.0)
    {
        return bad(format!(
            "--max-cost {c}: give a number of US dollars, 0 or more"
        ));
    }
    o.model
        .parse::<ModelSpec>()
        .map_err(|e| SynthError::Input(format!("--model: {e}")))?;
    o.refiner
        .parse::<ModelSpec>()
        .map_err(|e| SynthError::Input(format!("--refiner: {e}")))?;
    let root = o.harness.canonicalize().map_err(|_| {
        SynthError::Input(format!("{}: no such harness folder", o.harness.display()))
    })?;
    let (_, h, diags) = harness::build(&root, &Toggles::default())?;
    let errors: Vec<String> = diags
        .into_sorted()
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    let Some(h) = h.filter(|_| errors.is_empty()) else {
        return bad(format!(
            "{}: the harness does not check (`nlah check` it):\n{}",
            root.display(),
            errors.join("\n")
        ));
    };
    let Some(role) = h.stages.first().map(|s| s.role.clone()) else {
        return bad(format!("{}: the harness has no stage", root.display()));
    };
    // Two code-verifier layers cannot be on together: another module declaring one would make
    // `nlah check` (every module at once) fail on the result.
    let src = harness::load(&root)?;
    let own = o.target.module();
    let layer = regex::Regex::new(r"(?mi)^###\s+code[- ]verifier\s*$")
        .map_err(|e| SynthError::Input(e.to_string()))?;
    for m in &src.modules {
        if m.name.starts_with("synthesized-") || m.name == own {
            continue;
        }
        if layer.is_match(&m.file.text) {
            return bad(format!(
                "{}: module `{}` declares a code-verifier layer too; the synthesized module would conflict with it when both are on (remove or move that module, e.g. into another copy of the harness)",
                m.file.path.display(),
                m.name
            ));
        }
    }
    let tasks = crate::task::load_set(&o.tasks).map_err(|e| SynthError::Input(e.to_string()))?;
    if tasks.is_empty() {
        return bad(format!("{}: no tasks in this folder", o.tasks.display()));
    }
    if let Some(t) = tasks.iter().find(|t| t.config.env.is_none()) {
        return bad(format!(
            "{}: task `{}` has no [env] in its task.toml; synthesis counts the actions an environment accepts and refuses",
            t.root.display(),
            t.id
        ));
    }
    let (repo, workdir) = gitread::discover(&root).map_err(|_| {
        SynthError::Input(format!(
            "{}: not inside a git repository; the search's nodes are commits (`git init` and commit the harness first)",
            root.display()
        ))
    })?;
    let rel = gitread::rel_path(&workdir, &root)?;
    let base = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(|_| {
            SynthError::Input(format!(
                "{}: the repository has no commit yet; commit the harness first",
                workdir.display()
            ))
        })?
        .id();
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Setup {
        root,
        name,
        role,
        repo,
        rel,
        base,
        task_text: task_statements(&tasks),
    })
}

/// Runs (or continues) the search in `o.out`.
pub async fn run(o: Options, sink: Sink) -> Result<Outcome, SynthError> {
    let st = setup(&o)?;
    std::fs::create_dir_all(&o.out).map_err(SynthError::io(&o.out))?;
    let out = o.out.canonicalize().map_err(SynthError::io(&o.out))?;
    let tasks = o.tasks.canonicalize().map_err(SynthError::io(&o.tasks))?;
    let id = Identity {
        harness: st.root.clone(),
        tasks,
        target: o.target,
        model: o.model.clone(),
        refiner: o.refiner.clone(),
        rollouts: o.rollouts,
        max_steps: o.max_steps,
        seed: o.seed,
    };
    let branch = format!("nlah/synthesize/{}/{}", st.name, o.target.name());
    let (mut s, resumed) = match search::read(&out)? {
        Some(s) if s.id != id => {
            return Err(SynthError::OtherSearch {
                out,
                found: s.id.describe(),
                wanted: id.describe(),
            });
        }
        Some(mut s) => {
            // A refiner call that failed is asked again: it does not count as an iteration.
            if s.iterations
                .last()
                .is_some_and(|i| i.fault.as_ref().is_some_and(|f| f.kind == "model"))
            {
                s.iterations.pop();
            }
            (s, true)
        }
        None => {
            let s = Search {
                schema: search::SCHEMA.into(),
                id,
                repo: st.repo.workdir().map(Path::to_path_buf).unwrap_or_default(),
                rel: st.rel.clone(),
                base: st.base.to_string(),
                branch: branch.clone(),
                role: st.role.clone(),
                created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                nodes: Vec::new(),
                iterations: Vec::new(),
                stop: None,
                written: None,
            };
            search::write(&out, &s)?;
            (s, false)
        }
    };
    // A search killed between its record and the branch: the branch catches up.
    if let Some(tip) = s.tip() {
        let tip = Oid::from_str(tip)?;
        let at = st
            .repo
            .refname_to_id(&format!("refs/heads/{}", s.branch))
            .ok();
        if at != Some(tip)
            && !at.is_some_and(|a| st.repo.graph_descendant_of(a, tip).unwrap_or(false))
        {
            tree::move_branch(&st.repo, &s.branch, tip)?;
        }
    }
    sink(&Progress::Started {
        out: out.clone(),
        branch: s.branch.clone(),
        resumed,
        nodes: s.nodes.len(),
        iterations: s.iterations.len(),
    });
    let backends = Backends::new(None, None);
    let mut settings = o.settings.clone();
    settings.stop_at_invalid = true;
    settings.max_actions = Some(o.max_steps);
    let stop = loop {
        // Evaluate the node the last iteration made (or the one a kill interrupted).
        if let Some(i) = s.nodes.iter().position(|n| !n.evaluated()) {
            evaluate(&o, &st, &out, &settings, &mut s, i, &sink).await?;
            continue;
        }
        if s.nodes.iter().any(|n| n.rate() == Some(1.0)) {
            break Stop::Solved;
        }
        if o.max_cost.is_some_and(|m| s.cost() >= m) {
            break Stop::MaxCost;
        }
        if s.iterations.len() >= o.iterations {
            break Stop::Iterations;
        }
        if let Some(stop) = iterate(&o, &st, &out, &backends, &mut s, &sink).await? {
            break stop;
        }
    };
    finish(&o, &st, &out, &mut s, stop)
}

/// Runs node `i`'s rollouts, counts them, commits the node and notes its score.
async fn evaluate(
    o: &Options,
    st: &Setup,
    out: &Path,
    settings: &RunSettings,
    s: &mut Search,
    i: usize,
    sink: &Sink,
) -> Result<(), SynthError> {
    let node = s.nodes[i].clone();
    let dir = rollouts::harness_dir(out, node.id, &st.name);
    tree::materialize(&st.repo, Oid::from_str(&node.tree)?, &st.rel, &dir)?;
    let budget = o.max_cost.map(|m| (m - s.cost()).max(0.0));
    let c = rollouts::run(
        &rollouts::matrix_dir(out, node.id),
        Plan {
            harness: &dir,
            tasks: &o.tasks,
            model: &o.model,
            rollouts: o.rollouts,
            settings: settings.clone(),
            charter: o.charter.clone(),
            executor: &o.executor,
            budget,
        },
    )
    .await?;
    let n = &mut s.nodes[i];
    n.legal = c.legal;
    n.illegal = c.illegal;
    n.code_errors = c.code_errors;
    n.infra_errors = c.infra_errors;
    n.rollouts_done = c.done;
    n.cost_usd = c.cost_usd;
    n.failures = c.failures.clone();
    // A policy chose every action it was asked for, also those the model had proposed already
    // (the layer records only the actions it changed).
    if o.target == Target::Policy {
        for f in &mut n.failures {
            if f.check == critic::Check::Accepted {
                f.check = critic::Check::Chose;
            }
        }
    }
    let rate = n.rate();
    let parent_commit = match node.parent {
        Some(p) => s.nodes[p]
            .commit
            .as_deref()
            .map(Oid::from_str)
            .transpose()?
            .unwrap_or(st.base),
        None => st.base,
    };
    let mut parents = vec![parent_commit];
    if let Ok(tip) = st.repo.refname_to_id(&format!("refs/heads/{}", s.branch)) {
        parents.push(tip);
    }
    let message = format!(
        "synthesize {}: node {}{}, legal-action rate {} ({}/{}){}\n\nIteration {} of `nlah synthesize` ({}); its rollouts: {}.\n",
        o.target.name(),
        node.id,
        node.parent
            .map(|p| format!(" from node {p}"))
            .unwrap_or_default(),
        rate.map_or("none".to_string(), |r| format!("{r:.2}")),
        c.legal,
        c.legal + c.illegal,
        if c.code_errors > 0 {
            format!(", {} code error(s)", c.code_errors)
        } else {
            String::new()
        },
        node.iteration,
        out.display(),
        rollouts::matrix_dir(out, node.id).display(),
    );
    let commit = tree::commit(&st.repo, Oid::from_str(&node.tree)?, &parents, &message)?;
    s.nodes[i].commit = Some(commit.to_string());
    search::write(out, s)?;
    tree::move_branch(&st.repo, &s.branch, commit)?;
    let runs: Vec<NoteLine> = c.records.iter().map(NoteLine::from_record).collect();
    let n = &s.nodes[i];
    tree::note(
        &st.repo,
        commit,
        &runs,
        &json!({"synthesize": {
            "target": o.target.name(), "node": n.id, "parent": n.parent,
            "legal": n.legal, "illegal": n.illegal, "rate": rate,
            "code_errors": n.code_errors, "infra_errors": n.infra_errors,
            "cost_usd": n.cost_usd, "out": out,
        }}),
    )?;
    sink(&Progress::Evaluated {
        node: n.id,
        legal: n.legal,
        illegal: n.illegal,
        code_errors: n.code_errors,
        infra_errors: n.infra_errors,
        rate,
        cost_usd: n.cost_usd,
        commit: commit.to_string(),
    });
    Ok(())
}

/// One refinement: choose a node, ask the refiner, record what came back (a node or a fault).
/// `Some` stops the search (the refiner's model failed).
async fn iterate(
    o: &Options,
    st: &Setup,
    out: &Path,
    backends: &Backends,
    s: &mut Search,
    sink: &Sink,
) -> Result<Option<Stop>, SynthError> {
    let k = s.iterations.len();
    let scored: Vec<(usize, u64, u64)> = s
        .nodes
        .iter()
        .filter(|n| n.evaluated())
        .map(|n| (n.id, n.legal, n.illegal))
        .collect();
    let chosen = thompson::choose(&mut thompson::rng(o.seed, k), &scored);
    let (refined, draws) = match chosen {
        Some((id, d)) => (Some(id), d),
        None => (None, Vec::new()),
    };
    let parent = refined.map(|id| s.nodes[id].clone());
    let (ask, script, guidance, failed) = match &parent {
        None => (Ask::New, String::new(), String::new(), Vec::new()),
        Some(p) => {
            let path = rollouts::harness_dir(out, p.id, &st.name).join(o.target.script());
            let script = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(_) => {
                    tree::materialize(
                        &st.repo,
                        Oid::from_str(&p.tree)?,
                        &st.rel,
                        &rollouts::harness_dir(out, p.id, &st.name),
                    )?;
                    std::fs::read_to_string(&path).map_err(SynthError::io(&path))?
                }
            };
            let check_wrong = o.target == Target::Policy
                || p.failures.is_empty()
                || p.failures.iter().any(|f| {
                    matches!(
                        f.check,
                        critic::Check::Accepted
                            | critic::Check::Crashed
                            | critic::Check::Chose
                            | critic::Check::Abandoned
                    )
                });
            let ask = if check_wrong {
                Ask::Both
            } else {
                Ask::Proposer
            };
            (ask, script, p.guidance.clone(), p.failures.clone())
        }
    };
    let prompt = refine::prompt(o.target, ask, &st.task_text, &script, &guidance, &failed);
    let dir = out.join("iterations").join(k.to_string());
    std::fs::create_dir_all(&dir).map_err(SynthError::io(&dir))?;
    let p = dir.join("prompt.md");
    crate::atomic::write(&p, prompt.as_bytes()).map_err(SynthError::io(&p))?;
    let mut it = Iteration {
        index: k,
        refined,
        draws: draws.clone(),
        what: ask.words().into(),
        shown: failed.len(),
        refiner_cost_usd: 0.0,
        refiner_tokens: 0,
        node: None,
        fault: None,
    };
    let spec: ModelSpec = o
        .refiner
        .parse()
        .map_err(|e| SynthError::Input(format!("--refiner: {e}")))?;
    let req = ChatRequest {
        model: match &spec {
            ModelSpec::OpenAi { model } | ModelSpec::Anthropic { model } => model.clone(),
            other => other.to_string(),
        },
        messages: vec![
            Message::system(refine::system(o.target)),
            Message::user(prompt),
        ],
        tools: Vec::new(),
        tool_choice: Default::default(),
        max_tokens: o.settings.max_tokens(),
        temperature: o.settings.temperature,
        seed: Some(o.seed.wrapping_add(k as u64)),
        trace: Some(format!("synthesize#{k}")),
    };
    let answer = async {
        let backend = backends.chat(&spec).await?;
        with_retries(o.settings.retry(), |_| {}, || backend.complete(&req)).await
    }
    .await;
    let resp = match answer {
        Ok(r) => r,
        Err(e) => {
            it.fault = Some(Fault {
                kind: "model".into(),
                message: e.to_string(),
            });
            s.iterations.push(it.clone());
            search::write(out, s)?;
            sink(&refined_event(&it));
            return Ok(Some(Stop::ModelFailed));
        }
    };
    it.refiner_cost_usd = resp.usage.cost_usd;
    it.refiner_tokens = resp.usage.input_tokens + resp.usage.output_tokens;
    let a = dir.join("answer.md");
    crate::atomic::write(&a, resp.message.content.as_bytes()).map_err(SynthError::io(&a))?;
    let parsed = refine::parse(&resp.message.content);
    let new_guidance = match o.target {
        Target::Policy => String::new(),
        _ => parsed.guidance.clone().unwrap_or(guidance),
    };
    let new_script = match ask {
        Ask::Proposer => Ok(script),
        _ => match parsed.script {
            None => Err(Fault {
                kind: "no-code".into(),
                message: "the answer holds no ```python block".into(),
            }),
            Some(code) => match refine::syntax_check(&code) {
                Ok(()) => Ok(code),
                Err(e) => Err(Fault {
                    kind: "syntax".into(),
                    message: format!("the script does not parse: {e}"),
                }),
            },
        },
    };
    match new_script {
        Err(f) => it.fault = Some(f),
        Ok(code) => {
            let root = match &parent {
                Some(p) => Oid::from_str(&p.tree)?,
                None => {
                    let head = st.repo.find_commit(st.base)?.tree()?.id();
                    let h = tree::folder_tree(&st.repo, &st.root)?;
                    tree::with_harness(&st.repo, head, &st.rel, h)?
                }
            };
            let module = module_text(o.target, &s.role, &new_guidance);
            let script_path = o.target.script();
            let module_path = format!("modules/{}.md", o.target.module());
            let t = tree::with_files(
                &st.repo,
                root,
                &st.rel,
                &[
                    (module_path.as_str(), module.as_bytes()),
                    (script_path.as_str(), code.as_bytes()),
                ],
            )?;
            // A refinement that gives back a node already in the tree adds nothing to roll out.
            let tree = t.to_string();
            if let Some(same) = s.nodes.iter().find(|n| n.tree == tree) {
                it.fault = Some(Fault {
                    kind: "unchanged".into(),
                    message: format!("the same script and guidance as node {}", same.id),
                });
            } else {
                let id = s.nodes.len();
                s.nodes.push(Node {
                    id,
                    parent: refined,
                    iteration: k,
                    tree,
                    commit: None,
                    script_sha: sha256_hex(code.as_bytes()),
                    guidance: new_guidance,
                    legal: 0,
                    illegal: 0,
                    code_errors: 0,
                    infra_errors: 0,
                    rollouts_done: 0,
                    cost_usd: 0.0,
                    failures: Vec::new(),
                });
                it.node = Some(id);
            }
        }
    }
    s.iterations.push(it.clone());
    search::write(out, s)?;
    sink(&refined_event(&it));
    Ok(None)
}

fn refined_event(it: &Iteration) -> Progress {
    Progress::Refined {
        iteration: it.index,
        refined: it.refined,
        draws: it.draws.clone(),
        what: it.what.clone(),
        shown: it.shown,
        node: it.node,
        fault: it.fault.clone(),
        cost_usd: it.refiner_cost_usd,
    }
}

/// Writes the best node into the harness and checks the harness.
fn finish(
    o: &Options,
    st: &Setup,
    out: &Path,
    s: &mut Search,
    stop: Stop,
) -> Result<Outcome, SynthError> {
    s.stop = Some(stop);
    let best = s.best().cloned();
    let mut written = Vec::new();
    let mut check_errors = Vec::new();
    if let Some(b) = &best {
        let dir = rollouts::harness_dir(out, b.id, &st.name);
        if !dir.join(o.target.script()).is_file() {
            tree::materialize(&st.repo, Oid::from_str(&b.tree)?, &st.rel, &dir)?;
        }
        let module_rel = format!("modules/{}.md", o.target.module());
        for rel in [module_rel.as_str(), o.target.script().as_str()] {
            let from = dir.join(rel);
            let to = st.root.join(rel);
            let bytes = std::fs::read(&from).map_err(SynthError::io(&from))?;
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(SynthError::io(parent))?;
            }
            crate::atomic::write(&to, &bytes).map_err(SynthError::io(&to))?;
            written.push(to);
        }
        let src = harness::load(&st.root)?;
        check_errors = harness::check(&src)
            .into_sorted()
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        s.written = Some(b.id);
    }
    search::write(out, s)?;
    Ok(Outcome {
        stop,
        branch: s.branch.clone(),
        nodes: s.nodes.len(),
        iterations: s.iterations.len(),
        best: best.as_ref().map(|b| b.id),
        best_rate: best.as_ref().and_then(Node::rate),
        best_commit: best.and_then(|b| b.commit),
        written,
        check_errors,
        cost_usd: s.cost(),
    })
}

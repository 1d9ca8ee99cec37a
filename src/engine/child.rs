//! One child: its TASK.md, its backend, its session, and what it reported.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Run;
use super::response::{self, Head};
use crate::agent::budget::Exhausted;
use crate::agent::command::{self, CommandChild};
use crate::agent::mcp::McpClient;
use crate::agent::realize::Note;
use crate::agent::session::{
    self, End, NoHooks, Session, SessionObserver, SessionSpec, Tally, ToolBox,
};
use crate::agent::tools::{self, ToolContext, ToolOutput};
use crate::harness::model::{GateKind, Role, Stage};
use crate::interface::{self, Layers};
use crate::model::retry::RetryNote;
use crate::model::{ChatResponse, ModelSpec, ToolCall};
use crate::record::{ChildStatus, EventKind, Usage};
use crate::workspace::WorkspaceError;

/// What a child is for.
pub enum Kind<'a> {
    /// Does a stage's work.
    Stage { reflection: Option<String> },
    /// Judges a stage's work for a `verifier ROLE approves` gate; sees no transcript.
    Verifier { stage: &'a str, of: &'a str },
    /// Orders the candidates of a stage, best first.
    Ranker { candidates: String },
    /// Chooses the next stage among the declared ones.
    Orchestrator { choices: Vec<String>, story: String },
}

pub struct Request<'a> {
    pub id: String,
    pub role: &'a Role,
    pub stage: &'a Stage,
    pub kind: Kind<'a>,
    /// The workspace root this child works in (the run's, or a candidate's copy).
    pub root: &'a Path,
    /// Whether its usage is the runtime's own (orchestration, ranking) rather than a child's.
    pub parent: bool,
}

#[derive(Debug, Default)]
pub struct ChildReport {
    pub id: String,
    pub head: Head,
    pub has_response: bool,
    pub response: String,
    /// How the child ended, in words.
    pub end: String,
    pub usage: Usage,
    pub tool_calls: u64,
    /// A model or backend failure that is the infrastructure's fault (class).
    pub infra: Option<String>,
    /// A failure of the run's configuration (`context-overflow`): a result, not retried.
    pub config: Option<String>,
    pub budget: Option<Exhausted>,
    /// The history's line for this child's end when the caller commits it with the stage's end
    /// (a stage's child whose judging waits for nothing, see [`super::stage::judging_waits`]).
    pub commit_line: Option<String>,
}

impl ChildReport {
    pub fn done(&self) -> bool {
        self.has_response && self.head.status.as_deref() == Some("done")
    }

    /// Why the child's work cannot be accepted, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if let Some(b) = &self.budget {
            return Some(format!("budget-exhausted: {b}"));
        }
        if self.infra.is_some() {
            return Some(self.end.clone());
        }
        if let Some(class) = &self.config {
            return Some(format!("{class}: {}", self.end));
        }
        if !self.has_response {
            return Some(format!(
                "no-response: child {} wrote no RESPONSE.md ({})",
                self.id, self.end
            ));
        }
        match self.head.status.as_deref() {
            Some("done") => None,
            Some(s) => Some(format!("child {} reported status: {s}", self.id)),
            None => Some(format!(
                "child {} wrote RESPONSE.md without a `status:` line",
                self.id
            )),
        }
    }
}

/// Bridges the session's progress into the run's history.
struct Events<'a> {
    run: &'a Run,
    child: &'a str,
    layers: Option<&'a Layers>,
}

impl Events<'_> {
    /// Records what the interface layers and the environment reported since the last call.
    fn flush(&self) {
        if let Some(l) = self.layers {
            for e in l.take_events() {
                self.run.emit(e);
            }
        }
        super::episode::flush(self.run);
    }
}

impl SessionObserver for Events<'_> {
    fn model_call(&self, resp: &ChatResponse) {
        self.run.emit(EventKind::ModelCall {
            child: self.child.to_string(),
            finish_reason: resp.finish_reason.clone(),
            tool_calls: resp.message.tool_calls.len() as u32,
            usage: resp.usage,
        });
    }

    fn tool_call(&self, call: &ToolCall, out: &ToolOutput, duration_ms: u64) {
        let mut args = call.arguments.clone();
        if args.len() > 200 {
            let mut cut = 200;
            while !args.is_char_boundary(cut) {
                cut -= 1;
            }
            args.truncate(cut);
            args.push('…');
        }
        self.run.emit(EventKind::ToolCall {
            child: self.child.to_string(),
            tool: call.name.clone(),
            ok: !out.is_error,
            exit_code: out.exit_code,
            duration_ms,
            summary: args,
        });
        self.flush();
    }

    fn call_failed(&self, class: &str, usage: &Usage) {
        self.run.emit(EventKind::ModelCall {
            child: self.child.to_string(),
            finish_reason: match class {
                "cancelled" => class.to_string(),
                _ => format!("error: {class}"),
            },
            tool_calls: 0,
            usage: *usage,
        });
    }

    /// The loop's own repairs are interventions of layer `loop` (older records: `interface`).
    fn interface(&self, note: &Note) {
        self.run.emit(EventKind::Intervention {
            child: self.child.to_string(),
            layer: "loop".into(),
            rule: note.kind.to_string(),
            before: String::new(),
            after: None,
            message: note.detail.clone(),
        });
    }

    fn retry(&self, note: &RetryNote) {
        self.run.emit(EventKind::Retry {
            child: self.child.to_string(),
            class: note.class.to_string(),
            attempt: note.attempt,
            delay_ms: note.delay.as_millis() as u64,
            error: note.error.clone(),
        });
    }
}

/// What this child may see: history is never visible; verifiers see no other child's folder;
/// State rules add hidden paths and per-role views.
fn tool_context(run: &Run, req: &Request<'_>) -> ToolContext {
    let own = format!("children/{}", req.id);
    let mut hidden: Vec<String> = vec!["history/".into()];
    hidden.extend(run.harness.state.hidden.iter().cloned());
    // Verifiers judge the work, never another child's transcript.
    if matches!(req.kind, Kind::Verifier { .. })
        || verifier_roles(req.stage).contains(&req.role.name.as_str())
    {
        hidden.push("children/".into());
    }
    let visible_only = run
        .harness
        .state
        .sees
        .iter()
        .find(|v| v.role == req.role.name)
        .map(|v| v.paths.clone());
    let mut ctx = ToolContext {
        workspace: req.root.to_path_buf(),
        hidden,
        visible_only,
        own_dir: own,
        confinement: run.confinement(req.root),
        shell_timeout: run.opts.shell_timeout,
        output_cap: run.opts.output_cap,
        shell: Default::default(),
    };
    ctx.confine_to_view();
    ctx
}

/// The embedding program's backend when it gave one, else the spec's.
async fn chat_backend(
    run: &Run,
    spec: &ModelSpec,
) -> Result<std::sync::Arc<dyn crate::model::ChatBackend>, crate::model::ModelError> {
    match &run.opts.chat_backend {
        Some(b) => Ok(b.clone()),
        None => run.backends.chat(spec).await,
    }
}

/// Runs one child to its end. Failures of the child are in the report; only a workspace that
/// cannot be written is an error.
pub async fn run(run: &Run, req: Request<'_>) -> Result<ChildReport, WorkspaceError> {
    let dir = req.root.join("children").join(&req.id);
    let brief = super::brief::compose(run, &req);
    // A child acting in an environment learns its tools and its current state last, after the
    // skills the procedural-skills layer retrieved for the task.
    let mut text = brief.task.clone();
    let task_tags: Vec<String> = run
        .task
        .config
        .metadata
        .get("tags")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    if let Some((note, names)) = interface::skills_note(
        &run.harness.layers,
        &run.harness_root,
        &run.task.instruction,
        &task_tags,
    ) {
        text = format!("{text}\n{note}");
        run.add_interface(&crate::record::InterfaceMetrics {
            skills_retrieved: names.len() as u64,
            interventions: 1,
            ..Default::default()
        });
        run.emit(EventKind::Intervention {
            child: req.id.clone(),
            layer: "procedural-skills".into(),
            rule: "retrieved".into(),
            before: String::new(),
            after: None,
            message: names.join(", "),
        });
    }
    if let Some(ep) = run.episode() {
        text = format!("{text}\n{}", ep.brief_note());
    }
    // `children/` is where children write: no link planted there is followed.
    let own = Path::new("children").join(&req.id);
    crate::workspace::beneath::write(req.root, &own.join("TASK.md"), text.as_bytes(), false)?;
    let spec = req
        .role
        .model
        .as_ref()
        .and_then(|m| m.parse::<ModelSpec>().ok())
        .unwrap_or_else(|| run.opts.model.clone());
    run.emit(EventKind::ChildStarted {
        child: req.id.clone(),
        stage: req.stage.name.clone(),
        role: req.role.name.clone(),
        model: spec.to_string(),
    });
    if req.root == run.ws.root {
        run.commit(&format!(
            "child {} started ({} for stage {})",
            req.id, req.role.name, req.stage.name
        ))?;
    }
    let response_file = dir.join("RESPONSE.md");
    let mut report = ChildReport {
        id: req.id.clone(),
        ..ChildReport::default()
    };
    let time_left = run
        .meter
        .time_left()
        .unwrap_or(run.opts.child_timeout)
        .min(run.opts.child_timeout);
    match &spec {
        ModelSpec::Command { template } => {
            let c = CommandChild {
                template,
                workspace: req.root,
                child_dir: &dir,
                task_text: &brief.agent_cli_text(run.harness.contract.brief),
                timeout: time_left,
                pass_env: &run.opts.settings.pass_env,
            };
            match command::run(&c).await {
                Ok(out) => {
                    report.usage = out.usage;
                    report.tool_calls = out.tool_calls;
                    run.meter.add_usage(&out.usage);
                    report.end = if out.timed_out {
                        format!("killed after {} s", time_left.as_secs())
                    } else {
                        format!(
                            "exited {}",
                            out.exit_code
                                .map_or("by a signal".into(), |c| c.to_string())
                        )
                    };
                }
                Err(e) => {
                    report.infra = Some("command".into());
                    report.end = format!("the agent command could not start: {e}");
                }
            }
        }
        _ => match chat_backend(run, &spec).await {
            Err(e) => {
                report.infra = Some(e.class().to_string());
                report.end = e.to_string();
            }
            Ok(backend) => {
                let ctx = tool_context(run, &req);
                let allowed = req.role.tools.clone();
                // `finish` whatever the role's tool list: every child must be able to stop.
                let mut builtin = tools::builtin_specs(allowed.as_deref());
                builtin.push(tools::finish::spec());
                let builtin = super::brief::tool_specs(run.harness.contract.brief, builtin);
                let mut mcp = Vec::new();
                // A server is the harness's code: it reads the harness folder besides what the
                // child may read.
                let mut server_confinement = ctx.confinement.clone();
                server_confinement.readable.push(run.harness_root.clone());
                for server in &run.harness.adapters.mcp_servers {
                    match McpClient::spawn(
                        &server.name,
                        &server.command,
                        req.root,
                        &server_confinement,
                    )
                    .await
                    {
                        Ok(c) => mcp.push(c),
                        Err(e) => run.emit(EventKind::Error {
                            class: "mcp".into(),
                            message: format!("MCP server {} did not start: {e}", server.name),
                        }),
                    }
                }
                let toolbox = ToolBox {
                    ctx,
                    builtin,
                    mcp,
                    env: run.episode(),
                };
                let model_name = match &spec {
                    ModelSpec::OpenAi { model } | ModelSpec::Anthropic { model } => model.clone(),
                    other => other.to_string(),
                };
                let sspec = SessionSpec {
                    id: req.id.clone(),
                    model: model_name,
                    system: brief.system.clone(),
                    task: text.clone(),
                    tool_choice: run.opts.settings.tool_choice(),
                    max_steps: run.opts.settings.max_steps,
                    max_tokens: run.opts.settings.max_tokens(),
                    temperature: run.opts.settings.temperature,
                    seed: Some(run.opts.seed),
                    retry: run.opts.settings.retry(),
                    context_window: match run.opts.settings.context_window {
                        Some(w) => Some(w),
                        None => backend.context_window().await,
                    },
                };
                if let Some(w) = sspec.context_window {
                    run.checked_window(w);
                }
                let layers = Layers::new(
                    &req.id,
                    &run.harness.layers,
                    toolbox.specs(),
                    toolbox.env.clone(),
                    run.opts.settings.max_steps,
                    req.root,
                    &toolbox.ctx.confinement,
                )
                .await;
                let obs = Events {
                    run,
                    child: &req.id,
                    layers: layers.as_ref(),
                };
                let transcript = dir.join("transcript.jsonl");
                let tally = Tally::default();
                let session = session::run(Session {
                    backend: backend.as_ref(),
                    spec: &sspec,
                    tools: &toolbox,
                    hooks: match &layers {
                        Some(l) => l,
                        None => &NoHooks,
                    },
                    observer: &obs,
                    meter: &run.meter,
                    transcript: &transcript,
                    response_file: &response_file,
                    tally: &tally,
                });
                // The wall time left, or, in a replay, the point where the recording was cut.
                let deadline = async {
                    tokio::select! {
                        () = tokio::time::sleep(time_left.max(Duration::from_secs(1))) => {}
                        () = backend.cut_off(&sspec.id) => {}
                    }
                };
                let out = match tokio::select! {
                    o = session => Some(o),
                    () = deadline => None,
                } {
                    Some(o) => o,
                    None => {
                        // Dropping the session closed its connection (a streamed generation
                        // stops there); the call it cut off still counts.
                        if let Some(u) = tally.cut_off() {
                            run.meter.add_usage(&u);
                            obs.call_failed("cancelled", &u);
                        }
                        let (usage, tool_calls) = tally.spent();
                        session::SessionResult {
                            end: End::Budget(Exhausted {
                                budget: "wall time",
                                limit: format!("{} s", time_left.as_secs()),
                                used: "all".into(),
                                request: None,
                            }),
                            usage,
                            tool_calls,
                        }
                    }
                };
                run.add_loop_repairs(tally.count("empty-answer"), tally.repairs());
                for m in toolbox.mcp {
                    m.shutdown().await;
                }
                obs.flush();
                if let Some(l) = &layers {
                    run.add_interface(&l.metrics());
                }
                // A layer's own part (the code verifier) failed: the infrastructure's fault.
                let layer_fault = layers.as_ref().and_then(Layers::fault);
                report.usage = out.usage;
                report.tool_calls = out.tool_calls;
                if let Some(f) = layer_fault {
                    run.emit(EventKind::Error {
                        class: "code-verifier".into(),
                        message: f.clone(),
                    });
                    report.infra = Some("code-verifier".into());
                    report.end = f;
                } else {
                    report.end = match out.end {
                        End::Finished(_) => "the model finished".into(),
                        End::MaxSteps => {
                            format!("stopped after {} steps", run.opts.settings.max_steps)
                        }
                        End::Budget(b) => {
                            run.emit(EventKind::BudgetHit {
                                budget: b.budget.to_string(),
                                limit: b.limit.clone(),
                                used: b.used.clone(),
                                request: b.request,
                            });
                            let s = b.to_string();
                            report.budget = Some(b);
                            s
                        }
                        End::Model(e) => {
                            run.emit(EventKind::Error {
                                class: e.class().to_string(),
                                message: e.to_string(),
                            });
                            if e.is_configuration() {
                                run.config_failure(e.class());
                                report.config = Some(e.class().to_string());
                            } else {
                                report.infra = Some(e.class().to_string());
                            }
                            e.to_string()
                        }
                    };
                }
            }
        },
    }
    if let Ok(text) = std::fs::read_to_string(&response_file) {
        report.has_response = true;
        report.head = response::parse(&text);
        report.response = text;
    }
    run.add_usage(req.parent, &report.usage, report.tool_calls);
    let status = match (report.has_response, &report.head.status) {
        (false, _) => ChildStatus::NoResponse,
        (true, None) => ChildStatus::Unknown,
        (true, Some(s)) => ChildStatus::from(s.clone()),
    };
    run.emit(EventKind::ChildFinished {
        child: req.id.clone(),
        status: status.clone(),
        reason: report.end.clone(),
        usage: report.usage,
        tool_calls: report.tool_calls,
    });
    if req.root == run.ws.root {
        let line = format!("child {} finished: {status}", req.id);
        if matches!(req.kind, Kind::Stage { .. }) && !super::stage::judging_waits(req.stage) {
            report.commit_line = Some(line);
        } else {
            run.commit(&line)?;
        }
    }
    Ok(report)
}

/// The roles named by verifier gates of a stage.
pub fn verifier_roles(stage: &Stage) -> Vec<&str> {
    stage
        .gates
        .iter()
        .filter_map(|g| match &g.kind {
            GateKind::Verifier { role } => Some(role.as_str()),
            _ => None,
        })
        .collect()
}

/// A candidate's child folder, relative to its root.
pub fn child_dir(root: &Path, id: &str) -> PathBuf {
    root.join("children").join(id)
}

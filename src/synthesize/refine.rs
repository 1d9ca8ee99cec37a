//! The refiner: the model that writes and rewrites the script (and the proposer's guidance)
//! from the failed steps the critic collected. What it is sent, and what is taken from its
//! answer: the first ```python block is the script, the first ```text block the guidance.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Target;
use super::critic::{Check, FailedStep};

/// What the refiner is asked to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// A first script, from nothing.
    New,
    /// The check accepted an illegal action (or the script failed): the script and the
    /// proposer's guidance.
    Both,
    /// The check was right: only the proposer's guidance.
    Proposer,
}

impl Ask {
    pub fn words(self) -> &'static str {
        match self {
            Ask::New => "new",
            Ask::Both => "check and proposer",
            Ask::Proposer => "proposer",
        }
    }
}

/// The protocol the script speaks, as the refiner is told it.
const PROTOCOL: &str = "The script is run once per episode with `python3`, as a long-lived \
process without network. It reads one JSON request per line on stdin and writes one JSON answer \
per line on stdout, with the request's `id`, flushing after each answer. It must not print \
anything else on stdout and must answer within 2 seconds. Requests:\n\
- `{\"id\": 1, \"method\": \"is_legal\", \"observation\": \"…\", \"tool\": \"…\", \"arguments\": {…}, \"action\": \"…\"}` \
→ `{\"id\": 1, \"legal\": true}` or `{\"id\": 1, \"legal\": false, \"reason\": \"…\"}` (`action` is the \
action text when the tool takes one string, else null; `tool` is the environment's tool as the \
player called it)\n\
- `{\"id\": 2, \"method\": \"legal_actions\", \"observation\": \"…\"}` → `{\"id\": 2, \"actions\": [\"…\"]}` \
(written exactly as the action tool accepts them)\n\
- `{\"id\": 3, \"method\": \"policy\", \"observation\": \"…\"}` → `{\"id\": 3, \"action\": \"…\"}`";

/// A working frame for the target's script: the reading and writing of the protocol done, the
/// function to write a stub. Small models that write the protocol themselves mostly get the I/O
/// wrong (a missing `import sys`, answers never printed), so every script starts from this.
pub fn frame(target: Target) -> &'static str {
    match target {
        Target::Verifier => {
            r#"import json, sys

def is_legal(observation, action):
    # Return (True, "") when the action is legal here, else (False, "why it is not").
    return True, ""

for line in sys.stdin:
    req = json.loads(line)
    action = req.get("action") or json.dumps(req.get("arguments"))
    ok, why = is_legal(req.get("observation") or "", action)
    answer = {"id": req["id"], "legal": bool(ok)}
    if not ok:
        answer["reason"] = str(why)
    print(json.dumps(answer), flush=True)
"#
        }
        Target::Filter => {
            r#"import json, sys

def legal_actions(observation):
    # Return every legal action here, each written exactly as the action tool accepts it.
    return []

for line in sys.stdin:
    req = json.loads(line)
    actions = legal_actions(req.get("observation") or "")
    print(json.dumps({"id": req["id"], "actions": [str(a) for a in actions]}), flush=True)
"#
        }
        Target::Policy => {
            r#"import json, sys

def policy(observation):
    # Return the action to take here, written exactly as the action tool accepts it.
    return ""

for line in sys.stdin:
    req = json.loads(line)
    action = policy(req.get("observation") or "")
    print(json.dumps({"id": req["id"], "action": str(action)}), flush=True)
"#
        }
    }
}

/// The system message.
pub fn system(target: Target) -> String {
    let what = match target {
        Target::Verifier => {
            "an action verifier: `is_legal` must say, from the observation alone, \
            whether the player's action is legal in the environment. A rejected action goes back \
            to the player with your `reason`, so make reasons specific."
        }
        Target::Filter => {
            "a legal-action lister: `legal_actions` must list, from the observation \
            alone, every legal action and no illegal one. An action outside the list goes back to \
            the player."
        }
        Target::Policy => {
            "a policy: `policy` must choose, from the observation alone, a legal \
            action that makes progress toward the goal; it replaces the player's action."
        }
    };
    format!(
        "You write code that makes an agent's actions legal in an environment (AutoHarness). You \
         write {what}\n\n{PROTOCOL}\n\nStart from this frame, which already reads the requests \
         and writes the answers; keep its reading and writing, and write the function (and any \
         helpers it needs):\n\n```python\n{}```\n\nAnswer with the whole script in one ```python block when you \
         are asked for the script, and with the player's guidance (a few sentences of advice that \
         the player will read before acting) in one ```text block when you are asked for \
         guidance. Nothing else is read.",
        frame(target)
    )
}

/// The user message of one refinement.
pub fn prompt(
    target: Target,
    ask: Ask,
    task: &str,
    script: &str,
    guidance: &str,
    failed: &[FailedStep],
) -> String {
    let mut s = String::new();
    s.push_str("# Refine the harness\n\n## The task the player is given\n\n");
    if task.contains("\n---\n") {
        s.push_str(
            "One of these, a different one in each episode; the script must handle each.\n\n",
        );
    }
    s.push_str(task.trim());
    s.push_str("\n\n");
    if ask == Ask::New {
        s.push_str(&format!(
            "## What to write\n\nWrite the first version of the script (method `{}`). Parse the \
             observation text robustly; when you cannot read it, answer conservatively.\n",
            target.method()
        ));
        if target != Target::Policy {
            s.push_str(
                "Also write the player's guidance: how to choose legal actions in this \
                 environment.\n",
            );
        }
        return s;
    }
    s.push_str("## The current script\n\n```python\n");
    s.push_str(script.trim_end());
    s.push_str("\n```\n\n");
    if target != Target::Policy {
        s.push_str("## The player's current guidance\n\n```text\n");
        s.push_str(if guidance.trim().is_empty() {
            "(none yet)"
        } else {
            guidance.trim()
        });
        s.push_str("\n```\n\n");
    }
    s.push_str(&format!(
        "## Failed steps (up to {})\n\n",
        super::critic::MAX_FAILED
    ));
    for (i, f) in failed.iter().enumerate() {
        s.push_str(&format!("### Step {}\n\n", i + 1));
        if f.check == Check::Crashed {
            s.push_str(&format!("The script failed: {}\n\n", f.why));
            continue;
        }
        s.push_str(&format!(
            "Observation:\n```\n{}\n```\nAction: `{}`\nWhy it failed: {}\nThe check: {}{}\n\n",
            f.observation.trim(),
            f.action,
            f.why,
            f.check.words(),
            if f.check_said.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.check_said)
            }
        ));
    }
    s.push_str("## What to write\n\n");
    s.push_str(match (ask, target) {
        (_, Target::Policy) => {
            "Rewrite the script so that its policy never chooses such an action. Answer with the whole script.\n"
        }
        (Ask::Both, _) => {
            "The script let an illegal action through, failed, or rejected actions until the \
             player gave up (a check that rejects legal actions ends the game too): rewrite the \
             script so that it rejects exactly the illegal actions, and rewrite the player's \
             guidance so that the player proposes legal ones. Answer with the whole script and \
             the whole guidance.\n"
        }
        _ => {
            "The script rejected these actions, rightly, but the player sent them anyway: rewrite \
             only the player's guidance so that it proposes legal actions. Answer with the whole \
             guidance.\n"
        }
    });
    s
}

/// The script and guidance in an answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub script: Option<String>,
    pub guidance: Option<String>,
}

/// The first fenced block of each kind (` ```python `/` ```py `; ` ```text `/` ```guidance `).
pub fn parse(text: &str) -> Answer {
    let mut a = Answer::default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let Some(info) = t.strip_prefix("```") else {
            continue;
        };
        let info = info.trim().to_ascii_lowercase();
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        match info.as_str() {
            "python" | "py" | "python3" if a.script.is_none() => a.script = Some(body),
            "text" | "guidance" | "txt" | "markdown" | "md" if a.guidance.is_none() => {
                a.guidance = Some(body.trim().to_string())
            }
            _ => {}
        }
    }
    a
}

/// Whether `script` parses as Python (`ast.parse`, which runs nothing): `Err` is the error.
pub fn syntax_check(script: &str) -> Result<(), String> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import ast, sys\ntry:\n    ast.parse(sys.stdin.read(), 'script')\nexcept SyntaxError as e:\n    print(f'line {e.lineno}: {e.msg}')\n    sys.exit(1)\n",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3 did not start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = child
                    .wait_with_output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .unwrap_or_default();
                return if status.success() {
                    Ok(())
                } else if out.is_empty() {
                    Err("python3 could not parse it".into())
                } else {
                    Err(out)
                };
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("python3 did not finish parsing it in 20 s".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_block_of_each_kind_is_taken() {
        let a = parse(
            "Here:\n```python\nprint(1)\n```\nand\n```text\nMove small disks.\n```\n```python\nprint(2)\n```\n",
        );
        assert_eq!(a.script.as_deref(), Some("print(1)\n"));
        assert_eq!(a.guidance.as_deref(), Some("Move small disks."));
        assert_eq!(parse("no code at all"), Answer::default());
    }

    #[test]
    fn every_frame_parses_and_answers_the_protocol() {
        for t in [Target::Verifier, Target::Filter, Target::Policy] {
            assert_eq!(syntax_check(frame(t)), Ok(()), "{t:?}");
            assert!(system(t).contains(frame(t)));
        }
        // The verifier's frame answers a request as the code-verifier layer expects.
        let mut child = Command::new("python3")
            .args(["-c", frame(Target::Verifier)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"{\"id\": 7, \"method\": \"is_legal\", \"observation\": \"o\", \"tool\": \"act\", \"arguments\": {}, \"action\": \"[A C]\"}\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "{\"id\": 7, \"legal\": true}\n"
        );
    }

    #[test]
    fn a_set_of_tasks_is_shown_whole_and_said_to_vary() {
        let one = prompt(Target::Verifier, Ask::New, "Play Hanoi.", "", "", &[]);
        assert!(one.contains("Play Hanoi.") && !one.contains("One of these"));
        let set = prompt(
            Target::Verifier,
            Ask::New,
            "Play Hanoi.\n\n---\n\nGuess the number.",
            "",
            "",
            &[],
        );
        assert!(set.contains("One of these, a different one in each episode"));
        assert!(set.contains("Play Hanoi.") && set.contains("Guess the number."));
    }

    #[test]
    fn scripts_that_do_not_parse_are_told_apart() {
        assert_eq!(syntax_check("x = 1\n"), Ok(()));
        let e = syntax_check("def f(:\n").unwrap_err();
        assert!(e.starts_with("line 1:"), "{e}");
    }
}

//! `astrid -p PROMPT`: one turn, no questions asked. Nobody can answer an approval request
//! here, so they are all denied unless `--yes` approves them (once each), and each decision
//! is reported on stderr.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context as _;
use astrid_types::wire::{AnsweredBy, ApprovalDecision, ApprovalRequest};
use tokio::signal::unix::{signal, SignalKind};

use super::turn::{self, Turn, TurnUi};
use super::Ctx;
use crate::approval_view::approval_line;
use crate::args::PromptArgs;
use crate::exit;
use crate::render::{emit, Renderer, TurnEvent};

pub async fn run(ctx: &Ctx, prompt: String, args: PromptArgs) -> anyhow::Result<ExitCode> {
    let input = join_prompt(&prompt, &read_piped_stdin()?);
    if input.trim().is_empty() {
        anyhow::bail!("the prompt is empty");
    }
    let ws = turn::workspace_dir(args.workspace.as_deref())?;
    let ws = ws.to_string_lossy().into_owned();

    let client = ctx.connect(true).await?;
    turn::grant_workspace(&client, &ctx.principal, &ws).await?;
    let mut approvals = client.register_approver().await?;
    let session = turn::open_session(&client, args.session.as_deref(), Some(&ws), true).await?;
    // Until here Ctrl-C simply ends the process; from now on it cancels the turn.
    let mut interrupts =
        signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?;

    let mut ui = HeadlessUi {
        yes: args.yes,
        renderer: Renderer::for_principal(&ctx.principal),
    };
    let t = Turn {
        client: &client,
        session_id: &session.id,
        input: &input,
        workspace: Some(&ws),
    };
    let result = turn::run_turn(t, &mut ui, &mut approvals, &mut interrupts, None).await;
    let session_line = format!("session: {}", session.label());
    let reply = match result.reply {
        Ok(r) => r,
        Err(e) => {
            emit(ui.renderer.finish(""));
            let text = crate::error_text(&e);
            eprintln!("error: {text}");
            if let Some(advice) = crate::advice::advise(&text, &ctx.principal) {
                eprintln!("{advice}");
            }
            eprintln!("{session_line}");
            return Ok(ExitCode::FAILURE);
        }
    };
    emit(ui.renderer.finish(&reply.answer));
    let code = if result.interrupted || reply.stop == "cancelled" {
        eprintln!("cancelled");
        ExitCode::from(exit::INTERRUPTED)
    } else if reply.stop == "max_steps" {
        eprintln!(
            "stopped after {} steps (the step limit) before the agent finished; continue with \
             --session {}",
            reply.steps, reply.session.id
        );
        ExitCode::from(exit::MAX_STEPS)
    } else if let Some(tool) = turn::imitated_tool_call(&reply.answer) {
        // The agent did not answer (see [`turn::imitated_tool_call`]): a script must not go
        // on as if it had.
        eprintln!("{}", no_answer_message(&tool));
        ExitCode::from(exit::NO_ANSWER)
    } else {
        ExitCode::SUCCESS
    };
    eprintln!("{session_line}");
    // The cancel we may have published must reach the daemon before we exit.
    let _ = client.flush().await;
    Ok(code)
}

/// What the user reads when the model wrote a tool call as its answer.
pub fn no_answer_message(tool: &str) -> String {
    format!(
        "error: the model did not answer: it ended the turn with a call to `{tool}` written as \
         text (the JSON above), and no tool ran for it. Small local models do this; try again \
         with a more direct prompt, or use a larger model (`astrid models`, `astrid init`)."
    )
}

/// The prompt, then a blank line, then what was piped in (if anything).
pub fn join_prompt(prompt: &str, stdin: &str) -> String {
    let piped = stdin.trim_end();
    if piped.trim().is_empty() {
        prompt.to_string()
    } else {
        format!("{}\n\n{piped}", prompt.trim_end())
    }
}

/// Everything on stdin when it is a pipe or a file; nothing when it is a terminal.
fn read_piped_stdin() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(String::new());
    }
    let mut bytes = Vec::new();
    match stdin.lock().read_to_end(&mut bytes) {
        Ok(_) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        // A closed stdin (e.g. `<&-`) is no input, not an error.
        Err(e) if e.raw_os_error() == Some(nix::libc::EBADF) => Ok(String::new()),
        Err(e) => Err(e).context("reading stdin"),
    }
}

/// The decision `-p` makes for an approval request, and the line it reports on stderr
/// (escaped: the request's text is the capsule's, not ours). `--yes` allows each prompt
/// once, never for the session or always.
pub fn headless_decision(req: &ApprovalRequest, yes: bool) -> (ApprovalDecision, String) {
    if yes {
        (
            ApprovalDecision::AllowOnce,
            format!("approved once (--yes): {}", approval_line(req)),
        )
    } else {
        (
            ApprovalDecision::Deny,
            format!(
                "denied: {} (headless; re-run with --yes to approve)",
                approval_line(req)
            ),
        )
    }
}

struct HeadlessUi {
    yes: bool,
    renderer: Renderer,
}

impl TurnUi for HeadlessUi {
    fn on_event(&mut self, ev: &TurnEvent) {
        emit(self.renderer.event(ev));
    }

    fn on_approval(&mut self, req: ApprovalRequest) -> Option<(u64, ApprovalDecision)> {
        let (decision, line) = headless_decision(&req, self.yes);
        emit(self.renderer.notice(&line));
        Some((req.id, decision))
    }

    fn on_line(&mut self, _line: String) -> Option<(u64, ApprovalDecision)> {
        None
    }

    /// Nobody reads a headless prompt: the daemon records every answer as automatic.
    fn answered_by(&self) -> AnsweredBy {
        if self.yes {
            AnsweredBy::AutoYes
        } else {
            AnsweredBy::AutoNo
        }
    }

    fn notice(&mut self, text: &str) {
        emit(self.renderer.notice(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use astrid_types::wire::{AlwaysOffer, ApprovalResource, ResourceKind};

    #[test]
    fn piped_input_follows_the_prompt_after_a_blank_line() {
        assert_eq!(
            join_prompt("write a commit message", "diff --git a/x b/x\n+y\n"),
            "write a commit message\n\ndiff --git a/x b/x\n+y"
        );
        assert_eq!(join_prompt("hello", ""), "hello");
        assert_eq!(join_prompt("hello", " \n\n"), "hello");
        assert_eq!(join_prompt("sum these\n", "1\n2"), "sum these\n\n1\n2");
    }

    #[test]
    fn a_written_tool_call_is_reported_as_no_answer() {
        let m = no_answer_message("fs_read");
        assert!(m.starts_with("error: the model did not answer"), "{m}");
        assert!(m.contains("`fs_read`") && m.contains("no tool ran"), "{m}");
    }

    #[test]
    fn headless_approvals_deny_unless_yes() {
        let req = ApprovalRequest {
            id: 9,
            principal: "default".into(),
            capsule: "tool-shell".into(),
            action: "process.spawn".into(),
            resource: ApprovalResource {
                kind: ResourceKind::ProcessExec,
                target: "rm\x1b[2K".into(),
            },
            detail: "the agent asked".into(),
            capsule_says: None,
            always: AlwaysOffer::NotOffered { why: "x".into() },
        };
        let (d, line) = headless_decision(&req, false);
        assert_eq!(d, ApprovalDecision::Deny);
        assert_eq!(
            line,
            "denied: process.spawn process:exec:rm\\x1b[2K for tool-shell (headless; re-run with --yes to approve)"
        );
        let (d, line) = headless_decision(&req, true);
        assert_eq!(d, ApprovalDecision::AllowOnce);
        assert_eq!(
            line,
            "approved once (--yes): process.spawn process:exec:rm\\x1b[2K for tool-shell"
        );
        let ui = HeadlessUi {
            yes: true,
            renderer: Renderer::new(),
        };
        assert_eq!(ui.answered_by(), AnsweredBy::AutoYes);
    }
}

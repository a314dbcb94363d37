//! `astrid chat` in line mode (pipes, `--plain`; the full-screen one is `crate::tui`). The decisions live in
//! `chat_state`; this file only moves lines between the terminal, the daemon and that state.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use astrid_client::{ApprovalStream, Client};
use astrid_types::wire::{AnsweredBy, ApprovalDecision, ApprovalRequest};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use super::chat_state::{
    parse_line, sessions_table, Approvals, ChatLine, Reaction, APPROVAL_QUESTION, HELP,
};
use super::turn::{self, SessionInfo, Turn, TurnUi};
use super::Ctx;
use crate::args::ChatArgs;
use crate::render::{emit, Renderer, Stream, TurnEvent};

const PROMPT: &str = "you> ";

pub async fn run(ctx: &Ctx, args: ChatArgs) -> anyhow::Result<ExitCode> {
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if terminal && !args.plain {
        return crate::tui::run(ctx, args, crate::started()).await;
    }
    let ws = turn::workspace_dir(args.workspace.as_deref())?
        .to_string_lossy()
        .into_owned();
    let client = ctx.connect(true).await?;
    turn::grant_workspace(&client, &ctx.principal, &ws).await?;
    let mut approvals = client.register_approver().await?;
    let session = turn::open_session(&client, args.session.as_deref(), Some(&ws), true).await?;
    // Until here Ctrl-C simply ends the process; from now on the chat handles it.
    let mut interrupts =
        signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?;
    let interactive = std::io::stdin().is_terminal();
    let mut chat = Chat {
        client,
        principal: ctx.principal.clone(),
        ws,
        session,
        ui: ChatUi {
            renderer: Renderer::for_principal(&ctx.principal),
            approvals: Approvals::new(args.yes, !interactive),
            interactive,
        },
        lines: stdin_lines(),
        interactive,
    };
    say(&format!(
        "session {} · workspace {}\n/help for commands, Ctrl-D to quit",
        chat.session.label(),
        chat.workspace()
    ));
    chat.run(&mut approvals, &mut interrupts).await?;
    say(&format!("session: {}", chat.session.label()));
    Ok(ExitCode::SUCCESS)
}

struct Chat {
    client: Client,
    principal: String,
    /// Where new sessions work: --workspace or the current directory.
    ws: String,
    session: SessionInfo,
    ui: ChatUi,
    lines: mpsc::UnboundedReceiver<String>,
    /// stdin is a terminal (which echoes what is typed); piped lines are echoed by us.
    interactive: bool,
}

impl Chat {
    fn workspace(&self) -> &str {
        self.session.workspace.as_deref().unwrap_or(&self.ws)
    }

    async fn run(
        &mut self,
        approvals: &mut ApprovalStream,
        interrupts: &mut Signal,
    ) -> anyhow::Result<()> {
        loop {
            let line = match self.ui.approvals.next_typed_ahead() {
                Some(line) => {
                    if !self.interactive {
                        prompt(PROMPT);
                        say(&line);
                    }
                    line
                }
                None => {
                    if !self.ui.approvals.asking() {
                        prompt(PROMPT);
                    }
                    tokio::select! {
                        biased;
                        _ = interrupts.recv() => {
                            say("\n(/quit or Ctrl-D to leave)");
                            continue;
                        }
                        req = approvals.next() => {
                            // Requests outside a turn come from background capsules.
                            let Some(req) = req else { anyhow::bail!("the daemon went away") };
                            say("");
                            let r = self.ui.approvals.arrived(req);
                            self.ui.react(r, &self.client).await?;
                            continue;
                        }
                        line = self.lines.recv() => match line {
                            Some(line) => {
                                if !self.interactive {
                                    say(&line);
                                }
                                line
                            }
                            None => {
                                say("");
                                return Ok(());
                            }
                        },
                    }
                }
            };
            if self.ui.approvals.asking() {
                let r = self.ui.approvals.line(line);
                self.ui.react(r, &self.client).await?;
                continue;
            }
            match parse_line(&line) {
                ChatLine::Empty => {}
                ChatLine::Quit => return Ok(()),
                ChatLine::Help => say(HELP),
                ChatLine::Invalid(msg) => say(&msg),
                ChatLine::Sessions => self.report(self.sessions().await),
                ChatLine::Resume(target) => {
                    let r = self.switch(Some(&target), false).await;
                    self.report(r);
                }
                ChatLine::New(name) => {
                    let r = self.switch(name.as_deref(), true).await;
                    self.report(r);
                }
                ChatLine::Prompt(text) => self.turn(&text, approvals, interrupts).await,
            }
        }
    }

    async fn turn(&mut self, text: &str, approvals: &mut ApprovalStream, interrupts: &mut Signal) {
        let ws = self.workspace().to_string();
        let t = Turn {
            client: &self.client,
            session_id: &self.session.id,
            input: text,
            workspace: Some(&ws),
        };
        self.ui.renderer = Renderer::new();
        let result = turn::run_turn(
            t,
            &mut self.ui,
            approvals,
            interrupts,
            Some(&mut self.lines),
        )
        .await;
        if self.ui.approvals.expire() > 0 {
            emit(
                self.ui
                    .renderer
                    .notice("(the approval request ended with the turn)"),
            );
        }
        match result.reply {
            Ok(reply) => {
                emit(self.ui.renderer.finish(&reply.answer));
                match reply.stop.as_str() {
                    "max_steps" => say(&format!(
                        "(stopped after {} steps, the step limit; say \"continue\" to go on)",
                        reply.steps
                    )),
                    "cancelled" => say("(cancelled)"),
                    _ => {}
                }
            }
            Err(e) => {
                emit(self.ui.renderer.finish(""));
                let text = crate::error_text(&e);
                say(&format!("error: {text}"));
                if let Some(advice) = crate::advice::advise(&text, &self.principal) {
                    say(&advice);
                }
            }
        }
    }

    async fn sessions(&self) -> anyhow::Result<String> {
        let sessions = turn::list_sessions(&self.client).await?;
        Ok(sessions_table(&sessions, &self.session.id)
            .trim_end()
            .to_string())
    }

    async fn switch(&mut self, target: Option<&str>, create: bool) -> anyhow::Result<String> {
        let ws = create.then_some(self.ws.as_str());
        let session = turn::open_session(&self.client, target, ws, create).await?;
        // A resumed session keeps working where it was started; make sure it still may.
        if let Some(w) = session.workspace.as_deref().filter(|w| *w != self.ws) {
            turn::grant_workspace(&self.client, &self.principal, w).await?;
        }
        let verb = if create && session.messages == 0 {
            "new session"
        } else {
            "resumed"
        };
        self.session = session;
        Ok(format!(
            "{verb} {} · {} messages · workspace {}",
            self.session.label(),
            self.session.messages,
            self.workspace()
        ))
    }

    fn report(&self, r: anyhow::Result<String>) {
        match r {
            Ok(text) => say(&text),
            Err(e) => say(&format!("error: {}", crate::error_text(&e))),
        }
    }
}

struct ChatUi {
    renderer: Renderer,
    approvals: Approvals,
    /// See [`Chat::interactive`].
    interactive: bool,
}

impl ChatUi {
    fn show(&mut self, r: &Reaction) {
        for line in &r.show {
            emit(self.renderer.notice(line));
        }
        if r.queued && self.interactive {
            emit(
                self.renderer
                    .notice("(the agent is still working; that goes next)"),
            );
        }
        if r.ask {
            prompt(APPROVAL_QUESTION);
        }
    }

    async fn react(&mut self, r: Reaction, client: &Client) -> anyhow::Result<()> {
        self.show(&r);
        if let Some((id, decision)) = r.answer {
            client
                .answer_approval_by(id, decision, self.answered_by())
                .await?;
        }
        Ok(())
    }
}

impl TurnUi for ChatUi {
    fn on_event(&mut self, ev: &TurnEvent) {
        emit(self.renderer.event(ev));
    }

    fn on_approval(&mut self, req: ApprovalRequest) -> Option<(u64, ApprovalDecision)> {
        let r = self.approvals.arrived(req);
        self.show(&r);
        r.answer
    }

    fn on_line(&mut self, line: String) -> Option<(u64, ApprovalDecision)> {
        let r = self.approvals.line(line);
        self.show(&r);
        r.answer
    }

    fn answered_by(&self) -> AnsweredBy {
        self.approvals.answered_by()
    }

    fn notice(&mut self, text: &str) {
        emit(self.renderer.notice(text));
    }
}

/// Lines from stdin, read on a thread of their own (reading blocks); the channel closes at EOF.
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        loop {
            let mut line = String::new();
            match lock.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

fn say(text: &str) {
    emit(vec![(Stream::Out, format!("{text}\n"))]);
}

fn prompt(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

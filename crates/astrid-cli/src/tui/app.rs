//! The full-screen `astrid chat`: the terminal, the daemon and the state joined in one loop.
//! Keys come from a thread (crossterm's reader blocks); the turn's events, approval requests
//! and the turn's reply come from the daemon connection. Every decision is the state's
//! (`super::state`); this file only carries out its [`Effect`]s and redraws.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use astrid_client::{ApprovalStream, Client, ClientError, ElicitStream, Subscription};
use astrid_types::wire::AnsweredBy;
use ratatui::crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste, Event};
use ratatui::crossterm::execute;
use ratatui::DefaultTerminal;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::state::{ChatState, Effect};
use super::theme::Theme;
use super::view;
use crate::commands::turn::{self, SessionInfo};
use crate::commands::Ctx;
use crate::render::TurnEvent;

/// How often the spinner moves while the agent works.
const TICK: Duration = Duration::from_millis(120);

type PendingTurn = Pin<Box<dyn Future<Output = Result<Vec<u8>, ClientError>>>>;

/// Restores the terminal however the chat ends (ratatui's own panic hook covers panics).
struct Screen {
    terminal: DefaultTerminal,
}

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        let terminal = ratatui::try_init().context("setting up the terminal")?;
        // Pasted text arrives as one event, so a pasted newline does not send the message.
        execute!(std::io::stdout(), EnableBracketedPaste).context("setting up the terminal")?;
        Ok(Screen { terminal })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(std::io::stdout(), DisableBracketedPaste);
        ratatui::restore();
    }
}

struct App<'a> {
    client: Client,
    ctx: &'a Ctx,
    /// Where new sessions work: --workspace or the current directory.
    ws: String,
    answered_by: AnsweredBy,
    state: ChatState,
    theme: Theme,
    events: Option<Subscription>,
    /// Capsules' `astrid:uplink` notices for this principal.
    notices: Option<Subscription>,
    /// Capsules' `astrid:elicit` questions for this principal.
    questions: Option<ElicitStream>,
    turn: Option<PendingTurn>,
}

pub async fn run(
    ctx: &Ctx,
    args: crate::args::ChatArgs,
    started: Instant,
) -> anyhow::Result<ExitCode> {
    let ws = turn::workspace_dir(args.workspace.as_deref())?
        .to_string_lossy()
        .into_owned();
    // Connecting may start the daemon and say so: before the screen is taken over.
    let client = ctx.connect(true).await?;
    let mut screen = Screen::enter()?;
    let mut app = App {
        client,
        ctx,
        ws,
        answered_by: if args.yes {
            AnsweredBy::AutoYes
        } else {
            AnsweredBy::Person
        },
        state: ChatState::new(&ctx.principal, args.yes),
        theme: Theme::from_env(),
        events: None,
        notices: None,
        questions: None,
        turn: None,
    };
    app.state.notice("opening the session…");
    app.draw(&mut screen)?;
    let first_paint = started.elapsed();
    let keys = key_reader();
    let setup = app.set_up(args.session.as_deref()).await;
    let mut approvals = match setup {
        Ok(a) => Some(a),
        Err(e) => {
            app.state.error(crate::error_text(&e));
            None
        }
    };
    app.draw(&mut screen)?;
    record_timings(first_paint, started.elapsed());
    let result = app.run(&mut screen, keys, approvals.as_mut()).await;
    drop(screen);
    result?;
    if let Some(s) = &app.state.session {
        outln!("session: {}", s.label());
    }
    Ok(ExitCode::SUCCESS)
}

/// With `ASTRID_CHAT_TIMINGS=<file>`, the time to the first frame and to the ready session
/// are appended to the file as one JSON line (for docs/PERFORMANCE.md; see
/// benches/examples/chat_paint.rs).
fn record_timings(first_paint: Duration, ready: Duration) {
    let Some(path) = std::env::var_os("ASTRID_CHAT_TIMINGS") else {
        return;
    };
    let line = json!({
        "first_paint_us": first_paint.as_micros() as u64,
        "ready_us": ready.as_micros() as u64,
    });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Terminal events, read on a thread of their own; the channel closes if reading fails.
fn key_reader() -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    rx
}

impl App<'_> {
    fn draw(&mut self, screen: &mut Screen) -> anyhow::Result<()> {
        let size = screen
            .terminal
            .size()
            .context("reading the terminal size")?;
        // A page-scroll keeps a few rows of context.
        self.state.page = usize::from(size.height.saturating_sub(8)).max(1);
        let now = now_ms();
        let (state, theme) = (&self.state, &self.theme);
        screen
            .terminal
            .draw(|f| view::draw(f, state, theme, now))
            .context("drawing the chat")?;
        Ok(())
    }

    /// The workspace grant, the approver, the session and its history, the model's name.
    async fn set_up(&mut self, session: Option<&str>) -> anyhow::Result<ApprovalStream> {
        turn::grant_workspace(&self.client, &self.ctx.principal, &self.ws).await?;
        let approvals = self.client.register_approver().await?;
        self.notices = Some(
            self.client
                .subscribe(astrid_types::uplink::NOTICE_TOPIC)
                .await?,
        );
        // A person types here, and a typed secret is drawn masked and sent to the daemon only.
        self.questions = Some(self.client.register_elicitor(true).await?);
        self.state.transcript.entries.clear();
        self.open(session.map(str::to_string), true).await?;
        self.state.model = self.model().await;
        Ok(approvals)
    }

    async fn run(
        &mut self,
        screen: &mut Screen,
        mut keys: mpsc::UnboundedReceiver<Event>,
        mut approvals: Option<&mut ApprovalStream>,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(TICK);
        loop {
            let effects = tokio::select! {
                ev = keys.recv() => match ev {
                    Some(Event::Key(k)) => self.state.on_key(k),
                    Some(Event::Paste(text)) => {
                        self.state.on_paste(&text);
                        Vec::new()
                    }
                    Some(_) => Vec::new(), // a resize: the redraw below fits the new size
                    None => vec![Effect::Quit],
                },
                ev = next_event(&mut self.events) => {
                    match ev {
                        Some(payload) => {
                            if let Some(ev) = TurnEvent::parse(&payload) {
                                self.state.on_turn_event(&ev);
                            }
                        }
                        None => self.events = None,
                    }
                    Vec::new()
                }
                ev = next_event(&mut self.notices) => {
                    match ev {
                        Some(payload) => self.state.capsule_notice(&payload),
                        None => self.notices = None,
                    }
                    Vec::new()
                }
                q = next_question(&mut self.questions) => {
                    match q {
                        Some(q) => self.state.questions.arrived(q),
                        None => self.questions = None,
                    }
                    Vec::new()
                }
                req = next_approval(&mut approvals) => match req {
                    Some(req) => self.state.approval_arrived(req),
                    None => {
                        approvals = None;
                        self.state.daemon_gone("connection closed");
                        self.turn = None;
                        Vec::new()
                    }
                },
                reply = next_reply(&mut self.turn) => {
                    self.turn = None;
                    let reply = reply
                        .map_err(|e| turn::request_error("agent.v1.turn", e))
                        .and_then(|b| turn::parse_reply(&b, "agent"))
                        .map_err(|e| crate::error_text(&e));
                    self.state.turn_finished(reply)
                }
                _ = tick.tick(), if self.state.running() => {
                    self.state.on_tick();
                    Vec::new()
                }
            };
            let mut queue = effects;
            while !queue.is_empty() {
                let mut next = Vec::new();
                for effect in queue {
                    if effect == Effect::Quit {
                        // A cancel we published must reach the daemon before we go.
                        let _ = self.client.flush().await;
                        return Ok(());
                    }
                    next.extend(self.apply(effect).await);
                }
                queue = next;
            }
            self.draw(screen)?;
        }
    }

    /// Carries out one effect; what comes of it goes back into the state.
    async fn apply(&mut self, effect: Effect) -> Vec<Effect> {
        match effect {
            Effect::SendTurn(input) => match self.send_turn(&input).await {
                Ok(pending) => {
                    self.turn = Some(pending);
                    Vec::new()
                }
                Err(e) => self.state.turn_finished(Err(crate::error_text(&e))),
            },
            Effect::Cancel => {
                if let Some(s) = &self.state.session {
                    let topic = format!("agent.v1.cancel.{}", s.id);
                    if let Err(e) = self.client.publish(&topic, Vec::new()).await {
                        self.state.error(format!("cancelling the turn: {e}"));
                    }
                }
                Vec::new()
            }
            Effect::Answer(id, decision) => {
                if let Err(e) = self
                    .client
                    .answer_approval_by(id, decision, self.answered_by)
                    .await
                {
                    self.state.error(format!("answering the approval: {e}"));
                }
                Vec::new()
            }
            Effect::Elicit(id, answer) => {
                if let Err(e) = self.client.answer_elicitation(id, answer).await {
                    self.state.error(format!("answering the question: {e}"));
                }
                Vec::new()
            }
            Effect::ListSessions => {
                match self.sessions().await {
                    Ok(list) => self.state.sessions_listed(list),
                    Err(e) => self.state.error(crate::error_text(&e)),
                }
                Vec::new()
            }
            Effect::OpenSession { target, create } => {
                if let Err(e) = self.open(target, create).await {
                    self.state.error(crate::error_text(&e));
                }
                Vec::new()
            }
            Effect::Quit => Vec::new(),
        }
    }

    async fn send_turn(&mut self, input: &str) -> anyhow::Result<PendingTurn> {
        let session = self
            .state
            .session
            .clone()
            .context("no session is open: /new starts one")?;
        let ws = session.workspace.clone().unwrap_or_else(|| self.ws.clone());
        let body = json!({"session": session.id, "input": input, "workspace": ws});
        let pending = self
            .client
            .send_request("agent.v1.turn", body.to_string(), turn::TURN_TIMEOUT)
            .await?;
        Ok(Box::pin(pending.wait()))
    }

    async fn sessions(&self) -> anyhow::Result<Vec<SessionInfo>> {
        turn::list_sessions(&self.client).await
    }

    /// Opens a session (by id or name, or a new one), subscribes to its events and shows
    /// its history.
    async fn open(&mut self, target: Option<String>, create: bool) -> anyhow::Result<()> {
        let ws = create.then_some(self.ws.as_str());
        let info = turn::open_session(&self.client, target.as_deref(), ws, create).await?;
        // A resumed session keeps working where it was started; make sure it still may.
        if let Some(w) = info.workspace.as_deref().filter(|w| *w != self.ws) {
            turn::grant_workspace(&self.client, &self.ctx.principal, w).await?;
        }
        // Subscribed before any turn of this session is sent, so no event can be missed.
        let events = self
            .client
            .subscribe(&format!("agent.v1.event.{}", info.id))
            .await?;
        let history = self.history(&info.id).await?;
        self.events = Some(events);
        let resumed = !create || info.messages > 0;
        self.state.session_opened(info, &history, resumed);
        Ok(())
    }

    async fn history(&self, id: &str) -> anyhow::Result<Vec<Value>> {
        #[derive(Deserialize)]
        struct History {
            messages: Vec<Value>,
        }
        let reply = self
            .client
            .request(
                "session.v1.history",
                json!({"id": id}).to_string(),
                turn::SESSION_TIMEOUT,
            )
            .await
            .map_err(|e| turn::request_error("session.v1.history", e))?;
        let h: History = turn::parse_reply(&reply, "session")?;
        Ok(h.messages)
    }

    /// `provider · model` from the registry; `None` when it cannot say.
    async fn model(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Current {
            provider: String,
            model: Option<String>,
        }
        let reply = self
            .client
            .request("registry.v1.current", "{}", turn::SESSION_TIMEOUT)
            .await
            .ok()?;
        let c: Current = serde_json::from_slice(&reply).ok()?;
        Some(format!(
            "{} · {}",
            c.provider,
            c.model.as_deref().unwrap_or("default model")
        ))
    }
}

async fn next_event(sub: &mut Option<Subscription>) -> Option<Vec<u8>> {
    match sub {
        Some(s) => s.next().await.map(|m| m.payload),
        None => std::future::pending().await,
    }
}

async fn next_question(
    questions: &mut Option<ElicitStream>,
) -> Option<astrid_types::elicit::ElicitRequest> {
    match questions {
        Some(q) => q.next().await,
        None => std::future::pending().await,
    }
}

async fn next_approval(
    approvals: &mut Option<&mut ApprovalStream>,
) -> Option<astrid_types::wire::ApprovalRequest> {
    match approvals {
        Some(a) => a.next().await,
        None => std::future::pending().await,
    }
}

async fn next_reply(turn: &mut Option<PendingTurn>) -> Result<Vec<u8>, ClientError> {
    match turn {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

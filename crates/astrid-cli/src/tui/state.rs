//! Everything the chat screen decides, without a terminal or a daemon: what a key does, what
//! an event of the turn changes, when an approval is asked and how it is answered, what the
//! session picker shows. The driver (`super::app`) feeds it keys and daemon messages and
//! carries out the [`Effect`]s it returns; the view (`super::view`) only reads it.

use std::collections::VecDeque;

use astrid_types::wire::{AlwaysOffer, ApprovalDecision, ApprovalRequest};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde_json::Value;

use super::editor::Editor;
use super::transcript::{Entry, ToolEntry, Transcript};
use crate::approval_view::approval_line;
use crate::commands::agent::no_answer_message;
use crate::commands::chat_state::{parse_line, ChatLine, HELP};
use crate::commands::turn::{imitated_tool_call, SessionInfo, TurnReply};
use crate::render::TurnEvent;

/// What the driver must do for the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send `agent.v1.turn` with this input on the current session.
    SendTurn(String),
    /// Publish `agent.v1.cancel.<session>`.
    Cancel,
    Answer(u64, ApprovalDecision),
    /// Answer a capsule's question (`astrid:elicit`).
    Elicit(u64, astrid_types::elicit::ElicitAnswer),
    /// `session.v1.list`, then [`ChatState::sessions_listed`].
    ListSessions,
    /// `session.v1.open` (and its history), then [`ChatState::session_opened`].
    OpenSession {
        target: Option<String>,
        create: bool,
    },
    Quit,
}

/// The choices of the approval dialog, left to right.
pub const CHOICES: [ApprovalDecision; 4] = [
    ApprovalDecision::AllowOnce,
    ApprovalDecision::AllowSession,
    ApprovalDecision::AllowAlways,
    ApprovalDecision::Deny,
];
/// Deny is what Enter does until the user picks something else.
const DEFAULT_CHOICE: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle,
    Running { step: u64, cancelling: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Daemon {
    Connected,
    Gone(String),
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

#[derive(Debug)]
pub struct Picker {
    pub sessions: Vec<SessionInfo>,
    pub selected: usize,
}

#[derive(Debug)]
pub struct ChatState {
    pub principal: String,
    /// `provider · model`, once the registry said.
    pub model: Option<String>,
    pub session: Option<SessionInfo>,
    pub transcript: Transcript,
    pub editor: Editor,
    pub tokens: Tokens,
    pub daemon: Daemon,
    pub phase: Phase,
    /// Requests waiting for the user, oldest first; the first is the open dialog.
    pub approvals: VecDeque<ApprovalRequest>,
    /// Capsules' questions, shown after any approval.
    pub questions: super::question::Questions,
    /// Index into [`CHOICES`] of the highlighted button.
    pub choice: usize,
    pub picker: Option<Picker>,
    /// Rows scrolled up from the bottom of the transcript (0 follows new text).
    pub scroll: usize,
    /// Rows a page-scroll moves; the driver sets it from the terminal's size.
    pub page: usize,
    /// Tool calls show their arguments and output in full.
    pub tools_expanded: bool,
    /// Spinner frame while a turn runs.
    pub tick: usize,
    /// Messages typed while a turn runs; sent one by one after it.
    pub queued: VecDeque<String>,
    /// Answer every approval request "once" without asking (`--yes`).
    auto_yes: bool,
    /// A Ctrl-C on an empty editor with no turn running; a second one quits.
    quit_armed: bool,
    /// Where the running turn's entries start in the transcript.
    turn_start: usize,
}

impl ChatState {
    pub fn new(principal: &str, auto_yes: bool) -> Self {
        ChatState {
            principal: principal.to_string(),
            model: None,
            session: None,
            transcript: Transcript::default(),
            editor: Editor::new(),
            tokens: Tokens::default(),
            daemon: Daemon::Connected,
            phase: Phase::Idle,
            approvals: VecDeque::new(),
            questions: Default::default(),
            choice: DEFAULT_CHOICE,
            picker: None,
            scroll: 0,
            page: 10,
            tools_expanded: false,
            tick: 0,
            queued: VecDeque::new(),
            auto_yes,
            quit_armed: false,
            turn_start: 0,
        }
    }

    pub fn running(&self) -> bool {
        matches!(self.phase, Phase::Running { .. })
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        self.transcript.push(Entry::Notice(text.into()));
        self.scroll = 0;
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.transcript.push(Entry::Error(text.into()));
        self.scroll = 0;
    }

    /// A notice a capsule sent the principal's frontends (`astrid:uplink`). A payload that
    /// is not a notice is dropped: only the kernel publishes on the topic, so one means a
    /// daemon of another version, not words to show.
    pub fn capsule_notice(&mut self, payload: &[u8]) {
        if let Ok(n) = serde_json::from_slice::<astrid_types::uplink::Notice>(payload) {
            self.transcript.push(Entry::CapsuleNotice(n));
            self.scroll = 0;
        }
    }

    // ---- keys -------------------------------------------------------------------------

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return self.interrupt();
        }
        self.quit_armed = false;
        if !self.approvals.is_empty() && !self.auto_yes {
            return self.dialog_key(key);
        }
        if !self.questions.is_empty() {
            return match self.questions.key(key) {
                Some((effect, notice)) => {
                    self.notice(notice);
                    vec![effect]
                }
                None => Vec::new(),
            };
        }
        if self.picker.is_some() {
            return self.picker_key(key);
        }
        if matches!(self.daemon, Daemon::Gone(_)) {
            // Nothing can be sent; only leaving makes sense.
            return match key.code {
                KeyCode::Char('d') if ctrl => vec![Effect::Quit],
                KeyCode::Esc | KeyCode::Enter => vec![Effect::Quit],
                _ => Vec::new(),
            };
        }
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        match key.code {
            KeyCode::Enter if alt || shift => self.editor.insert_char('\n'),
            KeyCode::Char('j') if ctrl => self.editor.insert_char('\n'),
            KeyCode::Enter => return self.submit(),
            KeyCode::Char('d') if ctrl => {
                if self.editor.is_empty() {
                    return vec![Effect::Quit];
                }
                self.editor.delete();
            }
            KeyCode::Char('o') if ctrl => self.tools_expanded = !self.tools_expanded,
            KeyCode::Char('s') if ctrl => return self.open_picker(),
            KeyCode::Char('l') if ctrl => self.scroll = 0,
            KeyCode::Char('a') if ctrl => self.editor.home(),
            KeyCode::Char('e') if ctrl => self.editor.end(),
            KeyCode::Char('u') if ctrl => self.editor.kill_to_start(),
            KeyCode::Char('k') if ctrl => self.editor.kill_to_end(),
            KeyCode::Char('w') if ctrl => self.editor.kill_word(),
            KeyCode::Char(c) if !ctrl => self.editor.insert_char(c),
            KeyCode::Tab => self.editor.insert_str("    "),
            KeyCode::Backspace => self.editor.backspace(),
            KeyCode::Delete => self.editor.delete(),
            KeyCode::Left => self.editor.left(),
            KeyCode::Right => self.editor.right(),
            KeyCode::Home => self.editor.home(),
            KeyCode::End => self.editor.end(),
            KeyCode::Up => self.editor.up(),
            KeyCode::Down => self.editor.down(),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_add(self.page.max(1)),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(self.page.max(1)),
            _ => {}
        }
        Vec::new()
    }

    pub fn on_paste(&mut self, text: &str) {
        if !self.questions.is_empty() && self.approvals.is_empty() {
            self.questions.paste(text);
        } else if self.approvals.is_empty() && self.picker.is_none() {
            self.editor.insert_str(text);
        }
    }

    /// Ctrl-C: denies an open approval and cancels the turn; a second one while the turn
    /// is still ending quits. With no turn: clears the editor, then quits on a second press.
    fn interrupt(&mut self) -> Vec<Effect> {
        match self.phase {
            Phase::Running {
                cancelling: true, ..
            } => vec![Effect::Quit],
            Phase::Running { step, .. } => {
                // The cancel goes first: the daemon handles our frames in order, so the agent
                // has it queued before the denial lets its tool call return, and stops there
                // instead of asking the model again.
                let mut effects = vec![Effect::Cancel];
                effects.extend(
                    self.approvals
                        .drain(..)
                        .map(|r| Effect::Answer(r.id, ApprovalDecision::Deny)),
                );
                self.phase = Phase::Running {
                    step,
                    cancelling: true,
                };
                self.queued.clear();
                self.notice("cancelling the turn… (Ctrl-C again to quit at once)");
                effects
            }
            Phase::Idle => {
                if self.picker.take().is_some() {
                    return Vec::new();
                }
                if !self.editor.is_empty() {
                    self.editor.clear();
                    return Vec::new();
                }
                if self.quit_armed {
                    return vec![Effect::Quit];
                }
                self.quit_armed = true;
                self.notice("Ctrl-C again (or Ctrl-D) to quit");
                Vec::new()
            }
        }
    }

    fn submit(&mut self) -> Vec<Effect> {
        let text = self.editor.take();
        self.scroll = 0;
        match parse_line(&text) {
            ChatLine::Empty => Vec::new(),
            ChatLine::Quit => vec![Effect::Quit],
            ChatLine::Help => {
                self.notice(format!("{HELP}\n{KEYS_HELP}"));
                Vec::new()
            }
            ChatLine::Invalid(msg) => {
                self.error(msg);
                Vec::new()
            }
            ChatLine::Sessions => self.open_picker(),
            ChatLine::Resume(target) => self.switch(Some(target), false),
            ChatLine::New(name) => self.switch(name, true),
            ChatLine::Prompt(p) => {
                if self.running() {
                    self.queued.push_back(p);
                    self.notice("(the agent is still working; that goes next)");
                    return Vec::new();
                }
                self.start_turn(p)
            }
        }
    }

    fn start_turn(&mut self, input: String) -> Vec<Effect> {
        self.turn_start = self.transcript.entries.len();
        self.transcript.push(Entry::User(input.clone()));
        self.phase = Phase::Running {
            step: 0,
            cancelling: false,
        };
        self.scroll = 0;
        vec![Effect::SendTurn(input)]
    }

    fn open_picker(&mut self) -> Vec<Effect> {
        if self.running() {
            self.error("a turn is running: wait for it or cancel it (Ctrl-C) before switching");
            return Vec::new();
        }
        vec![Effect::ListSessions]
    }

    fn switch(&mut self, target: Option<String>, create: bool) -> Vec<Effect> {
        if self.running() {
            self.error("a turn is running: wait for it or cancel it (Ctrl-C) before switching");
            return Vec::new();
        }
        vec![Effect::OpenSession { target, create }]
    }

    fn dialog_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let decision = match key.code {
            KeyCode::Char('o' | 'O' | 'y' | 'Y') => Some(ApprovalDecision::AllowOnce),
            KeyCode::Char('s' | 'S') => Some(ApprovalDecision::AllowSession),
            KeyCode::Char('a' | 'A') => Some(ApprovalDecision::AllowAlways),
            KeyCode::Char('d' | 'D' | 'n' | 'N') | KeyCode::Esc => Some(ApprovalDecision::Deny),
            KeyCode::Enter => Some(CHOICES[self.choice]),
            KeyCode::Left | KeyCode::BackTab => {
                self.choice = (self.choice + CHOICES.len() - 1) % CHOICES.len();
                None
            }
            KeyCode::Right | KeyCode::Tab => {
                self.choice = (self.choice + 1) % CHOICES.len();
                None
            }
            _ => None,
        };
        match decision {
            Some(d) => self.answer_front(d),
            None => Vec::new(),
        }
    }

    fn answer_front(&mut self, decision: ApprovalDecision) -> Vec<Effect> {
        let Some(req) = self.approvals.pop_front() else {
            return Vec::new();
        };
        self.choice = DEFAULT_CHOICE;
        let verdict = match (decision, &req.always) {
            (ApprovalDecision::AllowOnce, _) => "allowed once",
            (ApprovalDecision::AllowSession, _) => "allowed for this session",
            (ApprovalDecision::AllowAlways, AlwaysOffer::Token { .. }) => "allowed always",
            (ApprovalDecision::AllowAlways, AlwaysOffer::Consent { .. }) => {
                "allowed always (consent remembered)"
            }
            (ApprovalDecision::AllowAlways, AlwaysOffer::NotOffered { .. }) => {
                "allowed once (always is not offered for this)"
            }
            (ApprovalDecision::Deny, _) => "denied",
        };
        self.notice(format!("{verdict}: {}", approval_line(&req)));
        vec![Effect::Answer(req.id, decision)]
    }

    fn picker_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(p) = self.picker.as_mut() else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => p.selected = p.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                p.selected = (p.selected + 1).min(p.sessions.len().saturating_sub(1));
            }
            KeyCode::Enter => {
                let target = p.sessions.get(p.selected).map(|s| s.id.clone());
                self.picker = None;
                if let Some(id) = target {
                    return self.switch(Some(id), false);
                }
            }
            KeyCode::Char('n') => {
                self.picker = None;
                return self.switch(None, true);
            }
            KeyCode::Esc | KeyCode::Char('q') => self.picker = None,
            _ => {}
        }
        Vec::new()
    }

    // ---- the daemon -------------------------------------------------------------------

    /// An event of the session's feed. Events while no turn of ours runs belong to a turn
    /// sent from elsewhere; its result shows when the session is next opened.
    pub fn on_turn_event(&mut self, ev: &TurnEvent) {
        let Phase::Running { cancelling, .. } = self.phase else {
            return;
        };
        match ev {
            TurnEvent::Delta { text } => self.transcript.delta(text),
            TurnEvent::ToolCall {
                id,
                name,
                arguments,
            } => self.transcript.push(Entry::Tool(ToolEntry {
                id: id.clone(),
                name: name.clone(),
                arguments: arguments.clone(),
                result: None,
            })),
            TurnEvent::ToolResult {
                id,
                name,
                ok,
                output,
            } => {
                self.transcript.tool_result(id, name, *ok, output.clone());
                if !*ok {
                    if let Some(advice) = crate::advice::advise(output, &self.principal) {
                        self.notice(advice);
                    }
                }
            }
            TurnEvent::Step { n } => {
                self.phase = Phase::Running {
                    step: *n,
                    cancelling,
                }
            }
        }
    }

    /// The turn's reply (or why there is none). Returns the next queued message to send.
    pub fn turn_finished(&mut self, reply: Result<TurnReply, String>) -> Vec<Effect> {
        self.phase = Phase::Idle;
        self.scroll = 0;
        let expired = self.approvals.len();
        self.approvals.clear();
        self.choice = DEFAULT_CHOICE;
        match reply {
            Ok(reply) => {
                self.transcript.final_answer(self.turn_start, &reply.answer);
                if let Some(u) = reply.usage {
                    self.tokens.input += u.input_tokens;
                    self.tokens.output += u.output_tokens;
                }
                match reply.stop.as_str() {
                    "max_steps" => self.notice(format!(
                        "stopped after {} steps, the step limit; say \"continue\" to go on",
                        reply.steps
                    )),
                    "cancelled" => self.notice("cancelled"),
                    _ => {
                        if let Some(tool) = imitated_tool_call(&reply.answer) {
                            let msg = no_answer_message(&tool);
                            self.error(msg.trim_start_matches("error: ").to_string());
                        }
                    }
                }
            }
            Err(msg) => {
                self.transcript.close_stream();
                let advice = crate::advice::advise(&msg, &self.principal);
                self.error(msg);
                if let Some(advice) = advice {
                    self.notice(advice);
                }
            }
        }
        if expired > 0 {
            self.notice("the approval request ended with the turn");
        }
        match self.queued.pop_front() {
            Some(next) => self.start_turn(next),
            None => Vec::new(),
        }
    }

    /// A request from the daemon. With `--yes` it is answered at once.
    pub fn approval_arrived(&mut self, req: ApprovalRequest) -> Vec<Effect> {
        if self.auto_yes {
            self.notice(format!("approved once (--yes): {}", approval_line(&req)));
            return vec![Effect::Answer(req.id, ApprovalDecision::AllowOnce)];
        }
        if self.approvals.is_empty() {
            self.choice = DEFAULT_CHOICE;
        }
        self.approvals.push_back(req);
        Vec::new()
    }

    pub fn sessions_listed(&mut self, sessions: Vec<SessionInfo>) {
        if sessions.is_empty() {
            self.notice("no sessions yet");
            return;
        }
        let current = self.session.as_ref().map(|s| s.id.as_str());
        let selected = sessions
            .iter()
            .position(|s| Some(s.id.as_str()) == current)
            .unwrap_or(0);
        self.picker = Some(Picker { sessions, selected });
    }

    /// A session was opened (at start, or by /resume, /new or the picker), with its history.
    pub fn session_opened(&mut self, info: SessionInfo, history: &[Value], resumed: bool) {
        self.transcript = Transcript::from_history(history);
        let what = if resumed { "resumed" } else { "new session" };
        self.notice(format!(
            "{what} {} · {} messages · workspace {}",
            info.label(),
            info.messages,
            info.workspace.as_deref().unwrap_or("-")
        ));
        self.session = Some(info);
        self.scroll = 0;
    }

    /// The connection to the daemon ended.
    pub fn daemon_gone(&mut self, why: &str) {
        self.daemon = Daemon::Gone(why.to_string());
        self.phase = Phase::Idle;
        self.approvals.clear();
        self.questions.clear();
        let resume = self
            .session
            .as_ref()
            .map(|s| format!(" --session {}", s.name))
            .unwrap_or_default();
        self.error(format!(
            "the daemon went away ({why}). Start it with `astrid start` (`astrid doctor` says \
             what is wrong), then continue with `astrid chat{resume}`. Enter or Ctrl-D leaves."
        ));
    }

    pub fn on_tick(&mut self) {
        self.tick = self.tick.wrapping_add(1);
    }
}

/// The keys, under /help.
pub const KEYS_HELP: &str = "\
keys: Enter sends · Alt-Enter or Ctrl-J new line · Up/Down history · PgUp/PgDn scroll
      Ctrl-O fold/unfold tool calls · Ctrl-S sessions · Ctrl-C cancel (twice: quit) · Ctrl-D quit";

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

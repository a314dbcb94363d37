//! Capsules' questions to the person (`astrid:elicit`) in the chat: a queue, the answer
//! being typed or the option highlighted, and what each key does. The dialog that shows
//! the front question is drawn in `view`; the answer goes back as an [`Effect::Elicit`].

use std::collections::VecDeque;

use astrid_types::elicit::{
    ElicitAnswer, ElicitKind, ElicitRequest, MAX_ANSWER_BYTES, MAX_SECRET_BYTES,
};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::state::Effect;

#[derive(Debug, Default)]
pub struct Questions {
    pub queue: VecDeque<ElicitRequest>,
    /// The free-text answer typed so far.
    pub input: String,
    /// The highlighted option of a choice.
    pub selected: usize,
}

impl Questions {
    pub fn front(&self) -> Option<&ElicitRequest> {
        self.queue.front()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// A question arrived; it is escaped again here, whoever sent it.
    pub fn arrived(&mut self, req: ElicitRequest) {
        self.queue.push_back(req.escaped());
    }

    pub fn clear(&mut self) {
        self.queue.clear();
        self.input.clear();
        self.selected = 0;
    }

    /// Pasted text goes into a typed answer, up to its first line break.
    pub fn paste(&mut self, text: &str) {
        if matches!(
            self.front().map(|q| &q.kind),
            Some(ElicitKind::Text | ElicitKind::Secret { .. })
        ) {
            let line = text.split(['\r', '\n']).next().unwrap_or_default();
            self.push_text(line);
        }
    }

    fn push_text(&mut self, text: &str) {
        let max = match self.front().map(|q| &q.kind) {
            Some(ElicitKind::Secret { .. }) => MAX_SECRET_BYTES,
            _ => MAX_ANSWER_BYTES,
        };
        for c in text.chars().filter(|c| !c.is_control()) {
            if self.input.len() + c.len_utf8() > max {
                break;
            }
            self.input.push(c);
        }
    }

    /// A key while the front question is shown: the answer to send, with the notice that
    /// says what was answered (never the answer itself), once the person has answered.
    pub fn key(&mut self, key: KeyEvent) -> Option<(Effect, String)> {
        let q = self.queue.front()?;
        let options = match &q.kind {
            ElicitKind::Text | ElicitKind::Secret { .. } => 0,
            ElicitKind::Choice { options } => options.len(),
        };
        let answer = match key.code {
            KeyCode::Esc => Some(ElicitAnswer::Declined),
            KeyCode::Enter if options == 0 => Some(ElicitAnswer::Text(self.input.clone())),
            KeyCode::Enter => Some(ElicitAnswer::Choice(self.selected as u32)),
            KeyCode::Backspace if options == 0 => {
                self.input.pop();
                None
            }
            KeyCode::Up | KeyCode::BackTab if options > 0 => {
                self.selected = (self.selected + options - 1) % options;
                None
            }
            KeyCode::Down | KeyCode::Tab if options > 0 => {
                self.selected = (self.selected + 1) % options;
                None
            }
            KeyCode::Char(c) if options > 0 => match c.to_digit(10) {
                Some(d) if (1..=options as u32).contains(&d) => Some(ElicitAnswer::Choice(d - 1)),
                _ => None,
            },
            KeyCode::Char(c) => {
                self.push_text(&c.to_string());
                None
            }
            _ => None,
        }?;
        let q = self.queue.pop_front()?;
        self.input.clear();
        self.selected = 0;
        let notice = match (&answer, &q.kind) {
            (ElicitAnswer::Declined, _) => format!("declined a question from {}", q.capsule),
            (_, ElicitKind::Secret { name, origin }) => format!(
                "sent secret `{name}` of {} to Astrid's secret store (for {origin})",
                q.capsule
            ),
            _ => format!("answered a question from {}", q.capsule),
        };
        Some((Effect::Elicit(q.id, answer), notice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn question(id: u64, kind: ElicitKind) -> ElicitRequest {
        ElicitRequest {
            id,
            principal: "default".into(),
            capsule: "deployer".into(),
            prompt: "Which branch?\u{1b}[2K".into(),
            kind,
            timeout_ms: 60_000,
        }
    }

    #[test]
    fn typing_answers_a_text_question_and_esc_declines() {
        let mut q = Questions::default();
        q.arrived(question(1, ElicitKind::Text));
        q.arrived(question(2, ElicitKind::Text));
        assert!(!q.front().unwrap().prompt.contains('\u{1b}'));
        for c in "mian".chars() {
            assert!(q.key(key(KeyCode::Char(c))).is_none());
        }
        q.key(key(KeyCode::Backspace));
        q.key(key(KeyCode::Backspace));
        q.paste("in\nsecond line");
        let (effect, notice) = q.key(key(KeyCode::Enter)).unwrap();
        assert_eq!(effect, Effect::Elicit(1, ElicitAnswer::Text("miin".into())));
        assert_eq!(notice, "answered a question from deployer");
        assert!(q.input.is_empty());
        let (effect, notice) = q.key(key(KeyCode::Esc)).unwrap();
        assert_eq!(effect, Effect::Elicit(2, ElicitAnswer::Declined));
        assert_eq!(notice, "declined a question from deployer");
        assert!(q.is_empty());
        assert!(q.key(key(KeyCode::Enter)).is_none());
    }

    #[test]
    fn a_secret_is_typed_like_text_and_named_not_shown_in_the_notice() {
        let mut q = Questions::default();
        q.arrived(question(
            5,
            ElicitKind::Secret {
                name: "api_key".into(),
                origin: "https://api.example.com".into(),
            },
        ));
        q.paste("sk-live-1\n");
        let (effect, notice) = q.key(key(KeyCode::Enter)).unwrap();
        assert_eq!(
            effect,
            Effect::Elicit(5, ElicitAnswer::Text("sk-live-1".into()))
        );
        assert!(!notice.contains("sk-live"), "{notice}");
        assert!(notice.contains("secret `api_key`"), "{notice}");
    }

    #[test]
    fn arrows_or_a_digit_choose_an_option() {
        let mut q = Questions::default();
        let kind = ElicitKind::Choice {
            options: vec!["main".into(), "release".into(), "other".into()],
        };
        q.arrived(question(3, kind.clone()));
        q.arrived(question(4, kind));
        q.key(key(KeyCode::Up));
        assert_eq!(q.selected, 2);
        q.key(key(KeyCode::Down));
        q.key(key(KeyCode::Down));
        // Letters do nothing to a choice; a digit past the options neither.
        assert!(q.key(key(KeyCode::Char('x'))).is_none());
        assert!(q.key(key(KeyCode::Char('9'))).is_none());
        let (effect, _) = q.key(key(KeyCode::Enter)).unwrap();
        assert_eq!(effect, Effect::Elicit(3, ElicitAnswer::Choice(1)));
        let (effect, _) = q.key(key(KeyCode::Char('3'))).unwrap();
        assert_eq!(effect, Effect::Elicit(4, ElicitAnswer::Choice(2)));
    }
}

//! Every transition of the chat screen's state, driven by keys and daemon messages.

use super::*;
use crate::test_support::{request, token_offer};
use ratatui::crossterm::event::KeyEventState;
use serde_json::json;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn type_text(s: &mut ChatState, text: &str) {
    for c in text.chars() {
        assert!(s.on_key(key(KeyCode::Char(c))).is_empty());
    }
}

fn send(s: &mut ChatState, text: &str) -> Vec<Effect> {
    type_text(s, text);
    s.on_key(key(KeyCode::Enter))
}

fn session(id: &str, name: &str) -> SessionInfo {
    SessionInfo {
        id: id.into(),
        name: name.into(),
        workspace: Some("/w".into()),
        messages: 2,
        updated_ms: 0,
    }
}

fn reply(answer: &str, stop: &str) -> TurnReply {
    serde_json::from_value(json!({
        "session": {"id": "0123456789abcdef", "name": "s"},
        "answer": answer, "steps": 2, "stop": stop,
        "usage": {"input_tokens": 100, "output_tokens": 7}
    }))
    .unwrap()
}

fn running(s: &mut ChatState) {
    assert_eq!(
        send(s, "hello"),
        vec![Effect::SendTurn("hello".into())],
        "a prompt starts a turn"
    );
}

fn last(s: &ChatState) -> &Entry {
    s.transcript.entries.last().unwrap()
}

#[test]
fn a_prompt_starts_a_turn_and_streams_into_the_transcript() {
    let mut s = ChatState::new("default", false);
    running(&mut s);
    assert_eq!(s.transcript.entries[0], Entry::User("hello".into()));
    assert!(s.editor.is_empty());
    s.on_turn_event(&TurnEvent::Step { n: 1 });
    assert_eq!(
        s.phase,
        Phase::Running {
            step: 1,
            cancelling: false
        }
    );
    s.on_turn_event(&TurnEvent::ToolCall {
        id: "c1".into(),
        name: "fs_read".into(),
        arguments: json!({"path": "notes.txt"}),
    });
    s.on_turn_event(&TurnEvent::ToolResult {
        id: "c1".into(),
        name: "fs_read".into(),
        ok: true,
        output: "AURORA-7".into(),
    });
    s.on_turn_event(&TurnEvent::Delta {
        text: "The code ".into(),
    });
    s.on_turn_event(&TurnEvent::Delta {
        text: "is AURORA-7.".into(),
    });
    assert!(
        matches!(last(&s), Entry::Assistant { text, streaming: true } if text == "The code is AURORA-7.")
    );
    assert!(s
        .turn_finished(Ok(reply("The code is AURORA-7.", "end")))
        .is_empty());
    assert_eq!(s.phase, Phase::Idle);
    assert!(matches!(
        last(&s),
        Entry::Assistant {
            streaming: false,
            ..
        }
    ));
    assert_eq!(
        s.tokens,
        Tokens {
            input: 100,
            output: 7
        }
    );
    // Events after the turn (another client's turn on this session) change nothing.
    let n = s.transcript.entries.len();
    s.on_turn_event(&TurnEvent::Delta {
        text: "late".into(),
    });
    assert_eq!(s.transcript.entries.len(), n);
}

#[test]
fn messages_typed_during_a_turn_wait_and_go_next() {
    let mut s = ChatState::new("default", false);
    running(&mut s);
    assert!(send(&mut s, "second").is_empty());
    assert_eq!(s.queued.len(), 1);
    assert!(matches!(last(&s), Entry::Notice(n) if n.contains("goes next")));
    assert_eq!(
        s.turn_finished(Ok(reply("one", "end"))),
        vec![Effect::SendTurn("second".into())]
    );
    assert!(s.running());
    assert_eq!(last(&s), &Entry::User("second".into()));
}

#[test]
fn the_approval_dialog_defaults_to_deny_and_answers_on_single_keys() {
    let mut s = ChatState::new("default", false);
    running(&mut s);
    assert!(s.approval_arrived(request(1, token_offer())).is_empty());
    assert!(s.approval_arrived(request(2, token_offer())).is_empty());
    assert_eq!(CHOICES[s.choice], ApprovalDecision::Deny, "Enter denies");
    // Typing goes to the dialog, not the editor.
    assert_eq!(
        s.on_key(key(KeyCode::Char('x'))),
        vec![],
        "an unknown key does nothing"
    );
    assert!(s.editor.is_empty());
    assert_eq!(
        s.on_key(key(KeyCode::Enter)),
        vec![Effect::Answer(1, ApprovalDecision::Deny)]
    );
    assert!(matches!(last(&s), Entry::Notice(n) if n.starts_with("denied: fs.write")));
    // The second request: moving the highlight, then single keys.
    s.on_key(key(KeyCode::Left));
    assert_eq!(CHOICES[s.choice], ApprovalDecision::AllowAlways);
    assert_eq!(
        s.on_key(key(KeyCode::Char('s'))),
        vec![Effect::Answer(2, ApprovalDecision::AllowSession)]
    );
    assert!(s.approvals.is_empty());
    for (k, d) in [
        ('o', ApprovalDecision::AllowOnce),
        ('a', ApprovalDecision::AllowAlways),
        ('d', ApprovalDecision::Deny),
    ] {
        s.approval_arrived(request(9, token_offer()));
        assert_eq!(s.on_key(key(KeyCode::Char(k))), vec![Effect::Answer(9, d)]);
    }
    s.approval_arrived(request(10, token_offer()));
    assert_eq!(
        s.on_key(key(KeyCode::Esc)),
        vec![Effect::Answer(10, ApprovalDecision::Deny)]
    );
}

#[test]
fn always_without_an_offer_is_reported_as_once() {
    let mut s = ChatState::new("default", false);
    running(&mut s);
    s.approval_arrived(request(
        4,
        AlwaysOffer::NotOffered {
            why: "too broad".into(),
        },
    ));
    assert_eq!(
        s.on_key(key(KeyCode::Char('a'))),
        vec![Effect::Answer(4, ApprovalDecision::AllowAlways)]
    );
    assert!(matches!(last(&s), Entry::Notice(n) if n.contains("always is not offered")));
}

#[test]
fn yes_answers_every_request_once_without_a_dialog() {
    let mut s = ChatState::new("default", true);
    running(&mut s);
    assert_eq!(
        s.approval_arrived(request(5, token_offer())),
        vec![Effect::Answer(5, ApprovalDecision::AllowOnce)]
    );
    assert!(s.approvals.is_empty());
    assert!(matches!(last(&s), Entry::Notice(n) if n.starts_with("approved once (--yes)")));
}

#[test]
fn ctrl_c_cancels_the_turn_denies_the_dialog_and_a_second_one_quits() {
    let mut s = ChatState::new("default", false);
    running(&mut s);
    s.approval_arrived(request(7, token_offer()));
    s.queued.push_back("later".into());
    assert_eq!(
        s.on_key(ctrl('c')),
        vec![Effect::Cancel, Effect::Answer(7, ApprovalDecision::Deny)]
    );
    assert!(s.queued.is_empty(), "a cancel drops the queued messages");
    assert_eq!(
        s.phase,
        Phase::Running {
            step: 0,
            cancelling: true
        }
    );
    assert_eq!(s.on_key(ctrl('c')), vec![Effect::Quit]);
    s.turn_finished(Ok(reply("", "cancelled")));
    assert!(matches!(last(&s), Entry::Notice(n) if n == "cancelled"));
}

#[test]
fn ctrl_c_when_idle_clears_then_asks_then_quits() {
    let mut s = ChatState::new("default", false);
    type_text(&mut s, "draft");
    assert!(s.on_key(ctrl('c')).is_empty());
    assert!(s.editor.is_empty(), "the first Ctrl-C clears the editor");
    assert!(s.on_key(ctrl('c')).is_empty());
    assert!(matches!(last(&s), Entry::Notice(n) if n.contains("again")));
    assert_eq!(s.on_key(ctrl('c')), vec![Effect::Quit]);
    // Any other key in between disarms it.
    let mut s = ChatState::new("default", false);
    s.on_key(ctrl('c'));
    s.on_key(key(KeyCode::Char('x')));
    s.on_key(key(KeyCode::Backspace));
    assert!(s.on_key(ctrl('c')).is_empty());
    assert_eq!(
        s.on_key(ctrl('d')),
        vec![Effect::Quit],
        "Ctrl-D on empty quits"
    );
}

#[test]
fn slash_commands_become_effects_or_notices() {
    let mut s = ChatState::new("default", false);
    assert_eq!(send(&mut s, "/sessions"), vec![Effect::ListSessions]);
    assert_eq!(
        send(&mut s, "/resume work"),
        vec![Effect::OpenSession {
            target: Some("work".into()),
            create: false
        }]
    );
    assert_eq!(
        send(&mut s, "/new"),
        vec![Effect::OpenSession {
            target: None,
            create: true
        }]
    );
    assert_eq!(send(&mut s, "/quit"), vec![Effect::Quit]);
    assert!(send(&mut s, "/help").is_empty());
    assert!(matches!(last(&s), Entry::Notice(n) if n.contains("/resume") && n.contains("Ctrl-O")));
    assert!(send(&mut s, "/bogus").is_empty());
    assert!(matches!(last(&s), Entry::Error(e) if e.contains("unknown command /bogus")));
    assert_eq!(
        s.on_key(ctrl('s')),
        vec![Effect::ListSessions],
        "Ctrl-S opens the picker"
    );
    // Not while a turn runs.
    running(&mut s);
    assert!(send(&mut s, "/new").is_empty());
    assert!(s.on_key(ctrl('s')).is_empty());
    assert!(matches!(last(&s), Entry::Error(e) if e.contains("cancel it")));
}

#[test]
fn the_session_picker_selects_resumes_creates_and_closes() {
    let mut s = ChatState::new("default", false);
    s.session_opened(session("bbbb", "two"), &[], false);
    s.sessions_listed(vec![session("aaaa", "one"), session("bbbb", "two")]);
    assert_eq!(
        s.picker.as_ref().unwrap().selected,
        1,
        "starts on the current one"
    );
    s.on_key(key(KeyCode::Down));
    assert_eq!(s.picker.as_ref().unwrap().selected, 1, "stays on the last");
    s.on_key(key(KeyCode::Up));
    assert_eq!(
        s.on_key(key(KeyCode::Enter)),
        vec![Effect::OpenSession {
            target: Some("aaaa".into()),
            create: false
        }]
    );
    assert!(s.picker.is_none());
    s.sessions_listed(vec![session("aaaa", "one")]);
    assert_eq!(
        s.on_key(key(KeyCode::Char('n'))),
        vec![Effect::OpenSession {
            target: None,
            create: true
        }]
    );
    s.sessions_listed(vec![session("aaaa", "one")]);
    assert!(s.on_key(key(KeyCode::Esc)).is_empty());
    assert!(s.picker.is_none());
    s.sessions_listed(vec![]);
    assert!(s.picker.is_none());
    assert!(matches!(last(&s), Entry::Notice(n) if n == "no sessions yet"));
}

#[test]
fn opening_a_session_shows_its_history() {
    let mut s = ChatState::new("default", false);
    s.notice("old");
    let history = [
        json!({"role": "user", "content": "hi"}),
        json!({"role": "assistant", "content": "hello"}),
    ];
    s.session_opened(session("aaaa", "work"), &history, true);
    assert_eq!(s.transcript.entries[0], Entry::User("hi".into()));
    assert!(
        matches!(last(&s), Entry::Notice(n) if n.starts_with("resumed work (aaaa) · 2 messages"))
    );
    assert_eq!(s.session.as_ref().unwrap().name, "work");
}

#[test]
fn failures_are_shown_and_a_tool_call_written_as_text_is_called_out() {
    let mut s = ChatState::new("default", false);
    running(&mut s);
    s.approval_arrived(request(1, token_offer()));
    s.turn_finished(Err("the provider is unreachable: connection refused".into()));
    assert!(s.approvals.is_empty(), "requests end with the turn");
    let errors: Vec<_> = s
        .transcript
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Error(e) => Some(e.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(errors, ["the provider is unreachable: connection refused"]);
    assert!(matches!(last(&s), Entry::Notice(n) if n.contains("ended with the turn")));

    running(&mut s);
    s.turn_finished(Ok(reply(
        r#"{"name": "fs_read", "arguments": {"path": "x"}}"#,
        "end",
    )));
    assert!(
        matches!(last(&s), Entry::Error(e) if e.starts_with("the model did not answer") && e.contains("`fs_read`"))
    );

    running(&mut s);
    s.turn_finished(Ok(reply("partial", "max_steps")));
    assert!(matches!(last(&s), Entry::Notice(n) if n.contains("step limit")));
}

#[test]
fn a_vanished_daemon_leaves_only_a_way_out() {
    let mut s = ChatState::new("default", false);
    s.session_opened(session("aaaa", "work"), &[], false);
    running(&mut s);
    s.daemon_gone("connection closed");
    assert_eq!(s.phase, Phase::Idle);
    assert!(
        matches!(last(&s), Entry::Error(e) if e.contains("astrid start") && e.contains("--session work"))
    );
    assert!(s.on_key(key(KeyCode::Char('x'))).is_empty());
    assert!(s.editor.is_empty(), "nothing can be typed");
    assert_eq!(s.on_key(key(KeyCode::Enter)), vec![Effect::Quit]);
}

#[test]
fn editing_keys_folding_scrolling_and_paste() {
    let mut s = ChatState::new("default", false);
    s.page = 5;
    type_text(&mut s, "ab");
    s.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
    s.on_paste("pasted\r\nlines");
    assert_eq!(s.editor.text(), "ab\npasted\nlines");
    s.on_key(ctrl('u'));
    assert_eq!(s.editor.text(), "ab\npasted\n");
    s.on_key(ctrl('j'));
    assert_eq!(s.editor.line_count(), 4);
    assert!(!s.tools_expanded);
    s.on_key(ctrl('o'));
    assert!(s.tools_expanded);
    s.on_key(key(KeyCode::PageUp));
    s.on_key(key(KeyCode::PageUp));
    assert_eq!(s.scroll, 10);
    s.on_key(key(KeyCode::PageDown));
    assert_eq!(s.scroll, 5);
    s.on_key(ctrl('l'));
    assert_eq!(s.scroll, 0);
    // Key releases (reported by some terminals) are not presses.
    let release = KeyEvent {
        code: KeyCode::Char('z'),
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Release,
        state: KeyEventState::NONE,
    };
    s.on_key(release);
    assert!(!s.editor.text().contains('z'));
    s.on_tick();
    assert_eq!(s.tick, 1);
}

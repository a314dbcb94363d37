//! The screen as text, on ratatui's in-memory backend.

use super::*;
use crate::commands::turn::SessionInfo;
use crate::render::TurnEvent;
use crate::test_support::{request, token_offer};
use crate::tui::state::Effect;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;
use ratatui::Terminal;
use serde_json::json;

fn screen(s: &ChatState, theme: &Theme, w: u16, h: u16) -> (String, ratatui::buffer::Buffer) {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| draw(f, s, theme, 10_000_000)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut text = String::new();
    for y in 0..h {
        for x in 0..w {
            text.push_str(buf[(x, y)].symbol());
        }
        text.push('\n');
    }
    (text, buf)
}

fn chat_with_a_tool_call() -> ChatState {
    let mut s = ChatState::new("default", false);
    s.model = Some("openai · qwen".into());
    s.session_opened(
        SessionInfo {
            id: "0123456789abcdef".into(),
            name: "work".into(),
            workspace: Some("/w".into()),
            messages: 0,
            updated_ms: 9_000_000,
        },
        &[],
        false,
    );
    for c in "read notes.txt".chars() {
        s.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    assert_eq!(
        s.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        vec![Effect::SendTurn("read notes.txt".into())]
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
        output: "The launch code is AURORA-7.\nsecond line".into(),
    });
    s.on_turn_event(&TurnEvent::Delta {
        text: "The code is **AURORA-7**.".into(),
    });
    s
}

#[test]
fn the_transcript_shows_prompt_tool_call_and_answer() {
    let s = chat_with_a_tool_call();
    let (text, _) = screen(&s, &Theme::new(true), 80, 20);
    assert!(text.contains("› read notes.txt"), "{text}");
    assert!(
        text.contains(r#"⚙ fs_read {"path":"notes.txt"}  ✓ ok · 2 lines"#),
        "{text}"
    );
    assert!(text.contains("The code is AURORA-7."), "{text}");
    assert!(
        !text.contains("second line"),
        "folded: no output shown\n{text}"
    );
    assert!(
        text.contains("⠋ working (step 0) · default · openai · qwen · session work"),
        "{text}"
    );
}

#[test]
fn unfolded_tool_calls_show_arguments_and_output() {
    let mut s = chat_with_a_tool_call();
    s.tools_expanded = true;
    let (text, _) = screen(&s, &Theme::new(true), 80, 24);
    assert!(text.contains(r#"│ {"#), "{text}");
    assert!(text.contains(r#"│   "path": "notes.txt""#), "{text}");
    assert!(text.contains("┃ The launch code is AURORA-7."), "{text}");
    assert!(text.contains("┃ second line"), "{text}");
}

#[test]
fn the_approval_dialog_names_capsule_action_and_resource() {
    let mut s = chat_with_a_tool_call();
    s.approval_arrived(request(1, token_offer()));
    let theme = Theme::new(true);
    let (text, buf) = screen(&s, &theme, 100, 24);
    assert!(text.contains("Approval needed"), "{text}");
    assert!(
        text.contains("approval requested by tool-fs: fs.write"),
        "{text}"
    );
    assert!(
        text.contains("resource: write /w/out.txt  (fs:write:/w/out.txt)"),
        "{text}"
    );
    assert!(
        text.contains("[o] Allow once   [s] This session   [a] Always   [d] Deny"),
        "{text}"
    );
    // The highlighted button is Deny.
    let row = text.lines().position(|l| l.contains("[d] Deny")).unwrap();
    let col = text.lines().nth(row).unwrap().find("[d] Deny").unwrap();
    let col = text.lines().nth(row).unwrap()[..col].chars().count();
    let cell = &buf[(u16::try_from(col).unwrap(), u16::try_from(row).unwrap())];
    assert_eq!(cell.style().bg, Some(Color::Yellow));
}

#[test]
fn the_picker_lists_sessions_and_marks_the_current_one() {
    let mut s = chat_with_a_tool_call();
    s.turn_finished(Err("x".into()));
    let mk = |id: &str, name: &str| SessionInfo {
        id: id.into(),
        name: name.into(),
        workspace: None,
        messages: 4,
        updated_ms: 9_940_000,
    };
    s.sessions_listed(vec![
        mk("0123456789abcdef", "work"),
        mk("fedcba9876543210", "other"),
    ]);
    let (text, _) = screen(&s, &Theme::new(true), 100, 20);
    assert!(text.contains("Sessions"), "{text}");
    assert!(text.contains("* work"), "{text}");
    assert!(text.contains("other"), "{text}");
    assert!(text.contains("1m 0s ago"), "{text}");
    assert!(text.contains("Enter resume · n new session"), "{text}");
}

#[test]
fn no_color_leaves_no_colour_on_screen() {
    let s = chat_with_a_tool_call();
    let (_, buf) = screen(&s, &Theme::new(false), 80, 20);
    for cell in buf.content() {
        assert!(
            matches!(cell.fg, Color::Reset) && matches!(cell.bg, Color::Reset),
            "{cell:?}"
        );
    }
    let (_, buf) = screen(&s, &Theme::new(true), 80, 20);
    assert!(buf.content().iter().any(|c| c.fg != Color::Reset));
}

#[test]
fn a_long_transcript_scrolls_and_a_small_terminal_still_draws() {
    let mut s = ChatState::new("default", false);
    for i in 0..50 {
        s.notice(format!("line {i}"));
    }
    let (text, _) = screen(&s, &Theme::new(true), 60, 12);
    assert!(text.contains("line 49"), "follows the bottom\n{text}");
    s.scroll = 20;
    let (text, _) = screen(&s, &Theme::new(true), 60, 12);
    assert!(
        !text.contains("line 49") && text.contains("line 39"),
        "{text}"
    );
    s.scroll = 10_000;
    let (text, _) = screen(&s, &Theme::new(true), 60, 12);
    assert!(text.contains("line 0"), "clamped to the top\n{text}");
    // Tiny sizes must not panic.
    screen(&s, &Theme::new(true), 10, 4);
    screen(&chat_with_a_tool_call(), &Theme::new(true), 1, 1);
}

#[test]
fn a_capsule_notice_is_drawn_under_the_capsules_name_and_a_malformed_one_is_dropped() {
    let mut s = chat_with_a_tool_call();
    let before = s.transcript.entries.len();
    s.capsule_notice(
        br#"{"capsule":"indexer","level":"warning","text":"disk nearly full\nfree 2 GiB"}"#,
    );
    // Not a notice (an unknown field, a bad level): nothing is shown.
    s.capsule_notice(br#"{"capsule":"indexer","level":"warning","text":"x","from":"astrid"}"#);
    s.capsule_notice(br#"{"capsule":"indexer","level":"panic","text":"x"}"#);
    s.capsule_notice(b"not json");
    assert_eq!(s.transcript.entries.len(), before + 1);
    let theme = Theme::new(true);
    let (text, buf) = screen(&s, &theme, 80, 24);
    assert!(text.contains("◆ indexer · warning"), "{text}");
    assert!(text.contains("  disk nearly full"), "{text}");
    assert!(text.contains("  free 2 GiB"), "{text}");
    // The header has the warning colour; the text is the terminal's own.
    let row = text.lines().position(|l| l.contains("◆ indexer")).unwrap();
    assert_eq!(buf[(0, u16::try_from(row).unwrap())].fg, Color::Yellow);
}

#[test]
fn a_capsules_question_is_drawn_as_its_own_words_with_its_options() {
    use astrid_types::elicit::{ElicitKind, ElicitRequest};
    let mut s = chat_with_a_tool_call();
    s.questions.arrived(ElicitRequest {
        id: 9,
        principal: "default".into(),
        capsule: "deployer".into(),
        prompt: "Deploy which branch?".into(),
        kind: ElicitKind::Choice {
            options: vec!["main".into(), "release".into()],
        },
        timeout_ms: 60_000,
    });
    s.on_key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
    let theme = Theme::new(true);
    let (text, buf) = screen(&s, &theme, 80, 24);
    assert!(text.contains(" Question "), "{text}");
    assert!(
        text.contains("deployer asks (its own words, not checked):"),
        "{text}"
    );
    assert!(
        text.contains("1. main") && text.contains("2. release"),
        "{text}"
    );
    // The highlighted option is the second.
    let row = text.lines().position(|l| l.contains("2. release")).unwrap();
    let col = text
        .lines()
        .nth(row)
        .unwrap()
        .chars()
        .position(|c| c == '2')
        .unwrap();
    let cell = &buf[(u16::try_from(col).unwrap(), u16::try_from(row).unwrap())];
    assert_eq!(cell.bg, Color::Yellow);
}

#[test]
fn a_secret_being_typed_is_never_drawn() {
    use astrid_types::elicit::{ElicitKind, ElicitRequest};
    let mut s = chat_with_a_tool_call();
    s.questions.arrived(ElicitRequest {
        id: 10,
        principal: "default".into(),
        capsule: "weather".into(),
        prompt: "Your API key".into(),
        kind: ElicitKind::Secret {
            name: "api_key".into(),
            origin: "https://api.example.com".into(),
        },
        timeout_ms: 60_000,
    });
    s.on_paste("sk-live-777");
    let (text, _) = screen(&s, &Theme::new(true), 100, 24);
    assert!(!text.contains("sk-live"), "{text}");
    assert!(text.contains("›") && text.contains("••••"), "{text}");
    assert!(
        text.contains("Secret `api_key` for https://api.example.com"),
        "{text}"
    );
}

//! Drawing the chat screen from [`ChatState`]: the transcript pane, the status line, the
//! message editor, and the approval dialog or session picker over them. Reads the state,
//! never changes it; tested on ratatui's in-memory backend.

use astrid_types::elicit::{ElicitKind, ElicitRequest};
use astrid_types::uplink::{Notice, NoticeLevel};
use astrid_types::wire::{AlwaysOffer, ApprovalDecision};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;
use serde_json::Value;
use unicode_width::UnicodeWidthStr;

use super::markdown::{self, clean};
use super::state::{ChatState, Daemon, Phase, CHOICES};
use super::theme::Theme;
use super::transcript::{Entry, ToolEntry};
use crate::approval_view::describe_approval;
use crate::output::human_duration;

/// The editor grows with its text up to this many rows, then scrolls.
const EDITOR_MAX_ROWS: usize = 8;
/// A folded tool call shows its arguments cut to this many characters.
const FOLDED_ARGS: usize = 80;
/// An unfolded tool call shows at most this many lines of its output.
const OUTPUT_LINES: usize = 40;
const SPINNER: [&str; 4] = ["⠋", "⠙", "⠸", "⠴"];

pub fn draw(frame: &mut Frame<'_>, s: &ChatState, theme: &Theme, now_ms: u64) {
    let area = frame.area();
    let editor_rows = s.editor.line_count().clamp(1, EDITOR_MAX_ROWS);
    let [pane, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(u16::try_from(editor_rows + 2).unwrap_or(3)),
    ])
    .areas(area);

    let lines = transcript_lines(s, pane.width, theme);
    let height = usize::from(pane.height);
    let end = lines
        .len()
        .saturating_sub(s.scroll.min(lines.len().saturating_sub(height)));
    let start = end.saturating_sub(height);
    frame.render_widget(Paragraph::new(lines[start..end].to_vec()), pane);

    frame.render_widget(
        Paragraph::new(status_line(s, usize::from(status.width))).style(theme.status()),
        status,
    );
    draw_editor(frame, s, input);
    if let Some(req) = s.approvals.front() {
        draw_dialog(frame, s, theme, req);
    } else if let Some(q) = s.questions.front() {
        draw_question(frame, s, theme, q);
    } else if s.picker.is_some() {
        draw_picker(frame, s, theme, now_ms);
    }
}

/// Every row of the transcript at this width, oldest first.
pub fn transcript_lines(s: &ChatState, width: u16, theme: &Theme) -> Vec<Line<'static>> {
    let mut out: Vec<Line<'static>> = Vec::new();
    for entry in &s.transcript.entries {
        if !out.is_empty() {
            out.push(Line::default());
        }
        match entry {
            Entry::User(text) => {
                out.extend(markdown::plain(text, width, theme.user(), "› ", "  "));
            }
            Entry::Assistant { text, streaming } => {
                out.extend(markdown::render(text, width, theme));
                if *streaming {
                    out.push(Line::styled(SPINNER[s.tick % SPINNER.len()], theme.dim()));
                }
            }
            Entry::Tool(t) => out.extend(tool_lines(t, s, width, theme)),
            Entry::Notice(text) => {
                out.extend(markdown::plain(text, width, theme.notice(), "", ""));
            }
            Entry::Error(text) => {
                out.extend(markdown::plain(text, width, theme.error(), "✗ ", "  "));
            }
            Entry::CapsuleNotice(n) => out.extend(capsule_notice_lines(n, width, theme)),
        }
    }
    out
}

/// `◆ <capsule> · <level>` over the text, indented. The text is cleaned of control
/// characters again here (the kernel refused them already): what reaches the terminal is
/// what the bytes say.
fn capsule_notice_lines(n: &Notice, width: u16, theme: &Theme) -> Vec<Line<'static>> {
    let style = match n.level {
        NoticeLevel::Info => theme.tool(),
        NoticeLevel::Warning => theme.warning(),
        NoticeLevel::Alert => theme.error(),
    };
    let mut out = vec![Line::styled(
        format!("◆ {} · {}", n.capsule, n.level),
        style,
    )];
    out.extend(markdown::plain(&n.text, width, Style::new(), "  ", "  "));
    out
}

fn tool_lines(t: &ToolEntry, s: &ChatState, width: u16, theme: &Theme) -> Vec<Line<'static>> {
    let args = match &t.arguments {
        Value::Null => String::new(),
        v => v.to_string(),
    };
    let outcome = match &t.result {
        None => Span::styled(
            format!("{} running", SPINNER[s.tick % SPINNER.len()]),
            theme.dim(),
        ),
        Some(r) if r.ok => Span::styled(
            format!("✓ ok · {} lines", r.output.lines().count()),
            theme.ok(),
        ),
        Some(r) => Span::styled(
            format!(
                "✗ {}",
                cut(r.output.lines().next().unwrap_or("failed"), FOLDED_ARGS)
            ),
            theme.error(),
        ),
    };
    if !s.tools_expanded {
        let head = format!("⚙ {} {}  ", clean(&t.name), cut(&args, FOLDED_ARGS));
        return vec![Line::from(vec![Span::styled(head, theme.tool()), outcome])];
    }
    let mut out = vec![Line::from(vec![
        Span::styled(format!("⚙ {}  ", clean(&t.name)), theme.tool()),
        outcome,
    ])];
    let pretty = serde_json::to_string_pretty(&t.arguments).unwrap_or(args);
    out.extend(markdown::plain(&pretty, width, theme.dim(), "  │ ", "  │ "));
    if let Some(r) = &t.result {
        let style = if r.ok {
            Style::default()
        } else {
            theme.error()
        };
        let shown: Vec<&str> = r.output.lines().take(OUTPUT_LINES).collect();
        out.extend(markdown::plain(
            &shown.join("\n"),
            width,
            style,
            "  ┃ ",
            "  ┃ ",
        ));
        let more = r.output.lines().count().saturating_sub(OUTPUT_LINES);
        if more > 0 {
            out.push(Line::styled(
                format!("  ┃ … {more} more lines"),
                theme.dim(),
            ));
        }
    }
    out
}

/// At most `max` characters of one line of `text`, made safe, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() <= max {
        return clean(&one_line);
    }
    let kept: String = one_line.chars().take(max).collect();
    format!("{}…", clean(&kept))
}

/// `activity · principal · provider · model · session · tokens`, cut to the width: what
/// the agent is doing comes first, so a narrow terminal still shows it.
pub fn status_line(s: &ChatState, width: usize) -> String {
    let activity = match (&s.daemon, &s.phase) {
        (Daemon::Gone(_), _) => "daemon gone".to_string(),
        (
            _,
            Phase::Running {
                cancelling: true, ..
            },
        ) => "cancelling…".to_string(),
        (_, Phase::Running { step, .. }) => {
            format!("{} working (step {step})", SPINNER[s.tick % SPINNER.len()])
        }
        // Until a session is open (or when opening it failed) nothing can be sent.
        (_, Phase::Idle) if s.session.is_none() => "no session".to_string(),
        (_, Phase::Idle) => "ready".to_string(),
    };
    let mut parts = vec![format!(" {activity}"), s.principal.clone()];
    parts.push(s.model.clone().unwrap_or_else(|| "model ?".into()));
    if let Some(session) = &s.session {
        parts.push(format!("session {}", session.name));
    }
    parts.push(format!(
        "{} in / {} out tokens",
        s.tokens.input, s.tokens.output
    ));
    let mut line = parts.join(" · ");
    let hint = "Ctrl-S sessions · Ctrl-O tools · /help ";
    if line.width() + hint.width() + 2 <= width {
        let pad = width - line.width() - hint.width();
        line.push_str(&" ".repeat(pad));
        line.push_str(hint);
    }
    clean(&line)
}

fn draw_editor(frame: &mut Frame<'_>, s: &ChatState, area: Rect) {
    let title = if s.running() {
        " message (sent when the agent is done) "
    } else {
        " message · Enter sends · Alt-Enter new line "
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    let (row, col) = s.editor.cursor_position();
    let rows = usize::from(inner.height.max(1));
    let first = row.saturating_sub(rows - 1);
    let cols = usize::from(inner.width.max(1));
    let skip = col.saturating_sub(cols - 1);
    let text: Vec<Line<'static>> = s
        .editor
        .text()
        .split('\n')
        .skip(first)
        .take(rows)
        .map(|l| Line::raw(l.chars().skip(skip).collect::<String>()))
        .collect();
    frame.render_widget(Paragraph::new(text).block(block), area);
    if s.approvals.is_empty() && s.picker.is_none() {
        let x = inner.x + u16::try_from(col - skip).unwrap_or(0);
        let y = inner.y + u16::try_from(row - first).unwrap_or(0);
        frame.set_cursor_position(Position::new(x, y));
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn draw_dialog(
    frame: &mut Frame<'_>,
    s: &ChatState,
    theme: &Theme,
    req: &astrid_types::wire::ApprovalRequest,
) {
    let area = frame.area();
    let width = area.width.saturating_sub(4).min(100);
    let mut body: Vec<Line<'static>> = Vec::new();
    for line in describe_approval(req).lines() {
        body.extend(markdown::plain(
            line,
            width.saturating_sub(2),
            Style::default(),
            "",
            "    ",
        ));
    }
    body.push(Line::default());
    let mut buttons = Vec::new();
    for (i, d) in CHOICES.iter().enumerate() {
        let label = match (d, &req.always) {
            (ApprovalDecision::AllowOnce, _) => "[o] Allow once",
            (ApprovalDecision::AllowSession, _) => "[s] This session",
            (ApprovalDecision::AllowAlways, AlwaysOffer::Token { .. }) => "[a] Always",
            (ApprovalDecision::AllowAlways, AlwaysOffer::Consent { .. }) => "[a] Always (remember)",
            (ApprovalDecision::AllowAlways, AlwaysOffer::NotOffered { .. }) => {
                "[a] Always (= once)"
            }
            (ApprovalDecision::Deny, _) => "[d] Deny",
        };
        let style = if i == s.choice {
            theme.selected()
        } else {
            Style::default()
        };
        buttons.push(Span::styled(format!(" {label} "), style));
        buttons.push(Span::raw(" "));
    }
    body.push(Line::from(buttons));
    body.push(Line::styled(
        "Enter chooses the highlighted one (Deny unless you move it) · Esc denies",
        theme.dim(),
    ));
    let block = Block::default()
        .borders(Borders::ALL)
        .title(popup_title("Approval needed", s.approvals.len()))
        .border_style(theme.warning());
    draw_popup(frame, width, body, block);
}

/// A capsule's question: its words marked as its own, then the answer being typed or the
/// options with the highlighted one.
fn draw_question(frame: &mut Frame<'_>, s: &ChatState, theme: &Theme, q: &ElicitRequest) {
    let width = frame.area().width.saturating_sub(4).min(100);
    let inner = width.saturating_sub(2);
    let mut body = vec![Line::styled(
        format!("{} asks (its own words, not checked):", q.capsule),
        theme.dim(),
    )];
    body.extend(markdown::plain(
        &q.prompt,
        inner,
        Style::default(),
        "  ",
        "  ",
    ));
    body.push(Line::default());
    let help = match &q.kind {
        ElicitKind::Text => {
            body.push(Line::from(vec![
                Span::styled("› ", theme.user()),
                Span::raw(clean(&s.questions.input)),
                Span::styled("▏", theme.dim()),
            ]));
            "Enter answers · Esc declines"
        }
        ElicitKind::Secret { name, origin } => {
            body.push(Line::styled(
                format!(
                    "Secret `{}` for {}: it goes to Astrid's secret store, never to the capsule.",
                    clean(name),
                    clean(origin)
                ),
                theme.warning(),
            ));
            // Masked: the value is never drawn, not even its length past a few dots.
            let dots = "•".repeat(s.questions.input.chars().count().min(12));
            body.push(Line::from(vec![
                Span::styled("› ", theme.user()),
                Span::raw(dots),
                Span::styled("▏", theme.dim()),
            ]));
            "Enter stores it · Esc declines"
        }
        ElicitKind::Choice { options } => {
            for (i, o) in options.iter().enumerate() {
                let style = if i == s.questions.selected {
                    theme.selected()
                } else {
                    Style::default()
                };
                body.push(Line::styled(format!(" {}. {} ", i + 1, clean(o)), style));
            }
            "↑/↓ or a number picks · Enter answers · Esc declines"
        }
    };
    body.push(Line::styled(help, theme.dim()));
    let block = Block::default()
        .borders(Borders::ALL)
        .title(popup_title("Question", s.questions.queue.len()))
        .border_style(theme.tool());
    draw_popup(frame, width, body, block);
}

/// A dialog's title, saying how many more wait behind the one shown.
fn popup_title(what: &str, waiting: usize) -> String {
    if waiting > 1 {
        format!(" {what} (1 of {waiting}) ")
    } else {
        format!(" {what} ")
    }
}

/// `body` in a bordered box of `width`, centred over whatever is below it.
fn draw_popup(frame: &mut Frame<'_>, width: u16, body: Vec<Line<'static>>, block: Block<'_>) {
    let height = u16::try_from(body.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(frame.area(), width, height);
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(body).block(block), rect);
}

fn draw_picker(frame: &mut Frame<'_>, s: &ChatState, theme: &Theme, now_ms: u64) {
    let Some(p) = &s.picker else { return };
    let area = frame.area();
    let width = area.width.saturating_sub(4).min(90);
    let rows = usize::from(area.height.saturating_sub(6)).max(1);
    let first = p.selected.saturating_sub(rows - 1);
    let current = s.session.as_ref().map(|x| x.id.as_str());
    let mut body: Vec<Line<'static>> = p
        .sessions
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, x)| {
            let age = if x.updated_ms == 0 {
                "-".to_string()
            } else {
                format!(
                    "{} ago",
                    human_duration(now_ms.saturating_sub(x.updated_ms))
                )
            };
            let mark = if Some(x.id.as_str()) == current {
                "*"
            } else {
                " "
            };
            let text = clean(&format!(
                "{mark} {:<20} {:>4} msgs  {:>12}  {}",
                x.name, x.messages, age, x.id
            ));
            let style = if i == p.selected {
                theme.selected()
            } else {
                Style::default()
            };
            Line::styled(text, style)
        })
        .collect();
    body.push(Line::styled(
        "↑/↓ choose · Enter resume · n new session · Esc close",
        theme.dim(),
    ));
    let block = Block::default().borders(Borders::ALL).title(" Sessions ");
    draw_popup(frame, width, body, block);
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;

//! The agent's answers as terminal lines: Markdown (paragraphs, headings, lists, quotes, code
//! blocks, emphasis, inline code) parsed with `pulldown-cmark` and word-wrapped to the pane.
//! An answer that is still streaming is rendered the same way: an unclosed code fence simply
//! runs to the end. Every piece of text passes [`clean`], so no byte the model chose reaches
//! the terminal as a control sequence.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::theme::Theme;
use astrid_types::text::escape_controls;

/// One line of text before wrapping: the spans, the prefix of its first row (a bullet, a
/// quote bar) and of the rows it wraps onto.
#[derive(Debug, Default, Clone)]
pub struct Logical {
    pub spans: Vec<Span<'static>>,
    pub first: String,
    pub rest: String,
    pub prefix_style: Style,
}

/// Text safe for a terminal cell: tabs become spaces, other controls visible escapes.
pub fn clean(text: &str) -> String {
    escape_controls(&text.replace('\t', "    "))
}

/// `text` as Markdown, wrapped to `width` columns.
pub fn render(text: &str, width: u16, theme: &Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for logical in parse(text, theme) {
        out.extend(wrap(&logical, width));
    }
    while out.last().is_some_and(|l| l.width() == 0) {
        out.pop();
    }
    out
}

/// Plain text (a user's message, a tool's output) wrapped to `width`, one style for all.
pub fn plain(text: &str, width: u16, style: Style, first: &str, rest: &str) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut prefix = first.to_string();
    for raw in text.split('\n') {
        let logical = Logical {
            spans: vec![Span::styled(clean(raw), style)],
            first: prefix.clone(),
            rest: rest.to_string(),
            prefix_style: style,
        };
        out.extend(wrap(&logical, width));
        prefix = rest.to_string();
    }
    out
}

struct Builder<'t> {
    theme: &'t Theme,
    lines: Vec<Logical>,
    current: Vec<Span<'static>>,
    styles: Vec<Style>,
    /// Counter of each open list (`None`: bulleted).
    lists: Vec<Option<u64>>,
    quote_depth: usize,
    in_code: bool,
    /// Prefixes of the next line to flush, and of its continuation rows.
    first: String,
    rest: String,
}

impl Builder<'_> {
    fn style(&self) -> Style {
        self.styles
            .iter()
            .fold(Style::default(), |s, x| s.patch(*x))
    }

    fn base_prefix(&self) -> String {
        let mut p = "│ ".repeat(self.quote_depth);
        p.push_str(&"  ".repeat(self.lists.len().saturating_sub(1)));
        p
    }

    fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let style = self.style();
        self.current.push(Span::styled(clean(text), style));
    }

    fn flush(&mut self, even_empty: bool) {
        if self.current.is_empty() && !even_empty {
            return;
        }
        let spans = std::mem::take(&mut self.current);
        self.lines.push(Logical {
            spans,
            first: std::mem::replace(&mut self.first, self.rest.clone()),
            rest: self.rest.clone(),
            prefix_style: self.theme.dim(),
        });
    }

    fn blank(&mut self) {
        if self.lines.last().is_some_and(|l| !l.spans.is_empty()) {
            let p = self.base_prefix();
            self.lines.push(Logical {
                first: p.trim_end().to_string(),
                prefix_style: self.theme.dim(),
                ..Logical::default()
            });
        }
    }

    fn reset_prefix(&mut self) {
        self.first = self.base_prefix();
        self.rest = self.first.clone();
    }

    fn code_text(&mut self, text: &str) {
        let style = self.theme.code_block();
        let mut parts = text.split('\n').peekable();
        while let Some(part) = parts.next() {
            if !part.is_empty() {
                self.current.push(Span::styled(clean(part), style));
            }
            if parts.peek().is_some() {
                self.flush(true);
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { level, .. } => {
                self.flush(false);
                let mut s = self.theme.heading();
                if level == HeadingLevel::H1 {
                    s = s.add_modifier(Modifier::UNDERLINED);
                }
                self.styles.push(s);
            }
            Tag::BlockQuote(_) => {
                self.flush(false);
                self.quote_depth += 1;
                self.reset_prefix();
            }
            Tag::CodeBlock(kind) => {
                self.flush(false);
                self.in_code = true;
                self.reset_prefix();
                self.first.push_str("  ");
                self.rest.push_str("  ");
                if let CodeBlockKind::Fenced(lang) = kind {
                    if !lang.is_empty() {
                        let label = Span::styled(clean(&lang), self.theme.dim());
                        self.current.push(label);
                        self.flush(true);
                    }
                }
            }
            Tag::List(first) => {
                self.flush(false);
                self.lists.push(first);
            }
            Tag::Item => {
                self.flush(false);
                let base = self.base_prefix();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    _ => "• ".to_string(),
                };
                self.rest = format!("{base}{}", " ".repeat(marker.width()));
                self.first = format!("{base}{marker}");
            }
            Tag::Emphasis => self
                .styles
                .push(Style::new().add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.styles.push(Style::new().add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self
                .styles
                .push(Style::new().add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { .. } => self.styles.push(self.theme.link()),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => {
                self.flush(false);
                if self.lists.is_empty() {
                    self.blank();
                }
                self.reset_prefix_keeping_item();
            }
            TagEnd::Heading(_) => {
                self.styles.pop();
                self.flush(false);
                self.blank();
                self.reset_prefix();
            }
            TagEnd::BlockQuote(_) => {
                self.flush(false);
                self.quote_depth = self.quote_depth.saturating_sub(1);
                self.reset_prefix();
                self.blank();
            }
            TagEnd::CodeBlock => {
                self.flush(false);
                self.in_code = false;
                self.reset_prefix();
                self.blank();
            }
            TagEnd::List(_) => {
                self.flush(false);
                self.lists.pop();
                self.reset_prefix();
                if self.lists.is_empty() {
                    self.blank();
                }
            }
            TagEnd::Item => {
                self.flush(false);
                self.reset_prefix();
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough | TagEnd::Link => {
                self.styles.pop();
            }
            _ => {}
        }
    }

    /// After a paragraph inside a list item, the item's next paragraph continues under its
    /// text, not under a new bullet.
    fn reset_prefix_keeping_item(&mut self) {
        if self.lists.is_empty() {
            self.reset_prefix();
        } else {
            self.first = self.rest.clone();
        }
    }
}

/// The Markdown of `text` as logical lines.
pub fn parse(text: &str, theme: &Theme) -> Vec<Logical> {
    let mut b = Builder {
        theme,
        lines: Vec::new(),
        current: Vec::new(),
        styles: Vec::new(),
        lists: Vec::new(),
        quote_depth: 0,
        in_code: false,
        first: String::new(),
        rest: String::new(),
    };
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    for event in Parser::new_ext(text, options) {
        match event {
            Event::Start(tag) => b.start(tag),
            Event::End(tag) => b.end(tag),
            Event::Text(t) if b.in_code => b.code_text(&t),
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => {
                // Raw HTML is shown as the text it is; a block of it may span lines.
                let mut parts = t.split('\n').peekable();
                while let Some(part) = parts.next() {
                    b.push_text(part);
                    if parts.peek().is_some() {
                        b.flush(false);
                    }
                }
            }
            Event::Code(t) => {
                let s = b.style().patch(theme.code_inline());
                b.current.push(Span::styled(clean(&t), s));
            }
            Event::SoftBreak => b.push_text(" "),
            Event::HardBreak => b.flush(true),
            Event::Rule => {
                b.flush(false);
                b.current.push(Span::styled("─".repeat(24), theme.dim()));
                b.flush(true);
                b.blank();
            }
            Event::TaskListMarker(done) => b.push_text(if done { "[x] " } else { "[ ] " }),
            _ => {}
        }
    }
    b.flush(false);
    b.lines
}

/// Greedy word wrap of one logical line; a word longer than a row is cut by characters.
pub fn wrap(line: &Logical, width: u16) -> Vec<Line<'static>> {
    let mut w = Wrapper {
        width: usize::from(width).max(8),
        line,
        rows: Vec::new(),
        row: vec![Span::styled(line.first.clone(), line.prefix_style)],
        used: line.first.width(),
        has_text: false,
    };
    for span in &line.spans {
        for word in span.content.split_inclusive(' ') {
            w.word(word, span.style);
        }
    }
    w.end_row();
    w.rows
}

struct Wrapper<'l> {
    width: usize,
    line: &'l Logical,
    rows: Vec<Line<'static>>,
    row: Vec<Span<'static>>,
    used: usize,
    has_text: bool,
}

impl Wrapper<'_> {
    fn end_row(&mut self) {
        // Blanks at the end of a row would only widen it.
        if let Some(last) = self.row.last_mut() {
            let trimmed = last.content.trim_end().to_string();
            last.content = trimmed.into();
        }
        self.rows.push(Line::from(std::mem::take(&mut self.row)));
    }

    fn new_row(&mut self) {
        self.end_row();
        self.row
            .push(Span::styled(self.line.rest.clone(), self.line.prefix_style));
        self.used = self.line.rest.width();
        self.has_text = false;
    }

    fn word(&mut self, word: &str, style: Style) {
        let visible = word.trim_end().width();
        if self.has_text && self.used + visible > self.width {
            self.new_row();
            if visible == 0 {
                return;
            }
        }
        if self.used + visible <= self.width {
            self.row.push(Span::styled(word.to_string(), style));
            self.used += word.width();
            // Leading blanks (a code line's indentation) are no reason to wrap early.
            self.has_text |= visible > 0;
            return;
        }
        // Longer than a whole row: cut it.
        let mut piece = String::new();
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if self.used + cw > self.width && (self.has_text || !piece.is_empty()) {
                self.row
                    .push(Span::styled(std::mem::take(&mut piece), style));
                self.new_row();
            }
            piece.push(c);
            self.used += cw;
        }
        if !piece.is_empty() {
            self.row.push(Span::styled(piece, style));
            self.has_text = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(lines: &[Line<'_>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                l.spans
                    .iter()
                    .map(|s| s.content.as_ref())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn styled<'a>(lines: &'a [Line<'_>], needle: &str) -> &'a Span<'a> {
        lines
            .iter()
            .flat_map(|l| l.spans.iter())
            .find(|s| s.content.trim() == needle)
            .unwrap_or_else(|| panic!("no span with {needle:?}"))
    }

    #[test]
    fn paragraphs_wrap_at_words_and_keep_their_order() {
        let t = Theme::new(true);
        let lines = render("one two three four five six\n\nsecond paragraph", 12, &t);
        assert_eq!(
            text_of(&lines),
            [
                "one two",
                "three four",
                "five six",
                "",
                "second",
                "paragraph"
            ]
        );
        assert!(lines.iter().all(|l| l.width() <= 12), "{lines:?}");
    }

    #[test]
    fn lists_code_blocks_and_emphasis_are_rendered() {
        let t = Theme::new(true);
        let md = "# Title\n\n- first item that wraps\n- **second**\n\n1. one\n2. two\n\n\
                  ```rust\nfn main() {}\n    indented();\n```\n\nsome *em* and `code`";
        let lines = render(md, 20, &t);
        let text = text_of(&lines);
        assert_eq!(
            text,
            [
                "Title",
                "",
                "• first item that",
                "  wraps",
                "• second",
                "",
                "1. one",
                "2. two",
                "",
                "  rust",
                "  fn main() {}",
                "      indented();",
                "",
                "some em and code",
            ]
        );
        assert!(styled(&lines, "Title")
            .style
            .add_modifier
            .contains(Modifier::BOLD));
        assert!(styled(&lines, "second")
            .style
            .add_modifier
            .contains(Modifier::BOLD));
        assert!(styled(&lines, "em")
            .style
            .add_modifier
            .contains(Modifier::ITALIC));
        assert_eq!(styled(&lines, "fn").style, t.code_block());
        assert_eq!(styled(&lines, "code").style, t.code_inline());
    }

    #[test]
    fn an_unclosed_fence_while_streaming_runs_to_the_end() {
        let t = Theme::new(true);
        let text = text_of(&render("look:\n\n```\nline one\nline two", 40, &t));
        assert_eq!(text, ["look:", "", "  line one", "  line two"]);
    }

    #[test]
    fn control_characters_never_reach_the_screen() {
        let t = Theme::new(true);
        let lines = render("evil \x1b[2J\u{202e}text\n\n```\nx\x07y\n```", 80, &t);
        for span in lines.iter().flat_map(|l| l.spans.iter()) {
            assert!(
                !span.content.chars().any(astrid_types::text::is_unsafe_char),
                "{span:?}"
            );
        }
        let plain = plain("a\x1b]0;title\x07b\tc", 80, Style::new(), "", "");
        assert_eq!(text_of(&plain), ["a\\x1b]0;title\\x07b    c"]);
    }

    #[test]
    fn long_words_are_cut_and_plain_text_keeps_prefixes() {
        let t = Theme::new(true);
        let lines = render(&"x".repeat(20), 8, &t);
        assert_eq!(text_of(&lines), ["xxxxxxxx", "xxxxxxxx", "xxxx"]);
        let lines = plain("hello world again\nnext", 10, Style::new(), "› ", "  ");
        assert_eq!(text_of(&lines), ["› hello", "  world", "  again", "  next"]);
    }
}

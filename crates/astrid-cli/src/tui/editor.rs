//! The message editor of the chat screen: a multi-line buffer with a cursor, and the history
//! of sent messages (Up on the first line, Down on the last). Pure: no terminal here.

use unicode_width::UnicodeWidthChar;

/// How many sent messages Up can bring back.
const HISTORY_LIMIT: usize = 500;

#[derive(Debug, Default)]
pub struct Editor {
    text: String,
    /// A byte offset into `text`, always on a character boundary.
    cursor: usize,
    history: Vec<String>,
    /// Which history entry is shown while browsing; `None` when editing a fresh message.
    browsing: Option<usize>,
    /// The unsent message put aside while browsing the history.
    draft: String,
}

impl Editor {
    pub fn new() -> Self {
        Editor::default()
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn line_count(&self) -> usize {
        self.text.split('\n').count()
    }

    /// The cursor as (line, display column), for placing the terminal cursor.
    pub fn cursor_position(&self) -> (usize, usize) {
        let before = &self.text[..self.cursor];
        let line = before.matches('\n').count();
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[start..]
            .chars()
            .map(|c| c.width().unwrap_or(0))
            .sum();
        (line, col)
    }

    pub fn insert_char(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    /// Pasted text: line endings become `\n`, tabs four spaces, other control characters
    /// are dropped (they would only confuse the model and the screen).
    pub fn insert_str(&mut self, s: &str) {
        let normalized = s.replace("\r\n", "\n").replace('\r', "\n");
        for c in normalized.chars() {
            match c {
                '\n' => self.insert_char('\n'),
                '\t' => self.insert_str_raw("    "),
                c if c.is_control() => {}
                c => self.insert_char(c),
            }
        }
    }

    fn insert_str_raw(&mut self, s: &str) {
        self.text.insert_str(self.cursor, s);
        self.cursor += s.len();
    }

    pub fn backspace(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
            self.text.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    pub fn left(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
        }
    }

    pub fn right(&mut self) {
        if let Some(c) = self.text[self.cursor..].chars().next() {
            self.cursor += c.len_utf8();
        }
    }

    pub fn home(&mut self) {
        self.cursor = self.line_start();
    }

    pub fn end(&mut self) {
        self.cursor = self.line_end();
    }

    /// Ctrl-U: delete from the start of the line to the cursor.
    pub fn kill_to_start(&mut self) {
        let start = self.line_start();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl-K: delete from the cursor to the end of the line.
    pub fn kill_to_end(&mut self) {
        let end = self.line_end();
        self.text.replace_range(self.cursor..end, "");
    }

    /// Ctrl-W: delete the word before the cursor (and the blanks after it).
    pub fn kill_word(&mut self) {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end_matches([' ', '\t']);
        let start = trimmed.rfind(|c: char| c.is_whitespace()).map_or(0, |i| {
            i + trimmed[i..].chars().next().map_or(1, char::len_utf8)
        });
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Up: the line above, or on the first line the previous message sent.
    pub fn up(&mut self) {
        if self.cursor_position().0 > 0 {
            self.move_vertically(-1);
            return;
        }
        let next = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = std::mem::take(&mut self.text);
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.browsing = Some(next);
        self.text = self.history[next].clone();
        self.cursor = self.text.len();
    }

    /// Down: the line below, or on the last line the next message in the history (and after
    /// the newest, the message that was being written).
    pub fn down(&mut self) {
        if self.cursor_position().0 + 1 < self.line_count() {
            self.move_vertically(1);
            return;
        }
        let Some(i) = self.browsing else { return };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.text = self.history[i + 1].clone();
        } else {
            self.browsing = None;
            self.text = std::mem::take(&mut self.draft);
        }
        self.cursor = self.text.len();
    }

    /// The message to send; the editor is empty afterwards and the message joins the history.
    pub fn take(&mut self) -> String {
        let text = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
        if !text.trim().is_empty() && self.history.last() != Some(&text) {
            self.history.push(text.clone());
            if self.history.len() > HISTORY_LIMIT {
                self.history.remove(0);
            }
        }
        text
    }

    /// Empties the editor without keeping what was in it.
    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
        self.browsing = None;
    }

    fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self) -> usize {
        self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |i| self.cursor + i)
    }

    /// Moves to the same display column of the neighbouring line (or its end, if shorter).
    fn move_vertically(&mut self, delta: isize) {
        let (line, col) = self.cursor_position();
        let target = line.saturating_add_signed(delta);
        let mut offset = 0;
        for (i, l) in self.text.split('\n').enumerate() {
            if i == target {
                let mut width = 0;
                let mut at = l.len();
                for (b, c) in l.char_indices() {
                    if width >= col {
                        at = b;
                        break;
                    }
                    width += c.width().unwrap_or(0);
                }
                self.cursor = offset + at;
                return;
            }
            offset += l.len() + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Editor {
        let mut e = Editor::new();
        e.insert_str(s);
        e
    }

    #[test]
    fn typing_editing_and_cursor_moves() {
        let mut e = typed("héllo");
        assert_eq!(e.cursor_position(), (0, 5));
        e.left();
        e.left();
        e.backspace();
        assert_eq!(e.text(), "hélo");
        e.home();
        e.delete();
        assert_eq!(e.text(), "élo");
        e.end();
        e.insert_char('!');
        assert_eq!(e.text(), "élo!");
        e.right(); // at the end: stays
        assert_eq!(e.cursor_position(), (0, 4));
    }

    #[test]
    fn paste_normalises_line_endings_and_drops_controls() {
        let e = typed("a\r\nb\rc\td\x1b[2J");
        assert_eq!(e.text(), "a\nb\nc    d[2J");
        assert_eq!(e.line_count(), 3);
        assert_eq!(e.cursor_position(), (2, 9));
    }

    #[test]
    fn up_and_down_move_between_lines_at_the_same_column() {
        let mut e = typed("first line\nab\nthird line");
        e.up();
        assert_eq!(e.cursor_position(), (1, 2), "clamped to the short line");
        e.up();
        assert_eq!(e.cursor_position(), (0, 2));
        e.end();
        e.down();
        assert_eq!(e.cursor_position(), (1, 2));
        e.end();
        e.down();
        assert_eq!(e.cursor_position(), (2, 2));
    }

    #[test]
    fn history_brings_back_sent_messages_and_keeps_the_draft() {
        let mut e = Editor::new();
        for m in ["one", "two", "two", "  "] {
            e.insert_str(m);
            e.take();
        }
        e.insert_str("draft");
        e.up();
        assert_eq!(
            e.text(),
            "two",
            "repeats and blank messages are not kept twice"
        );
        e.up();
        assert_eq!(e.text(), "one");
        e.up();
        assert_eq!(e.text(), "one", "the oldest stays");
        e.down();
        assert_eq!(e.text(), "two");
        e.down();
        assert_eq!(e.text(), "draft");
        e.down();
        assert_eq!(e.text(), "draft");
    }

    #[test]
    fn kills_delete_words_and_line_parts() {
        let mut e = typed("read the file  ");
        e.kill_word();
        assert_eq!(e.text(), "read the ");
        e.kill_word();
        assert_eq!(e.text(), "read ");
        e.insert_str("x\nsecond line");
        e.home();
        e.right();
        e.kill_to_end();
        assert_eq!(e.text(), "read x\ns");
        e.kill_to_start();
        assert_eq!(e.text(), "read x\n");
        e.clear();
        assert!(e.is_empty());
        let mut e = typed("mañana");
        e.kill_word();
        assert_eq!(e.text(), "");
    }
}

//! Making untrusted text safe to show on a terminal.
//!
//! Capsules write text that ends up in front of a person (approval reasons, paths, command
//! lines). Printed raw, a control sequence can erase or rewrite the line that names what is
//! being approved (`ESC [2K`, `ESC [1A`, `CR`), and a bidi override or an invisible character
//! can make one path look like another. [`escape_controls`] replaces every such character
//! by a visible escape, so what a person reads is what the bytes say.
//!
//! The escape is idempotent: its output contains no character it would escape (backslash is
//! deliberately left alone), so the kernel escaping before the wire and every frontend
//! escaping again before printing never doubles anything.

/// Whether `c` must not reach a terminal as itself: C0 and C1 controls, DEL, the line and
/// paragraph separators, and the invisible formatting characters (Unicode category `Cf`:
/// bidi embeddings, overrides and isolates, zero-width spaces and joiners, word joiners,
/// the BOM, soft hyphen, interlinear annotation and tag characters).
pub fn is_unsafe_char(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

/// `text` with every [`is_unsafe_char`] written as a visible escape: `\n`, `\r`, `\t`,
/// `\x1b` for the other ASCII controls, `\u{202e}` for the rest. Everything else, including
/// backslash and printable non-ASCII, is kept as it is.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(is_unsafe_char) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && is_unsafe_char(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// [`escape_controls`], then cut to at most `max` bytes (on a character boundary) with `…`
/// marking the cut, so one field cannot push the rest of a prompt off the screen.
pub fn escape_capped(text: &str, max: usize) -> String {
    let escaped = escape_controls(text);
    if escaped.len() <= max {
        return escaped;
    }
    let mut end = max;
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &escaped[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_become_visible() {
        assert_eq!(
            escape_controls("ok\x1b[2K\x1b[1A\rfs:read:/tmp\u{7}\u{7f}\u{9b}"),
            "ok\\x1b[2K\\x1b[1A\\rfs:read:/tmp\\x07\\x7f\\u{9b}"
        );
        assert_eq!(escape_controls("a\nb\tc"), "a\\nb\\tc");
    }

    #[test]
    fn bidi_and_invisible_characters_become_visible() {
        assert_eq!(
            escape_controls("/tmp/\u{202e}txt.exe\u{200b}\u{2066}\u{feff}\u{e0041}"),
            "/tmp/\\u{202e}txt.exe\\u{200b}\\u{2066}\\u{feff}\\u{e0041}"
        );
    }

    #[test]
    fn printable_text_is_untouched_and_escaping_is_idempotent() {
        for s in ["fs:write:/home/ü/données/**", "C:\\path", "日本語 ✓", ""] {
            assert_eq!(escape_controls(s), s);
        }
        let once = escape_controls("\x1b]0;title\x07\u{202e}\\x1b");
        assert_eq!(escape_controls(&once), once);
        assert!(!once.chars().any(is_unsafe_char));
    }

    #[test]
    fn capping_cuts_on_a_character_boundary() {
        assert_eq!(escape_capped("ééé", 3), "é…");
        assert_eq!(escape_capped("\r\r", 2), "\\r…");
        assert_eq!(escape_capped("short", 10), "short");
    }
}

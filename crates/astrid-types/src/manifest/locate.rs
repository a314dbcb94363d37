//! Turns a toml error's byte span into the dotted key an author would look for.
//!
//! toml reports where an error is, not which key it belongs to. We re-parse the text into
//! toml's spanned document tree (which also works, partially, on broken syntax) and take the
//! deepest key or value whose span holds the error. When that finds nothing (typically a
//! syntax error the tree could not represent) we fall back to reading the line: the last
//! table header above it plus the key before `=`. Best effort by design; it never panics.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::key_segment;

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn render(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&key_segment(k));
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

struct Search<'t> {
    target: Range<usize>,
    /// For "missing field" errors toml points at the table that lacks the field (its header
    /// span), so only an exact span match identifies it.
    exact: bool,
    best: Option<(usize, String)>,
    path: Vec<Seg<'t>>,
}

impl<'t> Search<'t> {
    fn holds(&self, span: &Range<usize>) -> bool {
        if span.start >= span.end {
            return false;
        }
        if self.exact {
            return *span == self.target;
        }
        if self.target.start == self.target.end {
            span.start <= self.target.start && self.target.start <= span.end
        } else {
            span.start <= self.target.start && self.target.end <= span.end
        }
    }

    fn consider(&mut self, key_span: Option<Range<usize>>, value_span: Range<usize>) {
        let hit =
            (!self.exact && key_span.is_some_and(|k| self.holds(&k))) || self.holds(&value_span);
        let deeper = self.best.as_ref().is_none_or(|(d, _)| self.path.len() > *d);
        if hit && deeper {
            self.best = Some((self.path.len(), render(&self.path)));
        }
    }

    fn table(&mut self, table: &'t DeTable<'_>) {
        for (key, value) in table.iter() {
            self.path.push(Seg::Key(key.get_ref()));
            self.consider(Some(key.span()), value.span());
            self.value(value.get_ref());
            self.path.pop();
        }
    }

    fn value(&mut self, value: &'t DeValue<'_>) {
        match value {
            DeValue::Table(t) => self.table(t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    self.consider(None, item.span());
                    self.value(item.get_ref());
                    self.path.pop();
                }
            }
            _ => {}
        }
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split_once('`')
        .map(|(field, _)| field)
}

/// Best-effort dotted key for a toml error at `span` with `message`.
pub(super) fn key_for(text: &str, span: Option<Range<usize>>, message: &str) -> String {
    let missing = missing_field(message);
    let mut key = match span {
        None => String::new(),
        // toml points at the document itself (offset 0, empty) for a missing top-level key.
        Some(span) if missing.is_some() && span.is_empty() && span.start == 0 => String::new(),
        Some(span) => {
            let (doc, _) = DeTable::parse_recoverable(text);
            let mut search = Search {
                target: span.clone(),
                exact: missing.is_some(),
                best: None,
                path: Vec::new(),
            };
            search.table(doc.get_ref());
            match search.best {
                Some((_, key)) => key,
                None => by_line(text, span.start),
            }
        }
    };
    if let Some(field) = missing {
        if !key.is_empty() {
            key.push('.');
        }
        key.push_str(&key_segment(field));
    }
    key
}

/// `[name]` or `[[name]]` (trailing comment allowed) -> (name, is_array).
fn header(line: &str) -> Option<(&str, bool)> {
    let line = line.trim();
    let (inner, close, array) = if let Some(rest) = line.strip_prefix("[[") {
        (rest, "]]", true)
    } else {
        (line.strip_prefix('[')?, "]", false)
    };
    let (name, after) = inner.split_once(close)?;
    let after = after.trim();
    let name = name.trim();
    (!name.is_empty() && (after.is_empty() || after.starts_with('#'))).then_some((name, array))
}

/// The line-reading fallback: header above `pos` plus the key on `pos`'s line.
fn by_line(text: &str, pos: usize) -> String {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    let line = &text[line_start..line_end];

    let mut table = String::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for l in text[..line_end].lines() {
        if let Some((name, array)) = header(l) {
            table = if array {
                let n = seen.entry(name).or_insert(0);
                *n += 1;
                format!("{name}[{}]", *n - 1)
            } else {
                name.to_owned()
            };
        }
    }
    if header(line).is_some() {
        return table;
    }
    match line.split_once('=').map(|(k, _)| k.trim()) {
        Some(k) if !k.is_empty() && table.is_empty() => k.to_owned(),
        Some(k) if !k.is_empty() => format!("{table}.{k}"),
        _ => table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines() {
        assert_eq!(header("[package]"), Some(("package", false)));
        assert_eq!(header(" [[ tool ]] # x"), Some(("tool", true)));
        assert_eq!(header("[1, 2],"), None);
        assert_eq!(header("[]"), None);
        assert_eq!(header("name = 1"), None);
    }

    #[test]
    fn by_line_fallback() {
        let text = "[package]\nname = 1\n[[tool]]\n[[tool]]\nname = \"x\n";
        let pos = text.find("name = \"x").unwrap() + 3;
        assert_eq!(by_line(text, pos), "tool[1].name");
        assert_eq!(by_line(text, text.find("name").unwrap()), "package.name");
        assert_eq!(by_line(text, 0), "package");
        assert_eq!(by_line("x = ", 2), "x");
        assert_eq!(by_line("", 0), "");
        // Past the end and mid-character offsets are clamped, never a panic.
        assert_eq!(by_line("é = 1", 1), "é");
        assert_eq!(by_line("a = 1", 99), "a");
    }

    #[test]
    fn missing_field_names() {
        assert_eq!(missing_field("missing field `version`"), Some("version"));
        assert_eq!(missing_field("unknown field `x`"), None);
    }
}

//! Event-bus topics and the patterns that the IPC ACL is written in.
//!
//! A topic is dot-separated segments of `[A-Za-z0-9_-]+`, at most 255 bytes. A pattern is a
//! topic, or a prefix followed by one trailing `*` that matches any suffix (including none).
//! Patterns are deliberately this simple so that "does pattern A cover pattern B" is exact:
//! the kernel relies on it to check dynamic subscriptions against the manifest ceiling.

use std::fmt;

/// Longest topic or pattern, in bytes.
pub const MAX_TOPIC_LEN: usize = 255;

/// Topic prefixes only the kernel may publish on.
pub const KERNEL_PREFIXES: [&str; 2] = ["astrid.", "_reply."];

/// Whether the rejected input was meant as a topic or as a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    Topic,
    Pattern,
}

/// A rejected topic or pattern, with the input and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TopicError {
    pub kind: TopicKind,
    pub input: String,
    pub reason: String,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TopicKind::Topic => "topic",
            TopicKind::Pattern => "topic pattern",
        };
        write!(f, "invalid {what} `{}`: {}", self.input, self.reason)
    }
}

fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Checks dot-separated segments; `s` must be non-empty. `*` gets its own message because
/// it is the most likely mistake.
fn check_segments(s: &str, wildcard_reason: &str) -> Result<(), String> {
    for (i, b) in s.bytes().enumerate() {
        if b == b'*' {
            return Err(wildcard_reason.to_owned());
        }
        if b != b'.' && !is_segment_byte(b) {
            // Report the whole character, not a byte of it, so the message is readable.
            let c = s[i..].chars().next().unwrap_or('?');
            return Err(format!(
                "contains {c:?} at byte {i}; segments may only use A-Z, a-z, 0-9, `_` and `-`"
            ));
        }
    }
    if s.split('.').any(str::is_empty) {
        return Err("has an empty segment".to_owned());
    }
    Ok(())
}

fn check_len(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".to_owned());
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(format!(
            "is {} bytes; the limit is {MAX_TOPIC_LEN}",
            s.len()
        ));
    }
    Ok(())
}

/// Validates a concrete topic (no wildcard).
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    check_len(topic)
        .and_then(|()| {
            check_segments(
                topic,
                "contains `*`; wildcards are only allowed in patterns",
            )
        })
        .map_err(|reason| TopicError {
            kind: TopicKind::Topic,
            input: topic.to_owned(),
            reason,
        })
}

/// Validates a pattern: a topic, or a prefix with one trailing `*` (`*`, `a.b.*`, `a.b*`).
pub fn validate_pattern(pattern: &str) -> Result<(), TopicError> {
    check_len(pattern)
        .and_then(|()| {
            const STAR: &str = "`*` may only appear once, at the end";
            match pattern.strip_suffix('*') {
                None => check_segments(pattern, STAR),
                Some("") => Ok(()),
                Some(prefix) => {
                    // `a.b.*` is the prefix `a.b.`: the dot is fine, the rest must be segments.
                    let body = prefix.strip_suffix('.').unwrap_or(prefix);
                    if body.is_empty() {
                        return Err("has an empty segment".to_owned());
                    }
                    check_segments(body, STAR)
                }
            }
        })
        .map_err(|reason| TopicError {
            kind: TopicKind::Pattern,
            input: pattern.to_owned(),
            reason,
        })
}

/// A validated pattern split into its literal part and whether it ends in `*`.
fn split(pattern: &str) -> Option<(&str, bool)> {
    validate_pattern(pattern).ok()?;
    Some(match pattern.strip_suffix('*') {
        Some(prefix) => (prefix, true),
        None => (pattern, false),
    })
}

/// Whether `pattern` matches `topic`. An invalid pattern or topic matches nothing, so a
/// malformed ACL entry can never grant access.
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    if validate_topic(topic).is_err() {
        return false;
    }
    match split(pattern) {
        Some((prefix, true)) => topic.starts_with(prefix),
        Some((exact, false)) => topic == exact,
        None => false,
    }
}

/// Whether every topic matched by `inner` is also matched by `outer`.
///
/// Exact because a wildcard pattern always matches infinitely many topics that differ right
/// after its prefix: so a wildcard is only covered by a wildcard whose prefix is a prefix of
/// its own, and an exact pattern only covers itself.
pub fn pattern_covers(outer: &str, inner: &str) -> bool {
    match (split(outer), split(inner)) {
        (Some((o, true)), Some((i, _))) => i.starts_with(o),
        (Some((o, false)), Some((i, false))) => o == i,
        _ => false,
    }
}

/// Whether some topic is matched by both patterns (both validated). Two wildcards overlap when
/// one prefix extends the other; a wildcard and an exact pattern when the prefix starts it.
pub fn patterns_overlap(a: &str, b: &str) -> bool {
    match (split(a), split(b)) {
        (Some((a, true)), Some((b, true))) => a.starts_with(b) || b.starts_with(a),
        (Some((w, true)), Some((e, false))) | (Some((e, false)), Some((w, true))) => {
            e.starts_with(w)
        }
        (Some((a, false)), Some((b, false))) => a == b,
        _ => false,
    }
}

/// Whether `topic` is reserved for the kernel (`astrid.` and `_reply.`).
pub fn is_kernel_topic(topic: &str) -> bool {
    KERNEL_PREFIXES.iter().any(|p| topic.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic_reason(t: &str) -> String {
        validate_topic(t).unwrap_err().reason
    }

    fn pattern_reason(p: &str) -> String {
        validate_pattern(p).unwrap_err().reason
    }

    #[test]
    fn valid_topics() {
        let long = format!("{}.b", "a".repeat(253));
        for t in [
            "a",
            "echo.v1.out",
            "A-b_c.9",
            "tool.v1.execute.read_file",
            &long,
        ] {
            assert_eq!(validate_topic(t), Ok(()), "{t}");
            assert_eq!(validate_pattern(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn invalid_topics() {
        assert_eq!(topic_reason(""), "is empty");
        assert_eq!(
            topic_reason(&"a".repeat(256)),
            "is 256 bytes; the limit is 255"
        );
        for t in [".a", "a.", "a..b", "."] {
            assert_eq!(topic_reason(t), "has an empty segment", "{t}");
        }
        assert_eq!(
            topic_reason("a.b c"),
            "contains ' ' at byte 3; segments may only use A-Z, a-z, 0-9, `_` and `-`"
        );
        assert_eq!(
            topic_reason("a/é"),
            "contains '/' at byte 1; segments may only use A-Z, a-z, 0-9, `_` and `-`"
        );
        assert_eq!(
            topic_reason("ab.é"),
            "contains 'é' at byte 3; segments may only use A-Z, a-z, 0-9, `_` and `-`"
        );
        assert_eq!(
            topic_reason("a.*"),
            "contains `*`; wildcards are only allowed in patterns"
        );
        let err = validate_topic("a..b").unwrap_err();
        assert_eq!(err.kind, TopicKind::Topic);
        assert_eq!(
            err.to_string(),
            "invalid topic `a..b`: has an empty segment"
        );
    }

    #[test]
    fn valid_patterns() {
        let long = format!("{}*", "a".repeat(254));
        for p in ["*", "tool.v1.execute.*", "foo.bar*", "a*", "a.b", &long] {
            assert_eq!(validate_pattern(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn invalid_patterns() {
        let star = "`*` may only appear once, at the end";
        for p in ["foo*bar", "*.a", "a.*.b", "**", "a**", "a.*b", "*a"] {
            assert_eq!(pattern_reason(p), star, "{p}");
        }
        for p in [".*", "a..*", "..*", ".a*"] {
            assert_eq!(pattern_reason(p), "has an empty segment", "{p}");
        }
        assert_eq!(pattern_reason(""), "is empty");
        assert_eq!(
            pattern_reason(&format!("{}*", "a".repeat(255))),
            "is 256 bytes; the limit is 255"
        );
        assert_eq!(
            validate_pattern("foo*bar").unwrap_err().to_string(),
            "invalid topic pattern `foo*bar`: `*` may only appear once, at the end"
        );
        assert_eq!(
            validate_pattern("x y").unwrap_err().kind,
            TopicKind::Pattern
        );
    }

    #[test]
    fn matching() {
        assert!(pattern_matches("*", "anything.at.all"));
        assert!(pattern_matches("a.b", "a.b"));
        assert!(!pattern_matches("a.b", "a.bc"));
        assert!(!pattern_matches("a.b", "a.b.c"));
        assert!(pattern_matches("foo.bar*", "foo.bar"));
        assert!(pattern_matches("foo.bar*", "foo.barn"));
        assert!(pattern_matches("foo.bar*", "foo.bar.baz"));
        assert!(!pattern_matches("foo.bar*", "foo.ba"));
        assert!(pattern_matches(
            "tool.v1.execute.*",
            "tool.v1.execute.read_file"
        ));
        assert!(!pattern_matches("tool.v1.execute.*", "tool.v1.execute"));
        assert!(!pattern_matches("tool.v1.execute.*", "tool.v1.executex"));
        // Invalid inputs never match.
        assert!(!pattern_matches("*", "a..b"));
        assert!(!pattern_matches("*", ""));
        assert!(!pattern_matches("a*b", "a.b"));
        assert!(!pattern_matches("a.*", "a.*"));
    }

    #[test]
    fn covering() {
        assert!(pattern_covers("*", "*"));
        assert!(pattern_covers("*", "a.b"));
        assert!(pattern_covers("*", "a.*"));
        assert!(pattern_covers("a.*", "a.b.*"));
        assert!(pattern_covers("a.*", "a.b"));
        assert!(pattern_covers("a*", "a.*"));
        assert!(pattern_covers("a*", "a"));
        assert!(pattern_covers("a*", "ab*"));
        assert!(pattern_covers("a.b", "a.b"));
        assert!(!pattern_covers("a.*", "a*"));
        assert!(!pattern_covers("a.*", "a"));
        assert!(!pattern_covers("a.b", "a.b*"));
        assert!(!pattern_covers("a.b", "a.c"));
        assert!(!pattern_covers("a.b.*", "a.*"));
        assert!(!pattern_covers("a.*", "*"));
        assert!(!pattern_covers("ab*", "a*"));
        assert!(!pattern_covers("*", "a**"));
        assert!(!pattern_covers("a..*", "a..b"));
    }

    #[test]
    fn kernel_topics() {
        assert!(is_kernel_topic("astrid.v1.capsules_loaded"));
        assert!(is_kernel_topic("_reply.123"));
        assert!(!is_kernel_topic("astrid"));
        assert!(!is_kernel_topic("astridx.a"));
        assert!(!is_kernel_topic("reply.a"));
        assert!(!is_kernel_topic("echo.astrid.x"));
    }
}

//! Absolute path patterns: literal segments, `*` for exactly one segment, and `**` as the
//! final segment for "this directory and everything beneath it".

use std::fmt;

/// Longest pattern or concrete path we look at; longer inputs are refused, never truncated.
pub(crate) const MAX_PATH_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Segment {
    Literal(String),
    /// `*`: any one segment.
    One,
    /// `**`: zero or more segments; only ever the last segment.
    Rest,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

impl PathPattern {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_PATH_LEN {
            return Err(format!("path longer than {MAX_PATH_LEN} bytes"));
        }
        let body = text
            .strip_prefix('/')
            .ok_or_else(|| "path must be absolute (start with `/`)".to_owned())?;
        let mut segments = Vec::new();
        if body.is_empty() {
            return Ok(PathPattern { segments });
        }
        let parts: Vec<&str> = body.split('/').collect();
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let seg = match part {
                "" => return Err("empty path segment (`//` or trailing `/`)".into()),
                "." | ".." => return Err(format!("`{part}` segments are not allowed")),
                "**" if i == last => Segment::Rest,
                "**" => return Err("`**` is only allowed as the last segment".into()),
                "*" => Segment::One,
                p if p.contains('*') => {
                    return Err(format!("`*` must be a whole segment, not part of `{p}`"))
                }
                p if p.contains('\0') => return Err("NUL byte in path".into()),
                p => Segment::Literal(p.to_owned()),
            };
            segments.push(seg);
        }
        Ok(PathPattern { segments })
    }

    /// `path` must be absolute and normal (no `.`, `..` or empty segments): anything else
    /// does not match, so a caller that forgot to canonicalise fails closed.
    pub(crate) fn matches(&self, path: &str) -> bool {
        if path.len() > MAX_PATH_LEN || path.contains('\0') {
            return false;
        }
        let Some(body) = path.strip_prefix('/') else {
            return false;
        };
        // `/` has no segments, but `"".split('/')` yields one empty one.
        let mut parts = body
            .split('/')
            .take(if body.is_empty() { 0 } else { usize::MAX });
        for seg in &self.segments {
            match seg {
                // What follows `**` must still be normal: `/a/**` never matches `/a/../etc`.
                Segment::Rest => return parts.all(is_normal_segment),
                Segment::One => {
                    if !parts.next().is_some_and(is_normal_segment) {
                        return false;
                    }
                }
                Segment::Literal(lit) => {
                    if parts.next() != Some(lit.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }

    /// The path named by the literal segments before the first wildcard: everything the
    /// pattern matches lies beneath it (`/a/b/**` and `/a/b/*/c` give `/a/b`, `/**` gives `/`).
    pub fn literal_prefix(&self) -> std::path::PathBuf {
        let mut out = std::path::PathBuf::from("/");
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => out.push(l),
                Segment::One | Segment::Rest => break,
            }
        }
        out
    }

    /// True when the pattern names one path (no `*`, no `**`).
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// True when some segment is a single-segment `*`.
    pub fn has_one_wildcard(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::One))
    }

    /// True when every path this pattern matches is also matched by `wider`.
    pub(crate) fn narrower_or_equal(&self, wider: &PathPattern) -> bool {
        let (w_fixed, w_rest) = split_rest(&wider.segments);
        let (s_fixed, s_rest) = split_rest(&self.segments);
        if w_rest {
            // `wider` covers its prefix and everything below; `self` must stay below that
            // prefix. A `**` in `self` ending above the prefix would reach paths `wider`
            // does not (including the shorter directory itself).
            s_fixed.len() >= w_fixed.len()
                && s_fixed.iter().zip(w_fixed).all(|(s, w)| seg_within(s, w))
        } else {
            !s_rest
                && s_fixed.len() == w_fixed.len()
                && s_fixed.iter().zip(w_fixed).all(|(s, w)| seg_within(s, w))
        }
    }
}

fn is_normal_segment(p: &str) -> bool {
    !matches!(p, "" | "." | "..")
}

fn split_rest(segments: &[Segment]) -> (&[Segment], bool) {
    match segments.split_last() {
        Some((Segment::Rest, fixed)) => (fixed, true),
        _ => (segments, false),
    }
}

fn seg_within(narrow: &Segment, wide: &Segment) -> bool {
    match (narrow, wide) {
        (_, Segment::Rest) | (Segment::Rest, _) => false,
        (_, Segment::One) => true,
        (Segment::Literal(a), Segment::Literal(b)) => a == b,
        (Segment::One, Segment::Literal(_)) => false,
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for seg in &self.segments {
            f.write_str("/")?;
            match seg {
                Segment::Literal(s) => f.write_str(s)?,
                Segment::One => f.write_str("*")?,
                Segment::Rest => f.write_str("**")?,
            }
        }
        Ok(())
    }
}

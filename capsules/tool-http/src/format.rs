//! The pure parts of `http_fetch`: argument checks, bounded body collection and the reply.

/// Body bytes shown when the model does not say, and the most it may ask for.
pub const DEFAULT_MAX_BYTES: u32 = 256 * 1024;
pub const MAX_BYTES: u32 = 1024 * 1024;

/// The largest piece asked of the host per read.
const CHUNK: u32 = 64 * 1024;

/// `GET` or `HEAD` from the model's optional method, case-insensitively.
pub fn method(requested: Option<&str>) -> Result<&'static str, String> {
    match requested.map(str::trim) {
        None | Some("") => Ok("GET"),
        Some(m) if m.eq_ignore_ascii_case("get") => Ok("GET"),
        Some(m) if m.eq_ignore_ascii_case("head") => Ok("HEAD"),
        Some(m) => Err(format!(
            "method `{m}` is not supported; http_fetch only does GET and HEAD"
        )),
    }
}

/// Refuses what is obviously not a fetchable URL, so the model gets a plain answer; the host
/// still checks everything that matters (scheme policy, host, port, address).
pub fn check_url(url: &str) -> Result<(), String> {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(format!(
            "`{url}` is not an absolute http:// or https:// URL"
        )),
    }
}

/// The body limit: the model's `max_bytes`, at least 1, at most [`MAX_BYTES`].
pub fn max_bytes(requested: Option<u64>) -> u32 {
    requested.map_or(DEFAULT_MAX_BYTES, |n| {
        u32::try_from(n).unwrap_or(MAX_BYTES).clamp(1, MAX_BYTES)
    })
}

/// Collects a body up to a limit, reading one byte past it to learn whether there was more.
#[derive(Debug)]
pub struct Collector {
    max: u32,
    pub body: Vec<u8>,
    pub truncated: bool,
}

impl Collector {
    pub fn new(max: u32) -> Self {
        Self {
            max,
            body: Vec::new(),
            truncated: false,
        }
    }

    /// How much to ask the host for next; 0 means stop reading.
    pub fn want(&self) -> u32 {
        if self.truncated {
            return 0;
        }
        let have = u32::try_from(self.body.len()).unwrap_or(u32::MAX);
        (self.max.saturating_add(1)).saturating_sub(have).min(CHUNK)
    }

    /// Takes one chunk; anything past the limit is dropped and marks the body truncated.
    pub fn push(&mut self, chunk: &[u8]) {
        self.body.extend_from_slice(chunk);
        if self.body.len() > self.max as usize {
            self.body.truncate(self.max as usize);
            self.truncated = true;
        }
    }
}

/// What the model reads: status line, content type, then the body as text.
pub struct Fetched<'a> {
    pub method: &'a str,
    pub status: u16,
    pub final_url: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    pub truncated: bool,
    pub max_bytes: u32,
}

pub fn describe(f: &Fetched<'_>) -> String {
    let mut text = format!(
        "HTTP {} ({})\ncontent-type: {}\n\n",
        f.status,
        f.final_url,
        f.content_type.unwrap_or("(none)")
    );
    if f.method == "HEAD" {
        text.push_str("(HEAD request: no body)");
        return text;
    }
    if f.body.is_empty() {
        text.push_str("(empty body)");
        return text;
    }
    if f.body.iter().take(8192).any(|&b| b == 0) {
        text.push_str(&format!(
            "[binary body not shown: {}{} bytes]",
            if f.truncated { "more than " } else { "" },
            f.body.len()
        ));
        return text;
    }
    text.push_str(&String::from_utf8_lossy(f.body));
    if f.truncated {
        let hint = if f.max_bytes < MAX_BYTES {
            format!("; pass a larger max_bytes (at most {MAX_BYTES}) to see more")
        } else {
            String::new()
        };
        text.push_str(&format!(
            "\n[body truncated after {} bytes{hint}]",
            f.body.len()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_urls() {
        assert_eq!(method(None), Ok("GET"));
        assert_eq!(method(Some("head")), Ok("HEAD"));
        assert!(method(Some("POST")).unwrap_err().contains("GET and HEAD"));
        assert!(check_url("https://example.com/a?b").is_ok());
        assert!(check_url("HTTP://example.com").is_ok());
        for bad in [
            "example.com",
            "ftp://x",
            "https://",
            "https:///path",
            "file:///etc/passwd",
        ] {
            assert!(
                check_url(bad).unwrap_err().contains("not an absolute"),
                "{bad}"
            );
        }
    }

    #[test]
    fn max_bytes_is_clamped() {
        assert_eq!(max_bytes(None), DEFAULT_MAX_BYTES);
        assert_eq!(max_bytes(Some(0)), 1);
        assert_eq!(max_bytes(Some(10)), 10);
        assert_eq!(max_bytes(Some(u64::MAX)), MAX_BYTES);
    }

    #[test]
    fn collector_reads_one_past_the_limit_then_stops() {
        let mut c = Collector::new(10);
        assert_eq!(c.want(), 11);
        c.push(b"0123456");
        assert_eq!(c.want(), 4);
        c.push(b"789");
        // Exactly at the limit: one more byte decides whether the body was cut.
        assert_eq!(c.want(), 1);
        assert!(!c.truncated);
        c.push(b"X");
        assert!(c.truncated);
        assert_eq!(c.body, b"0123456789");
        assert_eq!(c.want(), 0);
        let big = Collector::new(MAX_BYTES);
        assert_eq!(big.want(), 64 * 1024);
    }

    fn fetched<'a>(body: &'a [u8], truncated: bool) -> Fetched<'a> {
        Fetched {
            method: "GET",
            status: 200,
            final_url: "https://example.com/",
            content_type: Some("text/plain"),
            body,
            truncated,
            max_bytes: 5,
        }
    }

    #[test]
    fn reply_has_status_type_and_body() {
        assert_eq!(
            describe(&fetched(b"hello", false)),
            "HTTP 200 (https://example.com/)\ncontent-type: text/plain\n\nhello"
        );
        let t = describe(&fetched(b"hello", true));
        assert!(t.ends_with("hello\n[body truncated after 5 bytes; pass a larger max_bytes (at most 1048576) to see more]"), "{t}");
        let t = describe(&fetched(b"\xffok", false));
        assert!(t.ends_with("\u{fffd}ok"), "{t}");
    }

    #[test]
    fn head_empty_and_binary_bodies() {
        let mut f = fetched(b"", false);
        f.content_type = None;
        assert!(describe(&f).ends_with("content-type: (none)\n\n(empty body)"));
        f.method = "HEAD";
        assert!(describe(&f).ends_with("(HEAD request: no body)"));
        let t = describe(&fetched(b"\x89PNG\x00\x00", true));
        assert!(
            t.ends_with("[binary body not shown: more than 6 bytes]"),
            "{t}"
        );
    }
}

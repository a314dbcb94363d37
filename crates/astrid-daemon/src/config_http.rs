//! `[http]`: the operator's limits on every capsule's outbound HTTP (`astrid:http`), each
//! checked against a range so a typo stops the daemon naming the key. A request may narrow
//! these (astrid:http@1.1.0 options) but never widen them.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use astrid_egress::AirlockConfig;
use serde::Deserialize;

use crate::config::{ranged, MIB};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpConfig {
    /// Largest response body, MiB.
    max_body_mb: Option<u64>,
    /// Time for an exchange whose request names none, seconds.
    default_timeout_secs: Option<u64>,
    /// Ceiling on any request's time, seconds.
    max_timeout_secs: Option<u64>,
    /// Time for one TCP connect, seconds.
    connect_timeout_secs: Option<u64>,
    /// Redirects followed at most.
    max_redirects: Option<u64>,
    /// Largest response head (status line and headers), KiB.
    max_header_kb: Option<u64>,
    /// Most response headers.
    max_headers: Option<u64>,
    /// Responses one capsule invocation may hold open at once.
    max_open_responses: Option<u64>,
}

pub(crate) fn apply_http(path: &Path, h: &HttpConfig, a: &mut AirlockConfig) -> Result<()> {
    let ranged = |key: &str, v, lo, hi| ranged(path, &format!("http.{key}"), v, lo, hi);
    if let Some(mb) = ranged("max_body_mb", h.max_body_mb, 1, 4096)? {
        a.max_body = mb * MIB;
    }
    if let Some(s) = ranged("max_timeout_secs", h.max_timeout_secs, 1, 86_400)? {
        a.max_timeout = Duration::from_secs(s);
    }
    if let Some(s) = ranged("default_timeout_secs", h.default_timeout_secs, 1, 86_400)? {
        a.default_timeout = Duration::from_secs(s);
    }
    if a.default_timeout > a.max_timeout {
        bail!(
            "{}: `http.default_timeout_secs`: {}s is above `http.max_timeout_secs` ({}s)",
            path.display(),
            a.default_timeout.as_secs(),
            a.max_timeout.as_secs()
        );
    }
    if let Some(s) = ranged("connect_timeout_secs", h.connect_timeout_secs, 1, 600)? {
        a.connect_timeout = Duration::from_secs(s);
    }
    if let Some(n) = ranged("max_redirects", h.max_redirects, 0, 20)? {
        a.max_redirects = n as u8;
    }
    // hyper's read buffer (which bounds the head) cannot be smaller than 8 KiB.
    if let Some(kb) = ranged("max_header_kb", h.max_header_kb, 8, 1024)? {
        a.max_header_bytes = (kb * 1024) as usize;
    }
    if let Some(n) = ranged("max_headers", h.max_headers, 8, 1000)? {
        a.max_headers = n as usize;
    }
    if let Some(n) = ranged("max_open_responses", h.max_open_responses, 1, 256)? {
        a.max_open_responses = n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(text: &str) -> Result<AirlockConfig> {
        let h: HttpConfig = toml::from_str(text)?;
        let mut a = AirlockConfig::default();
        apply_http(Path::new("/etc/config.toml"), &h, &mut a).map(|()| a)
    }

    #[test]
    fn defaults_stand_and_every_key_is_read() {
        let d = applied("").unwrap();
        assert_eq!(d.max_body, AirlockConfig::default().max_body);
        let a = applied(
            "max_body_mb = 2\ndefault_timeout_secs = 5\nmax_timeout_secs = 30\n\
             connect_timeout_secs = 3\nmax_redirects = 0\nmax_header_kb = 16\n\
             max_headers = 20\nmax_open_responses = 4\n",
        )
        .unwrap();
        assert_eq!(a.max_body, 2 * 1024 * 1024);
        assert_eq!(a.default_timeout, Duration::from_secs(5));
        assert_eq!(a.max_timeout, Duration::from_secs(30));
        assert_eq!(a.connect_timeout, Duration::from_secs(3));
        assert_eq!(a.max_redirects, 0);
        assert_eq!(a.max_header_bytes, 16 * 1024);
        assert_eq!(a.max_headers, 20);
        assert_eq!(a.max_open_responses, 4);
    }

    #[test]
    fn a_value_out_of_range_or_unknown_names_the_key() {
        for (text, key) in [
            ("max_body_mb = 0", "http.max_body_mb"),
            ("max_header_kb = 4", "http.max_header_kb"),
            ("max_redirects = 99", "http.max_redirects"),
            ("max_open_responses = 0", "http.max_open_responses"),
            (
                "default_timeout_secs = 100\nmax_timeout_secs = 10",
                "http.default_timeout_secs",
            ),
            ("max_bodies = 1", "max_bodies"),
        ] {
            let err = applied(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}

//! What a capsule asks for, and the secrets the host attaches to it.

use std::fmt;
use std::time::Duration;

use url::{Host, Url};
use zeroize::Zeroizing;

/// A secret header the airlock adds only to hops whose `(scheme, host, port)` equal these
/// fields (host compared after URL normalisation). A capsule-supplied header of the same
/// name is removed for such a hop. The value never appears in `Debug` output or errors.
#[derive(Clone)]
pub struct Credential {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub header: String,
    pub value: Zeroizing<String>,
}

impl Credential {
    /// Whether this credential is bound to the origin of `url`.
    pub fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host() else {
            return false;
        };
        let bound = if self.host.contains(':') && !self.host.starts_with('[') {
            Host::parse(&format!("[{}]", self.host))
        } else {
            Host::parse(&self.host)
        };
        url.scheme()
            .eq_ignore_ascii_case(self.scheme.trim_end_matches(':'))
            && url.port_or_known_default() == Some(self.port)
            && bound.is_ok_and(|b| b == host.to_owned())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("header", &self.header)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// One outbound request as the capsule wrote it, plus the host's credentials.
#[derive(Debug, Clone, Default)]
pub struct EgressRequest {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD` or `OPTIONS`.
    pub method: String,
    /// Absolute URL; `https`, or `http` for a consented local target.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Deadline of the whole exchange including the body; `None` means
    /// [`crate::AirlockConfig::default_timeout`], zero means no time at all (a spent
    /// budget). Always capped by [`crate::AirlockConfig::max_timeout`].
    pub timeout: Option<Duration>,
    pub credentials: Vec<Credential>,
    /// What to do with a redirect; `None` follows up to
    /// [`crate::AirlockConfig::max_redirects`].
    pub redirects: Option<Redirects>,
    /// A smaller response body cap than [`crate::AirlockConfig::max_body`] (a larger one is
    /// cut to it).
    pub max_body: Option<u64>,
    /// Refuse every hop that is not `https`, a consented local target or a redirect included.
    pub https_only: bool,
    /// The digest the final response's body must have. The airlock then reads the whole body
    /// (under the cap and the deadline) before `send` returns, so a mismatching body is an
    /// error and none of it is handed on.
    pub integrity: Option<crate::Integrity>,
}

/// A request's redirect policy. The operator's [`crate::AirlockConfig::max_redirects`] is
/// always the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Follow at most this many (each hop checked like the first); more is an error.
    Follow(u8),
    /// Follow none: a redirect is the response (status and `Location` as received).
    Manual,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred() -> Credential {
        Credential {
            scheme: "https".into(),
            host: "API.example.com".into(),
            port: 443,
            header: "authorization".into(),
            value: Zeroizing::new("Bearer hunter2".into()),
        }
    }

    #[test]
    fn debug_redacts_the_value() {
        let req = EgressRequest {
            credentials: vec![cred()],
            ..Default::default()
        };
        let shown = format!("{req:?} {:#?}", cred());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn matches_exact_origin_only() {
        let c = cred();
        let m = |s: &str| c.matches(&Url::parse(s).unwrap());
        assert!(m("https://api.example.com/v1"));
        assert!(m("https://api.example.com:443/v1"));
        assert!(!m("http://api.example.com:443/"));
        assert!(!m("https://api.example.com:8443/"));
        assert!(!m("https://evil.example.com/"));
        assert!(!m("https://api.example.com.evil.net/"));
    }
}

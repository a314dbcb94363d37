//! The checks that need no network: scheme, local consent, names and IP literals, and the
//! capsule's headers.

use std::fmt;
use std::str::FromStr;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use url::{Host, Url};

use crate::{ip::check_ip, EgressError};

/// The host's own check (manifest ceiling, capability tokens, human approval, audit),
/// called for the first URL and for every redirect hop before any DNS lookup or connect
/// for that hop. `Err(reason)` becomes [`EgressError::Denied`] with that reason.
pub trait Authorize: Send + Sync {
    /// `Ok(())` lets the hop proceed to the airlock's address policy.
    fn authorize(&self, url: &Url) -> Result<(), String>;

    /// The hop's target is on this machine or the local network (`why` says how: a
    /// `localhost` name, a loopback or private address, or a name that answered only with
    /// such addresses) and the operator has not consented to it: may it go on, as consented,
    /// this once? Asked before [`authorize`](Self::authorize) for a `localhost` name or a
    /// literal, after the lookup for a name. Only loopback and private targets are put
    /// ([`askable`]); link-local (the cloud metadata service), multicast, reserved and the
    /// rest are refused without asking. Default: no.
    fn consent_local(&self, _url: &Url, _why: &str) -> bool {
        false
    }
}

/// Whether a non-public address may be consented to at run time: loopback or a private
/// range (RFC 1918, IPv6 unique local). Never link-local, which holds the cloud metadata
/// service, nor anything else `check_ip` refuses.
pub fn askable(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_loopback() || v4.is_private(),
            None => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        },
    }
}

impl<F> Authorize for F
where
    F: Fn(&Url) -> Result<(), String> + Send + Sync,
{
    fn authorize(&self, url: &Url) -> Result<(), String> {
        self(url)
    }
}

/// Non-public targets the operator consented to for one capsule. A target listed here may
/// be reached over plain `http` and may resolve to a loopback or private address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consent {
    pub local: Vec<LocalTarget>,
}

impl Consent {
    /// Whether the URL host (as normalised by URL parsing) and port are consented. The
    /// match is exact: a consent for `127.0.0.1:8080` does not cover `localhost:8080` or
    /// `127.0.0.1:8081`.
    pub fn covers(&self, host: &Host<&str>, port: u16) -> bool {
        let host = host.to_owned();
        self.local
            .iter()
            .any(|t| t.port == port && t.normalised().as_ref() == Some(&host))
    }
}

/// One consented `host:port`. `host` is an IP literal or a DNS name as the user typed it;
/// it is normalised the same way URL hosts are when compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTarget {
    pub host: String,
    pub port: u16,
}

impl LocalTarget {
    fn normalised(&self) -> Option<Host<String>> {
        normalise_host(&self.host)
    }
}

/// Parses a bare host the way a URL host is parsed (lowercase, IDNA, odd IPv4 forms), so a
/// consent written `0x7f.1` or `LocalHost` means what the URL parser will make of it.
fn normalise_host(host: &str) -> Option<Host<String>> {
    let host = host.trim();
    if host.contains(':') && !host.starts_with('[') {
        Host::parse(&format!("[{host}]")).ok()
    } else {
        Host::parse(host).ok()
    }
}

impl FromStr for LocalTarget {
    type Err = EgressError;

    /// `host:port` or `[v6]:port`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| EgressError::InvalidArgument(format!("local target `{s}`: {why}"));
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest
                .split_once("]:")
                .ok_or_else(|| bad("expected [ipv6]:port"))?;
            (h, p)
        } else {
            let (h, p) = s
                .rsplit_once(':')
                .ok_or_else(|| bad("expected host:port"))?;
            if h.contains(':') {
                return Err(bad("an IPv6 address needs brackets: [addr]:port"));
            }
            (h, p)
        };
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        if port == 0 {
            return Err(bad("the port must not be 0"));
        }
        if host.is_empty() || normalise_host(host).is_none() {
            return Err(bad("the host is not a valid name or address"));
        }
        Ok(LocalTarget {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for LocalTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') && !self.host.starts_with('[') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What the pure checks learned about one hop.
#[derive(Debug)]
pub(crate) struct Hop {
    pub port: u16,
    /// The operator consented to this exact host:port; non-public addresses are allowed.
    pub consented: bool,
    /// Present for an IP literal: no DNS lookup happens.
    pub literal: Option<std::net::IpAddr>,
}

/// The checks every hop passes before anything else, for a caller (or a fuzzer) that wants
/// the airlock's verdict on a URL without a network: the scheme, credentials in the URL, a
/// `localhost` name and a non-public IP literal, each unless consented. A name that resolves
/// to a non-public address is refused later, after the lookup.
pub fn preflight(url: &Url, consent: &Consent) -> Result<(), EgressError> {
    check_url(url, consent, &|_: &Url| Ok(())).map(|_| ())
}

/// Scheme rule, local consent, `localhost` names and IP literals. Runs before the host's
/// [`Authorize`] so a person is never asked to approve something the airlock refuses; a
/// local target not consented is put to `auth` ([`Authorize::consent_local`]) first.
pub(crate) fn check_url(
    url: &Url,
    consent: &Consent,
    auth: &dyn Authorize,
) -> Result<Hop, EgressError> {
    let scheme = url.scheme();
    if scheme != "https" && scheme != "http" {
        return Err(EgressError::Denied(format!(
            "scheme `{scheme}` is not allowed; only https"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EgressError::InvalidArgument(
            "credentials in the URL are not allowed".into(),
        ));
    }
    let host = url
        .host()
        .ok_or_else(|| EgressError::InvalidArgument(format!("`{url}` has no host")))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| EgressError::InvalidArgument(format!("`{url}` has no port")))?;
    let mut consented = consent.covers(&host, port);
    if !consented {
        let local = match &host {
            Host::Domain(name) => {
                let name = name.trim_end_matches('.');
                (name == "localhost" || name.ends_with(".localhost"))
                    .then(|| format!("`{name}` names this machine"))
            }
            Host::Ipv4(ip) => local_literal((*ip).into()),
            Host::Ipv6(ip) => local_literal((*ip).into()),
        };
        if let Some(why) = local {
            consented = auth.consent_local(url, &why);
        }
    }
    if scheme == "http" && !consented {
        return Err(EgressError::Denied(format!(
            "plain http to {host}:{port} is not allowed: https only, unless the operator \
             consented to this local target"
        )));
    }
    let literal = match host {
        Host::Ipv4(ip) => Some(ip.into()),
        Host::Ipv6(ip) => Some(ip.into()),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.');
            if !consented && (name == "localhost" || name.ends_with(".localhost")) {
                return Err(EgressError::Denied(format!(
                    "`{name}` names this machine (localhost); not consented for port {port}"
                )));
            }
            None
        }
    };
    if let (Some(ip), false) = (literal, consented) {
        check_ip(ip).map_err(EgressError::Denied)?;
    }
    Ok(Hop {
        port,
        consented,
        literal,
    })
}

/// Why a non-public literal may be asked about, or `None` when it is public or never asked.
fn local_literal(ip: std::net::IpAddr) -> Option<String> {
    let refused = check_ip(ip).err()?;
    askable(ip).then_some(refused)
}

/// Headers the airlock sets itself or that would change how the connection is framed.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Headers that carry the capsule's own credentials; dropped on a cross-origin redirect.
pub(crate) const ORIGIN_BOUND: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// Validates the capsule's headers and refuses the reserved ones.
pub(crate) fn capsule_headers(headers: &[(String, String)]) -> Result<HeaderMap, EgressError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            EgressError::InvalidArgument(format!("`{name}` is not a valid header name"))
        })?;
        if RESERVED.contains(&name.as_str()) {
            return Err(EgressError::InvalidArgument(format!(
                "header `{name}` is set by the airlock and may not be supplied"
            )));
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            EgressError::InvalidArgument(format!("header `{name}` has an invalid value"))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`, `OPTIONS` (any case).
pub(crate) fn method(m: &str) -> Result<http::Method, EgressError> {
    let upper = m.to_ascii_uppercase();
    match upper.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => {
            http::Method::from_bytes(upper.as_bytes())
                .map_err(|_| EgressError::InvalidArgument(format!("method `{m}`")))
        }
        _ => Err(EgressError::InvalidArgument(format!(
            "method `{m}` is not allowed (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_target_parsing() {
        let t: LocalTarget = "127.0.0.1:8080".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8080));
        let t: LocalTarget = "[::1]:11434".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 11434));
        assert_eq!(t.to_string(), "[::1]:11434");
        let t: LocalTarget = "Ollama.Lan:11434".parse().unwrap();
        assert_eq!(t.host, "Ollama.Lan");
        for bad in [
            "127.0.0.1",
            "::1:80",
            "[::1]80",
            "host:0",
            "host:99999",
            ":80",
            "a b:1",
        ] {
            assert!(bad.parse::<LocalTarget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn consent_matches_normalised_hosts_exactly() {
        let consent = Consent {
            local: vec![
                "0x7f.1:8080".parse().unwrap(),
                "[::1]:9000".parse().unwrap(),
                "Ollama.Lan:11434".parse().unwrap(),
            ],
        };
        let url = |s: &str| Url::parse(s).unwrap();
        let covers = |s: &str| {
            let u = url(s);
            consent.covers(&u.host().unwrap(), u.port_or_known_default().unwrap())
        };
        assert!(covers("http://127.0.0.1:8080/"));
        assert!(covers("http://[0:0::1]:9000/"));
        assert!(covers("http://ollama.lan:11434/"));
        assert!(!covers("http://127.0.0.1:8081/"));
        assert!(!covers("http://localhost:8080/"));
        assert!(!covers("http://127.0.0.2:8080/"));
    }

    #[test]
    fn reserved_and_invalid_headers() {
        for name in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "connection",
            "Upgrade",
        ] {
            let err = capsule_headers(&[(name.into(), "x".into())]).unwrap_err();
            assert!(matches!(err, EgressError::InvalidArgument(_)), "{name}");
        }
        assert!(capsule_headers(&[("bad name".into(), "x".into())]).is_err());
        assert!(capsule_headers(&[("x-a".into(), "line\nbreak".into())]).is_err());
        let ok = capsule_headers(&[("X-A".into(), "1".into()), ("x-a".into(), "2".into())]);
        assert_eq!(ok.unwrap().get_all("x-a").iter().count(), 2);
    }

    #[test]
    fn methods() {
        assert_eq!(method("get").unwrap(), http::Method::GET);
        assert!(matches!(
            method("CONNECT"),
            Err(EgressError::InvalidArgument(_))
        ));
        assert!(method("TRACE").is_err());
    }
}

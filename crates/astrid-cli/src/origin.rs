//! Where a provider lives: the origin a secret is bound to, the `host:port` a network grant
//! names, and whether reaching it is local egress (which needs the operator's consent).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `scheme://host:port` with the port always explicit, so the secret store, the network grant
/// and the egress consent all name exactly the same endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    /// As it appears in a URL: IPv6 literals keep their brackets.
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses a base URL such as `https://api.openai.com` or `http://127.0.0.1:8091/v1`.
    pub fn parse(url: &str) -> Result<Origin, String> {
        let parsed =
            url::Url::parse(url.trim()).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let scheme = parsed.scheme().to_string();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "`{url}`: only http and https URLs are supported, not {scheme}"
            ));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{url}` has no host"))?
            .to_ascii_lowercase();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| format!("`{url}` has no port"))?;
        Ok(Origin { scheme, host, port })
    }

    /// `host:port`, the form of network grants and egress consents.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Reaching this host leaves the machine for the loopback interface or the local network.
    pub fn is_local(&self) -> bool {
        is_local_host(&self.host)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Loopback, private (RFC 1918 / unique-local), link-local and unspecified addresses, and the
/// `localhost` names. Public names are not resolved here: the kernel's egress check looks at
/// the address actually connected to, so a public name that resolves locally is still caught.
pub fn is_local_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => is_local_v4(v4),
        Ok(IpAddr::V6(v6)) => is_local_v6(v6),
        Err(_) => false,
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
}

fn is_local_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_local_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_get_an_explicit_port() {
        let o = Origin::parse("https://api.openai.com").unwrap();
        assert_eq!(o.to_string(), "https://api.openai.com:443");
        assert_eq!(o.target(), "api.openai.com:443");
        let o = Origin::parse("http://127.0.0.1:8091/v1/").unwrap();
        assert_eq!(o.to_string(), "http://127.0.0.1:8091");
        let o = Origin::parse("http://[::1]:8080").unwrap();
        assert_eq!(o.target(), "[::1]:8080");
        assert_eq!(
            Origin::parse("HTTP://LocalHost").unwrap().target(),
            "localhost:80"
        );
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        assert!(Origin::parse("api.openai.com")
            .unwrap_err()
            .contains("not a URL"));
        assert!(Origin::parse("ftp://x.org").unwrap_err().contains("http"));
    }

    #[test]
    fn local_addresses_are_classified() {
        for local in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "10.1.2.3",
            "192.168.1.20",
            "172.16.0.1",
            "172.31.255.255",
            "169.254.169.254",
            "0.0.0.0",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.0.1",
        ] {
            assert!(is_local_host(local), "{local} should be local");
        }
        for public in [
            "api.openai.com",
            "api.anthropic.com",
            "8.8.8.8",
            "172.32.0.1",
            "11.0.0.1",
            "2606:4700::1111",
            "localhost.example.com",
        ] {
            assert!(!is_local_host(public), "{public} should be public");
        }
        assert!(Origin::parse("http://127.0.0.1:8091").unwrap().is_local());
        assert!(!Origin::parse("https://api.openai.com").unwrap().is_local());
    }
}

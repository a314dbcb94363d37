//! `host:port` patterns for `net:connect`. Hosts are compared in one canonical spelling:
//! DNS names in lowercase without a trailing dot, IP literals by value.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: any host, names and IP literals alike.
    Any,
    /// One IP address.
    Ip(IpAddr),
    /// One DNS name (lowercase).
    Name(String),
    /// `*.example.com`: any name strictly below `example.com` (not the name itself).
    Suffix(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortPattern {
    Any,
    Exact(u16),
}

/// Parses `host:port`, where an IPv6 host is written in brackets.
pub(crate) fn parse_host_port(text: &str) -> Result<(HostPattern, PortPattern), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| "expected `host:port`".to_owned())?;
    Ok((parse_host(host)?, parse_port(port)?))
}

fn parse_port(text: &str) -> Result<PortPattern, String> {
    if text == "*" {
        return Ok(PortPattern::Any);
    }
    // Only the plain decimal spelling, so the pattern text round-trips exactly.
    match text.parse::<u16>() {
        Ok(p) if p != 0 && p.to_string() == text => Ok(PortPattern::Exact(p)),
        _ => Err(format!("port `{text}` must be 1-65535 or `*`")),
    }
}

fn parse_host(text: &str) -> Result<HostPattern, String> {
    if text == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("unterminated IPv6 literal `{text}`"))?;
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| format!("`{inner}` is not an IPv6 address"))?;
        return Ok(HostPattern::Ip(IpAddr::V6(ip)));
    }
    if let Some(suffix) = text.strip_prefix("*.") {
        let name = parse_dns_name(suffix)?;
        return Ok(HostPattern::Suffix(name));
    }
    if text.contains(':') {
        return Err(format!("IPv6 host `{text}` must be written in brackets"));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    Ok(HostPattern::Name(parse_dns_name(text)?))
}

/// Lowercased, validated DNS name. A name whose last label is numeric must be an IPv4
/// literal; anything else of that shape (`1.2.3`, `0x7f.1`) is refused because resolvers
/// disagree on what it means.
fn parse_dns_name(text: &str) -> Result<String, String> {
    let name = text.to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err(format!("host `{text}` must be 1-253 characters"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!("host `{text}` is not a valid DNS name"));
        }
    }
    let last = name.rsplit('.').next().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
        return Err(format!(
            "host `{text}` looks numeric but is not an IP address"
        ));
    }
    Ok(name)
}

/// The concrete host as an IP, if it is one (brackets allowed around IPv6).
fn concrete_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

impl HostPattern {
    pub(crate) fn matches(&self, host: &str) -> bool {
        if host.is_empty() || host.ends_with('.') {
            return false;
        }
        match self {
            HostPattern::Any => true,
            HostPattern::Ip(ip) => concrete_ip(host) == Some(*ip),
            HostPattern::Name(name) => {
                concrete_ip(host).is_none() && host.eq_ignore_ascii_case(name)
            }
            HostPattern::Suffix(suffix) => {
                concrete_ip(host).is_none() && is_strictly_below(host, suffix)
            }
        }
    }

    pub(crate) fn narrower_or_equal(&self, wider: &HostPattern) -> bool {
        match (self, wider) {
            (_, HostPattern::Any) => true,
            (HostPattern::Ip(a), HostPattern::Ip(b)) => a == b,
            (HostPattern::Name(a), HostPattern::Name(b)) => a == b,
            (HostPattern::Name(a), HostPattern::Suffix(s)) => is_strictly_below(a, s),
            (HostPattern::Suffix(a), HostPattern::Suffix(s)) => a == s || is_strictly_below(a, s),
            _ => false,
        }
    }
}

/// `host` ends with `.suffix` and has at least one non-empty label before it.
fn is_strictly_below(host: &str, suffix: &str) -> bool {
    host.len() > suffix.len() + 1 && host.is_char_boundary(host.len() - suffix.len() - 1) && {
        let (head, tail) = host.split_at(host.len() - suffix.len() - 1);
        tail.as_bytes()[0] == b'.' && tail[1..].eq_ignore_ascii_case(suffix) && !head.ends_with('.')
    }
}

impl PortPattern {
    pub(crate) fn matches(&self, port: u16) -> bool {
        match self {
            PortPattern::Any => true,
            PortPattern::Exact(p) => *p == port,
        }
    }

    pub(crate) fn narrower_or_equal(&self, wider: &PortPattern) -> bool {
        match (self, wider) {
            (_, PortPattern::Any) => true,
            (PortPattern::Exact(a), PortPattern::Exact(b)) => a == b,
            (PortPattern::Any, PortPattern::Exact(_)) => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            HostPattern::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            HostPattern::Name(n) => f.write_str(n),
            HostPattern::Suffix(s) => write!(f, "*.{s}"),
        }
    }
}

impl fmt::Display for PortPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortPattern::Any => f.write_str("*"),
            PortPattern::Exact(p) => write!(f, "{p}"),
        }
    }
}

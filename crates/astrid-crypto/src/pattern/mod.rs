//! Resource patterns (what a capability token grants) and resources (what an effect
//! touches). A pattern's text form is its identity: it is what a token signs, so parsing
//! normalises, and [`ResourcePattern::parse_canonical`] refuses any other spelling.

mod net;
mod path;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use astrid_types::{CapsuleName, FactName};

pub use net::{HostPattern, PortPattern};
pub use path::PathPattern;

use crate::error::CryptoError;

const MAX_NAME_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourcePattern {
    /// `fs:read:<path pattern>`
    FsRead(PathPattern),
    /// `fs:write:<path pattern>` (writing does not imply reading)
    FsWrite(PathPattern),
    /// `net:connect:<host>:<port>`; host `*`, `*.example.com`, a name or an IP
    /// (`[v6]` in brackets); port a number or `*`.
    NetConnect {
        host: HostPattern,
        port: PortPattern,
    },
    /// `process:exec:<program>`: one program, an absolute path or a bare name.
    ProcessExec(String),
    /// `tool:<name>`, or `tool:*` for every tool.
    Tool(String),
    /// `capsule:<name>`: may invoke that capsule.
    Capsule(CapsuleName),
    /// `kv:<capsule>`: may use that capsule's KV namespace.
    Kv(CapsuleName),
    /// `identity:<fact>`: may read that fact of the principal's profile. One fact per
    /// pattern, no wildcard: each thing a principal shares about itself is shared by name.
    Identity(FactName),
    /// `uplink:frontends`: may send notices to the principal's frontends (`astrid:uplink`).
    /// The only target: a notice goes to every frontend that shows them, never to one.
    Uplink,
}

/// The one target of `uplink:` patterns and resources.
pub const UPLINK_TARGET: &str = "frontends";

/// A concrete thing an effect touches, as a host function knows it. Paths must already be
/// absolute and normalised: a path with `.`, `..` or empty segments matches no pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    FsRead(PathBuf),
    FsWrite(PathBuf),
    NetConnect { host: String, port: u16 },
    ProcessExec(String),
    Tool(String),
    Capsule(CapsuleName),
    Kv(CapsuleName),
    Identity(FactName),
    Uplink,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::FsRead(p) => write!(f, "fs:read:{}", p.display()),
            Resource::FsWrite(p) => write!(f, "fs:write:{}", p.display()),
            Resource::NetConnect { host, port } if host.contains(':') && !host.starts_with('[') => {
                write!(f, "net:connect:[{host}]:{port}")
            }
            Resource::NetConnect { host, port } => write!(f, "net:connect:{host}:{port}"),
            Resource::ProcessExec(p) => write!(f, "process:exec:{p}"),
            Resource::Tool(t) => write!(f, "tool:{t}"),
            Resource::Capsule(c) => write!(f, "capsule:{c}"),
            Resource::Kv(c) => write!(f, "kv:{c}"),
            Resource::Identity(n) => write!(f, "identity:{n}"),
            Resource::Uplink => write!(f, "uplink:{UPLINK_TARGET}"),
        }
    }
}

impl ResourcePattern {
    /// Parses and normalises (e.g. lowercases host names).
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        parse_inner(text).map_err(|reason| CryptoError::Pattern {
            pattern: text.to_owned(),
            reason,
        })
    }

    /// Parses only the canonical spelling (what `Display` prints). Signed data uses this,
    /// so one grant has exactly one byte encoding.
    pub fn parse_canonical(text: &str) -> Result<Self, CryptoError> {
        let pattern = Self::parse(text)?;
        if pattern.to_string() != text {
            return Err(CryptoError::Pattern {
                pattern: text.to_owned(),
                reason: format!("not in canonical form (`{pattern}`)"),
            });
        }
        Ok(pattern)
    }

    /// For a filesystem pattern, the directory or file its literal segments name (see
    /// [`PathPattern::literal_prefix`]); `None` for every other kind.
    pub fn fs_literal_prefix(&self) -> Option<std::path::PathBuf> {
        match self {
            ResourcePattern::FsRead(p) | ResourcePattern::FsWrite(p) => Some(p.literal_prefix()),
            _ => None,
        }
    }

    /// The pattern that grants exactly `resource` and nothing else, if one can be written: a
    /// path holding `*` (which a pattern would read as a wildcard) or that is not normal
    /// has none.
    pub fn exact(resource: &Resource) -> Option<ResourcePattern> {
        let pattern = Self::parse(&resource.to_string()).ok()?;
        let exact = match &pattern {
            ResourcePattern::FsRead(p) | ResourcePattern::FsWrite(p) => p.is_exact(),
            ResourcePattern::NetConnect { host, port } => {
                matches!(host, HostPattern::Name(_) | HostPattern::Ip(_))
                    && matches!(port, PortPattern::Exact(_))
            }
            ResourcePattern::Tool(t) => t != "*",
            ResourcePattern::ProcessExec(_)
            | ResourcePattern::Capsule(_)
            | ResourcePattern::Kv(_)
            | ResourcePattern::Identity(_)
            | ResourcePattern::Uplink => true,
        };
        (exact && pattern.matches(resource)).then_some(pattern)
    }

    /// Whether this pattern grants `resource`.
    pub fn matches(&self, resource: &Resource) -> bool {
        match (self, resource) {
            (ResourcePattern::FsRead(p), Resource::FsRead(path))
            | (ResourcePattern::FsWrite(p), Resource::FsWrite(path)) => {
                path.to_str().is_some_and(|s| p.matches(s))
            }
            (
                ResourcePattern::NetConnect { host, port },
                Resource::NetConnect { host: h, port: n },
            ) => port.matches(*n) && host.matches(h),
            (ResourcePattern::ProcessExec(a), Resource::ProcessExec(b))
            | (ResourcePattern::Tool(a), Resource::Tool(b))
                if a == b =>
            {
                true
            }
            (ResourcePattern::Tool(a), Resource::Tool(b)) => a == "*" && valid_tool(b),
            (ResourcePattern::Capsule(a), Resource::Capsule(b))
            | (ResourcePattern::Kv(a), Resource::Kv(b)) => a == b,
            (ResourcePattern::Identity(a), Resource::Identity(b)) => a == b,
            (ResourcePattern::Uplink, Resource::Uplink) => true,
            _ => false,
        }
    }

    /// True when everything this pattern grants is also granted by `wider` (the rule a
    /// derived token must obey).
    pub fn narrower_or_equal(&self, wider: &ResourcePattern) -> bool {
        match (self, wider) {
            (ResourcePattern::FsRead(a), ResourcePattern::FsRead(b))
            | (ResourcePattern::FsWrite(a), ResourcePattern::FsWrite(b)) => a.narrower_or_equal(b),
            (
                ResourcePattern::NetConnect { host: ha, port: pa },
                ResourcePattern::NetConnect { host: hb, port: pb },
            ) => ha.narrower_or_equal(hb) && pa.narrower_or_equal(pb),
            (ResourcePattern::ProcessExec(a), ResourcePattern::ProcessExec(b)) => a == b,
            (ResourcePattern::Tool(a), ResourcePattern::Tool(b)) => b == "*" || a == b,
            (ResourcePattern::Capsule(a), ResourcePattern::Capsule(b))
            | (ResourcePattern::Kv(a), ResourcePattern::Kv(b)) => a == b,
            (ResourcePattern::Identity(a), ResourcePattern::Identity(b)) => a == b,
            (ResourcePattern::Uplink, ResourcePattern::Uplink) => true,
            _ => false,
        }
    }
}

fn parse_inner(text: &str) -> Result<ResourcePattern, String> {
    if let Some(rest) = text.strip_prefix("fs:read:") {
        return PathPattern::parse(rest).map(ResourcePattern::FsRead);
    }
    if let Some(rest) = text.strip_prefix("fs:write:") {
        return PathPattern::parse(rest).map(ResourcePattern::FsWrite);
    }
    if let Some(rest) = text.strip_prefix("net:connect:") {
        let (host, port) = net::parse_host_port(rest)?;
        return Ok(ResourcePattern::NetConnect { host, port });
    }
    if let Some(rest) = text.strip_prefix("process:exec:") {
        return parse_program(rest).map(ResourcePattern::ProcessExec);
    }
    if let Some(rest) = text.strip_prefix("tool:") {
        if rest == "*" || valid_tool(rest) {
            return Ok(ResourcePattern::Tool(rest.to_owned()));
        }
        return Err(format!(
            "tool name `{rest}` must be 1-{MAX_NAME_LEN} characters of A-Z a-z 0-9 . _ - (or `*`)"
        ));
    }
    if let Some(rest) = text.strip_prefix("capsule:") {
        return CapsuleName::new(rest)
            .map(ResourcePattern::Capsule)
            .map_err(|e| e.to_string());
    }
    if let Some(rest) = text.strip_prefix("kv:") {
        return CapsuleName::new(rest)
            .map(ResourcePattern::Kv)
            .map_err(|e| e.to_string());
    }
    if let Some(rest) = text.strip_prefix("identity:") {
        return FactName::new(rest)
            .map(ResourcePattern::Identity)
            .map_err(|e| e.to_string());
    }
    if let Some(rest) = text.strip_prefix("uplink:") {
        if rest == UPLINK_TARGET {
            return Ok(ResourcePattern::Uplink);
        }
        return Err(format!(
            "`uplink:` names only `{UPLINK_TARGET}` (the principal's frontends), not `{rest}`"
        ));
    }
    Err(
        "expected one of fs:read:, fs:write:, net:connect:, process:exec:, tool:, capsule:, kv:, identity:, uplink:"
            .into(),
    )
}

fn valid_tool(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// An absolute program path (no wildcards, normal segments) or a bare program name.
fn parse_program(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        if text.contains('*') {
            return Err("program path may not contain `*`".into());
        }
        PathPattern::parse(text)?;
        if text == "/" {
            return Err("`/` is not a program".into());
        }
        return Ok(text.to_owned());
    }
    let ok = text.len() <= MAX_NAME_LEN
        && !matches!(text, "" | "." | "..")
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "program `{text}` must be an absolute path or a bare name of A-Z a-z 0-9 . _ - +"
        ))
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourcePattern::FsRead(p) => write!(f, "fs:read:{p}"),
            ResourcePattern::FsWrite(p) => write!(f, "fs:write:{p}"),
            ResourcePattern::NetConnect { host, port } => write!(f, "net:connect:{host}:{port}"),
            ResourcePattern::ProcessExec(p) => write!(f, "process:exec:{p}"),
            ResourcePattern::Tool(t) => write!(f, "tool:{t}"),
            ResourcePattern::Capsule(c) => write!(f, "capsule:{c}"),
            ResourcePattern::Kv(c) => write!(f, "kv:{c}"),
            ResourcePattern::Identity(n) => write!(f, "identity:{n}"),
            ResourcePattern::Uplink => write!(f, "uplink:{UPLINK_TARGET}"),
        }
    }
}

impl FromStr for ResourcePattern {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, CryptoError> {
        Self::parse(s)
    }
}

impl serde::Serialize for ResourcePattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ResourcePattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

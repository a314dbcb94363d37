//! What crosses the socket for MCP servers added with `astrid mcp add`: the secrets their
//! records name, and the grant the daemon hands out for one start of a server.

use serde::{Deserialize, Serialize};

/// A secret value on the wire. Its `Debug` never shows the value, so a logged command or
/// reply cannot leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}

/// `--secret ENV=NAME`: the server's environment variable `ENV` holds the principal's MCP
/// secret `NAME` (set with `astrid mcp secret set NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpSecretRef {
    pub env: String,
    pub name: String,
}

/// Longest environment variable name accepted for a secret.
pub const MAX_ENV_NAME: usize = 64;

/// Environment variables a secret may not set: the ones the sandbox sets itself, and those
/// that change how every program loads (a secret is a credential, not a code path).
const RESERVED_ENV: &[&str] = &["PATH", "HOME", "LANG", "NODE_OPTIONS", "PYTHONPATH"];

impl McpSecretRef {
    /// Parses `ENV=NAME`.
    pub fn parse(s: &str) -> Result<McpSecretRef, String> {
        let (env, name) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected ENV=NAME"))?;
        let r = McpSecretRef {
            env: env.to_string(),
            name: name.to_string(),
        };
        r.check()?;
        Ok(r)
    }

    /// `ENV` is `[A-Z_][A-Z0-9_]*` and not reserved; `NAME` is a secret name.
    pub fn check(&self) -> Result<(), String> {
        let env = &self.env;
        let shaped = (1..=MAX_ENV_NAME).contains(&env.len())
            && !env.starts_with(|c: char| c.is_ascii_digit())
            && env
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !shaped {
            return Err(format!(
                "`{}`: an environment variable name is 1-{MAX_ENV_NAME} of A-Z 0-9 _ not \
                 starting with a digit",
                env.escape_debug()
            ));
        }
        if RESERVED_ENV.contains(&env.as_str()) || env.starts_with("LD_") {
            return Err(format!("`{env}` is set by the sandbox or changes how programs load; a secret may not set it"));
        }
        if !valid_secret_name(&self.name) {
            return Err(format!(
                "`{}`: a secret name is 1-64 of a-z A-Z 0-9 _ - .",
                self.name.escape_debug()
            ));
        }
        Ok(())
    }
}

/// Longest MCP server name: `NAME.TOOL` has to fit a capability pattern and a topic segment.
pub const MAX_SERVER_NAME: usize = 32;

/// An MCP server name: 1-32 of `a-z 0-9 -` starting with a letter (it prefixes tool names
/// and file names, so nothing else is accepted).
pub fn valid_server_name(name: &str) -> bool {
    (1..=MAX_SERVER_NAME).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A name for an MCP secret: 1-64 of `a-z A-Z 0-9 _ - .`.
pub fn valid_secret_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// One connection an added server made through a granted route, as its bridge reports it
/// (`ClientMessage::ServedConnect`) for the principal's audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectOutcome {
    /// Carried to this address, which passed the airlock's rules.
    Connected { address: String },
    /// The airlock refused it (an address its grant does not allow) or it could not be made.
    Refused { reason: String },
}

/// Longest reason or address a report carries; more is cut.
pub const MAX_CONNECT_REPORT: usize = 512;

/// Most network grants one server may hold.
pub const MAX_NET_GRANTS: usize = 32;

/// `--allow-net HOST:PORT` (or `--allow-local-net`): one host and port an added server may
/// reach, through the airlock's address rules. Inside its sandbox the name resolves to a
/// loopback address where a forwarder listens; nothing else is routed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetGrant {
    /// A DNS name, lower case; or a loopback literal (`127.x.y.z`, `[::1]`) for a local
    /// grant. An address elsewhere cannot be given a route inside the sandbox (nothing
    /// there may add an address to its interface), so it must be granted by name.
    pub host: String,
    pub port: u16,
    /// The operator consented that this target may be (or resolve to) this machine or the
    /// local network (`--allow-local-net`). Without it a loopback, private or link-local
    /// answer is refused, as for any capsule's request.
    #[serde(default)]
    pub local: bool,
}

impl NetGrant {
    /// Parses `HOST:PORT` (`[V6]:PORT` for an IPv6 loopback literal).
    pub fn parse(s: &str, local: bool) -> Result<NetGrant, String> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{}`: expected HOST:PORT", s.escape_debug()))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{}`: the port is 1-65535", s.escape_debug()))?;
        let g = NetGrant {
            host: host.to_ascii_lowercase(),
            port,
            local,
        };
        g.check()?;
        Ok(g)
    }

    /// The host is a DNS name (labels of `a-z 0-9 -`, at most 253 bytes), or a loopback
    /// literal of a local grant; `localhost` and loopback need `local`.
    pub fn check(&self) -> Result<(), String> {
        let host = &self.host;
        if self.port == 0 {
            return Err(format!("`{host}`: port 0 is not a target"));
        }
        if let Some(ip) = self.ip() {
            if !ip.is_loopback() {
                return Err(format!(
                    "`{host}`: an address literal other than loopback cannot be routed inside \
                     the sandbox; grant the host by its name"
                ));
            }
            if !self.local {
                return Err(format!(
                    "`{host}` is this machine: grant it with --allow-local-net"
                ));
            }
            return Ok(());
        }
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(format!(
                "`{}` is not a host name (labels of a-z 0-9 -) or a loopback address",
                host.escape_debug()
            ));
        }
        if !self.local && (host == "localhost" || host.ends_with(".localhost")) {
            return Err(format!(
                "`{host}` is this machine: grant it with --allow-local-net"
            ));
        }
        Ok(())
    }

    /// The address when the host is a literal.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        let bare = self
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host);
        bare.parse().ok()
    }
}

impl std::fmt::Display for NetGrant {
    /// `host:port`, with `local:` in front of a local grant (how listings and the audit
    /// chain name it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let local = if self.local { "local:" } else { "" };
        write!(f, "{local}{}:{}", self.host, self.port)
    }
}

/// Resource limits of one sandbox, as the daemon resolves them for a principal (its
/// `[process]` settings narrowed by the principal's quota).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxLimits {
    pub max_processes: u32,
    pub max_memory_bytes: u64,
    pub max_cpu_seconds: u64,
    pub max_open_files: u64,
    pub max_file_bytes: u64,
    pub tmp_bytes: u64,
}

/// What one start of an added MCP server gets from the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpLaunchGrant {
    pub limits: SandboxLimits,
    /// `(ENV, value)` for each secret of the record, in its order.
    pub env: Vec<(String, SecretText)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_grants_parse_and_refuse_what_cannot_be_routed_or_was_not_consented() {
        let g = NetGrant::parse("API.GitHub.com:443", false).unwrap();
        assert_eq!(
            (g.host.as_str(), g.port, g.local),
            ("api.github.com", 443, false)
        );
        assert_eq!(g.to_string(), "api.github.com:443");
        let l = NetGrant::parse("127.0.0.1:8080", true).unwrap();
        assert_eq!(l.to_string(), "local:127.0.0.1:8080");
        assert!(NetGrant::parse("[::1]:5432", true).is_ok());
        assert!(NetGrant::parse("localhost:5432", true).is_ok());
        for (bad, local, why) in [
            ("example.com", false, "HOST:PORT"),
            ("example.com:0", false, "1-65535"),
            ("example.com:70000", false, "1-65535"),
            ("127.0.0.1:80", false, "--allow-local-net"),
            ("localhost:80", false, "--allow-local-net"),
            ("db.localhost:80", false, "--allow-local-net"),
            ("10.0.0.5:80", true, "by its name"),
            ("93.184.216.34:443", false, "by its name"),
            ("[2001:db8::1]:443", false, "by its name"),
            ("ex ample.com:443", false, "not a host name"),
            ("-x.com:443", false, "not a host name"),
            ("a..b:443", false, "not a host name"),
            ("x_y.com:443", false, "not a host name"),
        ] {
            let err = NetGrant::parse(bad, local).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn secret_refs_parse_and_refuse_what_they_must() {
        let r = McpSecretRef::parse("GITHUB_TOKEN=github").unwrap();
        assert_eq!(
            (r.env.as_str(), r.name.as_str()),
            ("GITHUB_TOKEN", "github")
        );
        for bad in [
            "NOEQUALS",
            "=name",
            "lower=name",
            "1X=name",
            "PATH=name",
            "LD_PRELOAD=name",
            "NODE_OPTIONS=x",
            "A=",
            "A=has space",
            "A=a/b",
        ] {
            assert!(McpSecretRef::parse(bad).is_err(), "{bad}");
        }
        let shown = format!("{:?}", SecretText("hunter2".into()));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

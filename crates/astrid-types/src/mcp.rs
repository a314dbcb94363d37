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

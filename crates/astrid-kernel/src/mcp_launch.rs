//! The daemon's side of MCP servers added with `astrid mcp add`: the principal's MCP
//! secrets (encrypted in its store like a capsule's, under a namespace no capsule name can
//! take) and the grant for one start of a server: the sandbox limits of the principal and
//! the values of the secrets the server's record names.
//!
//! The kernel runs no server itself; the bridge (`astrid mcp bridge`, the operator's
//! client) asks for a grant before each start. Keeping the values here means they are
//! never written into the records under `<home>/mcp/`, and each release is admitted and
//! recorded (`control.mcp-launch`, naming the secrets, never their values).

use astrid_audit::Decision;
use astrid_crypto::now_ms;
use astrid_types::mcp::{
    valid_secret_name, valid_server_name, ConnectOutcome, McpLaunchGrant, McpSecretRef, NetGrant,
    SandboxLimits, SecretText, MAX_CONNECT_REPORT,
};
use astrid_types::PrincipalId;

use crate::audit::KERNEL;
use crate::error::KernelError;
use crate::kernel::Inner;

/// The store's capsule column for MCP secrets: `@` is not allowed in a capsule name, so no
/// capsule's `[[secret]]` lookup can reach these, nor these a capsule's.
pub const MCP_SECRETS: &str = "@mcp";

fn mcp_err(e: impl std::fmt::Display) -> KernelError {
    KernelError::Settings(e.to_string())
}

impl Inner {
    pub fn mcp_secret_set(
        &self,
        p: &PrincipalId,
        name: &str,
        value: &str,
    ) -> Result<(), KernelError> {
        self.known(p)?;
        if !valid_secret_name(name) {
            return Err(mcp_err(format!(
                "`{}`: an MCP secret name is 1-64 of a-z A-Z 0-9 _ - .",
                name.escape_debug()
            )));
        }
        // An environment value cannot hold NUL; other control characters are refused so
        // a pasted value with a stray newline is noticed here, not as a failed login.
        if value.is_empty() || value.chars().any(|c| c.is_control()) {
            return Err(mcp_err(
                "a secret must be non-empty and contain no control characters",
            ));
        }
        self.store_for(p)?
            .secret_put(
                &self.secret_key,
                MCP_SECRETS,
                name,
                value.as_bytes(),
                "",
                now_ms(),
            )
            .map_err(mcp_err)?;
        self.record(
            p,
            KERNEL,
            "mcp.secret.set",
            &format!("mcp-secret:{name}"),
            Decision::Recorded,
            "stored, released only into the environment of the MCP servers that name it",
        )
    }

    pub fn mcp_secret_remove(&self, p: &PrincipalId, name: &str) -> Result<(), KernelError> {
        self.known(p)?;
        if !self
            .store_for(p)?
            .secret_remove(MCP_SECRETS, name)
            .map_err(mcp_err)?
        {
            return Err(mcp_err(format!("no MCP secret `{name}` is stored")));
        }
        self.record(
            p,
            KERNEL,
            "mcp.secret.remove",
            &format!("mcp-secret:{name}"),
            Decision::Recorded,
            "removed",
        )
    }

    /// Records a bridge's report of one connection of the principal's server `server`
    /// (`ClientMessage::ServedConnect`). `from_operator` is whether the reporting connection
    /// holds the operator's credential; a device's report is refused and recorded as such.
    pub fn mcp_connect(
        &self,
        p: &PrincipalId,
        from_operator: bool,
        server: &str,
        target: &str,
        outcome: &ConnectOutcome,
    ) -> Result<(), KernelError> {
        let shown = |s: &str| astrid_types::text::escape_capped(s, MAX_CONNECT_REPORT);
        let actor = format!("mcp:{}", shown(server));
        let resource = format!("net:connect:{}", shown(target));
        if !from_operator {
            return self.record(
                p,
                &actor,
                "mcp.connect",
                &resource,
                Decision::Denied,
                "a connection report needs the operator's credential (as serving tools does), \
                 not a device token: not recorded as a connection",
            );
        }
        if !valid_server_name(server) || NetGrant::parse(target, true).is_err() {
            return Err(mcp_err(format!(
                "a connection report names server `{}` and target `{}`: not an MCP server \
                 name and a granted HOST:PORT",
                shown(server),
                shown(target)
            )));
        }
        let (decision, outcome) = match outcome {
            ConnectOutcome::Connected { address } => (
                Decision::Allowed,
                format!(
                    "the bridge carried it to {} (granted; the airlock's rules passed)",
                    shown(address)
                ),
            ),
            ConnectOutcome::Refused { reason } => (
                Decision::Denied,
                format!("the bridge refused it: {}", shown(reason)),
            ),
        };
        self.record(p, &actor, "mcp.connect", &resource, decision, &outcome)
    }

    /// The grant for one start of the principal's server `server`. A secret that is not
    /// stored fails the whole grant: a server is not started half-configured.
    pub fn mcp_launch(
        &self,
        p: &PrincipalId,
        server: &str,
        secrets: &[McpSecretRef],
    ) -> Result<McpLaunchGrant, KernelError> {
        self.known(p)?;
        let store = self.store_for(p)?;
        let mut env = Vec::with_capacity(secrets.len());
        for s in secrets {
            s.check().map_err(mcp_err)?;
            let (value, _) = store
                .secret_get(&self.secret_key, MCP_SECRETS, &s.name)
                .map_err(mcp_err)?
                .ok_or_else(|| {
                    mcp_err(format!(
                        "MCP server `{server}` needs secret `{}` (as {}), which is not stored: \
                         `astrid mcp secret set {}`",
                        s.name, s.env, s.name
                    ))
                })?;
            let value = String::from_utf8(value.to_vec())
                .map_err(|_| mcp_err(format!("secret `{}` is not UTF-8", s.name)))?;
            env.push((s.env.clone(), SecretText(value)));
        }
        Ok(McpLaunchGrant {
            limits: self.server_limits(p),
            env,
        })
    }

    /// The daemon's `[process]` limits narrowed by the principal's quota: `--processes` and
    /// `--memory`. Not `--time`: it bounds one invocation, and a server lives across many
    /// (its processes keep the `[process]` CPU limit, and a server stopped by it restarts).
    fn server_limits(&self, p: &PrincipalId) -> SandboxLimits {
        let mut limits = self.process_limits();
        let set = self.profile(p).quota.clone();
        if let Some(n) = set.processes {
            limits.max_processes = limits.max_processes.min(n.max(1));
        }
        if let Some(m) = set.memory_bytes {
            limits.max_memory_bytes = limits.max_memory_bytes.min(m);
        }
        limits.into()
    }
}

//! Who is on the other end of a connection, and what that caller may ask of the control
//! plane.
//!
//! Two kinds of caller: the operator (the daemon's uid, holding `run/token`), who may act on
//! any principal, and a device of one principal, which may act only on that principal and
//! only within its scope. Either way a connection acts for exactly one principal for its
//! whole lifetime. Every control command is recorded, allowed or denied, with who asked, in
//! the chain of the principal it acts on and in the caller's own.

use astrid_audit::Decision;
use astrid_crypto::{ResourcePattern, TokenId};
use astrid_types::wire::{ControlCommand, Credential, DeviceScope};
use astrid_types::PrincipalId;

use crate::audit::KERNEL;
use crate::devices::{same_bytes, CredentialError, DeviceIdentity};
use crate::error::KernelError;
use crate::kernel::Inner;

/// How a connection proved itself.
#[derive(Debug, Clone)]
pub(crate) enum Authority {
    Operator,
    Device(DeviceIdentity),
}

/// The caller bound to one connection.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub principal: PrincipalId,
    pub authority: Authority,
    /// As the peer named itself: recorded, never trusted.
    pub client: String,
    pub connection: u64,
}

impl Caller {
    /// `operator` or `device:<id>`: the trusted part of "who asked".
    pub fn credential(&self) -> String {
        match &self.authority {
            Authority::Operator => "operator".into(),
            Authority::Device(d) => format!("device:{}", d.id),
        }
    }

    fn who(&self) -> String {
        format!(
            "principal={} credential={} client={:?} connection={}",
            self.principal,
            self.credential(),
            self.client,
            self.connection
        )
    }
}

/// What a control command reaches, for authorization and audit.
struct Reach {
    name: &'static str,
    /// The principal acted on, as named (may not exist); `None` for daemon-wide commands.
    target: Option<String>,
    resource: String,
    kind: Kind,
}

#[derive(PartialEq)]
enum Kind {
    /// Reads daemon-wide state every caller may see.
    DaemonRead,
    /// Changes the daemon or every principal: operator only.
    OperatorOnly,
    /// Reads the target principal's non-secret state.
    Read,
    /// Mints or revokes the target's tokens: a device within its pattern scope may.
    Tokens(Option<String>),
    /// Any other change to the target principal: operator only.
    Administer,
}

fn reach(cmd: &ControlCommand) -> Reach {
    use ControlCommand as C;
    let r = |name, target: &str, resource: String, kind| Reach {
        name,
        target: Some(target.to_string()),
        resource,
        kind,
    };
    let daemon = |name, resource: &str, kind| Reach {
        name,
        target: None,
        resource: resource.to_string(),
        kind,
    };
    match cmd {
        C::Status => daemon("status", "daemon", Kind::DaemonRead),
        C::Ps => daemon("ps", "daemon", Kind::DaemonRead),
        C::List => daemon("list", "daemon", Kind::DaemonRead),
        C::Tree => daemon("tree", "daemon", Kind::DaemonRead),
        // Limits, not secrets: every caller may see what it is held to.
        C::OperatorSettings => daemon("operator-settings", "daemon", Kind::DaemonRead),
        C::Install(_) => daemon("install", "capsules", Kind::OperatorOnly),
        C::Update(_) => daemon("update", "capsules", Kind::OperatorOnly),
        C::Remove { name } => daemon("remove", &format!("capsule:{name}"), Kind::OperatorOnly),
        C::Shutdown => daemon("shutdown", "daemon", Kind::OperatorOnly),
        C::DistroInstall { lock, .. } => daemon(
            "distro-install",
            &format!("distro:{}@{} {}", lock.name, lock.version, lock.digest()),
            Kind::OperatorOnly,
        ),
        C::DistroShow => daemon("distro-show", "daemon", Kind::DaemonRead),
        C::AgentCreate { name } => r(
            "agent-create",
            name,
            format!("principal:{name}"),
            Kind::OperatorOnly,
        ),
        C::AgentList => daemon("agent-list", "principals", Kind::OperatorOnly),
        C::AgentClone { name, source } => r(
            "agent-clone",
            name,
            format!("principal:{name} from principal:{source}"),
            Kind::OperatorOnly,
        ),
        C::AgentModify {
            name,
            add_capsules,
            remove_capsules,
        } => r(
            "agent-modify",
            name,
            format!(
                "capsules:+[{}] -[{}]",
                add_capsules.join(","),
                remove_capsules.join(",")
            ),
            Kind::Administer,
        ),
        C::AgentShow { name } => r("agent-show", name, format!("principal:{name}"), Kind::Read),
        C::AgentDelete { name } => r(
            "agent-delete",
            name,
            format!("principal:{name}"),
            Kind::OperatorOnly,
        ),
        C::QuotaSet { principal, .. } => {
            r("quota-set", principal, "quota".into(), Kind::Administer)
        }
        C::QuotaShow { principal } => r("quota-show", principal, "quota".into(), Kind::Read),
        C::ProfileSet {
            principal, fact, ..
        } => r(
            "profile-set",
            principal,
            format!("profile:{fact}"),
            Kind::Administer,
        ),
        C::ProfileShow { principal } => r("profile-show", principal, "profile".into(), Kind::Read),
        C::CapsShow { principal } => r("caps-show", principal, "tokens".into(), Kind::Read),
        C::CapsGrant {
            principal, pattern, ..
        } => r(
            "caps-grant",
            principal,
            pattern.clone(),
            Kind::Tokens(Some(pattern.clone())),
        ),
        C::CapsEnsure {
            principal, pattern, ..
        } => r(
            "caps-ensure",
            principal,
            pattern.clone(),
            Kind::Tokens(Some(pattern.clone())),
        ),
        // The owner is looked up by the caller of `reach`.
        C::CapsRevoke { token_id } => Reach {
            name: "caps-revoke",
            target: None,
            resource: format!("token:{token_id}"),
            kind: Kind::Tokens(None),
        },
        C::ConfigSet {
            principal,
            capsule,
            key,
            ..
        } => r(
            "config-set",
            principal,
            format!("config:{capsule}/{key}"),
            Kind::Administer,
        ),
        C::ConfigShow { principal, capsule } => r(
            "config-show",
            principal,
            format!("config:{capsule}"),
            Kind::Read,
        ),
        C::SecretSet {
            principal,
            capsule,
            name,
            ..
        } => r(
            "secret-set",
            principal,
            format!("secret:{capsule}/{name}"),
            Kind::Administer,
        ),
        // Names and origins of secrets are the operator's to see.
        C::SecretList { principal } => {
            r("secret-list", principal, "secrets".into(), Kind::Administer)
        }
        C::SecretRemove {
            principal,
            capsule,
            name,
        } => r(
            "secret-remove",
            principal,
            format!("secret:{capsule}/{name}"),
            Kind::Administer,
        ),
        C::EgressAllow {
            principal,
            capsule,
            target,
        } => r(
            "egress-allow",
            principal,
            format!("egress:{capsule}->{target}"),
            Kind::Administer,
        ),
        C::EgressRevoke {
            principal,
            capsule,
            target,
        } => r(
            "egress-revoke",
            principal,
            format!("egress:{capsule}->{target}"),
            Kind::Administer,
        ),
        C::McpSecretSet {
            principal, name, ..
        } => r(
            "mcp-secret-set",
            principal,
            format!("mcp-secret:{name}"),
            Kind::Administer,
        ),
        C::McpSecretRemove { principal, name } => r(
            "mcp-secret-remove",
            principal,
            format!("mcp-secret:{name}"),
            Kind::Administer,
        ),
        // The reply carries secret values: only the operator (whose bridge starts the
        // servers) gets one. The resource names the secrets released, never their values.
        C::McpLaunch {
            principal,
            server,
            secrets,
            net,
        } => r(
            "mcp-launch",
            principal,
            format!(
                "mcp:{server} secrets:[{}] net:[{}]",
                secrets
                    .iter()
                    .map(|s| format!("{}={}", s.env, s.name))
                    .collect::<Vec<_>>()
                    .join(","),
                net.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Kind::OperatorOnly,
        ),
        C::EgressShow { principal } => r("egress-show", principal, "egress".into(), Kind::Read),
        C::DeviceIssue { principal, .. } => r(
            "device-issue",
            principal,
            "devices".into(),
            Kind::Administer,
        ),
        C::DeviceList { principal } => r("device-list", principal, "devices".into(), Kind::Read),
        // A principal's own chain is its own to read and check (a device included).
        C::AuditPage { principal, .. } => r("audit-page", principal, "audit".into(), Kind::Read),
        C::AuditVerify { principal, .. } => {
            r("audit-verify", principal, "audit".into(), Kind::Read)
        }
        C::DeviceRevoke {
            principal,
            device_id,
        } => r(
            "device-revoke",
            principal,
            format!("device:{device_id}"),
            Kind::Administer,
        ),
    }
}

fn covered_by_scope(scope: &DeviceScope, pattern: &str) -> bool {
    let DeviceScope::Patterns(allowed) = scope else {
        return false;
    };
    let Ok(wanted) = ResourcePattern::parse(pattern) else {
        return false;
    };
    allowed
        .iter()
        .any(|a| ResourcePattern::parse(a).is_ok_and(|a| wanted.narrower_or_equal(&a)))
}

impl Inner {
    /// Authenticates a `Hello`. Every refusal is recorded: in the chain of the principal the
    /// credential belongs to and of the one the hello named (those that exist), else in the
    /// operator's (`default`).
    pub(crate) fn authenticate(
        &self,
        credential: &Credential,
        principal: &str,
        client: &str,
        operator_token: &str,
        connection: u64,
    ) -> Result<Caller, String> {
        let claimed = PrincipalId::new(principal);
        let result = self.check_credential(credential, claimed.as_ref().ok(), operator_token);
        let refused = |e: &CredentialError, owner: Option<&str>| {
            let mut chains: Vec<PrincipalId> = Vec::new();
            for p in owner
                .and_then(|o| PrincipalId::new(o).ok())
                .into_iter()
                .chain(claimed.clone().ok())
            {
                if self.principal_exists(&p) && !chains.contains(&p) {
                    chains.push(p);
                }
            }
            if chains.is_empty() {
                chains.push(PrincipalId::default_local());
            }
            let outcome = format!(
                "refused connection {connection} (client {client:?}) as `{principal}`: {e}"
            );
            for p in &chains {
                if let Err(err) = self.record(
                    p,
                    KERNEL,
                    "auth.refuse",
                    "connection",
                    Decision::Denied,
                    &outcome,
                ) {
                    tracing::warn!("cannot record a refused connection: {err}");
                }
            }
        };
        let authority = match result {
            Ok(a) => a,
            Err(e) => {
                let owner = match &e {
                    CredentialError::UnknownDevice { principal, .. }
                    | CredentialError::Forged { principal, .. }
                    | CredentialError::Expired { principal, .. }
                    | CredentialError::Revoked { principal, .. } => Some(principal.as_str()),
                    CredentialError::WrongPrincipal { owner, .. } => Some(owner.as_str()),
                    _ => None,
                };
                refused(&e, owner);
                return Err(e.to_string());
            }
        };
        let principal = claimed.map_err(|e| format!("invalid principal: {e}"))?;
        if !self.principal_exists(&principal) {
            return Err(format!("unknown principal `{principal}`"));
        }
        let caller = Caller {
            principal,
            authority,
            client: client.to_string(),
            connection,
        };
        if let Authority::Device(d) = &caller.authority {
            // A device login is rare and worth a trace; operator connections are not
            // recorded (the CLI makes one per command).
            self.record(
                &caller.principal,
                KERNEL,
                "auth.device",
                &format!("device:{}", d.id),
                Decision::Allowed,
                &format!("connected: {}", caller.who()),
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(caller)
    }

    fn check_credential(
        &self,
        credential: &Credential,
        claimed: Option<&PrincipalId>,
        operator_token: &str,
    ) -> Result<Authority, CredentialError> {
        match credential {
            Credential::Operator(given) => {
                let a = blake3::hash(given.trim().as_bytes());
                let b = blake3::hash(operator_token.as_bytes());
                if same_bytes(a.as_bytes(), b.as_bytes()) {
                    Ok(Authority::Operator)
                } else {
                    Err(CredentialError::BadOperatorToken)
                }
            }
            Credential::Device(token) => {
                let d = self.verify_device(token)?;
                if claimed != Some(&d.principal) {
                    return Err(CredentialError::WrongPrincipal {
                        owner: d.principal.to_string(),
                        claimed: claimed.map(|p| p.to_string()).unwrap_or_default(),
                        id: d.id,
                    });
                }
                Ok(Authority::Device(d))
            }
        }
    }

    /// Decides a control command for `caller` and records the decision in the acted-on
    /// principal's chain and the caller's own. `Err(Ok(reason))` is a denial; `Err(Err(_))`
    /// means the decision could not be recorded, so nothing runs.
    pub(crate) fn admit_control(
        &self,
        caller: &Caller,
        cmd: &ControlCommand,
    ) -> Result<(), Result<String, KernelError>> {
        let mut reach = reach(cmd);
        let mut revoked_pattern = None;
        if let ControlCommand::CapsRevoke { token_id } = cmd {
            if let Ok(id) = token_id.parse::<TokenId>() {
                if let Some(owner) = self.token_owner(&id) {
                    revoked_pattern = self.tokens_for(&owner).ok().and_then(|set| {
                        set.read()
                            .iter()
                            .find(|t| t.id == id)
                            .map(|t| t.resource.to_string())
                    });
                    reach.target = Some(owner.to_string());
                }
            }
        }
        let verdict = self.decide(caller, &reach, revoked_pattern);
        let target = reach
            .target
            .as_deref()
            .and_then(|t| PrincipalId::new(t).ok())
            .filter(|t| self.principal_exists(t));
        let on = reach.target.as_deref().unwrap_or("daemon");
        let (decision, outcome) = match &verdict {
            Ok(()) => (Decision::Allowed, format!("by {} on {on}", caller.who())),
            Err(why) => (
                Decision::Denied,
                format!("by {} on {on}: denied: {why}", caller.who()),
            ),
        };
        let action = format!("control.{}", reach.name);
        let credential = caller.credential();
        let mut chains = vec![caller.principal.clone()];
        if let Some(t) = target {
            if t != caller.principal {
                chains.insert(0, t);
            }
        }
        for p in &chains {
            self.record(p, &credential, &action, &reach.resource, decision, &outcome)
                .map_err(Err)?;
        }
        verdict.map_err(Ok)
    }

    fn decide(
        &self,
        caller: &Caller,
        reach: &Reach,
        revoked_pattern: Option<String>,
    ) -> Result<(), String> {
        let Authority::Device(device) = &caller.authority else {
            return Ok(());
        };
        if let Some(t) = &reach.target {
            if t != caller.principal.as_ref() && reach.kind != Kind::DaemonRead {
                return Err(format!(
                    "device {} acts only for `{}`; acting on `{t}` needs the operator",
                    device.id, caller.principal
                ));
            }
        }
        match &reach.kind {
            Kind::DaemonRead | Kind::Read => Ok(()),
            Kind::OperatorOnly | Kind::Administer => Err(format!(
                "`{}` needs the operator; device {} may not",
                reach.name, device.id
            )),
            Kind::Tokens(pattern) => {
                let pattern = pattern.clone().or(revoked_pattern).unwrap_or_default();
                if reach.target.is_none() && pattern.is_empty() {
                    // A token nobody holds: let the command report that, as for the operator.
                    return Ok(());
                }
                if covered_by_scope(&device.scope, &pattern) {
                    Ok(())
                } else {
                    Err(format!(
                        "`{pattern}` is outside the scope of device {} ({})",
                        device.id, device.scope
                    ))
                }
            }
        }
    }
}

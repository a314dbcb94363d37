//! Control commands arriving over the socket: admitted (and recorded) for the connection's
//! caller first, then run.

use std::sync::Arc;
use std::time::Duration;

use astrid_crypto::{CryptoError, TokenId};
use astrid_types::PrincipalId;

use astrid_types::wire::{ControlCommand, ControlError, ControlResponse, DaemonStatus};

use crate::identity::Caller;
use crate::kernel::Inner;

pub(crate) async fn run(
    inner: &Arc<Inner>,
    caller: Arc<Caller>,
    command: ControlCommand,
) -> Result<ControlResponse, ControlError> {
    let k = inner.clone();
    let me = caller.principal.clone();
    // The command moves in and back out so a package upload is never copied.
    let (command, admitted) = tokio::task::spawn_blocking(move || {
        let admitted = k.admit_control(&caller, &command);
        (command, admitted)
    })
    .await
    // ControlError is the wire protocol's own message to the client: text by design.
    .map_err(|e| ControlError::Failed(format!("internal error: {e}")))?;
    match admitted {
        Ok(()) => {}
        Err(Ok(denied)) => return Err(ControlError::Denied(denied)),
        Err(Err(e)) => {
            return Err(ControlError::Failed(format!(
                "not run: the decision could not be recorded: {e}"
            )))
        }
    }
    execute(inner, &me, command)
        .await
        .map_err(ControlError::Failed)
}

/// Runs an admitted command. `me` is the principal the connection acts for: the capsules
/// it lists, installs and removes are its own.
async fn execute(
    inner: &Arc<Inner>,
    me: &PrincipalId,
    command: ControlCommand,
) -> Result<ControlResponse, String> {
    let owner = me.clone();
    match command {
        ControlCommand::Status => Ok(ControlResponse::Status(DaemonStatus {
            pid: std::process::id(),
            uptime_ms: inner.started.elapsed().as_millis() as u64,
            version: env!("CARGO_PKG_VERSION").to_string(),
            connected_clients: inner.clients.load(std::sync::atomic::Ordering::Relaxed),
            capsules: inner.list_for(me),
        })),
        ControlCommand::Ps | ControlCommand::List => {
            Ok(ControlResponse::Capsules(inner.list_for(me)))
        }
        ControlCommand::Tree => Ok(ControlResponse::Tree(inner.tree_for(me))),
        ControlCommand::Install(upload) => {
            blocking(inner, move |k| k.install(upload, false, &owner))
                .await
                .map(ControlResponse::Installed)
        }
        ControlCommand::Update(upload) => blocking(inner, move |k| k.install(upload, true, &owner))
            .await
            .map(ControlResponse::Installed),
        ControlCommand::DistroInstall { lock, packages } => {
            blocking(inner, move |k| k.install_distro(lock, packages, &owner))
                .await
                .map(ControlResponse::Capsules)
        }
        ControlCommand::DistroShow => inner.pins.current().map(ControlResponse::Distro),
        ControlCommand::Remove { name } => {
            let n = name.clone();
            blocking(inner, move |k| k.remove(&n, &owner))
                .await
                .map(|()| ControlResponse::Removed { name })
        }
        ControlCommand::CapsShow { principal } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.token_infos(&p))
                .await
                .map(ControlResponse::Tokens)
        }
        ControlCommand::CapsGrant {
            principal,
            pattern,
            ttl_ms,
        } => {
            let p = principal_id(&principal)?;
            let ttl = ttl_ms.map(Duration::from_millis);
            blocking(inner, move |k| {
                let token = k.grant(&p, &pattern, ttl)?;
                let id = token.id.to_string();
                Ok(k.token_infos(&p)?.into_iter().find(|t| t.id == id))
            })
            .await?
            .map(ControlResponse::Granted)
            .ok_or_else(|| "the minted token vanished".to_string())
        }
        ControlCommand::CapsRevoke { token_id } => {
            let id: TokenId = token_id.parse().map_err(|e: CryptoError| e.to_string())?;
            blocking(inner, move |k| k.revoke(id))
                .await
                .map(|_| ControlResponse::RevokedToken { token_id })
        }
        ControlCommand::CapsEnsure {
            principal,
            pattern,
            ttl_ms,
        } => {
            let p = principal_id(&principal)?;
            let ttl = ttl_ms.map(Duration::from_millis);
            blocking(inner, move |k| k.ensure_grant(&p, &pattern, ttl))
                .await
                .map(ControlResponse::Granted)
        }
        ControlCommand::ConfigSet {
            principal,
            capsule,
            key,
            value,
        } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| {
                k.config_set(&p, &capsule, &key, value.as_deref())
            })
            .await
            .map(ControlResponse::Config)
        }
        ControlCommand::OperatorSettings => Ok(ControlResponse::Config(inner.operator_settings())),
        ControlCommand::ConfigShow { principal, capsule } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.config_show(&p, &capsule))
                .await
                .map(ControlResponse::Config)
        }
        ControlCommand::SecretSet {
            principal,
            capsule,
            name,
            value,
            origin,
        } => {
            let p = principal_id(&principal)?;
            let value = zeroize::Zeroizing::new(value);
            blocking(inner, move |k| {
                k.secret_set(&p, &capsule, &name, &value, &origin)
            })
            .await
            .map(|()| ControlResponse::Done)
        }
        ControlCommand::SecretList { principal } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.secret_list(&p))
                .await
                .map(ControlResponse::Secrets)
        }
        ControlCommand::SecretRemove {
            principal,
            capsule,
            name,
        } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.secret_remove(&p, &capsule, &name))
                .await
                .map(|()| ControlResponse::Done)
        }
        ControlCommand::EgressAllow {
            principal,
            capsule,
            target,
        } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.egress_allow(&p, &capsule, &target, true))
                .await
                .map(ControlResponse::Egress)
        }
        ControlCommand::EgressRevoke {
            principal,
            capsule,
            target,
        } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.egress_allow(&p, &capsule, &target, false))
                .await
                .map(ControlResponse::Egress)
        }
        ControlCommand::McpSecretSet {
            principal,
            name,
            value,
        } => {
            let p = principal_id(&principal)?;
            let value = zeroize::Zeroizing::new(value.0);
            blocking(inner, move |k| k.mcp_secret_set(&p, &name, &value))
                .await
                .map(|()| ControlResponse::Done)
        }
        ControlCommand::McpSecretRemove { principal, name } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.mcp_secret_remove(&p, &name))
                .await
                .map(|()| ControlResponse::Done)
        }
        ControlCommand::McpLaunch {
            principal,
            server,
            secrets,
            // Recorded by the admission; the bridge applies it (the kernel routes nothing).
            net: _,
        } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.mcp_launch(&p, &server, &secrets))
                .await
                .map(ControlResponse::McpLaunch)
        }
        ControlCommand::EgressShow { principal } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.egress_show(&p))
                .await
                .map(ControlResponse::Egress)
        }
        ControlCommand::AgentCreate { name } => {
            let p = principal_id(&name)?;
            blocking(inner, move |k| k.create_principal(&p))
                .await
                .map(|()| ControlResponse::Done)
        }
        ControlCommand::AgentList => Ok(ControlResponse::Agents(inner.principal_names())),
        ControlCommand::AgentModify {
            name,
            add_capsules,
            remove_capsules,
        } => {
            let p = principal_id(&name)?;
            blocking(inner, move |k| {
                k.modify_grants(&p, &add_capsules, &remove_capsules)?;
                k.agent_info(&p)
            })
            .await
            .map(ControlResponse::Agent)
        }
        ControlCommand::AgentShow { name } => {
            let p = principal_id(&name)?;
            blocking(inner, move |k| k.agent_info(&p))
                .await
                .map(ControlResponse::Agent)
        }
        ControlCommand::QuotaSet { principal, quota } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.set_quota(&p, quota))
                .await
                .map(ControlResponse::Quota)
        }
        ControlCommand::ProfileSet {
            principal,
            fact,
            value,
        } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.set_fact(&p, &fact, value))
                .await
                .map(ControlResponse::Facts)
        }
        ControlCommand::ProfileShow { principal } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.facts(&p))
                .await
                .map(ControlResponse::Facts)
        }
        ControlCommand::QuotaShow { principal } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.quota_info(&p))
                .await
                .map(ControlResponse::Quota)
        }
        ControlCommand::AgentClone { name, source } => {
            let (p, src) = (principal_id(&name)?, principal_id(&source)?);
            blocking(inner, move |k| k.clone_principal(&p, &src))
                .await
                .map(ControlResponse::Agent)
        }
        ControlCommand::AgentDelete { name } => {
            let p = principal_id(&name)?;
            blocking(inner, move |k| k.delete_principal(&p))
                .await
                .map(|()| ControlResponse::Done)
        }
        ControlCommand::DeviceIssue {
            principal,
            label,
            scope,
            ttl_ms,
        } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.device_issue(&p, &label, &scope, ttl_ms))
                .await
                .map(|(device, token)| ControlResponse::DeviceIssued { device, token })
        }
        ControlCommand::DeviceList { principal } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.device_list(&p))
                .await
                .map(ControlResponse::Devices)
        }
        ControlCommand::DeviceRevoke {
            principal,
            device_id,
        } => {
            let p = principal_id(&principal)?;
            blocking(inner, move |k| k.device_revoke(&p, &device_id))
                .await
                .map(|_| ControlResponse::Done)
        }
        ControlCommand::AuditPage {
            principal,
            after_seq,
            limit,
        } => {
            let p = principal_id(&principal)?;
            blocking_text(inner, move |k| k.audit_page(&p, after_seq, limit))
                .await
                .map(ControlResponse::Audit)
        }
        ControlCommand::AuditVerify { principal, witness } => {
            let p = principal_id(&principal)?;
            blocking_text(inner, move |k| k.audit_verify(&p, witness.as_deref()))
                .await
                .map(ControlResponse::AuditVerified)
        }
        ControlCommand::Shutdown => {
            let _ = inner.shutdown.send(true);
            Ok(ControlResponse::ShuttingDown)
        }
    }
}

fn principal_id(p: &str) -> Result<PrincipalId, String> {
    PrincipalId::new(p).map_err(|e| format!("principal `{p}`: {e}"))
}

async fn blocking<T: Send + 'static>(
    inner: &Arc<Inner>,
    f: impl FnOnce(&Arc<Inner>) -> Result<T, crate::KernelError> + Send + 'static,
) -> Result<T, String> {
    let k = inner.clone();
    tokio::task::spawn_blocking(move || f(&k))
        .await
        .map_err(|e| format!("internal error: {e}"))?
        .map_err(|e| e.to_string())
}

/// [`blocking`] for work whose errors are already the message for the client.
async fn blocking_text<T: Send + 'static>(
    inner: &Arc<Inner>,
    f: impl FnOnce(&Arc<Inner>) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let k = inner.clone();
    tokio::task::spawn_blocking(move || f(&k))
        .await
        .map_err(|e| format!("internal error: {e}"))?
}

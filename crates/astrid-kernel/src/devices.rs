//! Paired devices: credentials that authenticate a connection as exactly one principal.
//!
//! A device token is `astrid-device.<principal>.<id>.<secret>`: the principal tells the
//! kernel whose store to look in (the HTTP gateway gets the same string as a bearer token,
//! with no other hint), the id names the row, and the secret is 32 random bytes of which
//! the store keeps only a BLAKE3 hash. [`Inner::verify_device`] is the one check every
//! uplink goes through.

use std::collections::HashMap;
use std::sync::Arc;

use astrid_audit::Decision;
use astrid_crypto::{now_ms, ResourcePattern};
use astrid_store::DeviceRow;
use astrid_types::wire::{DeviceInfo, DeviceScope};
use astrid_types::PrincipalId;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::audit::KERNEL;
use crate::error::KernelError;
use crate::kernel::Inner;

const PREFIX: &str = "astrid-device";
/// Domain separation for the stored hash, so it is useless as any other BLAKE3 value.
const HASH_DOMAIN: &[u8] = b"astrid-device-secret-v1\0";

/// A device that proved its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub principal: PrincipalId,
    /// 32 hex characters.
    pub id: String,
    pub scope: DeviceScope,
    pub expires_ms: Option<u64>,
}

/// Why a device token was refused. Each refusal is also recorded in an audit chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("malformed device token")]
    Malformed,
    #[error("device token for unknown principal `{0}`")]
    UnknownPrincipal(String),
    #[error("unknown device {id} of `{principal}`")]
    UnknownDevice { principal: String, id: String },
    #[error("device {id} of `{principal}`: wrong secret")]
    Forged { principal: String, id: String },
    #[error("device {id} of `{principal}` has expired")]
    Expired { principal: String, id: String },
    #[error("device {id} of `{principal}` has been revoked")]
    Revoked { principal: String, id: String },
    #[error("device {id} is `{owner}`'s, not `{claimed}`'s")]
    WrongPrincipal {
        owner: String,
        claimed: String,
        id: String,
    },
    #[error("invalid daemon token")]
    BadOperatorToken,
    #[error("cannot check the credential: {0}")]
    Internal(String),
}

/// One open connection of a device: its id and what wakes it to close.
type LiveConnection = (u64, Arc<Notify>);

/// Live connections opened with each device, so a revocation can close them.
#[derive(Default)]
pub(crate) struct LiveDevices {
    by_id: Mutex<HashMap<String, Vec<LiveConnection>>>,
}

impl LiveDevices {
    pub fn attach(&self, device: &str, connection: u64) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        self.by_id
            .lock()
            .entry(device.to_string())
            .or_default()
            .push((connection, n.clone()));
        n
    }

    pub fn detach(&self, device: &str, connection: u64) {
        let mut map = self.by_id.lock();
        if let Some(list) = map.get_mut(device) {
            list.retain(|(c, _)| *c != connection);
            if list.is_empty() {
                map.remove(device);
            }
        }
    }

    /// Wakes every connection of the device; each closes itself. `notify_one` keeps the
    /// wake-up for a connection busy handling a frame, so none misses it.
    pub(crate) fn close_all(&self, device: &str) -> usize {
        let list = self.by_id.lock().remove(device).unwrap_or_default();
        for (_, n) in &list {
            n.notify_one();
        }
        list.len()
    }
}

fn secret_hash(id: &[u8; 16], secret: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(HASH_DOMAIN);
    h.update(id);
    h.update(secret);
    *h.finalize().as_bytes()
}

/// Equal without an early exit, so the hash cannot be learned byte by byte from timing.
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_token(token: &str) -> Option<(PrincipalId, [u8; 16], [u8; 32])> {
    let mut parts = token.trim().split('.');
    if parts.next()? != PREFIX {
        return None;
    }
    let principal = PrincipalId::new(parts.next()?).ok()?;
    let mut id = [0u8; 16];
    hex::decode_to_slice(parts.next()?, &mut id).ok()?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(parts.next()?, &mut secret).ok()?;
    parts.next().is_none().then_some((principal, id, secret))
}

fn scope_text(scope: &DeviceScope) -> String {
    match scope {
        DeviceScope::UseOnly => "use-only".into(),
        DeviceScope::Patterns(p) => format!("patterns:{}", p.join("\n")),
    }
}

fn scope_from_text(s: &str) -> Result<DeviceScope, String> {
    match s {
        "use-only" => Ok(DeviceScope::UseOnly),
        _ => match s.strip_prefix("patterns:") {
            Some(list) => Ok(DeviceScope::Patterns(
                list.split('\n').map(str::to_string).collect(),
            )),
            None => Err(format!("stored device scope `{s}` is not understood")),
        },
    }
}

fn info(p: &PrincipalId, row: &DeviceRow) -> Result<DeviceInfo, KernelError> {
    Ok(DeviceInfo {
        id: hex::encode(row.id),
        principal: p.to_string(),
        label: row.label.clone(),
        scope: scope_from_text(&row.scope).map_err(KernelError::Capability)?,
        created_ms: row.created_ms,
        expires_ms: row.expires_ms,
        revoked_ms: row.revoked_ms,
    })
}

fn parse_id(id: &str) -> Result<[u8; 16], KernelError> {
    let mut out = [0u8; 16];
    if id.len() != 32 || hex::decode_to_slice(id, &mut out).is_err() {
        return Err(KernelError::Capability(format!(
            "device id `{id}` must be 32 hex characters"
        )));
    }
    Ok(out)
}

impl Inner {
    /// Pairs a device for `p`. A pattern scope may only narrow what `p` holds: each pattern
    /// must be covered by one of `p`'s live tokens. Returns the token, shown only this once.
    pub fn device_issue(
        &self,
        p: &PrincipalId,
        label: &str,
        scope: &DeviceScope,
        ttl_ms: Option<u64>,
    ) -> Result<(DeviceInfo, String), KernelError> {
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        if let DeviceScope::Patterns(patterns) = scope {
            if patterns.is_empty() {
                return Err(KernelError::Capability(
                    "a device scope needs at least one pattern (or use-only)".into(),
                ));
            }
            for text in patterns {
                self.check_covered(p, text)?;
            }
        }
        use rand::RngCore;
        let mut id = [0u8; 16];
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        rand::rng().fill_bytes(&mut secret);
        let now = now_ms();
        let row = DeviceRow {
            id,
            secret_hash: secret_hash(&id, &secret),
            label: label.to_string(),
            scope: scope_text(scope),
            created_ms: now,
            expires_ms: ttl_ms.map(|t| now.saturating_add(t)),
            revoked_ms: None,
        };
        let id_hex = hex::encode(id);
        // Recorded before the row exists: a device nobody can trace never logs in.
        self.record(
            p,
            KERNEL,
            "device.pair",
            &format!("device:{id_hex}"),
            Decision::Recorded,
            &format!("label {label:?} scope {scope} expires {:?}", row.expires_ms),
        )?;
        self.store_for(p)?
            .device_put(&row)
            .map_err(|e| store_err(p, e))?;
        let token = format!("{PREFIX}.{p}.{id_hex}.{}", hex::encode(secret));
        Ok((info(p, &row)?, token))
    }

    /// `pattern` must parse and be narrower than or equal to a live token of `p`.
    pub fn check_covered(&self, p: &PrincipalId, pattern: &str) -> Result<(), KernelError> {
        let wanted = ResourcePattern::parse(pattern).map_err(|source| KernelError::Pattern {
            pattern: pattern.to_string(),
            source,
        })?;
        let now = now_ms();
        let covered = self.tokens_for(p)?.read().iter().any(|t| {
            !self.revocations.is_revoked(&t.id)
                && t.expires_at_ms.is_none_or(|e| e > now)
                && wanted.narrower_or_equal(&t.resource)
        });
        if covered {
            Ok(())
        } else {
            Err(KernelError::Capability(format!(
                "`{pattern}` is not covered by any live token of `{p}`: a device scope may only \
                 narrow the principal's grants"
            )))
        }
    }

    pub fn device_list(&self, p: &PrincipalId) -> Result<Vec<DeviceInfo>, KernelError> {
        let rows = self
            .store_for(p)?
            .device_list()
            .map_err(|e| store_err(p, e))?;
        rows.iter().map(|r| info(p, r)).collect()
    }

    /// Revokes a device of `p` and closes every connection it has open.
    pub fn device_revoke(&self, p: &PrincipalId, id: &str) -> Result<usize, KernelError> {
        let raw = parse_id(id)?;
        let store = self.store_for(p)?;
        if !store
            .device_revoke(&raw, now_ms())
            .map_err(|e| store_err(p, e))?
        {
            return Err(KernelError::Capability(format!("`{p}` has no device {id}")));
        }
        let closed = self.live_devices.close_all(id);
        self.record(
            p,
            KERNEL,
            "device.revoke",
            &format!("device:{id}"),
            Decision::Recorded,
            &format!("revoked; closed {closed} live connections"),
        )?;
        Ok(closed)
    }

    /// The one check of a device token, for the socket and every later uplink. Refusals are
    /// returned, not recorded: the caller records them with what it knows of the peer.
    pub fn verify_device(&self, token: &str) -> Result<DeviceIdentity, CredentialError> {
        let (p, id, secret) = parse_token(token).ok_or(CredentialError::Malformed)?;
        if !self.principal_exists(&p) {
            return Err(CredentialError::UnknownPrincipal(p.to_string()));
        }
        let id_hex = hex::encode(id);
        let who = || (p.to_string(), id_hex.clone());
        // `CredentialError` is Clone + PartialEq (refusals are compared and recorded), which
        // a `KernelError`/`StoreError` source cannot be: the message is kept as text.
        let store = self
            .store_for(&p)
            .map_err(|e| CredentialError::Internal(e.to_string()))?;
        let row = store
            .device_get(&id)
            .map_err(|e| CredentialError::Internal(e.to_string()))?;
        let Some(row) = row else {
            let (principal, id) = who();
            return Err(CredentialError::UnknownDevice { principal, id });
        };
        if !same_bytes(&secret_hash(&id, &secret), &row.secret_hash) {
            let (principal, id) = who();
            return Err(CredentialError::Forged { principal, id });
        }
        if row.revoked_ms.is_some() {
            let (principal, id) = who();
            return Err(CredentialError::Revoked { principal, id });
        }
        if row.expires_ms.is_some_and(|e| now_ms() >= e) {
            let (principal, id) = who();
            return Err(CredentialError::Expired { principal, id });
        }
        let scope = scope_from_text(&row.scope).map_err(CredentialError::Internal)?;
        Ok(DeviceIdentity {
            principal: p,
            id: id_hex,
            scope,
            expires_ms: row.expires_ms,
        })
    }
}

fn store_err(p: &PrincipalId, e: astrid_store::StoreError) -> KernelError {
    KernelError::Store {
        principal: p.to_string(),
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_is_strict() {
        let good = format!(
            "astrid-device.alice.{}.{}",
            "ab".repeat(16),
            "cd".repeat(32)
        );
        let (p, id, secret) = parse_token(&good).unwrap();
        assert_eq!((p.as_ref(), id, secret), ("alice", [0xab; 16], [0xcd; 32]));
        for bad in [
            String::new(),
            good.replace("astrid-device", "astrid-devise"),
            format!("{good}.extra"),
            good.replace(".alice.", ".Alice."),
            good[..good.len() - 2].to_string(),
            good.replace("ab", "zz"),
        ] {
            assert!(parse_token(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn scope_text_round_trips() {
        for s in [
            DeviceScope::UseOnly,
            DeviceScope::Patterns(vec!["fs:read:/a/**".into(), "net:connect:x:1".into()]),
        ] {
            assert_eq!(scope_from_text(&scope_text(&s)).unwrap(), s);
        }
    }

    #[test]
    fn the_hash_binds_the_id() {
        assert_ne!(
            secret_hash(&[1; 16], &[2; 32]),
            secret_hash(&[3; 16], &[2; 32])
        );
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"ab"));
    }
}

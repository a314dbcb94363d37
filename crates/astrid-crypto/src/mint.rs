//! Issuing tokens. Minting checks the same derivation rules the [`Gate`](crate::Gate)
//! re-checks on use, so a bad child is refused at both ends.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use astrid_types::{CapsuleName, PrincipalId};

use crate::error::CryptoError;
use crate::keys::KeyPair;
use crate::pattern::ResourcePattern;
use crate::token::{CapabilityToken, TokenId, TOKEN_VERSION, TOKEN_VERSION_BOUND};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Mints a token signed by `keypair`, issued now. See [`mint_at`].
pub fn mint(
    keypair: &KeyPair,
    principal: PrincipalId,
    resource: ResourcePattern,
    ttl: Option<Duration>,
    parent: Option<&CapabilityToken>,
) -> Result<CapabilityToken, CryptoError> {
    mint_at(keypair, principal, resource, now_ms(), ttl, parent)
}

/// Mints a token issued now that only `capsule` may use (what an allow-always answer
/// mints). A `parent`, if any, must be unbound or bound to the same capsule.
pub fn mint_bound(
    keypair: &KeyPair,
    principal: PrincipalId,
    capsule: CapsuleName,
    resource: ResourcePattern,
    ttl: Option<Duration>,
    parent: Option<&CapabilityToken>,
) -> Result<CapabilityToken, CryptoError> {
    mint_bound_at(keypair, principal, capsule, resource, now_ms(), ttl, parent)
}

/// [`mint_bound`] issued at `issued_at_ms`.
pub fn mint_bound_at(
    keypair: &KeyPair,
    principal: PrincipalId,
    capsule: CapsuleName,
    resource: ResourcePattern,
    issued_at_ms: u64,
    ttl: Option<Duration>,
    parent: Option<&CapabilityToken>,
) -> Result<CapabilityToken, CryptoError> {
    mint_inner(
        keypair,
        principal,
        Some(capsule),
        resource,
        issued_at_ms,
        ttl,
        parent,
    )
}

/// Mints a token issued at `issued_at_ms`, valid for `ttl` (`None`: until revoked).
///
/// With a `parent`, the child must be for the same principal, cover a pattern narrower than
/// or equal to the parent's, expire no later than it (so a parent with an expiry forces a
/// `ttl`), and the parent must carry a valid signature from `keypair` and not have expired.
pub fn mint_at(
    keypair: &KeyPair,
    principal: PrincipalId,
    resource: ResourcePattern,
    issued_at_ms: u64,
    ttl: Option<Duration>,
    parent: Option<&CapabilityToken>,
) -> Result<CapabilityToken, CryptoError> {
    mint_inner(
        keypair,
        principal,
        None,
        resource,
        issued_at_ms,
        ttl,
        parent,
    )
}

fn mint_inner(
    keypair: &KeyPair,
    principal: PrincipalId,
    capsule: Option<CapsuleName>,
    resource: ResourcePattern,
    issued_at_ms: u64,
    ttl: Option<Duration>,
    parent: Option<&CapabilityToken>,
) -> Result<CapabilityToken, CryptoError> {
    let expires_at_ms = match ttl {
        None => None,
        Some(ttl) => {
            let ms = u64::try_from(ttl.as_millis()).ok();
            Some(
                ms.and_then(|ms| issued_at_ms.checked_add(ms))
                    .ok_or_else(|| CryptoError::Mint("ttl overflows the clock".into()))?,
            )
        }
    };
    let mut token = CapabilityToken {
        version: if capsule.is_some() {
            TOKEN_VERSION_BOUND
        } else {
            TOKEN_VERSION
        },
        id: TokenId::random(),
        issuer_key_id: keypair.key_id().to_owned(),
        principal,
        resource,
        issued_at_ms,
        expires_at_ms,
        parent: parent.map(|p| p.id),
        capsule,
        signature: [0; 64],
    };
    if let Some(parent) = parent {
        parent.verify_signature(keypair.public_key()).map_err(|_| {
            CryptoError::Mint("parent token is not validly signed by this key".into())
        })?;
        if parent.expires_at_ms.is_some_and(|e| e <= issued_at_ms) {
            return Err(CryptoError::Mint("parent token has expired".into()));
        }
        check_derivation(&token, parent).map_err(CryptoError::Widening)?;
    }
    token.signature = keypair.sign(&token.signing_bytes());
    Ok(token)
}

/// How a derived token oversteps its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Widening {
    Principal,
    Pattern,
    Expiry,
    IssuedBeforeParent,
    Issuer,
    Capsule,
}

impl std::fmt::Display for Widening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Widening::Principal => "a derived token must be for the parent's principal",
            Widening::Pattern => {
                "a derived token's pattern must be narrower than or equal to its parent's"
            }
            Widening::Expiry => "a derived token may not expire later than its parent",
            Widening::IssuedBeforeParent => "a derived token may not be issued before its parent",
            Widening::Issuer => "a derived token must have its parent's issuer",
            Widening::Capsule => "a derived token must be bound to its parent's capsule, if any",
        })
    }
}

impl std::error::Error for Widening {}

/// The rules a child obeys with respect to its parent. Requiring `issued_at` no earlier
/// than the parent's, and expiry no later, means checking the leaf's validity window also
/// checks every ancestor's.
pub(crate) fn check_derivation(
    child: &CapabilityToken,
    parent: &CapabilityToken,
) -> Result<(), Widening> {
    if child.principal != parent.principal {
        return Err(Widening::Principal);
    }
    if child.issuer_key_id != parent.issuer_key_id {
        return Err(Widening::Issuer);
    }
    if parent.capsule.is_some() && child.capsule != parent.capsule {
        return Err(Widening::Capsule);
    }
    if !child.resource.narrower_or_equal(&parent.resource) {
        return Err(Widening::Pattern);
    }
    match (child.expires_at_ms, parent.expires_at_ms) {
        (_, None) => {}
        (Some(c), Some(p)) if c <= p => {}
        _ => return Err(Widening::Expiry),
    }
    if child.issued_at_ms < parent.issued_at_ms {
        return Err(Widening::IssuedBeforeParent);
    }
    Ok(())
}

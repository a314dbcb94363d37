//! The token gate: the one small type host functions call before an effect happens.
//!
//! `check` fails closed: anything it cannot establish (an unknown key, a missing parent, an
//! unreadable revocation list) is a [`Denial`]. Signature verification is cached per token,
//! but the validity window and the revocation set are checked on every call, so a revocation
//! takes effect at once even for a token verified a moment ago.

use std::collections::HashMap;
use std::iter;
use std::time::Duration;

use astrid_types::{CapsuleName, PrincipalId};
use parking_lot::RwLock;

use crate::keys::PublicKey;
use crate::mint::{check_derivation, Widening};
use crate::pattern::Resource;
use crate::revocation::{Revocation, RevocationList};
use crate::token::{CapabilityToken, TokenId, TOKEN_VERSION, TOKEN_VERSION_BOUND};

/// Clock skew tolerated on both ends of a token's validity window by default.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(30);
/// Verified tokens remembered by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;
/// Longest parent chain followed; deeper chains are denied.
pub const MAX_CHAIN_DEPTH: usize = 8;

/// Access granted by this token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub token_id: TokenId,
}

/// Access refused. `token_id` names the token the reason is about, when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capability denied: {reason}")]
pub struct Denial {
    pub reason: DenialReason,
    pub token_id: Option<TokenId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenialReason {
    #[error("no capability token covers this resource")]
    NoToken,
    #[error("the token belongs to another principal")]
    WrongPrincipal,
    #[error("the token is bound to capsule `{0}`")]
    WrongCapsule(CapsuleName),
    #[error("unsupported token version {0}")]
    UnsupportedVersion(u8),
    #[error("the token was issued by unknown key {0}")]
    UnknownIssuer(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is not valid before {issued_at_ms} ms (now {now_ms} ms)")]
    NotYetValid { issued_at_ms: u64, now_ms: u64 },
    #[error("the token expired at {expires_at_ms} ms (now {now_ms} ms)")]
    Expired { expires_at_ms: u64, now_ms: u64 },
    #[error("token {0} has been revoked")]
    Revoked(TokenId),
    #[error("the revocation list is unavailable: {0}")]
    RevocationUnavailable(String),
    #[error("parent token {0} was not presented")]
    ParentMissing(TokenId),
    #[error("{0}")]
    Widens(Widening),
    #[error("the token's parent chain is longer than {MAX_CHAIN_DEPTH} or loops")]
    ChainTooDeep,
}

impl DenialReason {
    /// Whether a person may be asked instead. Only when no live token of this principal
    /// covers the effect: none at all, one bound to another capsule, one that expired or is
    /// not yet valid. A revoked token is the operator's withdrawn "yes", and a forged,
    /// widening or broken-chain token (or an unreadable revocation list) is an attack or a
    /// fault: asking would let a prompt paper over either, so those are refused outright.
    pub fn person_may_decide(&self) -> bool {
        matches!(
            self,
            DenialReason::NoToken
                | DenialReason::WrongPrincipal
                | DenialReason::WrongCapsule(_)
                | DenialReason::Expired { .. }
                | DenialReason::NotYetValid { .. }
        )
    }
}

/// A token whose signature and parent chain have been verified; the token itself is kept
/// so a hit requires the presented token to be identical, field for field, to the one
/// verified (a stronger test than a hash of its bytes, and cheaper than re-encoding).
struct Verified {
    token: CapabilityToken,
    ancestors: Vec<TokenId>,
}

pub struct Gate {
    keys: HashMap<String, PublicKey>,
    revocations: RevocationList,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
    max_skew_ms: u64,
    cache: RwLock<HashMap<TokenId, Verified>>,
    cache_capacity: usize,
}

impl Gate {
    /// `keys`: issuers whose tokens are accepted. `clock`: milliseconds since the Unix epoch
    /// (use [`now_ms`](crate::now_ms)). `max_skew`: tolerance on both ends of a validity
    /// window.
    pub fn new(
        keys: impl IntoIterator<Item = PublicKey>,
        revocations: RevocationList,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
        max_skew: Duration,
    ) -> Self {
        Gate {
            keys: keys
                .into_iter()
                .map(|k| (k.key_id().to_owned(), k))
                .collect(),
            revocations,
            clock: Box::new(clock),
            max_skew_ms: u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX),
            cache: RwLock::new(HashMap::new()),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// Sets how many verified tokens are remembered; 0 turns the cache off.
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    pub fn revocations(&self) -> &RevocationList {
        &self.revocations
    }

    pub fn cached_tokens(&self) -> usize {
        self.cache.read().len()
    }

    /// Grants `resource` to `principal` if one of `tokens` covers it and is valid now. A
    /// derived token's parent chain must be among `tokens` or already verified.
    ///
    /// When every token fails, the denial explains the most relevant failure: a token that
    /// covers the resource but is expired, revoked or forged outranks one for another
    /// principal, which outranks "nothing covers this".
    ///
    /// Tokens bound to a capsule never grant through this method; see
    /// [`check_as`](Self::check_as).
    pub fn check(
        &self,
        principal: &PrincipalId,
        resource: &Resource,
        tokens: &[CapabilityToken],
    ) -> Result<Grant, Denial> {
        self.check_as(principal, None, resource, tokens)
    }

    /// [`check`](Self::check) for an effect performed by `capsule`: a token bound to a
    /// capsule grants only when it is that capsule.
    pub fn check_as(
        &self,
        principal: &PrincipalId,
        capsule: Option<&CapsuleName>,
        resource: &Resource,
        tokens: &[CapabilityToken],
    ) -> Result<Grant, Denial> {
        if let Some(reason) = self.revocations.poison_reason() {
            return Err(Denial {
                reason: DenialReason::RevocationUnavailable(reason),
                token_id: None,
            });
        }
        let now = (self.clock)();
        let mut best = Denial {
            reason: DenialReason::NoToken,
            token_id: None,
        };
        let mut best_rank = 0;
        for token in tokens {
            let (rank, reason) = if token.principal != *principal {
                (1, DenialReason::WrongPrincipal)
            } else if !token.resource.matches(resource) {
                continue;
            } else if let Some(bound) = token.capsule.as_ref().filter(|b| Some(*b) != capsule) {
                (1, DenialReason::WrongCapsule(bound.clone()))
            } else {
                match self.check_token(token, tokens, now) {
                    Ok(()) => return Ok(Grant { token_id: token.id }),
                    Err(reason) => (2, reason),
                }
            };
            if rank > best_rank {
                best_rank = rank;
                best = Denial {
                    reason,
                    token_id: Some(token.id),
                };
            }
        }
        Err(best)
    }

    fn check_token(
        &self,
        token: &CapabilityToken,
        presented: &[CapabilityToken],
        now: u64,
    ) -> Result<(), DenialReason> {
        {
            let cache = self.cache.read();
            if let Some(hit) = cache.get(&token.id).filter(|v| v.token == *token) {
                return self.check_live(token, &hit.ancestors, now);
            }
        }
        let ancestors = self.verify_chain(token, presented)?;
        let live = self.check_live(token, &ancestors, now);
        if !matches!(live, Err(DenialReason::Expired { .. })) {
            self.remember(token, ancestors, now);
        }
        live
    }

    /// What must be re-checked on every use: the validity window and revocation.
    fn check_live(
        &self,
        token: &CapabilityToken,
        ancestors: &[TokenId],
        now: u64,
    ) -> Result<(), DenialReason> {
        if token.issued_at_ms > now.saturating_add(self.max_skew_ms) {
            return Err(DenialReason::NotYetValid {
                issued_at_ms: token.issued_at_ms,
                now_ms: now,
            });
        }
        if let Some(expires_at_ms) = token.expires_at_ms {
            if now > expires_at_ms.saturating_add(self.max_skew_ms) {
                return Err(DenialReason::Expired {
                    expires_at_ms,
                    now_ms: now,
                });
            }
        }
        match self
            .revocations
            .first_revoked(iter::once(&token.id).chain(ancestors))
        {
            None => Ok(()),
            Some(Revocation::Revoked(id)) => Err(DenialReason::Revoked(id)),
            Some(Revocation::Poisoned(why)) => Err(DenialReason::RevocationUnavailable(why)),
        }
    }

    fn verify_signature(&self, token: &CapabilityToken) -> Result<(), DenialReason> {
        let expected = if token.capsule.is_some() {
            TOKEN_VERSION_BOUND
        } else {
            TOKEN_VERSION
        };
        if token.version != expected {
            return Err(DenialReason::UnsupportedVersion(token.version));
        }
        let key = self
            .keys
            .get(&token.issuer_key_id)
            .ok_or_else(|| DenialReason::UnknownIssuer(token.issuer_key_id.clone()))?;
        key.verify(&token.signing_bytes(), &token.signature)
            .map_err(|_| DenialReason::BadSignature)
    }

    /// Verifies `token` and walks its parents, returning the ancestor ids (nearest first).
    /// A parent already in the cache ends the walk: its own chain was verified with it.
    fn verify_chain(
        &self,
        token: &CapabilityToken,
        presented: &[CapabilityToken],
    ) -> Result<Vec<TokenId>, DenialReason> {
        self.verify_signature(token)?;
        let mut ancestors: Vec<TokenId> = Vec::new();
        let mut child = token.clone();
        while let Some(parent_id) = child.parent {
            if ancestors.len() >= MAX_CHAIN_DEPTH
                || parent_id == token.id
                || ancestors.contains(&parent_id)
            {
                return Err(DenialReason::ChainTooDeep);
            }
            let shown = presented.iter().find(|t| t.id == parent_id);
            let cached = {
                let cache = self.cache.read();
                cache
                    .get(&parent_id)
                    .filter(|v| shown.is_none_or(|s| *s == v.token))
                    .map(|v| (v.token.clone(), v.ancestors.clone()))
            };
            if let Some((parent, above)) = cached {
                check_derivation(&child, &parent).map_err(DenialReason::Widens)?;
                ancestors.push(parent_id);
                ancestors.extend(above);
                if ancestors.len() > MAX_CHAIN_DEPTH || ancestors.contains(&token.id) {
                    return Err(DenialReason::ChainTooDeep);
                }
                return Ok(ancestors);
            }
            let parent = shown.ok_or(DenialReason::ParentMissing(parent_id))?;
            self.verify_signature(parent)?;
            check_derivation(&child, parent).map_err(DenialReason::Widens)?;
            ancestors.push(parent_id);
            child = parent.clone();
        }
        Ok(ancestors)
    }

    fn remember(&self, token: &CapabilityToken, ancestors: Vec<TokenId>, now: u64) {
        if self.cache_capacity == 0 {
            return;
        }
        let mut cache = self.cache.write();
        if cache.len() >= self.cache_capacity {
            let skew = self.max_skew_ms;
            cache.retain(|_, v| {
                v.token
                    .expires_at_ms
                    .is_none_or(|e| e.saturating_add(skew) >= now)
            });
            if cache.len() >= self.cache_capacity {
                cache.clear();
            }
        }
        cache.insert(
            token.id,
            Verified {
                token: token.clone(),
                ancestors,
            },
        );
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("revocations", &self.revocations)
            .field("max_skew_ms", &self.max_skew_ms)
            .field("cached_tokens", &self.cached_tokens())
            .finish_non_exhaustive()
    }
}

//! Capability tokens in the kernel: each principal's tokens (in its SQLite store, cached in
//! memory), the one `Gate` every host function checks through, and global revocation.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use astrid_audit::Decision;
use astrid_crypto::{
    mint, mint_bound, now_ms, CapabilityToken, Gate, Resource, ResourcePattern, RevocationStore,
    StoreError, TokenId,
};
use astrid_sandbox::{TokenDenial, TokenGate};
use astrid_store::PrincipalStore;
use astrid_types::wire::TokenInfo;
use astrid_types::{AstridHome, CapsuleName, PrincipalId};
use parking_lot::RwLock;

use crate::audit::KERNEL;
use crate::error::KernelError;
use crate::kernel::Inner;

pub(crate) type TokenSet = Arc<RwLock<Vec<CapabilityToken>>>;

fn caps_err(p: &PrincipalId, e: impl std::fmt::Display) -> KernelError {
    KernelError::Capability(format!("principal `{p}`: {e}"))
}

impl Inner {
    /// The principal's tokens, loaded on first use. A principal seen for the first time
    /// (no tokens stored at all) gets the default grants: read and write on its own home.
    pub fn tokens_for(&self, p: &PrincipalId) -> Result<TokenSet, KernelError> {
        let pr = self.tenant(p)?;
        if let Some(t) = pr.tokens.lock().as_ref() {
            return Ok(t.clone());
        }
        let store = self.store_for(p)?;
        let stored = store.token_list().map_err(|e| caps_err(p, e))?;
        let mut tokens = Vec::with_capacity(stored.len());
        for bytes in stored {
            // A stored token we cannot decode fails the whole set closed.
            tokens.push(CapabilityToken::from_bytes(&bytes).map_err(|e| caps_err(p, e))?);
        }
        let fresh = tokens.is_empty();
        let mine: TokenSet = Arc::new(RwLock::new(tokens));
        let set = pr.tokens.lock().get_or_insert_with(|| mine.clone()).clone();
        // Only the loader whose set was kept mints, so a race cannot mint twice.
        if fresh && Arc::ptr_eq(&set, &mine) {
            let home = self.home.principal_home(p);
            for kind in ["read", "write"] {
                let pattern = format!("fs:{kind}:{}/**", home.display());
                self.grant(p, &pattern, None)?;
            }
        }
        Ok(set)
    }

    /// Mints, records and stores a token for `pattern`; it is usable at once.
    pub fn grant(
        &self,
        p: &PrincipalId,
        pattern: &str,
        ttl: Option<Duration>,
    ) -> Result<CapabilityToken, KernelError> {
        let pattern = ResourcePattern::parse(pattern).map_err(|e| caps_err(p, e))?;
        self.grant_pattern(p, pattern, None, ttl)
    }

    /// Mints, records and stores a token for `pattern`, bound to `capsule` when given.
    pub fn grant_pattern(
        &self,
        p: &PrincipalId,
        pattern: ResourcePattern,
        capsule: Option<CapsuleName>,
        ttl: Option<Duration>,
    ) -> Result<CapabilityToken, KernelError> {
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        let token = match capsule {
            Some(c) => mint_bound(&self.key, p.clone(), c, pattern, ttl, None),
            None => mint(&self.key, p.clone(), pattern, ttl, None),
        }
        .map_err(|e| caps_err(p, e))?;
        let set = self.tokens_for(p)?;
        let bound = match &token.capsule {
            Some(c) => format!(", bound to capsule {c}"),
            None => String::new(),
        };
        self.record(
            p,
            KERNEL,
            "capability.mint",
            &token.resource.to_string(),
            Decision::Recorded,
            &format!(
                "token {} expires {:?}{bound}",
                token.id, token.expires_at_ms
            ),
        )?;
        let store = self.store_for(p)?;
        store
            .token_put(&token.id.0, &token.to_bytes(), now_ms())
            .map_err(|e| caps_err(p, e))?;
        set.write().push(token.clone());
        Ok(token)
    }

    /// A live (unrevoked, unexpired) token with exactly `pattern`, minted if there is none.
    pub fn ensure_grant(
        &self,
        p: &PrincipalId,
        pattern: &str,
        ttl: Option<Duration>,
    ) -> Result<TokenInfo, KernelError> {
        let wanted = ResourcePattern::parse(pattern).map_err(|e| caps_err(p, e))?;
        let now = now_ms();
        let existing = self
            .tokens_for(p)?
            .read()
            .iter()
            .find(|t| {
                t.resource == wanted
                    && t.capsule.is_none()
                    && !self.revocations.is_revoked(&t.id)
                    && t.expires_at_ms.is_none_or(|e| e > now + 60_000)
            })
            .map(|t| t.id.to_string());
        let id = match existing {
            Some(id) => id,
            None => self.grant(p, pattern, ttl)?.id.to_string(),
        };
        self.token_infos(p)?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| caps_err(p, "the token vanished"))
    }

    /// Revokes a token of any principal. Effective at once for every check, cached or not.
    pub fn revoke(&self, id: TokenId) -> Result<PrincipalId, KernelError> {
        let owner = self
            .token_owner(&id)
            .ok_or_else(|| KernelError::Capability(format!("no token {id}")))?;
        self.revocations
            .revoke(id)
            .map_err(|e| caps_err(&owner, e))?;
        self.record(
            &owner,
            KERNEL,
            "capability.revoke",
            &format!("token:{id}"),
            Decision::Recorded,
            "revoked",
        )?;
        Ok(owner)
    }

    /// The principal holding token `id`.
    pub fn token_owner(&self, id: &TokenId) -> Option<PrincipalId> {
        principals(&self.home).into_iter().find(|p| {
            self.tokens_for(p)
                .is_ok_and(|set| set.read().iter().any(|t| t.id == *id))
        })
    }

    pub fn token_infos(&self, p: &PrincipalId) -> Result<Vec<TokenInfo>, KernelError> {
        let set = self.tokens_for(p)?;
        let list = set.read();
        Ok(list
            .iter()
            .map(|t| TokenInfo {
                id: t.id.to_string(),
                principal: t.principal.to_string(),
                pattern: t.resource.to_string(),
                issued_at_ms: t.issued_at_ms,
                expires_at_ms: t.expires_at_ms,
                parent: t.parent.map(|p| p.to_string()),
                capsule: t.capsule.as_ref().map(|c| c.to_string()),
                revoked: self.revocations.is_revoked(&t.id),
            })
            .collect())
    }

    /// What a context of `capsule` checks its effects with.
    pub fn token_gate(
        &self,
        p: &PrincipalId,
        capsule: &CapsuleName,
    ) -> Result<PrincipalGate, KernelError> {
        Ok(PrincipalGate {
            principal: p.clone(),
            capsule: capsule.clone(),
            gate: self.gate.clone(),
            tokens: self.tokens_for(p)?,
        })
    }
}

/// Every principal with a directory under `principals/`.
pub(crate) fn principals(home: &AstridHome) -> Vec<PrincipalId> {
    let Ok(dir) = std::fs::read_dir(home.principals_dir()) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| PrincipalId::new(e.file_name().to_string_lossy().into_owned()).ok())
        .collect()
}

pub(crate) struct PrincipalGate {
    principal: PrincipalId,
    /// The capsule performing the effects: tokens bound to another capsule do not count.
    capsule: CapsuleName,
    gate: Arc<Gate>,
    tokens: TokenSet,
}

impl TokenGate for PrincipalGate {
    fn check(&self, resource: &Resource) -> Result<(), TokenDenial> {
        let tokens = self.tokens.read();
        self.gate
            .check_as(&self.principal, Some(&self.capsule), resource, &tokens)
            .map(|_| ())
            .map_err(|d| TokenDenial::from_reason(resource, d.reason))
    }

    fn check_within(&self, resource: &Resource, location: &Path) -> Result<(), TokenDenial> {
        // Only grants that name the location count: a wide pattern such as `/**` or the
        // workspace holding it was never meant to open it. Derived tokens whose parents are
        // filtered out fail their chain check, which is the safe side.
        let named: Vec<CapabilityToken> = self
            .tokens
            .read()
            .iter()
            .filter(|t| {
                t.resource
                    .fs_literal_prefix()
                    .is_some_and(|p| astrid_protected::concretely_names(&p, location))
            })
            .cloned()
            .collect();
        self.gate
            .check(&self.principal, resource, &named)
            .map(|_| ())
            .map_err(|d| TokenDenial::from_reason(resource, d.reason))
    }
}

/// Revocations live in the `revoked` table of the owning principal's store; the list is
/// the union over every principal.
pub(crate) struct RevokedTables {
    pub home: AstridHome,
}

impl RevokedTables {
    fn open(&self, p: &PrincipalId) -> Result<PrincipalStore, StoreError> {
        Ok(PrincipalStore::open(&self.home.principal_store(p))?)
    }
}

impl RevocationStore for RevokedTables {
    fn load_all(&self) -> Result<Vec<TokenId>, StoreError> {
        let mut all = Vec::new();
        for p in principals(&self.home) {
            if !self.home.principal_store(&p).exists() {
                continue;
            }
            all.extend(self.open(&p)?.revoked_list()?.into_iter().map(TokenId));
        }
        Ok(all)
    }

    fn persist(&self, id: &TokenId) -> Result<(), StoreError> {
        for p in principals(&self.home) {
            if !self.home.principal_store(&p).exists() {
                continue;
            }
            let store = self.open(&p)?;
            if store.token_get(&id.0)?.is_some() {
                store.revoked_add(&id.0, now_ms())?;
                return Ok(());
            }
        }
        Err(format!("no principal holds token {id}").into())
    }
}

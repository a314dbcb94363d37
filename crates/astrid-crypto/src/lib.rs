//! Keys, capability tokens and the token gate of Astrid.
//!
//! - [`KeyPair`]: the runtime's ed25519 key (`keys/runtime.key`, 0600).
//! - [`ResourcePattern`] / [`Resource`]: what a token grants and what an effect touches.
//! - [`CapabilityToken`], [`mint`]: signed, principal-bound, expiring, derivable grants.
//! - [`RevocationList`]: global revocation, persisted through a [`RevocationStore`].
//! - [`Gate`]: `check(principal, resource, tokens)` for host functions, with a verified
//!   token cache.
//! - [`canonical`]: the length-prefixed, domain-separated encoding signatures cover (also
//!   used by the audit chain).

pub mod canonical;
mod error;
mod gate;
mod keys;
mod mint;
mod pattern;
mod revocation;
mod token;

pub use error::{CryptoError, DecodeError};
pub use gate::{
    Denial, DenialReason, Gate, Grant, DEFAULT_CACHE_CAPACITY, DEFAULT_MAX_SKEW, MAX_CHAIN_DEPTH,
};
pub use keys::{verify_with, KeyPair, PublicKey, RUNTIME_KEY_FILE, RUNTIME_PUB_FILE};
pub use mint::{mint, mint_at, mint_bound, mint_bound_at, now_ms, Widening};
pub use pattern::{
    HostPattern, PathPattern, PortPattern, Resource, ResourcePattern, UPLINK_TARGET,
};
pub use revocation::{RevocationList, RevocationStore, StoreError};
pub use token::{
    CapabilityToken, TokenId, TOKEN_DOMAIN, TOKEN_TEXT_PREFIX, TOKEN_VERSION, TOKEN_VERSION_BOUND,
};

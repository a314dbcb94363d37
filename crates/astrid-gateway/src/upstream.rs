//! Connections to the daemon, one per device token, authenticated *as that token*.
//!
//! The gateway holds no credential of its own: every socket connection it opens carries the
//! bearer token of the request that needed it (`Credential::Device`), so the kernel binds the
//! connection to that token's principal and scope and does every check itself. A bug here can
//! at worst hand a request the connection of a token with the same hash, i.e. the same token.
//!
//! Connections are pooled by a BLAKE3 hash of the token (the token itself is kept only inside
//! the connection's hello). The kernel closes a device's connections when it is revoked or
//! expires; the pool notices (`Client::is_connected`), reconnects, and the kernel refuses the
//! handshake, which becomes 401.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use astrid_client::{Client, ClientError};
use astrid_types::home::AstridHome;
use astrid_types::wire::Credential;

use crate::error::ApiError;

const CLIENT_NAME: &str = "astrid-gateway";
const PREFIX: &str = "astrid-device.";

/// A bearer token as presented: its principal (the token's second field) and a key for
/// pooling and rate limiting that does not keep the secret around in maps.
#[derive(Clone)]
pub struct DeviceToken {
    token: String,
    pub principal: String,
    key: [u8; 32],
}

impl std::fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceToken({}, ..)", self.principal)
    }
}

impl DeviceToken {
    /// The key for a bearer string that may not even be a device token (rate limiting
    /// applies before the token is checked).
    pub fn key_of(bearer: &str) -> [u8; 32] {
        *blake3::hash(bearer.as_bytes()).as_bytes()
    }

    /// The pool's key for this token (a hash; the token itself stays in the connection).
    pub fn key(&self) -> [u8; 32] {
        self.key
    }

    /// Only the shape is checked here (so the principal for the hello is known); whether the
    /// token is real is the kernel's decision at the handshake, which also audits refusals.
    pub fn parse(bearer: &str) -> Result<DeviceToken, ApiError> {
        let token = bearer.trim();
        let principal = token
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('.').next())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "the bearer token is not a device token (`astrid-device.<principal>.<id>.<secret>`, \
                     from `astrid pair-device issue`)",
                )
            })?;
        Ok(DeviceToken {
            principal: principal.to_string(),
            key: Self::key_of(token),
            token: token.to_string(),
        })
    }
}

/// The pooled connections and the counters `/metrics` reports about them.
pub struct Upstream {
    home: AstridHome,
    pool: Mutex<HashMap<[u8; 32], Client>>,
    max_pooled: usize,
    pub connects_ok: AtomicU64,
    pub connects_refused: AtomicU64,
    pub connects_failed: AtomicU64,
}

impl Upstream {
    pub fn new(home: AstridHome, max_pooled: usize) -> Upstream {
        Upstream {
            home,
            pool: Mutex::new(HashMap::new()),
            max_pooled,
            connects_ok: AtomicU64::new(0),
            connects_refused: AtomicU64::new(0),
            connects_failed: AtomicU64::new(0),
        }
    }

    pub fn home(&self) -> &AstridHome {
        &self.home
    }

    /// Live pooled connections.
    pub fn pooled(&self) -> usize {
        self.lock().values().filter(|c| c.is_connected()).count()
    }

    /// The daemon accepts connections (the liveness probe `astrid` itself uses: connect and
    /// close, which the daemon does not log as a refusal).
    pub async fn daemon_reachable(&self) -> bool {
        tokio::net::UnixStream::connect(self.home.socket())
            .await
            .is_ok()
    }

    /// The pooled connection for `dev`, opened (and so checked by the kernel) when there is
    /// none or the previous one was closed.
    pub async fn client(&self, dev: &DeviceToken) -> Result<Client, ApiError> {
        if let Some(c) = self.lock().get(&dev.key) {
            if c.is_connected() {
                return Ok(c.clone());
            }
        }
        let fresh = self.connect(dev).await?;
        let mut pool = self.lock();
        if pool.len() >= self.max_pooled {
            pool.retain(|_, c| c.is_connected());
        }
        // Another request may have connected meanwhile; keep one.
        if let Some(c) = pool.get(&dev.key).filter(|c| c.is_connected()) {
            return Ok(c.clone());
        }
        if pool.len() < self.max_pooled {
            pool.insert(dev.key, fresh.clone());
        }
        Ok(fresh)
    }

    /// A connection of its own for `dev`, outside the pool: for streams that register as an
    /// approver (which cannot be undone on a connection) and end with the stream.
    pub async fn connect(&self, dev: &DeviceToken) -> Result<Client, ApiError> {
        let credential = Credential::Device(dev.token.clone());
        match Client::connect_with(&self.home, credential, &dev.principal, CLIENT_NAME).await {
            Ok(c) => {
                self.connects_ok.fetch_add(1, Ordering::Relaxed);
                Ok(c)
            }
            Err(e @ ClientError::Refused(_)) => {
                self.connects_refused.fetch_add(1, Ordering::Relaxed);
                Err(ApiError::from_client(e))
            }
            Err(e) => {
                self.connects_failed.fetch_add(1, Ordering::Relaxed);
                Err(ApiError::from_client(e))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Client>> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_principal_comes_from_the_token_and_other_strings_are_refused() {
        let t = DeviceToken::parse(" astrid-device.alice.0011.2233 ").unwrap();
        assert_eq!(t.principal, "alice");
        assert_eq!(t.key, DeviceToken::key_of("astrid-device.alice.0011.2233"));
        for bad in [
            "",
            "sk-123",
            "astrid-device.",
            "astrid-device..x.y",
            "Bearer x",
        ] {
            let e = DeviceToken::parse(bad).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::UNAUTHORIZED, "{bad}");
        }
    }
}

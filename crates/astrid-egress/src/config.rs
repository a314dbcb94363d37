//! Limits of the airlock.

use std::time::Duration;

/// Limits applied to every request. `Default` gives the production values.
#[derive(Debug, Clone)]
pub struct AirlockConfig {
    /// Largest response body, in bytes, before [`crate::EgressError::TooLarge`].
    pub max_body: u64,
    /// Deadline of an exchange whose request names none.
    pub default_timeout: Duration,
    /// Ceiling on any requested deadline.
    pub max_timeout: Duration,
    /// Limit for one TCP connect (and still within the overall deadline).
    pub connect_timeout: Duration,
    /// Redirects followed before giving up.
    pub max_redirects: u8,
    /// Largest response head (status line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Most response headers accepted.
    pub max_headers: usize,
    /// Responses one capsule invocation may hold open at once (each holds a connection).
    pub max_open_responses: usize,
    /// Extra trusted root certificates (DER), next to the built-in web PKI roots. For tests
    /// and private deployments.
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for AirlockConfig {
    fn default() -> Self {
        AirlockConfig {
            max_body: 32 * 1024 * 1024,
            default_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            max_redirects: 5,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_open_responses: 16,
            extra_roots: Vec::new(),
        }
    }
}

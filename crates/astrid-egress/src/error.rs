//! The one error type of the airlock; its variants mirror `astrid:http/http.error-code`.

/// Why a request or a body read failed. Messages are written for the person reading the
/// denial and never contain credential values. Clone + PartialEq and handed to guests as
/// text, so causes (hyper, rustls, DNS) are kept as messages, not sources.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Refused by the address policy, the scheme rule or the host's [`crate::Authorize`].
    #[error("denied: {0}")]
    Denied(String),
    /// The request itself is malformed (URL, method, header).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The whole exchange ran past its deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The response body grew past the size cap.
    #[error("too large: {0}")]
    TooLarge(String),
    /// DNS, connect, TLS or protocol failure.
    #[error("connection failed: {0}")]
    Connection(String),
    /// The body's digest is not the one the request named ([`crate::Integrity`]); none of
    /// the body was handed on.
    #[error("integrity mismatch: {0}")]
    Integrity(String),
}

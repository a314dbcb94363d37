//! Errors: [`GatewayError`] for starting the gateway, [`ApiError`] for what one HTTP request
//! gets back, always as `application/problem+json` (RFC 9457) with a sentence a person can act
//! on.

use std::time::Duration;

use astrid_client::ClientError;
use astrid_types::wire::RequestError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The certificate or private key file cannot be read or parsed.
    #[error("TLS configuration: {what} {}: {source}", path.display())]
    TlsPem {
        /// `certificate` or `private key`.
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the protocol versions.
    #[error("TLS configuration: {0}")]
    TlsVersions(#[source] rustls::Error),
    /// The private key does not fit the certificate.
    #[error("TLS configuration: certificate and key do not fit: {0}")]
    TlsKeyMismatch(#[source] rustls::Error),
    #[error("serving HTTP failed: {0}")]
    Serve(std::io::Error),
}

/// A problem document (RFC 9457), the body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:astrid:problem:<slug>`, stable for programs to match on.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short and the same for every problem of this type.
    pub title: String,
    pub status: u16,
    /// What happened in this case, written for a person.
    pub detail: String,
}

/// An error response. Built by the constructors below so that status, type and title agree.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: String) -> Self {
        ApiError {
            status,
            slug,
            title,
            detail,
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:astrid:problem:{}", self.slug),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Not signed in",
            detail.into(),
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed",
            detail.into(),
        )
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail.into(),
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            detail.into(),
        )
    }

    /// The request is well-formed but clashes with what exists (a thread name already taken).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail.into())
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this route does not accept that HTTP method".into(),
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request body too large",
            format!("the request body is over the gateway's limit of {limit} bytes"),
        )
    }

    pub fn unsupported_media(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail.into(),
        )
    }

    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "The request body does not fit this route",
            detail.into(),
        )
    }

    pub fn rate_limited(retry_after: Duration) -> Self {
        let secs = retry_after.as_secs().max(1);
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!("this token has sent too many requests; retry after {secs} s"),
        );
        e.retry_after = Some(Duration::from_secs(secs));
        e
    }

    pub fn quota_exceeded(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "quota-exceeded",
            "Quota exceeded",
            detail.into(),
        )
    }

    pub fn timeout(after: Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "Timed out",
            format!("the request did not finish within {} s", after.as_secs()),
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "daemon-unavailable",
            "Astrid is not available",
            detail.into(),
        )
    }

    pub fn upstream(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "agent-error",
            "The agent reported an error",
            detail.into(),
        )
    }

    pub fn shutting_down() -> Self {
        Self::unavailable("the gateway is shutting down")
    }

    /// A failure talking to the daemon on behalf of a request.
    pub fn from_client(e: ClientError) -> Self {
        match e {
            ClientError::Refused(reason) => {
                Self::unauthorized(format!("the daemon refused this device token: {reason}"))
            }
            ClientError::Connect { source, .. } => Self::unavailable(format!(
                "the Astrid daemon is not running (cannot connect to its socket: {source})"
            )),
            ClientError::NoToken { .. } | ClientError::Token { .. } => {
                Self::unavailable("the Astrid daemon is not running")
            }
            ClientError::Handshake(m) => Self::unavailable(format!(
                "the Astrid daemon did not complete the handshake: {m}"
            )),
            ClientError::Disconnected => Self::unavailable(
                "the Astrid daemon closed the connection (it stopped, or this device was revoked)",
            ),
            ClientError::Timeout(d) => Self::timeout(d),
            ClientError::Denied(m) => Self::forbidden(m),
            ClientError::Request(r) => Self::from_request(r),
            other => Self::upstream(other.to_string()),
        }
    }

    fn from_request(e: RequestError) -> Self {
        match e {
            RequestError::Denied(m) => Self::forbidden(m),
            RequestError::InvalidArgument(m) => Self::bad_request(m),
            RequestError::Timeout(ms) => Self::timeout(Duration::from_millis(ms.into())),
            RequestError::NoSubscriber(topic) => Self::unavailable(format!(
                "nobody answers `{topic}`: the agent's capsules are not installed for this \
                 principal (the operator runs `astrid init`)"
            )),
            // The session capsule's words for an id or name it does not know.
            RequestError::Failed(m) if m.starts_with("no session") => Self::not_found(m),
            RequestError::Failed(m) if m.ends_with("is taken by another session") => {
                Self::conflict(m)
            }
            // A capsule's `CapsuleError::invalid` arrives as a failure carrying its kind.
            RequestError::Failed(m) if m.starts_with("invalid") => {
                Self::bad_request(m.trim_start_matches("invalid argument: ").to_string())
            }
            RequestError::Failed(m) => Self::upstream(m),
            RequestError::Crashed(m) => Self::upstream(format!("a capsule crashed: {m}")),
            // The principal's own quota (concurrency queue full, storage): retrying soon is
            // what the client can do, so it is told as a rate limit would be.
            RequestError::QuotaExceeded(m) => Self::quota_exceeded(m),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.status, self.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(after) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"astrid\""),
            );
        }
        resp
    }
}

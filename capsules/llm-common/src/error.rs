//! Provider failures as the sentences a human reads (docs/AGENT-PROTOCOL.md lists them), and
//! the parsing of the providers' error bodies.

use serde_json::Value;

#[cfg(test)]
mod tests;

/// How many model names a "not found" message lists before summarising the rest.
const LISTED_MODELS: usize = 40;

/// Longest provider text quoted in a message; error pages can be whole HTML documents.
const QUOTE_LIMIT: usize = 400;

/// Everything that can go wrong asking a provider. `Display` is the message for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// 401 or 403: the key is missing, wrong, or lacks access.
    #[error("{}", auth(*status, message))]
    Auth {
        /// 401 or 403.
        status: u16,
        /// The provider's explanation.
        message: String,
    },
    /// 404 on a completion: usually the model name.
    #[error("{}", not_found(model, message, available.as_ref()))]
    ModelNotFound {
        /// The model that was asked for.
        model: String,
        /// The provider's explanation.
        message: String,
        /// What `GET /v1/models` listed, or why that failed; `None` when not asked.
        available: Option<Result<Vec<String>, String>>,
    },
    /// 429.
    #[error("{}", rate_limited(message, retry_after.as_deref()))]
    RateLimited {
        /// The provider's explanation.
        message: String,
        /// Already formatted: `20 s`, or the header's date.
        retry_after: Option<String>,
    },
    /// Any other non-success status.
    #[error("provider error {status}: {}", or_no_details(message))]
    Provider {
        /// The HTTP status (or the one an in-stream error stands for).
        status: u16,
        /// The provider's explanation.
        message: String,
    },
    /// An error object in place of an answer, with no status to classify it by.
    #[error("the provider reported an error: {}", or_no_details(.0))]
    Reported(String),
    /// The exchange ran past the per-request limit.
    #[error("no answer from {url} within {seconds} s")]
    Timeout {
        /// The request URL.
        url: String,
        /// The limit, rounded up to seconds.
        seconds: u64,
    },
    /// The host refused the request; the reason names the Astrid layer that did.
    #[error("the request to {url} was refused: {reason}")]
    Denied {
        /// The request URL.
        url: String,
        /// The host's explanation.
        reason: String,
    },
    /// DNS, connect, TLS or protocol failure.
    #[error("could not reach {url}: {reason}")]
    Connection {
        /// The request URL.
        url: String,
        /// The host's explanation.
        reason: String,
    },
    /// The answer grew past the host's size cap.
    #[error("the answer from {url} was too large: {reason}")]
    TooLarge {
        /// The request URL.
        url: String,
        /// The host's explanation.
        reason: String,
    },
    /// The provider answered something this code cannot read; says what.
    #[error("malformed response from the provider: {0}")]
    Malformed(String),
    /// A setting of the provider capsule is unusable.
    #[error("provider setting {0}")]
    Config(String),
    /// The `llm.v1.complete` payload itself is wrong.
    #[error("invalid completion request: {0}")]
    InvalidRequest(String),
}

impl LlmError {
    /// Classifies a non-success response. `model` is the model a completion asked for
    /// (`None` for other calls, where a 404 is just an error); `retry_after` is already
    /// formatted by [`retry_after`].
    pub fn from_status(
        status: u16,
        body: &[u8],
        retry_after: Option<String>,
        model: Option<&str>,
    ) -> Self {
        let message = ErrorBody::parse(body).message;
        match (status, model) {
            (401 | 403, _) => Self::Auth { status, message },
            (404, Some(model)) => Self::ModelNotFound {
                model: model.to_owned(),
                message,
                available: None,
            },
            (429, _) => Self::RateLimited {
                message,
                retry_after,
            },
            _ => Self::Provider { status, message },
        }
    }

    /// Classifies an error the provider reported inside an event stream (or a 200 body) by
    /// its `type`, so an overload mid-stream reads like the same overload as a status.
    pub fn from_reported(body: &ErrorBody, model: Option<&str>) -> Self {
        let status = body.kind.as_deref().and_then(status_for_kind);
        match status {
            Some(status) => {
                let mut e = Self::from_status(status, &[], None, model);
                e.set_message(body.message.clone());
                e
            }
            None => Self::Reported(body.message.clone()),
        }
    }

    fn set_message(&mut self, text: String) {
        match self {
            Self::Auth { message, .. }
            | Self::ModelNotFound { message, .. }
            | Self::RateLimited { message, .. }
            | Self::Provider { message, .. } => *message = text,
            _ => {}
        }
    }
}

/// The useful part of a provider's error body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// The provider's error type or code (`invalid_request_error`, `overloaded_error`, …).
    pub kind: Option<String>,
    /// The human-readable message; empty when the body had none.
    pub message: String,
}

impl ErrorBody {
    /// Reads `{"error":{"message","type"}}` (OpenAI and compatibles),
    /// `{"type":"error","error":{"type","message"}}` (Anthropic), `{"error":"text"}`,
    /// `{"message"}` / `{"detail"}` (other compatible servers), HTML error pages (their
    /// title) and plain text.
    pub fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        match serde_json::from_str::<Value>(text) {
            Ok(v) => Self::from_json(&v).unwrap_or_else(|| Self {
                kind: None,
                message: quote(text),
            }),
            Err(_) => Self {
                kind: None,
                message: html_title(text).unwrap_or_else(|| quote(text)),
            },
        }
    }

    /// The error inside an already parsed value, or `None` when it does not hold one.
    pub fn from_json(v: &Value) -> Option<Self> {
        let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match v.get("error") {
            Some(e @ Value::Object(_)) => {
                let kind = str_of(e, "type").or_else(|| match e.get("code") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                });
                let message = str_of(e, "message").unwrap_or_else(|| quote(&e.to_string()));
                return Some(Self { kind, message });
            }
            Some(Value::String(s)) => {
                return Some(Self {
                    kind: None,
                    message: quote(s),
                });
            }
            _ => {}
        }
        if let Some(m) = str_of(v, "message") {
            return Some(Self {
                kind: str_of(v, "type"),
                message: quote(&m),
            });
        }
        match v.get("detail") {
            Some(Value::String(s)) => Some(Self {
                kind: None,
                message: quote(s),
            }),
            Some(d @ (Value::Array(_) | Value::Object(_))) => Some(Self {
                kind: None,
                message: quote(&d.to_string()),
            }),
            _ => None,
        }
    }
}

/// Formats the `retry-after` header (seconds or an HTTP date) or, failing that, OpenAI's
/// `retry-after-ms`, as the tail of "retry after …".
pub fn retry_after(retry_after: Option<&str>, retry_after_ms: Option<&str>) -> Option<String> {
    let secs = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(v) = retry_after.map(str::trim).filter(|v| !v.is_empty()) {
        return Some(match secs(v) {
            Some(s) => format!("{} s", s.ceil() as u64),
            None => v.to_owned(),
        });
    }
    let ms = secs(retry_after_ms?)?;
    Some(format!("{} s", (ms / 1000.0).ceil() as u64))
}

/// Anthropic's error types (also sent in streams) and the status each one stands for.
fn status_for_kind(kind: &str) -> Option<u16> {
    Some(match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" | "rate_limit_exceeded" => 429,
        "api_error" | "server_error" => 500,
        "overloaded_error" => 529,
        _ => return None,
    })
}

/// Cuts provider text to a quotable length on a character boundary.
pub(crate) fn quote(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn html_title(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    let title = text[start..end].trim();
    (!title.is_empty()).then(|| quote(title))
}

fn or_no_details(message: &str) -> &str {
    if message.is_empty() {
        "(no details)"
    } else {
        message
    }
}

fn auth(status: u16, message: &str) -> String {
    let advice = if status == 403 {
        "check what the key may access, or store another with `astrid init`"
    } else {
        "store a valid key with `astrid init`"
    };
    format!(
        "the provider rejected the API key ({status}): {}; {advice}",
        or_no_details(message)
    )
}

fn not_found(
    model: &str,
    message: &str,
    available: Option<&Result<Vec<String>, String>>,
) -> String {
    match available {
        Some(Ok(list)) if list.iter().any(|m| m == model) => format!(
            "model `{model}` is listed by the provider but the completion endpoint answered \
             404: {}; check base_url",
            or_no_details(message)
        ),
        Some(Ok(list)) if list.is_empty() => {
            format!("model `{model}` not found (404); the provider lists no models")
        }
        Some(Ok(list)) => {
            let mut names = list[..list.len().min(LISTED_MODELS)].join(", ");
            if list.len() > LISTED_MODELS {
                names.push_str(&format!(" and {} more", list.len() - LISTED_MODELS));
            }
            format!("model `{model}` not found (404); available: {names}")
        }
        Some(Err(why)) => format!(
            "model `{model}` not found (404): {}; listing the available models failed too: {why}",
            or_no_details(message)
        ),
        None => format!(
            "model `{model}` not found (404): {}",
            or_no_details(message)
        ),
    }
}

fn rate_limited(message: &str, retry_after: Option<&str>) -> String {
    match (retry_after, message.is_empty()) {
        (Some(when), true) => format!("rate limited (429); retry after {when}"),
        (Some(when), false) => format!("rate limited (429); retry after {when}: {message}"),
        (None, _) => format!("rate limited (429): {}", or_no_details(message)),
    }
}

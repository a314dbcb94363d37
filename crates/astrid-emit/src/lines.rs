//! The JSON-lines format: what one input line asks for and how each outcome is printed.

use std::time::Duration;

use astrid_client::EventMsg;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const DEFAULT_TIMEOUT_MS: u64 = 5000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    topic: String,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default = "default_request")]
    request: bool,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_request() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// What one input line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Request {
        topic: String,
        payload: Vec<u8>,
        timeout: Duration,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
}

/// Parses input line number `n` (1-based). Errors are ready to print as the `error` field.
pub fn parse_line(line: &str, n: usize) -> Result<Action, String> {
    let input: Input = serde_json::from_str(line).map_err(|e| format!("line {n}: {e}"))?;
    if input.topic.is_empty() {
        return Err(format!("line {n}: topic is empty"));
    }
    let payload = input.payload.map(payload_bytes).unwrap_or_default();
    Ok(if input.request {
        Action::Request {
            topic: input.topic,
            payload,
            timeout: Duration::from_millis(input.timeout_ms),
        }
    } else {
        Action::Publish {
            topic: input.topic,
            payload,
        }
    })
}

/// A JSON string travels as its text, so plain-text handlers need no JSON decoding; any
/// other value travels as compact JSON.
pub fn payload_bytes(v: Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

/// The inverse for output: JSON when the bytes are JSON, else their (lossy) text.
pub fn payload_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

// Structs rather than `json!` maps so the fields print in the documented order.
#[derive(Serialize)]
struct ReplyOut<'a> {
    topic: &'a str,
    reply: Value,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    error: &'a str,
}

#[derive(Serialize)]
struct PublishedOut<'a> {
    topic: &'a str,
    published: bool,
}

#[derive(Serialize)]
struct EventOut<'a> {
    event: &'a str,
    source: &'a str,
    payload: Value,
}

fn to_line<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("strings and JSON values always serialize")
}

pub fn reply_line(topic: &str, reply: &[u8]) -> String {
    to_line(&ReplyOut {
        topic,
        reply: payload_value(reply),
    })
}

pub fn error_line(topic: &str, error: &str) -> String {
    to_line(&ErrorOut {
        topic: Some(topic),
        error,
    })
}

pub fn published_line(topic: &str) -> String {
    to_line(&PublishedOut {
        topic,
        published: true,
    })
}

pub fn malformed_line(error: &str) -> String {
    to_line(&ErrorOut { topic: None, error })
}

pub fn event_line(e: &EventMsg) -> String {
    to_line(&EventOut {
        event: &e.topic,
        source: &e.source,
        payload: payload_value(&e.payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_make_a_five_second_request() {
        assert_eq!(
            parse_line(r#"{"topic": "echo.v1.request", "payload": "hi"}"#, 1).unwrap(),
            Action::Request {
                topic: "echo.v1.request".into(),
                payload: b"hi".to_vec(),
                timeout: Duration::from_millis(5000),
            }
        );
    }

    #[test]
    fn publish_and_timeout_are_honoured() {
        let line = r#"{"topic": "log.v1.line", "payload": {"a": [1, 2]}, "request": false}"#;
        assert_eq!(
            parse_line(line, 1).unwrap(),
            Action::Publish {
                topic: "log.v1.line".into(),
                payload: br#"{"a":[1,2]}"#.to_vec(),
            }
        );
        let line = r#"{"topic": "t", "payload": 7, "request": true, "timeout_ms": 250}"#;
        assert_eq!(
            parse_line(line, 1).unwrap(),
            Action::Request {
                topic: "t".into(),
                payload: b"7".to_vec(),
                timeout: Duration::from_millis(250),
            }
        );
    }

    #[test]
    fn payload_encoding_distinguishes_strings_from_json() {
        assert_eq!(payload_bytes(json!("a \"q\"")), b"a \"q\"".to_vec());
        assert_eq!(payload_bytes(json!(null)), b"null".to_vec());
        assert_eq!(payload_bytes(json!({"k": "v"})), br#"{"k":"v"}"#.to_vec());
        assert_eq!(payload_bytes(json!([true, 1.5])), b"[true,1.5]".to_vec());
        // No payload at all is an empty body, not the text `null`.
        let Action::Request { payload, .. } = parse_line(r#"{"topic": "t"}"#, 1).unwrap() else {
            panic!("expected a request")
        };
        assert!(payload.is_empty());
    }

    #[test]
    fn malformed_lines_name_their_line_number() {
        for (line, needle) in [
            ("not json", "line 3: expected"),
            (r#"{"payload": 1}"#, "line 3: missing field `topic`"),
            (r#"{"topic": 5}"#, "line 3: invalid type"),
            (
                r#"{"topic": "t", "timeout": 5}"#,
                "line 3: unknown field `timeout`",
            ),
            (
                r#"{"topic": "t", "timeout_ms": -1}"#,
                "line 3: invalid value",
            ),
            (r#"{"topic": ""}"#, "line 3: topic is empty"),
        ] {
            let err = parse_line(line, 3).unwrap_err();
            assert!(err.starts_with(needle), "{line}: {err}");
        }
    }

    #[test]
    fn replies_print_as_json_when_they_are_json() {
        assert_eq!(
            reply_line("t", br#"{"ok":true}"#),
            r#"{"topic":"t","reply":{"ok":true}}"#
        );
        let v: Value = serde_json::from_str(&reply_line("t", b"hello there")).unwrap();
        assert_eq!(v, json!({"topic": "t", "reply": "hello there"}));
        let v: Value = serde_json::from_str(&reply_line("t", &[0x66, 0xff])).unwrap();
        assert_eq!(v, json!({"topic": "t", "reply": "f\u{fffd}"}));
        let v: Value = serde_json::from_str(&reply_line("t", b"")).unwrap();
        assert_eq!(v, json!({"topic": "t", "reply": ""}));
    }

    #[test]
    fn other_lines_have_their_documented_shape() {
        assert_eq!(published_line("a.b"), r#"{"topic":"a.b","published":true}"#);
        assert_eq!(
            error_line("a.b", "denied: no"),
            r#"{"topic":"a.b","error":"denied: no"}"#
        );
        assert_eq!(malformed_line("line 1: x"), r#"{"error":"line 1: x"}"#);
        let e = EventMsg {
            topic: "news.v1.item".into(),
            payload: b"[1]".to_vec(),
            source: "capsule:news".into(),
            principal: "default".into(),
        };
        assert_eq!(
            event_line(&e),
            r#"{"event":"news.v1.item","source":"capsule:news","payload":[1]}"#
        );
    }
}

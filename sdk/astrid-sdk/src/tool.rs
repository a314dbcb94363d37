//! Tool calls: the request the agent sends on `tool.v1.execute.<name>` and the context that
//! comes with it.
//!
//! The payload is `{"args": {..}, "context": {"session": "..", "workspace": ".."}}`. A
//! `#[astrid::tool]` method written as `fn name(&self, args: A, ctx: &ToolContext)` gets both;
//! the one-argument form gets only the arguments.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::CapsuleError;

/// Who is calling a tool and where. Missing fields (or a missing `context`) take the defaults:
/// an empty session and no workspace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolContext {
    /// The agent session the call belongs to.
    pub session: String,
    /// The session's workspace: the absolute directory relative paths are resolved against.
    pub workspace: Option<String>,
}

/// Decodes a tool call into its arguments and context.
///
/// The payload is either the envelope `{"args": .., "context": ..}` (other keys such as
/// `call_id` are ignored) or the arguments object itself; an empty payload counts as `{}`.
pub fn parse_call<A: DeserializeOwned>(payload: &[u8]) -> Result<(A, ToolContext), CapsuleError> {
    let value: serde_json::Value = if payload.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(payload)
            .map_err(|e| CapsuleError::InvalidArgument(format!("tool payload is not JSON: {e}")))?
    };
    let (args, context) = match value {
        serde_json::Value::Object(mut map) if map.contains_key("args") => {
            let args = map.remove("args").unwrap_or(serde_json::Value::Null);
            (args, map.remove("context"))
        }
        other => (other, None),
    };
    let context = match context {
        None | Some(serde_json::Value::Null) => ToolContext::default(),
        // serde would also accept a sequence for a struct; a context is always an object.
        Some(c) if !c.is_object() => {
            return Err(CapsuleError::InvalidArgument(format!(
                "invalid tool context: expected a JSON object, got {c}"
            )))
        }
        Some(c) => serde_json::from_value(c)
            .map_err(|e| CapsuleError::InvalidArgument(format!("invalid tool context: {e}")))?,
    };
    let args = serde_json::from_value(args)
        .map_err(|e| CapsuleError::InvalidArgument(format!("invalid tool arguments: {e}")))?;
    Ok((args, context))
}

/// One entry of the `tool.v1.describe` reply, as generated from the manifest's `[[tool]]`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDescription {
    /// The tool's name (its handler and topic segment).
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// A JSON schema object for the arguments.
    pub input_schema: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Args {
        path: String,
    }

    #[test]
    fn envelope_with_context() {
        let (a, c): (Args, _) = parse_call(
            br#"{"call_id":"x","args":{"path":"a"},"context":{"session":"s","workspace":"/w","extra":1}}"#,
        )
        .unwrap();
        assert_eq!(a.path, "a");
        assert_eq!(
            c,
            ToolContext {
                session: "s".into(),
                workspace: Some("/w".into())
            }
        );
    }

    #[test]
    fn bare_args_and_partial_context_take_defaults() {
        let (a, c): (Args, _) = parse_call(br#"{"path":"b"}"#).unwrap();
        assert_eq!(a.path, "b");
        assert_eq!(c, ToolContext::default());
        let (_, c): (Args, _) =
            parse_call(br#"{"args":{"path":"b"},"context":{"workspace":"/w"}}"#).unwrap();
        assert_eq!(c.session, "");
        assert_eq!(c.workspace.as_deref(), Some("/w"));
        let (v, _): (serde_json::Value, _) = parse_call(b"  ").unwrap();
        assert_eq!(v, serde_json::json!({}));
    }

    #[test]
    fn malformed_calls_are_invalid_arguments() {
        for p in [
            &b"{"[..],
            br#"{"args":{"path":1}}"#,
            br#"{"args":{"path":"a"},"context":[]}"#,
        ] {
            assert!(
                matches!(parse_call::<Args>(p), Err(CapsuleError::InvalidArgument(_))),
                "{p:?}"
            );
        }
    }
}

//! Requests, replies and the stored session record, plus the naming rules.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `session.v1.open`.
#[derive(Debug, Deserialize)]
pub struct OpenRequest {
    /// An id or a name; absent or null asks for a new session (with `create`).
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub create: bool,
}

/// `session.v1.history`.
#[derive(Debug, Deserialize)]
pub struct HistoryRequest {
    pub id: String,
}

/// `session.v1.append`; the messages stay raw so they are stored exactly as sent.
#[derive(Debug, Deserialize)]
pub struct AppendRequest<'a> {
    pub id: String,
    #[serde(borrow)]
    pub messages: Vec<&'a RawValue>,
}

/// What `open` and `list` report about a session.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Info {
    pub id: String,
    pub name: String,
    pub workspace: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub messages: u64,
}

/// The stored description of a session (`m/<id>`). The message count lives in the history
/// records, not here, so it is exact; `records` is only a hint where to start looking for
/// the last one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    pub id: String,
    pub name: String,
    pub workspace: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    #[serde(default)]
    pub records: u64,
}

impl Meta {
    pub fn info(&self, messages: u64) -> Info {
        Info {
            id: self.id.clone(),
            name: self.name.clone(),
            workspace: self.workspace.clone(),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            messages,
        }
    }
}

/// The roles a stored message may have.
const ROLES: [&str; 4] = ["user", "assistant", "tool", "system"];

/// Ids are 16 lowercase hex characters.
pub fn is_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Names are `[A-Za-z0-9._-]{1,64}`.
pub fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The error for a name that breaks the rule, written for the person who typed it.
pub fn name_error(s: &str) -> String {
    format!(
        "invalid session name `{s}`: names are 1-64 characters of A-Z, a-z, 0-9, `.`, `_` and `-`"
    )
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The name a new session gets when none was asked for.
pub fn generated_name(id: &str) -> String {
    format!("s-{}", &id[..8.min(id.len())])
}

/// A workspace must be an absolute path (tools resolve relative paths against it).
pub fn check_workspace(w: &str) -> Result<(), String> {
    if !w.starts_with('/') {
        return Err(format!("workspace `{w}` is not an absolute path"));
    }
    if w.contains('\0') {
        return Err("workspace contains a NUL byte".to_owned());
    }
    Ok(())
}

/// Checks the messages of an append and joins them, comma-separated, into a record body.
/// Each must be a JSON object with a known `role`.
pub fn join_messages(messages: &[&RawValue]) -> Result<Vec<u8>, String> {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        role: std::borrow::Cow<'a, str>,
    }
    let mut body = Vec::with_capacity(messages.iter().map(|m| m.get().len() + 1).sum());
    for (i, m) in messages.iter().enumerate() {
        let text = m.get();
        // serde would also accept an array for a struct; a message must be an object.
        if !text.starts_with('{') {
            return Err(format!("message {i} is not a JSON object"));
        }
        let head: Head<'_> = serde_json::from_str(text)
            .map_err(|e| format!("message {i} has no valid `role`: {e}"))?;
        if !ROLES.contains(&head.role.as_ref()) {
            return Err(format!(
                "message {i} has role `{}`; expected one of {}",
                head.role,
                ROLES.join(", ")
            ));
        }
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(text.as_bytes());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sixteen_lowercase_hex() {
        assert!(is_id("0123456789abcdef"));
        assert!(!is_id("0123456789ABCDEF"));
        assert!(!is_id("0123456789abcde"));
        assert!(!is_id("0123456789abcdeg"));
        assert_eq!(hex(&[0x00, 0xab, 0x7f, 0xff]), "00ab7fff");
        assert!(is_id(&hex(&[1, 2, 3, 4, 5, 6, 7, 0xfe])));
    }

    #[test]
    fn names_follow_the_rule() {
        assert!(is_name("work.main_2-x"));
        assert!(is_name(&"a".repeat(64)));
        assert!(!is_name(""));
        assert!(!is_name(&"a".repeat(65)));
        assert!(!is_name("a b"));
        assert!(!is_name("a/b"));
        assert!(!is_name("é"));
        assert!(name_error("a b").contains("`a b`"));
    }

    #[test]
    fn generated_names_use_the_first_eight_id_characters() {
        let name = generated_name("0123456789abcdef");
        assert_eq!(name, "s-01234567");
        assert!(is_name(&name));
    }

    #[test]
    fn workspaces_must_be_absolute() {
        assert!(check_workspace("/home/u/p").is_ok());
        assert!(check_workspace("rel/p")
            .unwrap_err()
            .contains("not an absolute path"));
    }

    #[test]
    fn messages_are_joined_raw_and_checked() {
        let req: AppendRequest<'_> = serde_json::from_str(
            r#"{"id":"x","messages":[{"role":"user","content":"a, b"},
                {"role":"tool","tool_call_id":"c1","name":"fs_read","content":"t","is_error":false}]}"#,
        )
        .unwrap();
        let body = join_messages(&req.messages).unwrap();
        let all: Vec<serde_json::Value> =
            serde_json::from_slice(&[b"[", &body[..], b"]"].concat()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1]["tool_call_id"], "c1");

        let bad: AppendRequest<'_> =
            serde_json::from_str(r#"{"id":"x","messages":[{"role":"user"},["user"]]}"#).unwrap();
        assert_eq!(
            join_messages(&bad.messages).unwrap_err(),
            "message 1 is not a JSON object"
        );
        let bad: AppendRequest<'_> =
            serde_json::from_str(r#"{"id":"x","messages":[{"role":"wizard"}]}"#).unwrap();
        assert!(join_messages(&bad.messages)
            .unwrap_err()
            .contains("role `wizard`"));
        let bad: AppendRequest<'_> =
            serde_json::from_str(r#"{"id":"x","messages":[{"content":"x"}]}"#).unwrap();
        assert!(join_messages(&bad.messages)
            .unwrap_err()
            .contains("no valid `role`"));
    }
}

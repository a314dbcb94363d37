//! Approval requests and answers as they travel between the kernel and the approver clients
//! (re-exported from [`crate::wire`]).
//!
//! A request keeps apart what the kernel knows and what the asking capsule says: the
//! `resource` is rendered by the kernel from the effect about to happen (or, for a capsule's
//! own `astrid:approval.request`, from the capability pattern it asked for, after the kernel
//! parsed and checked it), while the capsule's free text travels only in `capsule_says` and
//! must be shown as the capsule's words. Every text field is escaped by the kernel with
//! [`crate::text::escape_controls`] before it is sent; frontends escape again before printing.

use serde::{Deserialize, Serialize};

use crate::text::escape_controls;

/// A person's (or an automatic approver's) answer to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApprovalDecision {
    AllowOnce,
    /// For this capsule and resource, until the daemon stops.
    AllowSession,
    /// The kernel mints a capability token for the resource, bound to the asking capsule
    /// (only when the request's [`AlwaysOffer`] is a token; otherwise allowed once).
    AllowAlways,
    Deny,
}

impl ApprovalDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalDecision::AllowOnce => "allow-once",
            ApprovalDecision::AllowSession => "allow-session",
            ApprovalDecision::AllowAlways => "allow-always",
            ApprovalDecision::Deny => "deny",
        }
    }
}

/// Who answered. The kernel records it with the decision; an automatic approver's answer
/// is never taken as more than allow-once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AnsweredBy {
    /// Someone read the prompt and chose.
    Person,
    /// `astrid -p --yes`: every prompt answered allow-once without anyone reading it.
    AutoYes,
    /// `astrid -p` without `--yes`: every prompt denied without anyone reading it.
    AutoNo,
    /// The MCP host that `astrid mcp serve` serves, through an elicitation form: a person,
    /// as far as that host says. Never taken as more than allow-session.
    McpClient,
}

impl AnsweredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Person => "person",
            AnsweredBy::AutoYes => "auto-yes",
            AnsweredBy::AutoNo => "auto-no",
            AnsweredBy::McpClient => "mcp-client",
        }
    }
}

/// The kind of effect a request is about; the same families as capability patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResourceKind {
    FsRead,
    FsWrite,
    NetConnect,
    ProcessExec,
    Tool,
    Capsule,
    Kv,
    Identity,
    /// Notices to the principal's frontends; the target is always `frontends`.
    Uplink,
}

impl ResourceKind {
    /// The capability-pattern prefix, such as `fs:read:`.
    pub fn prefix(self) -> &'static str {
        match self {
            ResourceKind::FsRead => "fs:read:",
            ResourceKind::FsWrite => "fs:write:",
            ResourceKind::NetConnect => "net:connect:",
            ResourceKind::ProcessExec => "process:exec:",
            ResourceKind::Tool => "tool:",
            ResourceKind::Capsule => "capsule:",
            ResourceKind::Kv => "kv:",
            ResourceKind::Identity => "identity:",
            ResourceKind::Uplink => "uplink:",
        }
    }

    /// What the effect does, for a person.
    pub fn verb(self) -> &'static str {
        match self {
            ResourceKind::FsRead => "read",
            ResourceKind::FsWrite => "write",
            ResourceKind::NetConnect => "connect to",
            ResourceKind::ProcessExec => "run the program",
            ResourceKind::Tool => "use the tool",
            ResourceKind::Capsule => "invoke the capsule",
            ResourceKind::Kv => "use the key-value store of",
            ResourceKind::Identity => "read your profile fact",
            ResourceKind::Uplink => "send notices to your",
        }
    }
}

/// What would be touched, as the kernel rendered it. `target` is a path, `host:port`,
/// program or name; in a capsule's own request it may hold the pattern wildcards `*` (one
/// path segment) and a final `**` (everything below).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApprovalResource {
    pub kind: ResourceKind,
    pub target: String,
}

impl ApprovalResource {
    /// The capability-pattern spelling, such as `fs:write:/srv/out/**`.
    pub fn pattern(&self) -> String {
        format!("{}{}", self.kind.prefix(), self.target)
    }

    /// One line for a person, such as `write /srv/out/report.txt`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.kind.verb(), self.target)
    }
}

/// The asking capsule's own text (`astrid:approval.request`), never the kernel's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapsuleWords {
    pub action: String,
    pub reason: String,
}

/// What answering "allow always" would do, decided before anyone is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlwaysOffer {
    /// A never-expiring token for exactly `pattern`, usable only by `capsule`.
    Token { pattern: String, capsule: String },
    /// Allow-always is not offered (an allow-always answer counts as allow-once); `why`
    /// says why and how to grant deliberately.
    NotOffered { why: String },
    /// Remembers the local-egress consent for `target` (`host:port` on this machine or the
    /// local network) for `capsule` only, as `astrid egress allow` would; no token.
    Consent { target: String, capsule: String },
}

/// The action of a run-time local-egress question: a capsule's connection to a target on
/// this machine or the local network that the operator has not consented to (EGRESS.md).
pub const LOCAL_EGRESS: &str = "net.local";

/// What a capsule asks a principal's approvers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: u64,
    pub principal: String,
    /// The capsule the effect runs in, from the kernel's context (never from its words).
    pub capsule: String,
    /// The kernel's name for the effect: `fs.read`, `http.request`, `process.spawn`, …, or
    /// `approval.request` for a capsule's own question.
    pub action: String,
    /// What would be touched, rendered by the kernel.
    pub resource: ApprovalResource,
    /// The kernel's description of the effect (empty for a capsule's own question).
    pub detail: String,
    /// The capsule's own words, for a capsule's own question; show them as its words.
    pub capsule_says: Option<CapsuleWords>,
    pub always: AlwaysOffer,
}

impl ApprovalRequest {
    /// What was asked, as a person reads it (escaped): who asks for which effect, the
    /// kernel's detail, and the capsule's own words marked as its own. Several lines; what
    /// allow-always would do is the frontend's to add, since not every frontend offers it.
    pub fn describe(&self) -> String {
        let req = self.escaped();
        let mut out = format!("approval requested by {}: {}", req.capsule, req.action);
        out.push_str(&format!(
            "\n  resource: {}  ({})",
            req.resource.describe(),
            req.resource.pattern()
        ));
        if !req.detail.trim().is_empty() {
            out.push_str(&format!("\n  detail: {}", req.detail.trim()));
        }
        if let Some(words) = &req.capsule_says {
            out.push_str(&format!(
                "\n  {} says (its own words, not checked): action \"{}\", reason \"{}\"",
                req.capsule, words.action, words.reason
            ));
        }
        out
    }

    /// The request with every text field passed through [`escape_controls`]. The kernel
    /// sends only escaped requests; a frontend calls this again before printing, so a
    /// request from anywhere else is made safe too.
    pub fn escaped(&self) -> ApprovalRequest {
        let e = |s: &str| escape_controls(s);
        ApprovalRequest {
            id: self.id,
            principal: e(&self.principal),
            capsule: e(&self.capsule),
            action: e(&self.action),
            resource: ApprovalResource {
                kind: self.resource.kind,
                target: e(&self.resource.target),
            },
            detail: e(&self.detail),
            capsule_says: self.capsule_says.as_ref().map(|w| CapsuleWords {
                action: e(&w.action),
                reason: e(&w.reason),
            }),
            always: match &self.always {
                AlwaysOffer::Token { pattern, capsule } => AlwaysOffer::Token {
                    pattern: e(pattern),
                    capsule: e(capsule),
                },
                AlwaysOffer::NotOffered { why } => AlwaysOffer::NotOffered { why: e(why) },
                AlwaysOffer::Consent { target, capsule } => AlwaysOffer::Consent {
                    target: e(target),
                    capsule: e(capsule),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::is_unsafe_char;

    #[test]
    fn escaped_leaves_no_control_character_in_any_field() {
        let bad = "x\x1b[2K\x1b[1A\r\u{202e}\u{200b}y";
        let req = ApprovalRequest {
            id: 1,
            principal: bad.into(),
            capsule: bad.into(),
            action: bad.into(),
            resource: ApprovalResource {
                kind: ResourceKind::FsWrite,
                target: format!("/tmp/{bad}"),
            },
            detail: bad.into(),
            capsule_says: Some(CapsuleWords {
                action: bad.into(),
                reason: bad.into(),
            }),
            always: AlwaysOffer::NotOffered { why: bad.into() },
        };
        let safe = req.escaped();
        let words = safe.capsule_says.clone().unwrap();
        let AlwaysOffer::NotOffered { why } = &safe.always else {
            panic!("the offer changed kind");
        };
        for field in [
            &safe.principal,
            &safe.capsule,
            &safe.action,
            &safe.resource.target,
            &safe.detail,
            &words.action,
            &words.reason,
            why,
        ] {
            assert!(!field.chars().any(is_unsafe_char), "{field:?}");
        }
        assert_eq!(
            safe.resource.pattern(),
            "fs:write:/tmp/x\\x1b[2K\\x1b[1A\\r\\u{202e}\\u{200b}y"
        );
        assert_eq!(safe.escaped(), safe);
    }
}

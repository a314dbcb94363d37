//! How an approval request is put to a person. The resource line is the kernel's (rendered
//! from the effect); the capsule's own words are shown apart and labelled as its words; and
//! every field is escaped again here ([`ApprovalRequest::escaped`]), so no byte a capsule
//! chose can move the cursor, erase a line or reorder text on the terminal.

use std::fmt::Write as _;

use astrid_types::text::escape_capped;
use astrid_types::wire::{AlwaysOffer, ApprovalRequest};

/// How much of a capsule's reason a one-line (headless) report keeps.
const SHORT_REASON: usize = 200;

/// The request as the user sees it, before the question: several lines, ending with what
/// allow-always would do.
pub fn describe_approval(req: &ApprovalRequest) -> String {
    let mut out = req.describe();
    match &req.escaped().always {
        AlwaysOffer::Token { pattern, capsule } => {
            let _ = write!(out, "\n  always: mints {pattern} for {capsule} only");
        }
        AlwaysOffer::NotOffered { why } => {
            let _ = write!(out, "\n  always: not offered (counts as once): {why}");
        }
        AlwaysOffer::Consent { target, capsule } => {
            let _ = write!(
                out,
                "\n  always: remembers your consent for {capsule} to reach {target} \
                 (`astrid egress revoke` undoes it)"
            );
        }
    }
    out
}

/// One line naming what was asked, for the headless `-p` reports.
pub fn approval_line(req: &ApprovalRequest) -> String {
    let req = req.escaped();
    let mut out = format!(
        "{} {} for {}",
        req.action,
        req.resource.pattern(),
        req.capsule
    );
    if let Some(words) = &req.capsule_says {
        let _ = write!(
            out,
            " (capsule says: \"{}\")",
            escape_capped(&words.reason, SHORT_REASON)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use astrid_types::text::is_unsafe_char;
    use astrid_types::wire::{ApprovalResource, CapsuleWords, ResourceKind};

    /// What a hostile capsule would send if the kernel did not escape (a frontend must not
    /// rely on it).
    fn hostile() -> ApprovalRequest {
        ApprovalRequest {
            id: 3,
            principal: "default".into(),
            capsule: "asker".into(),
            action: "approval.request".into(),
            resource: ApprovalResource {
                kind: ResourceKind::FsWrite,
                target: "/tmp/\u{202e}gpj.exe".into(),
            },
            detail: String::new(),
            capsule_says: Some(CapsuleWords {
                action: "fs.read\x1b]0;title\x07".into(),
                reason: "harmless\x1b[2K\x1b[1A\r\u{9b}1Afs:read:/tmp/x\u{200b}".into(),
            }),
            always: AlwaysOffer::NotOffered {
                why: "`fs:write:/**` covers everything below `/`\n".into(),
            },
        }
    }

    #[test]
    fn the_rendered_prompt_holds_no_raw_control_bytes() {
        for text in [describe_approval(&hostile()), approval_line(&hostile())] {
            for line in text.lines() {
                assert!(!line.chars().any(is_unsafe_char), "{line:?}");
            }
            assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
        }
        let text = describe_approval(&hostile());
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "approval requested by asker: approval.request",
                "  resource: write /tmp/\\u{202e}gpj.exe  (fs:write:/tmp/\\u{202e}gpj.exe)",
                "  asker says (its own words, not checked): action \"fs.read\\x1b]0;title\\x07\", \
                 reason \"harmless\\x1b[2K\\x1b[1A\\r\\u{9b}1Afs:read:/tmp/x\\u{200b}\"",
                "  always: not offered (counts as once): `fs:write:/**` covers everything below `/`\\n",
            ]
        );
    }

    #[test]
    fn an_offered_token_names_its_pattern_and_capsule() {
        let mut req = hostile();
        req.capsule_says = None;
        req.detail = "capsule `asker` wants to write `/srv/out/a`".into();
        req.resource.target = "/srv/out/a".into();
        req.action = "fs.write".into();
        req.always = AlwaysOffer::Token {
            pattern: "fs:write:/srv/out/a".into(),
            capsule: "asker".into(),
        };
        assert_eq!(
            describe_approval(&req),
            "approval requested by asker: fs.write\n  resource: write /srv/out/a  \
             (fs:write:/srv/out/a)\n  detail: capsule `asker` wants to write `/srv/out/a`\n  \
             always: mints fs:write:/srv/out/a for asker only"
        );
        assert_eq!(
            approval_line(&req),
            "fs.write fs:write:/srv/out/a for asker"
        );
    }
}

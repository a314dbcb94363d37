//! Notices a capsule sends to its principal's frontends through `astrid:uplink`, as the
//! kernel delivers them and a frontend reads them.
//!
//! The kernel publishes each notice on [`NOTICE_TOPIC`] to the principal's client
//! connections only (never to a capsule's inbox: one capsule does not read another's
//! notices), with `capsule` stamped from the invocation, never from the text.

use serde::{Deserialize, Serialize};

use crate::text::is_unsafe_char;
use crate::CapsuleName;

/// Where a frontend subscribes to see notices. Reserved for the kernel: no client or
/// capsule can publish on it.
pub const NOTICE_TOPIC: &str = "astrid.v1.uplink.notice";

/// The longest notice text, in bytes: a few lines on a screen, not a document.
pub const MAX_NOTICE_BYTES: usize = 2048;

/// How a frontend should present a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeLevel {
    Info,
    Warning,
    Alert,
}

impl NoticeLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeLevel::Info => "info",
            NoticeLevel::Warning => "warning",
            NoticeLevel::Alert => "alert",
        }
    }
}

impl std::fmt::Display for NoticeLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notice as it travels from the kernel to a frontend (JSON on [`NOTICE_TOPIC`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// The capsule that sent it, stamped by the kernel.
    pub capsule: CapsuleName,
    pub level: NoticeLevel,
    /// Checked by [`check_notice_text`] before it was sent.
    pub text: String,
}

/// One connected client of a principal, as `astrid:uplink.frontends` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendInfo {
    /// The client's own name for itself: reported, not verified.
    pub client: String,
    /// `operator` or `device:<id>`: what the kernel authenticated.
    pub credential: String,
    /// Whether it subscribed to [`NOTICE_TOPIC`].
    pub shows_notices: bool,
}

/// Why a notice text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeTextError {
    #[error("a notice needs some text")]
    Empty,
    #[error("a notice is at most {MAX_NOTICE_BYTES} bytes, this one is {0}")]
    TooLong(usize),
    #[error(
        "a notice may not hold control or invisible formatting characters (found U+{0:04X}); newline and tab are allowed"
    )]
    UnsafeChar(u32),
}

/// Whether `text` may be sent as a notice: not blank, at most [`MAX_NOTICE_BYTES`], and no
/// character a terminal would act on or hide (see [`crate::text`]) except newline and tab.
pub fn check_notice_text(text: &str) -> Result<(), NoticeTextError> {
    if text.trim().is_empty() {
        return Err(NoticeTextError::Empty);
    }
    if text.len() > MAX_NOTICE_BYTES {
        return Err(NoticeTextError::TooLong(text.len()));
    }
    if let Some(c) = text
        .chars()
        .find(|&c| c != '\n' && c != '\t' && is_unsafe_char(c))
    {
        return Err(NoticeTextError::UnsafeChar(u32::from(c)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_text_rules() {
        assert_eq!(check_notice_text("build finished\n\t3 warnings"), Ok(()));
        assert_eq!(check_notice_text(" \n"), Err(NoticeTextError::Empty));
        let long = "x".repeat(MAX_NOTICE_BYTES + 1);
        assert_eq!(
            check_notice_text(&long),
            Err(NoticeTextError::TooLong(MAX_NOTICE_BYTES + 1))
        );
        assert_eq!(check_notice_text(&long[1..]), Ok(()));
        for (bad, code) in [
            ("erase\x1b[2K", 0x1b),
            ("over\rwrite", 0x0d),
            ("bidi \u{202e}txt", 0x202e),
        ] {
            assert_eq!(
                check_notice_text(bad),
                Err(NoticeTextError::UnsafeChar(code))
            );
        }
        let e = check_notice_text("a\u{7}").unwrap_err().to_string();
        assert!(e.contains("U+0007"), "{e}");
    }

    #[test]
    fn a_notice_reads_back_and_refuses_unknown_fields() {
        let n = Notice {
            capsule: CapsuleName::new("builder").unwrap(),
            level: NoticeLevel::Warning,
            text: "disk nearly full".into(),
        };
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(
            json,
            r#"{"capsule":"builder","level":"warning","text":"disk nearly full"}"#
        );
        assert_eq!(serde_json::from_str::<Notice>(&json).unwrap(), n);
        assert!(serde_json::from_str::<Notice>(
            r#"{"capsule":"b","level":"info","text":"t","from":"kernel"}"#
        )
        .is_err());
    }
}

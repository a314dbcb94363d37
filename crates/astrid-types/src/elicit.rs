//! A capsule asking its principal's human for input (`astrid:elicit`), as the kernel sends
//! the question to the principal's answering frontends and hears the answer back.
//!
//! The question is the capsule's own words: frontends show it as such, under the capsule's
//! name the kernel stamped. Every text is escaped by the kernel before it leaves, and again
//! by a frontend before it prints ([`ElicitRequest::escaped`]).

use serde::{Deserialize, Serialize};

use crate::text::escape_controls;

/// The longest prompt, in bytes.
pub const MAX_PROMPT_BYTES: usize = 1024;
/// The longest free-text answer, in bytes.
pub const MAX_ANSWER_BYTES: usize = 1024;
/// The most choices a question offers.
pub const MAX_CHOICES: usize = 10;
/// The longest choice, in bytes.
pub const MAX_CHOICE_BYTES: usize = 80;
/// The longest secret a person may type, in bytes.
pub const MAX_SECRET_BYTES: usize = 4096;

/// What kind of answer is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElicitKind {
    /// One line of free text.
    Text,
    /// One of these (2 to [`MAX_CHOICES`]); the answer is its index.
    Choice { options: Vec<String> },
    /// A credential the capsule declared (`[[secret]] name`, for `origin`): the person's
    /// answer goes to the principal's secret store, bound to `origin`, and never to the
    /// capsule. Sent only to frontends that registered to take secrets.
    Secret { name: String, origin: String },
}

/// A capsule's question to its principal's human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElicitRequest {
    pub id: u64,
    pub principal: String,
    /// The asking capsule (and the one it acts for), from the kernel's context.
    pub capsule: String,
    /// The capsule's own words.
    pub prompt: String,
    pub kind: ElicitKind,
    /// How long the capsule waits for an answer.
    pub timeout_ms: u32,
}

impl ElicitRequest {
    /// The request with every text passed through [`escape_controls`].
    pub fn escaped(&self) -> ElicitRequest {
        let e = |s: &str| escape_controls(s);
        ElicitRequest {
            id: self.id,
            principal: e(&self.principal),
            capsule: e(&self.capsule),
            prompt: e(&self.prompt),
            kind: match &self.kind {
                ElicitKind::Text => ElicitKind::Text,
                ElicitKind::Choice { options } => ElicitKind::Choice {
                    options: options.iter().map(|o| e(o)).collect(),
                },
                ElicitKind::Secret { name, origin } => ElicitKind::Secret {
                    name: e(name),
                    origin: e(origin),
                },
            },
            timeout_ms: self.timeout_ms,
        }
    }
}

/// A person's answer to an [`ElicitRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElicitAnswer {
    Text(String),
    Choice(u32),
    /// The person chose not to answer.
    Declined,
}

/// Why a question or an answer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElicitError {
    #[error("the prompt must be 1 to {MAX_PROMPT_BYTES} bytes")]
    Prompt,
    #[error("a choice offers 2 to {MAX_CHOICES} options of 1 to {MAX_CHOICE_BYTES} bytes each")]
    Options,
    #[error("the answer is not one this question takes")]
    Answer,
}

impl ElicitKind {
    /// The audit action and resource of a question of this kind.
    pub fn audit_names(&self) -> (&'static str, &'static str) {
        match self {
            ElicitKind::Text => ("elicit.text", "elicit:text"),
            ElicitKind::Choice { .. } => ("elicit.choose", "elicit:choice"),
            ElicitKind::Secret { .. } => ("elicit.secret", "elicit:secret"),
        }
    }

    /// Whether a question of this kind with `prompt` may be asked.
    pub fn check(&self, prompt: &str) -> Result<(), ElicitError> {
        if prompt.trim().is_empty() || prompt.len() > MAX_PROMPT_BYTES {
            return Err(ElicitError::Prompt);
        }
        match self {
            ElicitKind::Text | ElicitKind::Secret { .. } => Ok(()),
            ElicitKind::Choice { options } => {
                let fits = |o: &String| !o.trim().is_empty() && o.len() <= MAX_CHOICE_BYTES;
                if (2..=MAX_CHOICES).contains(&options.len()) && options.iter().all(fits) {
                    Ok(())
                } else {
                    Err(ElicitError::Options)
                }
            }
        }
    }

    /// Whether `answer` answers a question of this kind: free text for text (at most
    /// [`MAX_ANSWER_BYTES`], one line), an offered index for a choice, or a refusal.
    pub fn accepts(&self, answer: &ElicitAnswer) -> Result<(), ElicitError> {
        match (self, answer) {
            (_, ElicitAnswer::Declined) => Ok(()),
            (ElicitKind::Text, ElicitAnswer::Text(t))
                if t.len() <= MAX_ANSWER_BYTES && !t.chars().any(char::is_control) =>
            {
                Ok(())
            }
            (ElicitKind::Choice { options }, ElicitAnswer::Choice(i))
                if (*i as usize) < options.len() =>
            {
                Ok(())
            }
            (ElicitKind::Secret { .. }, ElicitAnswer::Text(t))
                if !t.is_empty()
                    && t.len() <= MAX_SECRET_BYTES
                    && !t.chars().any(char::is_control) =>
            {
                Ok(())
            }
            _ => Err(ElicitError::Answer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_and_answers_are_checked() {
        let text = ElicitKind::Text;
        assert_eq!(text.check("Which branch?"), Ok(()));
        assert_eq!(text.check("  "), Err(ElicitError::Prompt));
        assert_eq!(text.check(&"x".repeat(1025)), Err(ElicitError::Prompt));
        assert_eq!(text.accepts(&ElicitAnswer::Text("main".into())), Ok(()));
        assert_eq!(text.accepts(&ElicitAnswer::Declined), Ok(()));
        assert!(text.accepts(&ElicitAnswer::Text("a\nb".into())).is_err());
        assert!(text.accepts(&ElicitAnswer::Choice(0)).is_err());
        let choice = |o: &[&str]| ElicitKind::Choice {
            options: o.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(choice(&["yes", "no"]).check("Deploy?"), Ok(()));
        assert_eq!(choice(&["only"]).check("?"), Err(ElicitError::Options));
        assert_eq!(choice(&["a", ""]).check("?"), Err(ElicitError::Options));
        assert_eq!(
            choice(&["yes", "no"]).accepts(&ElicitAnswer::Choice(1)),
            Ok(())
        );
        assert!(choice(&["yes", "no"])
            .accepts(&ElicitAnswer::Choice(2))
            .is_err());
        assert!(choice(&["yes", "no"])
            .accepts(&ElicitAnswer::Text("yes".into()))
            .is_err());
    }

    #[test]
    fn escaping_reaches_every_text() {
        let req = ElicitRequest {
            id: 1,
            principal: "default".into(),
            capsule: "asker".into(),
            prompt: "erase\u{1b}[2K".into(),
            kind: ElicitKind::Choice {
                options: vec!["a\u{202e}b".into(), "ok".into()],
            },
            timeout_ms: 1000,
        }
        .escaped();
        assert!(!req.prompt.contains('\u{1b}'));
        let ElicitKind::Choice { options } = &req.kind else {
            unreachable!()
        };
        assert!(!options[0].contains('\u{202e}'));
    }
}

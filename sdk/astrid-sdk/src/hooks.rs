//! Hooks: events from outside Astrid that a capsule reacts to. A producer (a git hook, a CI
//! job, cron) puts one on the bus as `hook.v1.<name>` with `astrid-emit`, or another capsule
//! fires one with [`fire`]; a capsule whose manifest subscribes a handler to that topic gets
//! it as a [`Hook`].
//!
//! With `#[capsule]`, mark the handler `#[astrid::hook]` (the handler name is the method's
//! name unless given: `#[astrid::hook(name = "on-commit")]`); it takes `&Hook` and returns
//! `Result<R, E>` like a handler. The macro checks that `Capsule.toml` routes a `hook.v1.*`
//! topic to it, so a hook that could never arrive is a compile error, not silence.
//!
//! ```toml
//! [subscribe]
//! "hook.v1.git.post-commit" = { handler = "on_commit" }
//! ```
//!
//! ```no_run
//! use astrid_sdk::prelude::*;
//! use astrid_sdk::hooks::Hook;
//!
//! #[derive(Deserialize)]
//! struct Commit {
//!     sha: String,
//! }
//!
//! fn on_commit(hook: &Hook) -> Result<(), CapsuleError> {
//!     let commit: Commit = hook.payload_as()?;
//!     log::info(&format!("{} committed {}", hook.source, commit.sha));
//!     Ok(())
//! }
//! ```
//!
//! From a shell, once the capsule is installed:
//!
//! ```text
//! echo '{"topic":"hook.v1.git.post-commit","payload":{"sha":"4f2a9c1"}}' | astrid-emit
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{CapsuleError, Event, SysError};

/// Every hook's topic starts with this.
pub const TOPIC_PREFIX: &str = "hook.v1.";

/// The topic a hook named `name` travels on.
pub fn topic(name: &str) -> String {
    format!("{TOPIC_PREFIX}{name}")
}

/// One hook as a handler receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// The hook's name: its topic without `hook.v1.` (`git.post-commit`).
    pub name: String,
    /// The payload as JSON; a payload that is not JSON arrives as a JSON string of its text
    /// (lossily decoded), so a producer sending plain text is still heard.
    pub payload: serde_json::Value,
    /// Who put it on the bus, as the kernel stamped it: `client:<id>` (e.g. `astrid-emit`)
    /// or `capsule:<name>`.
    pub source: String,
    /// The principal it was published for.
    pub principal: String,
}

impl Hook {
    /// The hook an event carries; an event on another topic is an invalid argument.
    pub fn from_event(event: &Event) -> Result<Hook, CapsuleError> {
        let name = event
            .topic
            .strip_prefix(TOPIC_PREFIX)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                CapsuleError::invalid(format!(
                    "`{}` is not a hook topic ({TOPIC_PREFIX}<name>): check the [subscribe] \
                     entry that routes it to this handler",
                    event.topic
                ))
            })?;
        let payload = serde_json::from_slice(&event.payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&event.payload).into_owned())
        });
        Ok(Hook {
            name: name.to_string(),
            payload,
            source: event.source.clone(),
            principal: event.principal.clone(),
        })
    }

    /// The payload decoded as `T`; a payload of another shape is an invalid argument that
    /// names the hook.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, CapsuleError> {
        T::deserialize(&self.payload).map_err(|e| {
            CapsuleError::invalid(format!("hook `{}`: unexpected payload: {e}", self.name))
        })
    }
}

/// Fires the hook `name` with `payload` (as JSON), for every capsule of this principal that
/// subscribes to it. The manifest must allow publishing its topic (`[publish]`).
pub fn fire<T: Serialize + ?Sized>(name: &str, payload: &T) -> Result<(), SysError> {
    crate::ipc::publish_json(&topic(name), payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(topic: &str, payload: &[u8]) -> Event {
        Event {
            topic: topic.into(),
            payload: payload.to_vec(),
            source: "client:7".into(),
            principal: "default".into(),
        }
    }

    #[test]
    fn a_hook_is_its_topics_name_and_its_json_payload() {
        let hook =
            Hook::from_event(&event("hook.v1.git.post-commit", br#"{"sha":"4f2a9c1"}"#)).unwrap();
        assert_eq!(hook.name, "git.post-commit");
        assert_eq!(hook.payload, serde_json::json!({"sha": "4f2a9c1"}));
        assert_eq!(hook.source, "client:7");
        #[derive(serde::Deserialize)]
        struct Commit {
            sha: String,
        }
        assert_eq!(hook.payload_as::<Commit>().unwrap().sha, "4f2a9c1");
        let wrong = hook.payload_as::<Vec<u8>>().unwrap_err().to_string();
        assert!(wrong.contains("hook `git.post-commit`"), "{wrong}");
    }

    #[test]
    fn plain_text_arrives_as_a_string_and_other_topics_are_refused() {
        let hook = Hook::from_event(&event("hook.v1.cron.nightly", b"run now")).unwrap();
        assert_eq!(hook.payload, serde_json::json!("run now"));
        for topic in ["tool.v1.execute.x", "hook.v1.", "hooks.v1.x"] {
            let err = Hook::from_event(&event(topic, b"{}")).unwrap_err();
            assert!(
                err.to_string().contains("not a hook topic"),
                "{topic}: {err}"
            );
        }
        assert_eq!(topic("ci.done"), "hook.v1.ci.done");
    }
}

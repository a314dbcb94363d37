//! Formatting the `models` command's reply and explaining why a provider did not answer.

use astrid_sdk::IpcError;
use serde::Deserialize;

pub const DEFAULT_PROVIDER: &str = "openai";

/// `llm.v1.models.<provider>`'s reply (fields this capsule does not use are ignored).
#[derive(Debug, Deserialize)]
pub struct Listing {
    #[serde(default)]
    pub current: Option<String>,
    #[serde(default)]
    pub models: Vec<Model>,
}

#[derive(Debug, Deserialize)]
pub struct Model {
    pub id: String,
}

/// A provider name becomes one topic segment (`llm.v1.complete.<provider>`).
pub fn check_provider(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && p.len() <= 64
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid provider name `{p}`: use lowercase letters, digits, `-` and `_`"
        ))
    }
}

/// One model per line, sorted, the current one (the registry's setting, else the provider's
/// own default) marked with `*`. A current model the provider does not list is still shown,
/// so a typo in the setting is visible.
pub fn render(listing: &Listing, configured: Option<&str>) -> String {
    let current = configured.or(listing.current.as_deref());
    let mut ids: Vec<&str> = listing.models.iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = String::new();
    if let Some(c) = current {
        if !ids.contains(&c) {
            out.push_str(&format!("* {c} (not offered by the provider)\n"));
        }
    }
    for id in ids {
        let mark = if Some(id) == current { '*' } else { ' ' };
        out.push(mark);
        out.push(' ');
        out.push_str(id);
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("(the provider lists no models)\n");
    }
    out
}

/// The message for a failed `llm.v1.models.<provider>` request.
pub fn request_error(provider: &str, e: &IpcError, timeout_ms: u32) -> String {
    match e {
        // The kernel reports "nobody subscribed" as a timeout too, so name both causes.
        IpcError::Timeout => format!(
            "provider `{provider}` did not answer (nothing serves llm.v1.models.{provider}, or \
             it took over {} s): is the capsule `provider-{provider}` installed \
             (`astrid capsule list`)?",
            timeout_ms / 1000
        ),
        IpcError::Failed(m) => format!("{provider}: {m}"),
        IpcError::Denied(m) => format!("the registry may not ask provider `{provider}`: {m}"),
        other => format!("asking provider `{provider}` for its models: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(current: Option<&str>, ids: &[&str]) -> Listing {
        Listing {
            current: current.map(str::to_owned),
            models: ids
                .iter()
                .map(|i| Model {
                    id: (*i).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_configured_model_is_marked() {
        let l = listing(Some("b"), &["c", "a", "b"]);
        assert_eq!(render(&l, Some("c")), "  a\n  b\n* c\n");
        // Without a registry setting the provider's own current model is the one in use.
        assert_eq!(render(&l, None), "  a\n* b\n  c\n");
    }

    #[test]
    fn an_unlisted_current_model_is_shown_first() {
        let l = listing(None, &["a"]);
        assert_eq!(
            render(&l, Some("gpt-typo")),
            "* gpt-typo (not offered by the provider)\n  a\n"
        );
        assert_eq!(
            render(&listing(None, &[]), None),
            "(the provider lists no models)\n"
        );
    }

    #[test]
    fn listing_parses_the_provider_reply() {
        let l: Listing = serde_json::from_str(
            r#"{"provider":"openai","base_url":"http://x","current":"m1","models":[{"id":"m1"},{"id":"m2","owned_by":"o"}]}"#,
        )
        .unwrap();
        assert_eq!(render(&l, None), "* m1\n  m2\n");
    }

    #[test]
    fn provider_names_are_one_topic_segment() {
        assert!(check_provider("openai").is_ok());
        assert!(check_provider("my-local_2").is_ok());
        for bad in ["", "open.ai", "a*", "OpenAI", "a b"] {
            assert!(check_provider(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_provider_is_explained() {
        let m = request_error("anthropic", &IpcError::Timeout, 30_000);
        assert!(m.contains("provider-anthropic"), "{m}");
        assert!(m.contains("30 s"), "{m}");
        let m = request_error(
            "openai",
            &IpcError::Failed("the provider rejected the API key (401)".into()),
            1,
        );
        assert_eq!(m, "openai: the provider rejected the API key (401)");
    }
}

//! What the person (or the model) reads when a bus request of the turn fails.

use astrid_sdk::IpcError;

/// A request to the session or registry capsule failed.
pub fn service(topic: &str, capsule: &str, e: &IpcError) -> String {
    match e {
        // The capsule's own message (an unknown session, a bad name) is written for people.
        IpcError::Failed(m) => m.clone(),
        IpcError::Timeout => format!(
            "the `{capsule}` capsule did not answer {topic}: is it installed (`astrid capsule list`)?"
        ),
        other => format!("{topic}: {other}"),
    }
}

/// A model request failed; the message says which provider.
pub fn provider(provider: &str, e: &IpcError, timeout_ms: u32) -> String {
    match e {
        IpcError::Failed(m) => format!("{provider}: {m}"),
        // The kernel reports "nobody subscribed" as a timeout too, so name both causes.
        IpcError::Timeout => format!(
            "provider `{provider}` did not answer (nothing serves llm.v1.complete.{provider}, or it \
             took over {} s): is the capsule `provider-{provider}` installed?",
            timeout_ms / 1000
        ),
        IpcError::Denied(m) => format!("the agent may not call provider `{provider}`: {m}"),
        IpcError::InvalidArgument(m) => format!(
            "{provider}: the request could not be sent ({m}); if the conversation is too long, \
             start a new session"
        ),
        IpcError::QuotaExceeded(m) => format!("{provider}: {m}"),
    }
}

/// A tool request failed; this goes to the model as the tool's error result.
pub fn tool(name: &str, e: &IpcError, timeout_ms: u32) -> String {
    match e {
        IpcError::Failed(m) => m.clone(),
        IpcError::Timeout => format!(
            "tool `{name}` did not answer within {} s (or no installed capsule provides it)",
            timeout_ms / 1000
        ),
        IpcError::Denied(m) => format!("the agent may not run tool `{name}`: {m}"),
        other => format!("tool `{name}`: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_name_the_provider() {
        let e = IpcError::Failed("rate limited (429); retry after 20 s".into());
        assert_eq!(
            provider("openai", &e, 1000),
            "openai: rate limited (429); retry after 20 s"
        );
        let m = provider("anthropic", &IpcError::Timeout, 600_000);
        assert!(
            m.contains("provider-anthropic") && m.contains("600 s"),
            "{m}"
        );
        let m = provider(
            "openai",
            &IpcError::InvalidArgument("payload too big".into()),
            1,
        );
        assert!(
            m.starts_with("openai: ") && m.contains("new session"),
            "{m}"
        );
    }

    #[test]
    fn tool_errors_carry_the_tools_message() {
        assert_eq!(
            tool("fs_read", &IpcError::Failed("not-found: a.txt".into()), 1),
            "not-found: a.txt"
        );
        let m = tool("shell", &IpcError::Timeout, 5000);
        assert_eq!(
            m,
            "tool `shell` did not answer within 5 s (or no installed capsule provides it)"
        );
        let m = tool("x", &IpcError::Denied("topic not in [publish]".into()), 1);
        assert!(m.contains("may not run tool `x`"), "{m}");
    }

    #[test]
    fn service_errors_pass_the_capsules_message_through() {
        assert_eq!(
            service(
                "session.v1.open",
                "session",
                &IpcError::Failed("no session `x`".into())
            ),
            "no session `x`"
        );
        let m = service("registry.v1.current", "registry", &IpcError::Timeout);
        assert!(m.contains("`registry` capsule did not answer"), "{m}");
    }
}

//! What a person is shown, and what "allow always" may mint.
//!
//! The resource line comes from the effect (or the capsule's parsed pattern), never from the
//! capsule's text. An allow-always token is exactly that resource, bound to the asking
//! capsule, and only when the resource is inside the capsule's manifest ceiling and not
//! [too wide](too_wide): a wide grant is the operator's decision (`astrid caps grant`),
//! not something one keypress in a prompt should produce.

use std::path::Path;

use astrid_crypto::{HostPattern, Resource, ResourcePattern};
use astrid_sandbox::{ApprovalAsk, Asked};
use astrid_types::wire::{AlwaysOffer, ApprovalResource, ResourceKind};

/// Programs that run whatever their arguments say: a token for one of them is a token for
/// every program.
const LAUNCHERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "busybox", "env", "sudo",
    "doas", "su", "xargs", "nohup", "nice", "timeout", "setsid", "python", "python3", "perl",
    "ruby", "node", "deno", "bun", "php", "lua",
];

/// The resource as a person sees it: from the typed effect or pattern.
pub(crate) fn resource_of(asked: &Asked) -> ApprovalResource {
    match asked {
        Asked::Effect(r) => effect_resource(r),
        Asked::Pattern(p) => pattern_resource(p),
    }
}

fn effect_resource(r: &Resource) -> ApprovalResource {
    let (kind, target) = match r {
        Resource::FsRead(p) => (ResourceKind::FsRead, p.display().to_string()),
        Resource::FsWrite(p) => (ResourceKind::FsWrite, p.display().to_string()),
        Resource::NetConnect { .. } => {
            let text = r.to_string();
            let target = text.trim_start_matches("net:connect:").to_string();
            (ResourceKind::NetConnect, target)
        }
        Resource::ProcessExec(p) => (ResourceKind::ProcessExec, p.clone()),
        Resource::Tool(t) => (ResourceKind::Tool, t.clone()),
        Resource::Capsule(c) => (ResourceKind::Capsule, c.to_string()),
        Resource::Kv(c) => (ResourceKind::Kv, c.to_string()),
        Resource::Identity(f) => (ResourceKind::Identity, f.to_string()),
        Resource::Uplink => (
            ResourceKind::Uplink,
            astrid_crypto::UPLINK_TARGET.to_string(),
        ),
    };
    ApprovalResource { kind, target }
}

fn pattern_resource(p: &ResourcePattern) -> ApprovalResource {
    let kind = match p {
        ResourcePattern::FsRead(_) => ResourceKind::FsRead,
        ResourcePattern::FsWrite(_) => ResourceKind::FsWrite,
        ResourcePattern::NetConnect { .. } => ResourceKind::NetConnect,
        ResourcePattern::ProcessExec(_) => ResourceKind::ProcessExec,
        ResourcePattern::Tool(_) => ResourceKind::Tool,
        ResourcePattern::Capsule(_) => ResourceKind::Capsule,
        ResourcePattern::Kv(_) => ResourceKind::Kv,
        ResourcePattern::Identity(_) => ResourceKind::Identity,
        ResourcePattern::Uplink => ResourceKind::Uplink,
    };
    let text = p.to_string();
    let target = text[kind.prefix().len()..].to_string();
    ApprovalResource { kind, target }
}

/// What allow-always would mint for `ask` (the pattern, bound to the asking capsule), or
/// why it is not offered. `home` is the user's home directory, if known.
pub(crate) fn always_offer(
    ask: &ApprovalAsk,
    home: Option<&Path>,
) -> (AlwaysOffer, Option<ResourcePattern>) {
    let not = |why: String| (AlwaysOffer::NotOffered { why }, None);
    if let Some(why) = &ask.outside_manifest {
        return not(format!("{why}: no token is minted past the manifest"));
    }
    if let Some(target) = local_egress_target(ask) {
        // Not a token (a token never opens a local target): the consent itself, remembered.
        return (
            AlwaysOffer::Consent {
                target,
                capsule: ask.actor.capsule.to_string(),
            },
            None,
        );
    }
    let pattern = match &ask.asked {
        Asked::Pattern(p) => p.clone(),
        Asked::Effect(r) => match ResourcePattern::exact(r) {
            Some(p) => p,
            None => return not(format!("`{r}` cannot be written as an exact pattern")),
        },
    };
    if let Some(why) = too_wide(&pattern, home) {
        return not(format!(
            "`{pattern}` {why}; grant it deliberately with `astrid caps grant` if you mean it"
        ));
    }
    (
        AlwaysOffer::Token {
            pattern: pattern.to_string(),
            capsule: ask.actor.capsule.to_string(),
        },
        Some(pattern),
    )
}

/// The `host:port` of a run-time local-egress question, or `None` for any other question.
pub(crate) fn local_egress_target(ask: &ApprovalAsk) -> Option<String> {
    match (
        &ask.asked,
        ask.action == astrid_types::approval::LOCAL_EGRESS,
    ) {
        (Asked::Effect(r @ Resource::NetConnect { .. }), true) => {
            Some(r.to_string().trim_start_matches("net:connect:").to_string())
        }
        _ => None,
    }
}

/// Why `pattern` is too wide for an allow-always answer, if it is. The rule:
///
/// - a path pattern with a one-segment `*` anywhere;
/// - a path pattern ending in `**` whose literal part is `/` or one segment deep (`/**`,
///   `/home/**`, `/etc/**`), or is the user's home directory or one of its ancestors
///   (`~/**`);
/// - `net:connect` to any host (`*`) or to every name under a top-level domain (`*.com`);
/// - `process:exec` of a shell, interpreter or launcher ([`LAUNCHERS`]), which runs any
///   program;
/// - `tool:*`.
pub(crate) fn too_wide(pattern: &ResourcePattern, home: Option<&Path>) -> Option<String> {
    match pattern {
        ResourcePattern::FsRead(p) | ResourcePattern::FsWrite(p) => {
            if p.has_one_wildcard() {
                return Some("matches names nobody has seen (a `*` segment)".into());
            }
            if p.is_exact() {
                return None;
            }
            let prefix = p.literal_prefix();
            let depth = Path::new(&prefix).components().count().saturating_sub(1);
            if depth < 2 {
                return Some(format!("covers everything below `{}`", prefix.display()));
            }
            if home.is_some_and(|h| h.starts_with(&prefix)) {
                return Some("covers the whole home directory".into());
            }
            None
        }
        ResourcePattern::NetConnect { host, .. } => match host {
            HostPattern::Any => Some("reaches every host".into()),
            HostPattern::Suffix(s) if !s.contains('.') => {
                Some(format!("reaches every name under `.{s}`"))
            }
            _ => None,
        },
        ResourcePattern::ProcessExec(program) => {
            let name = program.rsplit('/').next().unwrap_or(program);
            LAUNCHERS
                .contains(&name)
                .then(|| format!("runs any program (`{name}` starts whatever it is told to)"))
        }
        ResourcePattern::Tool(t) if t == "*" => Some("covers every tool".into()),
        ResourcePattern::Tool(_)
        | ResourcePattern::Capsule(_)
        | ResourcePattern::Kv(_)
        | ResourcePattern::Identity(_)
        | ResourcePattern::Uplink => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide(p: &str) -> bool {
        too_wide(
            &ResourcePattern::parse(p).unwrap(),
            Some(Path::new("/home/ann")),
        )
        .is_some()
    }

    #[test]
    fn the_wideness_rule() {
        for p in [
            "fs:write:/**",
            "fs:read:/home/**",
            "fs:read:/home/ann/**",
            "fs:read:/etc/**",
            "fs:read:/srv/*/secrets",
            "fs:write:/home/*/x/**",
            "net:connect:*:443",
            "net:connect:*:*",
            "net:connect:*.com:443",
            "process:exec:sh",
            "process:exec:/usr/bin/python3",
            "process:exec:env",
            "tool:*",
        ] {
            assert!(wide(p), "{p} should be too wide");
        }
        for p in [
            "fs:write:/srv/out/report.txt",
            "fs:write:/",
            "fs:read:/home/ann/project/**",
            "fs:read:/srv/data/**",
            "net:connect:api.example.com:443",
            "net:connect:*.example.com:443",
            "process:exec:git",
            "process:exec:/usr/bin/cargo",
            "tool:fs_read",
            "kv:asker",
            "identity:display_name",
            "uplink:frontends",
        ] {
            assert!(!wide(p), "{p} should be allowed");
        }
    }

    #[test]
    fn resources_render_from_the_typed_value() {
        let r = resource_of(&Asked::Pattern(
            ResourcePattern::parse("fs:write:/srv/out/**").unwrap(),
        ));
        assert_eq!(r.kind, ResourceKind::FsWrite);
        assert_eq!(r.target, "/srv/out/**");
        let r = resource_of(&Asked::Effect(Resource::NetConnect {
            host: "::1".into(),
            port: 8080,
        }));
        assert_eq!(r.pattern(), "net:connect:[::1]:8080");
    }
}

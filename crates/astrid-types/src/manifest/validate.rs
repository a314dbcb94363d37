//! The manifest rules serde cannot express. Each check returns `(dotted key, reason)`;
//! the caller attaches the file name.

use std::collections::BTreeMap;

use super::{
    covers_tool_topics_implicitly, key_segment, names_tool_topics, tool_topic, Capabilities,
    EnvDecl, Manifest, HOST_NAMESPACE, MAX_TIMEOUT_MS, TOOL_TOPIC_PREFIX,
};
use crate::topic::{is_kernel_topic, pattern_matches, validate_pattern};

type Check = Result<(), (String, String)>;

fn fail(key: impl Into<String>, reason: impl Into<String>) -> Check {
    Err((key.into(), reason.into()))
}

pub(super) fn manifest(m: &Manifest) -> Check {
    components(m)?;
    interfaces(m)?;
    publish(m)?;
    tools(m)?;
    subscribe(m)?;
    capabilities(&m.capabilities)?;
    env(&m.env)?;
    secrets(m)?;
    commands(m)?;
    limits(m)
}

fn secrets(m: &Manifest) -> Check {
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in m.secrets.iter().enumerate() {
        let key = format!("secret[{i}]");
        if !is_handler_name(&s.name) {
            return fail(
                format!("{key}.name"),
                format!(
                    "`{}` must be 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter",
                    s.name
                ),
            );
        }
        if !seen.insert(&s.name) {
            return fail(
                format!("{key}.name"),
                format!("`{}` is declared twice", s.name),
            );
        }
        let header_ok = !s.header.is_empty()
            && s.header.len() <= 64
            && s.header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !header_ok {
            return fail(
                format!("{key}.header"),
                format!(
                    "`{}` is not a header name (letters, digits and `-`)",
                    s.header
                ),
            );
        }
        if s.prefix.chars().any(|c| c.is_control()) {
            return fail(
                format!("{key}.prefix"),
                "must not contain control characters",
            );
        }
        if let Some(host) = &s.host {
            let with_port = if host.rsplit_once(':').is_some_and(|(h, p)| {
                !h.is_empty() && !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit())
            }) {
                host.clone()
            } else {
                format!("{host}:443")
            };
            if let Err(reason) = net_target(&with_port) {
                return fail(format!("{key}.host"), format!("`{host}` {reason}"));
            }
        }
    }
    Ok(())
}

fn commands(m: &Manifest) -> Check {
    for (i, c) in m.commands.iter().enumerate() {
        if !is_handler_name(&c.name) {
            return fail(
                format!("command[{i}].name"),
                format!(
                    "`{}` must be 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter",
                    c.name
                ),
            );
        }
        if m.commands[..i].iter().any(|o| o.name == c.name) {
            return fail(
                format!("command[{i}].name"),
                format!("`{}` is declared twice", c.name),
            );
        }
        if m.tools.iter().any(|t| t.name == c.name)
            || m.subscribe
                .values()
                .any(|r| r.handler.as_deref() == Some(c.name.as_str()))
        {
            return fail(
                format!("command[{i}].name"),
                format!(
                    "`{}` is also the name of a tool or handler; each handler answers one thing",
                    c.name
                ),
            );
        }
    }
    Ok(())
}

fn limits(m: &Manifest) -> Check {
    match m.limits.timeout_ms {
        Some(0) => fail("limits.timeout_ms", "must be at least 1"),
        Some(t) if t > MAX_TIMEOUT_MS => fail(
            "limits.timeout_ms",
            format!("{t} is more than the maximum of {MAX_TIMEOUT_MS} (one hour)"),
        ),
        _ => Ok(()),
    }
}

fn components(m: &Manifest) -> Check {
    match m.components.len() {
        0 => return fail("component", "at least one [[component]] is required"),
        1 => {}
        n => {
            return fail(
                "component[1]",
                format!("exactly one [[component]] is supported, found {n}"),
            )
        }
    }
    let file = &m.components[0].file;
    let reason = if file.is_empty() {
        "must not be empty"
    } else if file.contains(['/', '\\']) {
        "must be a file name next to Capsule.toml, without `/`"
    } else if file == "." || file == ".." {
        "must be a file name, not `.` or `..`"
    } else if file.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    fail("component[0].file", reason)
}

/// `ns:name`, both parts non-empty `[a-z0-9-]`.
fn is_interface_name(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
    };
    matches!(s.split_once(':'), Some((ns, name)) if part(ns) && part(name))
}

fn interface_reason(name: &str) -> String {
    format!("invalid interface name `{name}`: expected `namespace:name` using a-z, 0-9 and `-`")
}

fn interfaces(m: &Manifest) -> Check {
    for name in m.imports.keys() {
        if !is_interface_name(name) {
            return fail(
                format!("imports.{}", key_segment(name)),
                interface_reason(name),
            );
        }
    }
    for name in m.exports.keys() {
        let key = format!("exports.{}", key_segment(name));
        if !is_interface_name(name) {
            return fail(key, interface_reason(name));
        }
        if name.starts_with(HOST_NAMESPACE) {
            return fail(
                key,
                "`astrid:` interfaces are provided by the kernel and cannot be exported",
            );
        }
    }
    Ok(())
}

fn publish(m: &Manifest) -> Check {
    for pattern in m.publish.keys() {
        let key = format!("publish.{}", key_segment(pattern));
        if let Err(err) = validate_pattern(pattern) {
            return fail(key, err.to_string());
        }
        if is_kernel_topic(pattern.trim_end_matches('*')) {
            return fail(
                key,
                "topics starting with `astrid.` or `_reply.` are reserved for the kernel",
            );
        }
        // A tool acts with the principal's tokens: a capsule that may call tools must say so
        // explicitly, so `*` cannot hand that power over unnoticed.
        if covers_tool_topics_implicitly(pattern) {
            return fail(
                key,
                format!(
                    "`{pattern}` would cover the tool-call topics `{TOOL_TOPIC_PREFIX}*` without naming them; \
                     a capsule that invokes tools must name them explicitly \
                     (`\"{TOOL_TOPIC_PREFIX}<name>\" = {{}}` or `\"{TOOL_TOPIC_PREFIX}*\" = {{}}`), \
                     and this pattern must be narrowed to the topics the capsule really publishes"
                ),
            );
        }
    }
    Ok(())
}

fn is_handler_name(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.first(), Some(b'a'..=b'z'))
        && b.len() <= 64
        && b.iter()
            .all(|&c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

fn subscribe(m: &Manifest) -> Check {
    for (pattern, rule) in &m.subscribe {
        let key = format!("subscribe.{}", key_segment(pattern));
        if let Err(err) = validate_pattern(pattern) {
            return fail(key, err.to_string());
        }
        // A tool call carries the principal's data and its answer is trusted as the tool's.
        // Receiving one takes words a reviewer sees: a handler naming `tool.v1.execute.…`
        // (a dispatcher), never a wildcard that happens to reach it; and a passive
        // subscription may only restate the capsule's own tools.
        if covers_tool_topics_implicitly(pattern) {
            return fail(
                key,
                format!(
                    "`{pattern}` would receive tool calls (`{TOOL_TOPIC_PREFIX}*`) without naming \
                     them; declare tools in [[tool]], or name `{TOOL_TOPIC_PREFIX}…` with a handler"
                ),
            );
        }
        if rule.handler.is_none()
            && names_tool_topics(pattern)
            && !m.tools.iter().any(|t| tool_topic(&t.name) == *pattern)
        {
            return fail(
                key,
                format!(
                    "`{pattern}` would let the run loop watch other capsules' tool calls; only \
                     a handler may receive a tool call"
                ),
            );
        }
        let Some(handler) = &rule.handler else {
            continue;
        };
        if !is_handler_name(handler) {
            return fail(
                format!("{key}.handler"),
                format!(
                    "invalid handler name `{handler}`: must be 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter"
                ),
            );
        }
        // Two handlers for one tool call would answer the request twice.
        if let Some((topic, tool)) = m
            .tools
            .iter()
            .map(|t| (tool_topic(&t.name), &t.name))
            .find(|(topic, _)| pattern_matches(pattern, topic))
        {
            return fail(
                format!("{key}.handler"),
                format!("`{pattern}` matches `{topic}`, which tool `{tool}` already handles"),
            );
        }
    }
    Ok(())
}

fn is_tool_name(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.first(), Some(b'a'..=b'z'))
        && b.len() <= 64
        && b.iter()
            .all(|&c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// How toml's serde bridge represents a datetime inside an untyped value.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

fn has_datetime(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Array(items) => items.iter().any(has_datetime),
        serde_json::Value::Object(map) => {
            map.contains_key(TOML_DATETIME_KEY) || map.values().any(has_datetime)
        }
        _ => false,
    }
}

fn tools(m: &Manifest) -> Check {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, tool) in m.tools.iter().enumerate() {
        let key = format!("tool[{i}]");
        if !is_tool_name(&tool.name) {
            return fail(
                format!("{key}.name"),
                format!(
                    "invalid tool name `{}`: must be 1-64 characters of a-z, 0-9 and `_`, starting with a letter",
                    tool.name
                ),
            );
        }
        if let Some(first) = seen.insert(&tool.name, i) {
            return fail(
                format!("{key}.name"),
                format!(
                    "duplicate tool name `{}` (first declared in tool[{first}])",
                    tool.name
                ),
            );
        }
        if tool.description.trim().is_empty() {
            return fail(format!("{key}.description"), "must not be empty");
        }
        let schema = &tool.input_schema;
        if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
            return fail(
                format!("{key}.input_schema"),
                "must be a JSON schema table with `type = \"object\"`",
            );
        }
        if has_datetime(schema) {
            return fail(
                format!("{key}.input_schema"),
                "TOML datetimes have no JSON form; write them as strings",
            );
        }
    }
    Ok(())
}

/// Checks `/`-separated segments after the root; `rest` must be non-empty.
fn path_segments(rest: &str) -> Result<(), &'static str> {
    for seg in rest.split('/') {
        match seg {
            "" => return Err("must not contain empty segments (`//` or a trailing `/`)"),
            ".." => return Err("must not contain `..`"),
            "." => return Err("must not contain `.` segments"),
            _ => {}
        }
    }
    Ok(())
}

/// An fs root: `~/`, `~/<sub>`, an absolute path, `$user_home[/<sub>]` or `$granted`, in
/// canonical form.
fn fs_root(s: &str) -> Result<(), &'static str> {
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    // The symbolic roots (docs/CAPSULES.md): what tokens grant, and the user's home.
    if s == "$granted" || s == "$user_home" {
        return Ok(());
    }
    let rest = if let Some(rest) = s.strip_prefix("~/") {
        rest
    } else if let Some(rest) = s.strip_prefix("$user_home/") {
        rest
    } else if let Some(rest) = s.strip_prefix('/') {
        rest
    } else {
        return Err(
            "must be `~/`, `~/<path>`, an absolute path, `$user_home[/<path>]` or `$granted`",
        );
    };
    if rest.is_empty() {
        return Ok(());
    }
    path_segments(rest)
}

fn net_target(s: &str) -> Result<(), &'static str> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err("must be `host:port`");
    };
    if host.is_empty() {
        return Err("has an empty host");
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("must write an IPv6 host in brackets, e.g. `[::1]:443`");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/@?#".contains(c))
    {
        return Err("has a host containing whitespace, `/`, `@`, `?` or `#`");
    }
    let port_ok = port == "*"
        || !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && matches!(port.parse::<u16>(), Ok(p) if p != 0);
    if !port_ok {
        return Err("has a port outside 1-65535");
    }
    Ok(())
}

/// A target a subprocess is given a route to: one port, and a name (or a loopback address),
/// since inside the sandbox only a name can be pointed at the forwarder.
fn routed_target(s: &str) -> Result<(), &'static str> {
    net_target(s)?;
    if s.ends_with(":*") {
        return Err("must name one port: the subprocess's route listens on it");
    }
    crate::mcp::NetGrant::parse(s, true)
        .map(|_| ())
        .map_err(|_| {
            "must be a host name (labels of a-z, 0-9 and `-`) or a loopback address: an address \
         elsewhere cannot be routed into the sandbox"
        })
}

fn program(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters");
    }
    if s.contains('/') {
        return match s.strip_prefix('/') {
            Some(rest) if !rest.is_empty() => path_segments(rest),
            _ => Err("must be a program name or an absolute path"),
        };
    }
    if s == "." || s == ".." {
        return Err("must be a program name or an absolute path");
    }
    Ok(())
}

fn fact(s: &str) -> Result<(), &'static str> {
    crate::FactName::new(s).map(|_| ()).map_err(|_| {
        "is not a profile fact name (1-64 characters of a-z, 0-9 and `_`, starting with a letter)"
    })
}

fn capabilities(c: &Capabilities) -> Check {
    type Rule = fn(&str) -> Result<(), &'static str>;
    let lists: [(&str, &Vec<String>, Rule); 6] = [
        ("fs_read", &c.fs_read, fs_root),
        ("fs_write", &c.fs_write, fs_root),
        ("net", &c.net, net_target),
        ("process", &c.process, program),
        ("process_net", &c.process_net, routed_target),
        ("identity", &c.identity, fact),
    ];
    if !c.process_net.is_empty() && c.net.is_empty() {
        // Each routed connection is checked against `net` too; without it every one fails.
        return fail(
            "capabilities.process_net".to_string(),
            "needs its targets in `net` as well (each connection is checked against `net`)"
                .to_string(),
        );
    }
    for (field, items, rule) in lists {
        for (i, item) in items.iter().enumerate() {
            if let Err(reason) = rule(item) {
                return fail(
                    format!("capabilities.{field}[{i}]"),
                    format!("`{item}` {reason}"),
                );
            }
        }
    }
    Ok(())
}

fn is_env_name(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && b.len() <= 64
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn env(decls: &BTreeMap<String, EnvDecl>) -> Check {
    for (name, decl) in decls {
        let key = format!("env.{}", key_segment(name));
        if !is_env_name(name) {
            return fail(
                key,
                format!(
                    "invalid setting name `{name}`: must be 1-64 characters of A-Z, a-z, 0-9 and `_`, not starting with a digit"
                ),
            );
        }
        if decl.secret && decl.default.is_some() {
            // The manifest is public; a default here would publish the secret.
            return fail(
                format!("{key}.default"),
                "a secret setting cannot have a default",
            );
        }
    }
    Ok(())
}

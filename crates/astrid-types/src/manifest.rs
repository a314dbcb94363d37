//! The `Capsule.toml` model: parsing, validation, and the ACL questions the kernel asks.
//!
//! Parsing is two steps: serde (with `deny_unknown_fields` everywhere) for shape and types,
//! then [`Manifest::validate`] for the rules serde cannot express. Both report a
//! [`ManifestError`] naming the file and the dotted key, so an author can find the line.

mod locate;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::ids::{ArtifactHash, CapsuleName};
use crate::topic::{is_kernel_topic, pattern_covers, pattern_matches, validate_pattern};

/// Topic prefix on which the kernel delivers tool calls; each `[[tool]]` implies a
/// subscription to `tool.v1.execute.<name>` handled by `<name>`.
pub const TOOL_TOPIC_PREFIX: &str = "tool.v1.execute.";

/// Namespace of the host interfaces the kernel itself provides.
pub const HOST_NAMESPACE: &str = "astrid:";

/// A manifest problem: which file, which key (dotted, e.g. `tool[2].input_schema`), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub file: PathBuf,
    /// Dotted path of the offending key; empty when the problem is the file as a whole
    /// (for example it could not be read).
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(
                f,
                "{}: `{}`: {}",
                self.file.display(),
                self.key,
                self.reason
            )
        }
    }
}

impl ManifestError {
    pub fn new(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// A parsed and validated `Capsule.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub package: Package,
    #[serde(rename = "component", default)]
    pub components: Vec<ComponentRef>,
    /// Interface name (`ns:name`) to the version requirement this capsule needs.
    #[serde(default)]
    pub imports: BTreeMap<String, VersionReq>,
    /// Interface name (`ns:name`) to the exact version this capsule provides.
    #[serde(default)]
    pub exports: BTreeMap<String, Version>,
    /// Topic patterns this capsule may publish on.
    #[serde(default)]
    pub publish: BTreeMap<String, PublishRule>,
    /// Topic patterns this capsule may subscribe to, optionally with a handler.
    #[serde(default)]
    pub subscribe: BTreeMap<String, SubscribeRule>,
    #[serde(rename = "tool", default)]
    pub tools: Vec<ToolDecl>,
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Install-time settings, by name.
    #[serde(default)]
    pub env: BTreeMap<String, EnvDecl>,
    /// Credentials the host adds to this capsule's outbound HTTP requests.
    #[serde(rename = "secret", default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretDecl>,
    /// CLI verbs this capsule adds (`astrid <name> …`).
    #[serde(rename = "command", default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandDecl>,
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
}

/// A credential the capsule's HTTP requests carry without the capsule ever holding it: the
/// value lives in the principal's secret store, bound to one origin when it is stored, and the
/// host adds `header: <prefix><value>` only to requests for that origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretDecl {
    /// The name in the principal's secret store (scoped to this capsule).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The request header that carries it, e.g. `Authorization` or `x-api-key`.
    pub header: String,
    /// Written before the value, e.g. `Bearer `.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// `host` or `host:port` the credential is for. Absent: whatever origin the operator
    /// bound it to when storing it (a provider whose base URL is configurable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A CLI verb: `astrid <name> args…` sends the request `command.v1.<name>` with
/// `{"args": [...]}` to this capsule's handler of the same name and prints the reply's `text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandDecl {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// What the capsule asks of the runtime beyond the defaults; the operator's ceilings win.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Deadline for one invocation (a whole agent turn, say), in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl Limits {
    fn is_empty(&self) -> bool {
        self.timeout_ms.is_none()
    }
}

/// Topic prefix of the CLI verbs capsules add.
pub const COMMAND_TOPIC_PREFIX: &str = "command.v1.";

/// Every capsule with `[[tool]]` declarations answers this (scatter/gather) with them.
pub const TOOL_DESCRIBE_TOPIC: &str = "tool.v1.describe";

/// The handler name the SDK answers `tool.v1.describe` under.
pub const TOOL_DESCRIBE_HANDLER: &str = "astrid.describe-tools";

/// The most an invocation may ask for in `[limits] timeout_ms` (one hour).
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: CapsuleName,
    pub version: Version,
    #[serde(default)]
    pub description: String,
    /// The capsule exports a `run` loop that the kernel starts after boot.
    #[serde(default)]
    pub background: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentRef {
    /// File name relative to the manifest's directory.
    pub file: String,
    /// Filled in by astrid-build; required at install (see [`Manifest::require_hashes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<ArtifactHash>,
}

/// A `[publish]` entry. Empty today; a table so that options can be added compatibly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRule {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRule {
    /// With a handler the kernel delivers matching events to the guest `handle` export under
    /// this name; without one the pattern only permits dynamic `ipc.subscribe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDecl {
    pub name: String,
    pub description: String,
    /// A JSON schema object (`type = "object"`) for the tool's arguments.
    pub input_schema: serde_json::Value,
}

/// The manifest ceiling for host calls. Empty means deny all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capabilities {
    /// Readable roots: `~/`, `~/<sub>` (the principal's home) or absolute paths.
    pub fs_read: Vec<String>,
    /// Writable roots, same forms; writing implies nothing about reading.
    pub fs_write: Vec<String>,
    pub kv: bool,
    /// `host:port` targets.
    pub net: Vec<String>,
    /// Program names (or absolute paths) the capsule may spawn.
    pub process: Vec<String>,
    /// `host:port` targets the capsule's subprocesses may connect to (each by name, or a
    /// loopback address); empty means they have no network. Each connection goes through
    /// the airlock like an `astrid:net` connect: it must also be within `net`, and needs a
    /// `net:connect` token, the operator's local-egress consent or a person's yes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub process_net: Vec<String>,
    /// Profile facts the capsule may ask to read through `astrid:identity`; each read still
    /// needs an `identity:<fact>` token or a person's approval.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identity: Vec<String>,
    /// Whether the capsule may use `astrid:uplink` (list the principal's frontends, send them
    /// notices); each notice still needs the `uplink:frontends` token or a person's approval.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub uplink: bool,
    /// Whether the capsule may ask the principal's human for input (`astrid:elicit`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub elicit: bool,
}

impl Capabilities {
    /// Whether `[capabilities] identity` names the profile fact `fact`: the one ceiling
    /// rule for it, used where a read is gated and where the facts a context holds are
    /// chosen.
    pub fn declares_fact(&self, fact: &str) -> bool {
        self.identity.iter().any(|f| f == fact)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvDecl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Secret values go to the secret store and are never readable through `sys.config-get`.
    #[serde(default)]
    pub secret: bool,
}

impl Manifest {
    /// Parses and validates manifest text; `origin` is only used to name the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|err| {
            let key = locate::key_for(text, err.span(), err.message());
            ManifestError::new(origin, key, err.message().trim_end())
        })?;
        manifest.validate(origin)?;
        Ok(manifest)
    }

    /// Reads and parses the manifest at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|err| ManifestError::new(path, "", format!("cannot read: {err}")))?;
        Self::parse(&text, path)
    }

    /// Checks every rule serde cannot express. [`Manifest::parse`] calls this; call it
    /// yourself on a manifest that arrived by another route (e.g. deserialized from JSON).
    pub fn validate(&self, origin: &Path) -> Result<(), ManifestError> {
        validate::manifest(self).map_err(|(key, reason)| ManifestError::new(origin, key, reason))
    }

    /// Renders the manifest as TOML that [`Manifest::parse`] reads back to an equal value.
    pub fn to_toml_string(&self) -> String {
        if self.tools.iter().any(|t| has_null(&t.input_schema)) {
            // TOML has no null. Only a hand-built manifest can hold one, and a JSON schema
            // treats an absent keyword like a null one, so dropping them keeps the meaning.
            let mut copy = self.clone();
            for tool in &mut copy.tools {
                strip_nulls(&mut tool.input_schema);
            }
            return copy.to_toml_string();
        }
        toml::to_string(self).expect("manifest types always have a TOML form")
    }

    /// Fails unless every component carries a hash, as installation requires.
    pub fn require_hashes(&self, origin: &Path) -> Result<(), ManifestError> {
        match self.components.iter().position(|c| c.hash.is_none()) {
            Some(i) => Err(ManifestError::new(
                origin,
                format!("component[{i}].hash"),
                "missing; installation requires a hash (astrid-build fills it in)",
            )),
            None => Ok(()),
        }
    }

    pub fn name(&self) -> &CapsuleName {
        &self.package.name
    }

    /// `(pattern, handler)` for every event delivery: explicit `[subscribe]` handlers, then
    /// one `tool.v1.execute.<name>` per tool, handled by the tool's name (plus
    /// `tool.v1.describe` when there are tools), then one `command.v1.<name>` per command.
    pub fn handlers(&self) -> Vec<(String, String)> {
        let explicit = self
            .subscribe
            .iter()
            .filter_map(|(pattern, rule)| Some((pattern.clone(), rule.handler.clone()?)));
        let tools = self
            .tools
            .iter()
            .map(|t| (tool_topic(&t.name), t.name.clone()));
        let describe = (!self.tools.is_empty()).then(|| {
            (
                TOOL_DESCRIBE_TOPIC.to_string(),
                TOOL_DESCRIBE_HANDLER.to_string(),
            )
        });
        let commands = self
            .commands
            .iter()
            .map(|c| (format!("{COMMAND_TOPIC_PREFIX}{}", c.name), c.name.clone()));
        explicit
            .chain(tools)
            .chain(describe)
            .chain(commands)
            .collect()
    }

    /// Whether the manifest lets this capsule publish on `topic`. Kernel topics never.
    pub fn may_publish(&self, topic: &str) -> bool {
        !is_kernel_topic(topic) && self.publish.keys().any(|p| pattern_matches(p, topic))
    }

    /// The `[publish]` patterns that name tool-call topics explicitly: what this capsule may
    /// ask tools to do for it (see [`names_tool_topics`]).
    pub fn tool_patterns(&self) -> impl Iterator<Item = &str> {
        self.publish
            .keys()
            .map(String::as_str)
            .filter(|p| names_tool_topics(p))
    }

    /// The patterns on which this capsule answers tool calls: the topics of its `[[tool]]`
    /// tables and any handler that names tool topics (a dispatcher). Two installed capsules
    /// must not share one, or a call would go to whichever answered first.
    pub fn tool_handler_patterns(&self) -> Vec<String> {
        self.handlers()
            .into_iter()
            .map(|(pattern, _)| pattern)
            .filter(|p| names_tool_topics(p))
            .collect()
    }

    /// Whether this capsule may invoke the tool whose call topic is `topic`: an explicit
    /// tool pattern must cover it. A broad pattern such as `*` never counts (and is refused
    /// at install anyway).
    pub fn may_invoke_tool(&self, topic: &str) -> bool {
        self.tool_patterns().any(|p| pattern_matches(p, topic))
    }

    /// Whether the capsule may subscribe to `pattern`: a declared `[subscribe]` pattern or
    /// a tool's implied topic must cover it.
    pub fn may_subscribe(&self, pattern: &str) -> bool {
        if validate_pattern(pattern).is_err() {
            return false;
        }
        self.subscribe.keys().any(|p| pattern_covers(p, pattern))
            || self
                .tools
                .iter()
                .any(|t| pattern_covers(&tool_topic(&t.name), pattern))
    }
}

/// The topic a tool's calls arrive on.
pub fn tool_topic(tool_name: &str) -> String {
    format!("{TOOL_TOPIC_PREFIX}{tool_name}")
}

/// Whether `topic` is a tool call (`tool.v1.execute.<name>`).
pub fn is_tool_topic(topic: &str) -> bool {
    topic.starts_with(TOOL_TOPIC_PREFIX)
}

/// Whether a `[publish]` pattern names tool-call topics explicitly: its literal part starts
/// with `tool.v1.execute.` (`tool.v1.execute.shell`, `tool.v1.execute.fs_*`,
/// `tool.v1.execute.*`). Invoking a tool hands it the principal's authority, so a manifest
/// must say so in words a reviewer sees, not through a wildcard that happens to reach it.
pub fn names_tool_topics(pattern: &str) -> bool {
    pattern.trim_end_matches('*').starts_with(TOOL_TOPIC_PREFIX)
}

/// Whether a `[publish]` pattern reaches tool-call topics without naming them (`*`,
/// `tool.*`, `tool.v1.*`, `tool.v1.execute*`).
pub fn covers_tool_topics_implicitly(pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => TOOL_TOPIC_PREFIX.starts_with(prefix) && !names_tool_topics(pattern),
        None => false,
    }
}

fn has_null(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(items) => items.iter().any(has_null),
        serde_json::Value::Object(map) => map.values().any(has_null),
        _ => false,
    }
}

fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Array(items) => {
            items.retain(|i| !i.is_null());
            items.iter_mut().for_each(strip_nulls);
        }
        serde_json::Value::Object(map) => {
            map.retain(|_, i| !i.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        _ => {}
    }
}

/// Renders one segment of a dotted key the way TOML would need it written.
pub(crate) fn key_segment(raw: &str) -> String {
    let bare = !raw.is_empty()
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        raw.to_owned()
    } else {
        let mut out = String::with_capacity(raw.len() + 2);
        out.push('"');
        for c in raw.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

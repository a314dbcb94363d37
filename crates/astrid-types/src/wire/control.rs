//! Control commands (`ClientMessage::Control`) and their answers: what the CLI, the
//! gateway and the bridge ask the kernel to do, and the records they get back.

use serde::{Deserialize, Serialize};

use super::{DeviceInfo, DeviceScope};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlCommand {
    Status,
    Ps,
    Install(PackageUpload),
    Update(PackageUpload),
    Remove {
        name: String,
    },
    List,
    Tree,
    Shutdown,
    /// The principal's capability tokens (revoked ones included, marked).
    CapsShow {
        principal: String,
    },
    /// Mints a token for `pattern` (e.g. `fs:read:/srv/data/**`), valid for `ttl_ms` or
    /// until revoked.
    CapsGrant {
        principal: String,
        pattern: String,
        ttl_ms: Option<u64>,
    },
    /// Revokes a token (32 hex characters) at once, everywhere.
    CapsRevoke {
        token_id: String,
    },
    /// Like `CapsGrant`, but returns a live token with exactly this pattern if the principal
    /// already holds one instead of minting another (a session's workspace grant).
    CapsEnsure {
        principal: String,
        pattern: String,
        ttl_ms: Option<u64>,
    },
    /// Sets (or with `None` clears) a capsule's `[env]` setting for a principal. Secret
    /// settings are refused here: they go through `SecretSet`.
    ConfigSet {
        principal: String,
        capsule: String,
        key: String,
        value: Option<String>,
    },
    /// The operator's effective `config.toml` settings (`[quota]`, `[http]`, `[process]`),
    /// defaults included, as `section.key` pairs. Answered with `Config`.
    OperatorSettings,
    /// The capsule's effective settings for a principal (defaults merged with overrides).
    ConfigShow {
        principal: String,
        capsule: String,
    },
    /// Stores a credential named in the capsule's `[[secret]]`, encrypted, bound to `origin`
    /// (`https://host[:port]`): the host adds it to that capsule's requests for that origin only.
    SecretSet {
        principal: String,
        capsule: String,
        name: String,
        value: String,
        origin: String,
    },
    /// Names and origins of the principal's secrets; values never leave the daemon.
    SecretList {
        principal: String,
    },
    SecretRemove {
        principal: String,
        capsule: String,
        name: String,
    },
    /// Stores a secret for the principal's added MCP servers (`astrid mcp add --secret
    /// ENV=NAME`), encrypted like a capsule's; it leaves the daemon only in the reply to
    /// [`ControlCommand::McpLaunch`].
    McpSecretSet {
        principal: String,
        name: String,
        value: crate::mcp::SecretText,
    },
    McpSecretRemove {
        principal: String,
        name: String,
    },
    /// What one start of an added MCP server gets: the principal's sandbox limits and the
    /// values of the secrets its record names. Operator only (the daemon's own bridge, or
    /// `astrid mcp add`); recorded with the server, the secret names (never the values)
    /// and the hosts the start may reach.
    McpLaunch {
        principal: String,
        server: String,
        secrets: Vec<crate::mcp::McpSecretRef>,
        net: Vec<crate::mcp::NetGrant>,
    },
    /// Local-network egress consent: this capsule, for this principal, may reach `target`
    /// (`host:port`, loopback or LAN), and only that. Recorded in the audit chain.
    EgressAllow {
        principal: String,
        capsule: String,
        target: String,
    },
    EgressRevoke {
        principal: String,
        capsule: String,
        target: String,
    },
    /// Every local-egress consent of the principal, as `(capsule, target)`.
    EgressShow {
        principal: String,
    },
    /// Creates a principal with a clean slate (operator only).
    AgentCreate {
        name: String,
    },
    /// Every principal (operator only).
    AgentList,
    /// Creates `name` as a replica of `source`: capsule grants, quota, settings, KV, home and
    /// secrets (re-sealed); its tokens are minted anew for it, never copied (operator only).
    AgentClone {
        name: String,
        source: String,
    },
    /// Grants installed capsules to a principal, or takes them away (operator only).
    AgentModify {
        name: String,
        add_capsules: Vec<String>,
        remove_capsules: Vec<String>,
    },
    /// A principal's profile: granted capsules, quota, usage, devices.
    AgentShow {
        name: String,
    },
    /// Deletes a principal; its audit chain is archived under `principals/.archive/`, never
    /// destroyed (operator only).
    AgentDelete {
        name: String,
    },
    /// Sets the principal's quota; unset fields keep the daemon's defaults (operator only).
    QuotaSet {
        principal: String,
        quota: QuotaSpec,
    },
    /// The principal's quota as set, as in effect, and its current usage.
    QuotaShow {
        principal: String,
    },
    /// Sets (or with `None` removes) a fact of the principal's profile, which capsules read
    /// through `astrid:identity` only when allowed (operator only). Answered with `Facts`.
    ProfileSet {
        principal: String,
        fact: crate::FactName,
        value: Option<String>,
    },
    /// The principal's profile facts. Answered with `Facts`.
    ProfileShow {
        principal: String,
    },
    /// Pairs a device: answers with the device token, which the daemon never shows again.
    DeviceIssue {
        principal: String,
        label: String,
        scope: DeviceScope,
        ttl_ms: Option<u64>,
    },
    DeviceList {
        principal: String,
    },
    /// Revokes a device token and closes the connections it opened.
    DeviceRevoke {
        principal: String,
        device_id: String,
    },
    /// Up to `limit` entries of the principal's audit chain with `seq > after_seq`, as the
    /// JSON objects of `astrid audit export` (docs/AUDIT-FORMAT.md); the signed head follows
    /// the last page. A device may read its own principal's chain (the HTTP gateway's audit
    /// routes), so the kernel, not the uplink, decides whose chain is read.
    AuditPage {
        principal: String,
        after_seq: u64,
        limit: u32,
    },
    /// Verifies the principal's audit chain against the runtime public key (and, given
    /// `witness` `SEQ:HASH`, that the chain still holds that entry).
    AuditVerify {
        principal: String,
        witness: Option<String>,
    },
    /// Installs a distro as one change, all or nothing (also across a crash): pins `lock`,
    /// from then on (and at every boot) a capsule it names is loaded only with the artifact
    /// it pins, and installs `packages`, the pinned capsules not installed as pinned yet
    /// (operator only). Answers with the capsules installed or updated.
    DistroInstall {
        lock: crate::distro::DistroLock,
        packages: Vec<PackageUpload>,
    },
    /// The lock the daemon enforces, if any.
    DistroShow,
}

/// One page of an audit chain ([`ControlCommand::AuditPage`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// One JSON object per entry, `"type": "entry"`, oldest first.
    pub entries: Vec<String>,
    /// The seq of the chain's last entry when the page was read.
    pub last_seq: u64,
    /// The signed head (`"type": "head"`) on the page that reaches the end of the chain;
    /// `None` on earlier pages (or while the chain has no head yet).
    pub head: Option<String>,
}

/// The outcome of [`ControlCommand::AuditVerify`]: a chain that is not intact is an answer,
/// not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerdict {
    pub principal: String,
    pub intact: bool,
    /// What is wrong, naming the first bad entry, when not intact.
    pub problem: Option<String>,
    pub entries: u64,
    pub last_seq: u64,
    /// The seq the signed head vouches for (it may lag the log after a crash).
    pub head_seq: u64,
    /// Bytes of an unacknowledged torn tail (a crash mid-append): not an error.
    pub torn_tail_bytes: u64,
    /// `SEQ:HASH` of the last entry, to keep off the machine and check later.
    pub witness: Option<String>,
    /// The runtime key's id, which signed every entry.
    pub key_id: String,
}

/// A stored secret as the operator sees it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub capsule: String,
    pub name: String,
    pub origin: String,
    pub updated_ms: u64,
}

/// A capsule package as sent by the CLI: the manifest text and its component bytes.
/// The daemon re-verifies every hash; nothing the client claims is trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageUpload {
    pub manifest_toml: String,
    pub components: Vec<ComponentUpload>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentUpload {
    pub file: String,
    pub bytes: Vec<u8>,
}

/// Why a control command did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ControlError {
    /// The connection's credential does not allow it (recorded in the audit chains).
    #[error("denied: {0}")]
    Denied(String),
    /// It was allowed and failed; the message is meant for the operator as is.
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlResponse {
    Status(DaemonStatus),
    Capsules(Vec<CapsuleInfo>),
    Installed(CapsuleInfo),
    Removed {
        name: String,
    },
    Tree(Vec<TreeNode>),
    ShuttingDown,
    Tokens(Vec<TokenInfo>),
    Granted(TokenInfo),
    RevokedToken {
        token_id: String,
    },
    /// Settings as `(key, value)`: a capsule's effective ones (`ConfigShow`, `ConfigSet`),
    /// or the operator's `section.key` ones (`OperatorSettings`).
    Config(Vec<(String, String)>),
    /// A principal's profile facts (`ProfileSet`, `ProfileShow`).
    Facts(std::collections::BTreeMap<crate::FactName, String>),
    Secrets(Vec<SecretInfo>),
    McpLaunch(crate::mcp::McpLaunchGrant),
    /// Local-egress consents, `(capsule, target)`.
    Egress(Vec<(String, String)>),
    Done,
    Agents(Vec<String>),
    /// The device token, shown this once.
    DeviceIssued {
        device: DeviceInfo,
        token: String,
    },
    Devices(Vec<DeviceInfo>),
    Agent(AgentInfo),
    Quota(QuotaInfo),
    Audit(AuditPage),
    AuditVerified(AuditVerdict),
    /// The lock in force ([`ControlCommand::DistroShow`]); `None` when nothing is pinned.
    Distro(Option<crate::distro::DistroLock>),
}

/// A principal's quota as the operator sets it. `None` leaves the daemon's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSpec {
    /// Linear memory of one capsule invocation.
    pub memory_bytes: Option<u64>,
    /// Wall time of one capsule invocation.
    pub time_ms: Option<u64>,
    /// KV bytes plus `~` bytes.
    pub storage_bytes: Option<u64>,
    /// Subprocesses (and their threads) alive at once for this principal.
    pub processes: Option<u32>,
    /// Capsule invocations running at once for this principal.
    pub concurrency: Option<u32>,
}

/// A quota in effect (every field resolved) and what the principal uses now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaInfo {
    pub principal: String,
    pub set: QuotaSpec,
    pub memory_bytes: u64,
    pub time_ms: u64,
    pub storage_bytes: u64,
    pub processes: u32,
    pub concurrency: u32,
    /// KV bytes plus `~` bytes now.
    pub storage_used: u64,
    /// Invocations running now.
    pub running: u32,
}

/// What `astrid agent show` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    /// Installed capsules granted to this principal.
    pub capsules: Vec<String>,
    pub tokens: Vec<TokenInfo>,
    pub devices: Vec<DeviceInfo>,
    pub quota: QuotaInfo,
}

/// A capability token as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub principal: String,
    pub pattern: String,
    pub issued_at_ms: u64,
    pub expires_at_ms: Option<u64>,
    pub parent: Option<String>,
    /// The only capsule the token is good for (an allow-always answer binds the token to the
    /// capsule that asked); `None`: any capsule of the principal.
    pub capsule: Option<String>,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub uptime_ms: u64,
    pub version: String,
    pub connected_clients: u64,
    pub capsules: Vec<CapsuleInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleState {
    Loading,
    Ready,
    /// Ready, and its background `run` loop is running.
    Running,
    Failed,
    Stopping,
}

impl std::fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LifecycleState::Loading => "loading",
            LifecycleState::Ready => "ready",
            LifecycleState::Running => "running",
            LifecycleState::Failed => "failed",
            LifecycleState::Stopping => "stopping",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapsuleInfo {
    pub name: String,
    pub version: String,
    pub hash: String,
    pub state: LifecycleState,
    /// Why the capsule failed to load, when `state` is `Failed`.
    pub error: Option<String>,
    pub description: String,
    pub tools: Vec<String>,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    /// Human-readable capability grants from the manifest, e.g. `fs_read: ~/data`.
    pub capabilities: Vec<String>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// CLI verbs the capsule adds, `(name, description)`.
    pub commands: Vec<(String, String)>,
    /// The host interfaces the component imports, with the version it was built against
    /// (`astrid:http/http@1.0.0`), read from the component itself; empty when it failed to
    /// load.
    #[serde(default)]
    pub host_abi: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeNode {
    pub name: String,
    pub version: String,
    /// `interface requirement -> provider capsule` (provider `kernel` for astrid:* packages).
    pub imports: Vec<(String, String, String)>,
    pub exports: Vec<(String, String)>,
}

//! Messages spoken on the daemon's Unix socket. Each frame is a big-endian u32 length followed
//! by one postcard-encoded message; the framing itself lives with the I/O (astrid-client).
//!
//! The protocol is versioned in the handshake rather than per message: a client offers the
//! versions it speaks, the daemon picks one or refuses naming the versions it speaks.

use serde::{Deserialize, Serialize};

/// Protocol versions this build speaks, newest last. Version 2 replaced the bare token in
/// `Hello` with a typed [`Credential`] and made control errors typed ([`ControlError`]);
/// a version-1 client is refused with a message naming both.
pub const PROTOCOL_VERSIONS: &[u32] = &[2];

/// Frames before the handshake completes are tiny; a peer that sends more is not a client.
pub const MAX_HELLO_FRAME: usize = 64 * 1024;

/// Hard cap on any frame after the handshake. Large enough for a capsule package upload.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Must be the first frame on a connection.
    Hello {
        versions: Vec<u32>,
        /// Who is connecting: the operator, or a device of one principal.
        credential: Credential,
        /// The principal this connection acts for, for its whole lifetime. A device credential
        /// must name its own principal here.
        principal: String,
        client_name: String,
    },
    /// Fire-and-forget event on the bus, within this connection's principal.
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
    /// An event whose first handler reply comes back as `ServerMessage::Reply { id }`.
    Request {
        id: u64,
        topic: String,
        payload: Vec<u8>,
        timeout_ms: u32,
    },
    /// Events matching `pattern` arrive as `ServerMessage::Event { subscription: id }`.
    Subscribe {
        id: u64,
        pattern: String,
    },
    Unsubscribe {
        id: u64,
    },
    /// Operator commands: answered with `ServerMessage::ControlReply { id }`.
    Control {
        id: u64,
        command: ControlCommand,
    },
    /// From now on this connection is asked (`ServerMessage::ApprovalRequest`) whenever a
    /// capsule running for its principal requests approval.
    RegisterApprover,
    /// The answer to `ServerMessage::ApprovalRequest { id }`. Ignored unless the request
    /// belongs to this connection's principal and is still waiting.
    ApprovalAnswer {
        id: u64,
        decision: ApprovalDecision,
        /// Recorded with the decision; `AutoYes` is never taken as more than allow-once.
        by: AnsweredBy,
    },
    /// A request delivered to every matching handler (like a capsule's `ipc.gather`); every
    /// reply that arrives within `timeout_ms` comes back in one `ServerMessage::Gathered { id }`.
    /// Uplinks that present the principal's tools (the MCP server) collect
    /// `tool.v1.describe` this way, as the agent does.
    Gather {
        id: u64,
        topic: String,
        payload: Vec<u8>,
        timeout_ms: u32,
    },
    /// Operator connections only (the MCP bridge): from now on this connection answers, for
    /// its principal, `tool.v1.execute.<server>__<tool>` for each tool named, and
    /// `tool.v1.describe` gathers. Each call reaches it as `ServerMessage::Invoke` only after
    /// the kernel's gate (the requester chain, a `tool:<server>.<tool>` token or a person's
    /// approval, an audit entry). Replaces this connection's earlier list for `server`; an
    /// empty list withdraws it. Acknowledged with `ServerMessage::Reply { id }`.
    ServeTools {
        id: u64,
        server: String,
        tools: Vec<String>,
    },
    /// The answer to `ServerMessage::Invoke { id }`: the reply bytes, or why the tool failed
    /// (an MCP `isError` result, a server that died). Ignored unless the invocation is this
    /// connection's and still waiting.
    Respond {
        id: u64,
        result: Result<Vec<u8>, String>,
    },
    /// From now on this connection is asked (`ServerMessage::ElicitRequest`) whenever a
    /// capsule running for its principal asks its human for input (`astrid:elicit`); with
    /// `secrets`, also for credentials a capsule asks to have stored (the answer goes to the
    /// secret store, so only a frontend that keeps typed secrets off screens and out of other
    /// systems should set it).
    RegisterElicitor {
        secrets: bool,
    },
    /// The answer to `ServerMessage::ElicitRequest { id }`. Ignored unless the request
    /// belongs to this connection's principal, is still waiting, and takes this answer.
    ElicitAnswer {
        id: u64,
        answer: crate::elicit::ElicitAnswer,
    },
    /// This connection will not answer `ServerMessage::ApprovalRequest { id }` (it was not
    /// its to carry). Once every connection asked has passed (or closed), the request is
    /// denied at once instead of waiting out its time; any other approver may still answer
    /// before that.
    ApprovalPass {
        id: u64,
    },
    /// The same for `ServerMessage::ElicitRequest { id }`: once everyone asked passed, the
    /// capsule hears that nobody could answer.
    ElicitPass {
        id: u64,
    },
    /// An MCP bridge's report of one connection its server `server` made through a granted
    /// route (`astrid mcp add --allow-net`): recorded in the connection's principal's audit
    /// chain as `mcp.connect` by `mcp:<server>`, as the bridge's report. Only the operator's
    /// credential may report, as only it may serve tools; a device's report is refused and
    /// that is recorded instead. No reply.
    ServedConnect {
        server: String,
        /// `host:port` as granted.
        target: String,
        outcome: crate::mcp::ConnectOutcome,
    },
}

/// What a connection authenticates with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Credential {
    /// Contents of `$ASTRID_HOME/run/token`: the peer can read the operator's files, so it is
    /// the operator and may act for (and administer) any principal.
    Operator(String),
    /// A device token from `astrid pair-device issue`: exactly one principal, within the
    /// token's scope, until it expires or is revoked.
    Device(String),
}

impl std::fmt::Debug for Credential {
    // Secrets stay out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Operator(_) => f.write_str("Operator(..)"),
            Credential::Device(_) => f.write_str("Device(..)"),
        }
    }
}

/// What a device token lets its holder do for its principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceScope {
    /// Use the principal's capsules and agent (publish, request, subscribe, approvals) and
    /// read its own tokens and settings; no administering control command.
    UseOnly,
    /// Also manage the principal's capability tokens, but only within these resource
    /// patterns, each covered by a live token of the principal when the device was paired.
    Patterns(Vec<String>),
}

impl std::fmt::Display for DeviceScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceScope::UseOnly => f.write_str("use-only"),
            DeviceScope::Patterns(p) => f.write_str(&p.join(" ")),
        }
    }
}

/// A paired device as the operator sees it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// 32 hex characters; also the second field of the device token.
    pub id: String,
    pub principal: String,
    pub label: String,
    pub scope: DeviceScope,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
    pub revoked_ms: Option<u64>,
}

pub use crate::approval::{
    AlwaysOffer, AnsweredBy, ApprovalDecision, ApprovalRequest, ApprovalResource, CapsuleWords,
    ResourceKind,
};

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    Welcome {
        version: u32,
        connection_id: u64,
        daemon_version: String,
    },
    Refused {
        reason: String,
    },
    Event {
        subscription: u64,
        topic: String,
        payload: Vec<u8>,
        source: String,
        principal: String,
    },
    Reply {
        id: u64,
        result: Result<Vec<u8>, RequestError>,
    },
    ControlReply {
        id: u64,
        result: Result<ControlResponse, ControlError>,
    },
    /// A protocol violation that does not close the connection (e.g. a bad topic).
    Error {
        id: Option<u64>,
        message: String,
    },
    /// Sent to registered approvers; answer with `ClientMessage::ApprovalAnswer`.
    ApprovalRequest(ApprovalRequest),
    /// The answer to `ClientMessage::Gather { id }`: each reply with the source that sent it
    /// (`capsule:<name>`), in the order they arrived; handlers that failed or ran out of time
    /// are left out.
    Gathered {
        id: u64,
        replies: Vec<(String, Vec<u8>)>,
    },
    /// A request for a tool this connection serves (`ClientMessage::ServeTools`), already
    /// let through by the kernel's gate; answer with `ClientMessage::Respond { id }`.
    Invoke {
        id: u64,
        topic: String,
        payload: Vec<u8>,
        /// Who sent it (`capsule:<name>` or `client:<id>`), stamped by the kernel.
        source: String,
    },
    /// Sent to registered elicitors; answer with `ClientMessage::ElicitAnswer`.
    ElicitRequest(crate::elicit::ElicitRequest),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RequestError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("no reply within {0} ms")]
    Timeout(u32),
    #[error("nobody is subscribed to `{0}`")]
    NoSubscriber(String),
    #[error("handler failed: {0}")]
    Failed(String),
    /// The capsule trapped, ran past its deadline, or exceeded its memory limit.
    #[error("capsule crashed: {0}")]
    Crashed(String),
    /// The principal's quota refused it (e.g. too many invocations waiting).
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
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

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {size} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { size: usize, max: usize },
    #[error("malformed message: {0}")]
    Malformed(#[source] postcard::Error),
}

/// The parts of a connection's first frame, once [`decode_hello`] accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The versions the client offered; at least one is in [`PROTOCOL_VERSIONS`].
    pub versions: Vec<u32>,
    pub credential: Credential,
    pub principal: String,
    pub client_name: String,
}

/// Reads only the version list of a hello, whatever its protocol version: every version's
/// `Hello` is the first variant and starts with the versions, so an old client is told the
/// versions apart instead of getting a decoding error.
#[derive(Deserialize)]
enum VersionProbe {
    Hello { versions: Vec<u32> },
}

/// Decodes the first frame of a connection. Pure, so the daemon's handshake and the fuzzer
/// run the same code; the refusal is the sentence the peer is sent.
pub fn decode_hello(frame: &[u8]) -> Result<Hello, String> {
    let (versions, hello) = match decode::<ClientMessage>(frame) {
        Ok(ClientMessage::Hello {
            versions,
            credential,
            principal,
            client_name,
        }) => (versions, Some((credential, principal, client_name))),
        Ok(_) => return Err("the first message must be Hello".into()),
        // Perhaps another protocol version's hello: its versions still say so.
        Err(e) => match decode::<VersionProbe>(frame) {
            Ok(VersionProbe::Hello { versions }) => (versions, None),
            Err(_) => return Err(format!("bad hello: {e}")),
        },
    };
    if !versions.iter().any(|v| PROTOCOL_VERSIONS.contains(v)) {
        return Err(format!(
            "protocol versions {versions:?} are not supported; this daemon speaks \
             {PROTOCOL_VERSIONS:?} (upgrade the client)"
        ));
    }
    let (credential, principal, client_name) =
        hello.ok_or_else(|| "bad hello: not the hello of the versions it offers".to_string())?;
    Ok(Hello {
        versions,
        credential,
        principal,
        client_name,
    })
}

pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, WireError> {
    postcard::to_stdvec(msg).map_err(WireError::Malformed)
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    postcard::from_bytes(bytes).map_err(WireError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_request() {
        let m = ClientMessage::Request {
            id: 7,
            topic: "echo.v1.request".into(),
            payload: b"hi".to_vec(),
            timeout_ms: 100,
        };
        let bytes = encode(&m).unwrap();
        assert_eq!(decode::<ClientMessage>(&bytes).unwrap(), m);
    }

    #[test]
    fn a_malformed_message_keeps_postcard_as_the_source() {
        let e = decode::<ClientMessage>(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(e.to_string().starts_with("malformed message: "), "{e}");
        let source = std::error::Error::source(&e).expect("postcard's error is kept");
        assert!(source.is::<postcard::Error>(), "{source:?}");
    }

    #[test]
    fn a_hello_of_another_version_is_told_the_versions() {
        let hello = encode(&ClientMessage::Hello {
            versions: PROTOCOL_VERSIONS.to_vec(),
            credential: Credential::Operator("t".into()),
            principal: "default".into(),
            client_name: "test".into(),
        })
        .unwrap();
        assert_eq!(decode_hello(&hello).unwrap().principal, "default");
        // A version-1 hello (variant 0, versions [1], then a bare token string), which this
        // build cannot read past the versions.
        let old = [0x00, 0x01, 0x01, 0x05, b'h', b'e', b'l', b'l', b'o'];
        let err = decode_hello(&old).unwrap_err();
        assert!(
            err.contains("protocol versions [1] are not supported"),
            "{err}"
        );
        let err = decode_hello(&encode(&ClientMessage::RegisterApprover).unwrap()).unwrap_err();
        assert_eq!(err, "the first message must be Hello");
    }

    #[test]
    fn garbage_is_a_clear_error_not_a_panic() {
        let err = decode::<ClientMessage>(&[0xff, 0xff, 0xff, 0x01]).unwrap_err();
        assert!(err.to_string().starts_with("malformed message"), "{err}");
    }
}

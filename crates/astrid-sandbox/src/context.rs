use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use astrid_crypto::{Resource, ResourcePattern};
use astrid_fsgate::FsRoots;
use astrid_store::PrincipalStore;
use astrid_types::elicit::{ElicitAnswer, ElicitKind};
use astrid_types::uplink::{FrontendInfo, NoticeLevel};
use astrid_types::wire::{ApprovalDecision, CapsuleWords, RequestError};
use astrid_types::{CapsuleName, FactName, Manifest, PrincipalId};

use crate::chain::{Actor, Chain};

/// Who is speaking on the bus. Built by the host from the invocation's context, never from
/// anything the guest says, so a capsule cannot speak as another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub principal: PrincipalId,
    pub capsule: CapsuleName,
}

impl Origin {
    pub fn source(&self) -> String {
        format!("capsule:{}", self.capsule)
    }
}

/// A message queued for a capsule instance that subscribed with `ipc.subscribe`.
#[derive(Debug, Clone)]
pub struct InboxMessage {
    pub topic: String,
    pub payload: Arc<Vec<u8>>,
    pub source: String,
    pub principal: String,
}

pub type Inbox = crossbeam_channel::Sender<InboxMessage>;

/// The kernel's event bus as the host functions see it. The host has already applied the
/// manifest's IPC ACL before calling any of these.
/// `depth` is how many handler hops led to this message: the kernel carries it on the event so
/// a capsule that (directly or through others) re-triggers itself cannot loop forever.
/// `chain` is the message's requester chain, ending with the sender; the kernel hands it to
/// every handler of the message (see [`Chain`]).
pub trait Bus: Send + Sync + 'static {
    fn publish(&self, from: &Origin, chain: &Chain, depth: u8, topic: &str, payload: Vec<u8>);
    /// Blocks the calling (blocking-pool) thread until the first handler reply or the timeout.
    fn request(
        &self,
        from: &Origin,
        chain: &Chain,
        depth: u8,
        topic: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RequestError>;
    /// Delivers a request to every matching handler and blocks until each has answered or
    /// `timeout` passes; returns the replies (topic = the request's, source = the replier).
    fn gather(
        &self,
        from: &Origin,
        chain: &Chain,
        depth: u8,
        topic: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Vec<InboxMessage>;
    fn subscribe(&self, from: &Origin, pattern: &str, inbox: Inbox) -> u64;
    fn unsubscribe(&self, id: u64);
}

/// Whether a gate let an effect through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditDecision {
    Allowed,
    Denied,
}

/// Where the host records its gate decisions. `record` must return only once the entry is
/// durable: the host acknowledges nothing to the guest before that, and treats an error as a
/// denial, so a broken audit trail fails closed. `actor` names the acting capsule and the
/// capsule it acts for.
pub trait Auditor: Send + Sync + 'static {
    fn record(
        &self,
        actor: &Actor,
        action: &str,
        resource: &str,
        decision: AuditDecision,
        outcome: &str,
    ) -> Result<(), String>;
}

/// The capability-token check for the context's principal, typed so the gatekeeper can tell
/// "nothing covers it" (a person may be asked) from "a token covers it and is revoked or
/// forged" (nobody is). Called after the manifest ceiling has accepted the effect, with the
/// host's own description of it (a filesystem path absolute and normalised).
pub trait TokenGate: Send + Sync + 'static {
    fn check(&self, resource: &Resource) -> Result<(), crate::TokenDenial>;
    /// As `check`, counting only tokens whose pattern's literal prefix (up to its first
    /// wildcard) lies inside `location`: the deliberate grant a credential location needs.
    fn check_within(
        &self,
        resource: &Resource,
        location: &std::path::Path,
    ) -> Result<(), crate::TokenDenial>;
}

/// What an approval is about, as the host knows it (never as the capsule describes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// An effect the host is about to perform and no token covers.
    Effect(Resource),
    /// A capsule's own `astrid:approval.request`: the pattern it named, parsed and checked
    /// against its manifest ceiling.
    Pattern(ResourcePattern),
}

/// One approval question. The kernel renders the resource line from `asked`, and shows
/// `capsule_says` apart as the capsule's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalAsk {
    /// The capsule the effect runs in and the capsule it acts for (both from the context and
    /// the requester chain, never the capsule's claim).
    pub actor: Actor,
    /// The host's name for the effect (`fs.read`, `process.spawn`, `approval.request`, …).
    pub action: String,
    pub asked: Asked,
    /// The host's description of the effect; empty for a capsule's own question.
    pub detail: String,
    /// The capsule's own action and reason text, for a capsule's own question.
    pub capsule_says: Option<CapsuleWords>,
    /// Why the asked resource lies outside the capsule's manifest ceiling, if it does (the
    /// host refuses a capsule's own question then; for an effect, no token is minted).
    pub outside_manifest: Option<String>,
}

/// Asks the context's principal for permission. Blocks the calling (blocking-pool) thread
/// until an answer or `timeout`; no answer in time, or nobody to ask, is `Deny`. The request
/// and the decision are durable in the audit chain before this returns; an error means they
/// are not, and nothing was decided. `ask.actor` names the acting capsule and the capsule it
/// acts for, so the human sees who really asked.
pub trait Approver: Send + Sync + 'static {
    fn request(&self, ask: ApprovalAsk, timeout: Duration) -> Result<ApprovalDecision, String>;
}

/// A capsule's question to its principal's human (`astrid:elicit`), checked by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElicitAsk {
    /// Who asks, from the context and the requester chain.
    pub actor: Actor,
    /// The capsule's own words.
    pub prompt: String,
    pub kind: ElicitKind,
}

/// How a question ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elicited {
    /// A person answered (which may be a refusal to answer).
    Answer(ElicitAnswer),
    /// No connection of the principal answers questions.
    NobodyToAsk,
    /// Nobody answered in time.
    TimedOut,
    /// A person typed the secret asked for and the kernel stored it; the value stays there.
    SecretStored,
}

/// Asks the context's principal's human. Blocks the calling (blocking-pool) thread until an
/// answer or `timeout`. The question and how it ended are durable in the audit chain before
/// this returns; an error means they are not, and the capsule gets no answer.
pub trait Elicitor: Send + Sync + 'static {
    fn ask(&self, ask: ElicitAsk, timeout: Duration) -> Result<Elicited, String>;
}

/// The principal's frontends as `astrid:uplink` sees them. The host has checked the
/// manifest, the token or approval and the text before it calls `notify`, and has recorded
/// the notice; the kernel stamps the sender from `from` and keeps the rate.
pub trait Frontends: Send + Sync + 'static {
    /// The principal's connected clients.
    fn list(&self) -> Vec<FrontendInfo>;
    /// Takes one notice from the capsule's per-minute allowance; `Err` says why not.
    fn admit(&self, from: &Origin) -> Result<(), String>;
    /// Delivers the notice to every frontend of the principal that shows notices; returns
    /// how many received it.
    fn notify(&self, from: &Origin, level: NoticeLevel, text: &str) -> usize;
}

/// What `astrid:http` needs for one capsule of one principal.
pub struct NetAccess {
    /// The daemon's one airlock.
    pub airlock: Arc<astrid_egress::Airlock>,
    /// Local-network targets the operator consented to for this capsule.
    pub consent: astrid_egress::Consent,
    /// The capsule's `[[secret]]` credentials, decrypted, each bound to its origin.
    pub credentials: Vec<astrid_egress::Credential>,
    /// Runs the airlock's I/O; host calls block on it from their blocking-pool thread.
    pub rt: tokio::runtime::Handle,
}

/// The principal's storage quota (KV bytes plus `~` bytes), shared by all its capsules.
pub trait StorageMeter: Send + Sync + 'static {
    /// How many bytes the KV store may hold now: the quota less what `~` holds.
    fn kv_cap(&self) -> u64;
    /// Refuses a write that would grow the principal's `~` by `grow` bytes past the quota;
    /// a path outside `~` is not metered here.
    fn admit_fs(&self, host_path: &std::path::Path, grow: u64) -> Result<(), String>;
}

/// No storage quota (tests of the sandbox alone).
pub struct Unmetered;

impl StorageMeter for Unmetered {
    fn kv_cap(&self) -> u64 {
        u64::MAX
    }
    fn admit_fs(&self, _: &std::path::Path, _: u64) -> Result<(), String> {
        Ok(())
    }
}

/// Per-invocation resource ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub memory_bytes: u64,
    pub timeout: Duration,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            memory_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Everything an instance of one capsule, running for one principal, may touch. Shared by all
/// invocations of that capsule version for that principal.
pub struct CapsuleContext {
    pub origin: Origin,
    pub manifest: Arc<Manifest>,
    /// `None` when the manifest grants no filesystem roots at all.
    pub fs: Option<Arc<FsRoots>>,
    pub store: Arc<PrincipalStore>,
    /// Non-secret install-time settings from the manifest's `[env]`, with operator overrides.
    pub config: BTreeMap<String, String>,
    /// The principal's profile facts that the manifest's `[capabilities] identity` names
    /// (and only those); each read is still gated by a token or a person.
    pub facts: BTreeMap<FactName, String>,
    pub bus: Arc<dyn Bus>,
    /// The principal's audit chain.
    pub auditor: Arc<dyn Auditor>,
    /// The principal's capability tokens, checked on every filesystem effect.
    pub tokens: Arc<dyn TokenGate>,
    /// The principal's approval broker.
    pub approver: Arc<dyn Approver>,
    /// The principal's connected clients, for `astrid:uplink`.
    pub frontends: Arc<dyn Frontends>,
    /// The principal's human, for `astrid:elicit`.
    pub elicitor: Arc<dyn Elicitor>,
    /// Outbound HTTP; `None` when the manifest declares no `net` targets.
    pub net: Option<Arc<NetAccess>>,
    /// The OS sandbox for subprocesses, or why there is none on this machine.
    pub process: Arc<Result<astrid_process::SandboxPolicy, String>>,
    pub quota: Quota,
    /// The principal's storage quota, checked before every KV and `~` write.
    pub storage: Arc<dyn StorageMeter>,
    /// Set when the capsule is being removed or replaced; long-running loops observe it.
    pub stopping: Arc<AtomicBool>,
}

impl CapsuleContext {
    pub fn capsule(&self) -> &str {
        self.origin.capsule.as_ref()
    }
}

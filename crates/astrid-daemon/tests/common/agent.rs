//! The agent fleet on a real daemon, configured through control commands the way
//! `astrid init` does, talking to `astrid-llm-fixture` on 127.0.0.1; helpers to run whole
//! turns (docs/AGENT-PROTOCOL.md) and to look at what happened: the reply, the turn's events,
//! what the model was sent, the approvals asked, and the audit chain.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use astrid_audit::{export, log_path, read_entries, AuditEntry};
use astrid_client::{Client, ClientError, EventMsg, Subscription};
use astrid_llm_fixture::{Api, Fixture, FixtureConfig, Recorded, Step};
use astrid_types::wire::{
    AnsweredBy, ApprovalDecision, ApprovalRequest, ControlCommand, ControlResponse, LifecycleState,
    PackageUpload, RequestError,
};
use astrid_types::PrincipalId;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::{control, upload, Capsule, Daemon, TestHome};

/// Hang guard for one whole turn; no test depends on how long a turn takes.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(300);
/// Hang guard for the session and registry requests a test makes itself.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(120);
pub const PRINCIPAL: &str = "default";

/// The fake credentials planted in the operator's home; no tool may ever show them.
pub const FAKE_SSH_KEY: &str = "FAKE-SSH-PRIVATE-KEY-7f3a9c";
pub const FAKE_AWS_SECRET: &str = "FAKE-AWS-SECRET-51b2e0";
/// An ordinary file in the operator's home, which the sandbox may read.
pub const VISIBLE_TEXT: &str = "visible-in-home-6d01";

/// The capsules every rig installs besides the chosen provider.
const FLEET: &[Capsule] = &[
    Capsule::Session,
    Capsule::Registry,
    Capsule::ToolFs,
    Capsule::ToolShell,
    Capsule::ToolHttp,
    Capsule::Agent,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    /// The registry's name for it (`llm.v1.complete.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    pub fn capsule(self) -> Capsule {
        match self {
            Provider::OpenAi => Capsule::ProviderOpenAi,
            Provider::Anthropic => Capsule::ProviderAnthropic,
        }
    }

    pub fn capsule_name(self) -> &'static str {
        match self {
            Provider::OpenAi => "provider-openai",
            Provider::Anthropic => "provider-anthropic",
        }
    }

    /// A model the fixture serves by default.
    pub fn model(self) -> &'static str {
        match self {
            Provider::OpenAi => "gpt-4o-mini",
            Provider::Anthropic => "claude-sonnet-4-5",
        }
    }

    pub fn api(self) -> Api {
        match self {
            Provider::OpenAi => Api::OpenAi,
            Provider::Anthropic => Api::Anthropic,
        }
    }
}

/// The operator's home as the daemon sees it (`$HOME`), holding fake SSH and AWS
/// credentials. It lives under the target dir, not /tmp: the sandbox mounts a fresh /tmp,
/// which would hide a home there anyway, so only outside /tmp do the credential masks show.
pub struct UserHome {
    dir: tempfile::TempDir,
}

impl UserHome {
    pub fn new() -> UserHome {
        let dir = tempfile::Builder::new()
            .prefix("user-home-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("a temp dir for the operator's home");
        let p = dir.path();
        std::fs::create_dir_all(p.join(".ssh")).unwrap();
        std::fs::create_dir_all(p.join(".aws")).unwrap();
        std::fs::write(p.join(".ssh/id_rsa"), FAKE_SSH_KEY).unwrap();
        std::fs::write(
            p.join(".aws/credentials"),
            format!("[default]\naws_secret_access_key = {FAKE_AWS_SECRET}\n"),
        )
        .unwrap();
        std::fs::write(p.join("visible.txt"), VISIBLE_TEXT).unwrap();
        UserHome { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A daemon with the agent fleet installed and configured against a running fixture.
pub struct Rig {
    pub client: Client,
    pub daemon: Daemon,
    pub fixture: Fixture,
    pub provider: Provider,
    /// The session workspace: the fs tokens cover it and nothing else.
    pub workspace: PathBuf,
    pub user_home: UserHome,
    pub home: TestHome,
}

/// One turn as the uplink saw it.
#[derive(Debug)]
pub struct TurnOutcome {
    /// `session.v1.open`'s answer.
    pub session: Value,
    pub reply: Result<Value, RequestError>,
    /// The payloads published on `agent.v1.event.<session>` during the turn, in order.
    pub events: Vec<Value>,
}

impl TurnOutcome {
    /// The reply of a turn that must have succeeded.
    pub fn ok(&self) -> &Value {
        match &self.reply {
            Ok(v) => v,
            Err(e) => panic!("the turn failed: {e}\nevents: {:?}", self.events),
        }
    }

    /// The message of a turn that must have failed in a handler.
    pub fn failure(&self) -> &str {
        match &self.reply {
            Err(RequestError::Failed(m)) => m,
            other => panic!("expected the turn to fail, got {other:?}"),
        }
    }

    /// Events of one `kind` (`delta`, `tool_call`, `tool_result`, `step`).
    pub fn events_of(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["kind"] == kind).collect()
    }

    /// The deltas streamed after the last `step` event, joined: the final answer's text.
    pub fn last_step_text(&self) -> (String, usize) {
        let start = self
            .events
            .iter()
            .rposition(|e| e["kind"] == "step")
            .map_or(0, |i| i + 1);
        let pieces: Vec<&str> = self.events[start..]
            .iter()
            .filter(|e| e["kind"] == "delta")
            .map(|e| e["text"].as_str().expect("delta text"))
            .collect();
        (pieces.concat(), pieces.len())
    }
}

impl Rig {
    pub async fn start(provider: Provider, config: FixtureConfig, script: Vec<Step>) -> Rig {
        Self::start_with(provider, config, script, |_, up| up).await
    }

    /// As [`Rig::start`], with `tweak` applied to each fleet capsule's upload (a test may
    /// widen a manifest, as an operator editing it would).
    pub async fn start_with(
        provider: Provider,
        config: FixtureConfig,
        script: Vec<Step>,
        tweak: impl Fn(Capsule, PackageUpload) -> PackageUpload,
    ) -> Rig {
        Self::start_in(provider, config, script, tweak, |h| h).await
    }

    /// As [`Rig::start`], with the daemon's `config.toml` written before it starts.
    pub async fn start_configured(provider: Provider, config_toml: &str) -> Rig {
        Self::start_full(
            provider,
            FixtureConfig::default(),
            vec![],
            |_, up| up,
            |h| h,
            Some(config_toml),
        )
        .await
    }

    /// As [`Rig::start_with`], with `home` choosing how the daemon is given its home (e.g.
    /// [`TestHome::given_relative`]).
    pub async fn start_in(
        provider: Provider,
        config: FixtureConfig,
        script: Vec<Step>,
        tweak: impl Fn(Capsule, PackageUpload) -> PackageUpload,
        home: impl FnOnce(TestHome) -> TestHome,
    ) -> Rig {
        Self::start_full(provider, config, script, tweak, home, None).await
    }

    async fn start_full(
        provider: Provider,
        config: FixtureConfig,
        script: Vec<Step>,
        tweak: impl Fn(Capsule, PackageUpload) -> PackageUpload,
        home: impl FnOnce(TestHome) -> TestHome,
        config_toml: Option<&str>,
    ) -> Rig {
        let fixture = Fixture::start(config, script)
            .await
            .expect("starting the model fixture");
        let user_home = UserHome::new();
        let home = home(TestHome::new().with_env("HOME", user_home.path()));
        if let Some(text) = config_toml {
            std::fs::write(home.home.config_file(), text).expect("writing config.toml");
        }
        let workspace = home.outside().join("ws");
        std::fs::create_dir_all(&workspace).unwrap();
        let daemon = home.start().await;
        let client = daemon.client().await;
        let rig = Rig {
            client,
            daemon,
            fixture,
            provider,
            workspace,
            user_home,
            home,
        };
        for &c in FLEET.iter().chain([provider.capsule()].iter()) {
            rig.install_upload(tweak(c, upload(c))).await;
        }
        rig.configure().await;
        rig
    }

    /// What `astrid init` sets up: the provider's URL and model, the registry's choice, local
    /// consent for the provider to reach the (loopback) model server, and the workspace grants.
    async fn configure(&self) {
        let p = self.provider;
        let base = self.fixture.base_url();
        self.config_set(p.capsule_name(), "base_url", &base).await;
        self.config_set(p.capsule_name(), "model", p.model()).await;
        self.config_set("registry", "provider", p.name()).await;
        self.config_set("registry", "model", p.model()).await;
        // Not an init setting: a hang guard so a loaded machine cannot make a tool capsule
        // miss the tool list (the gather returns as soon as every capsule answered).
        self.config_set("agent", "describe_timeout_ms", "120000")
            .await;
        let port = self.fixture.addr().port();
        self.egress_allow(p.capsule_name(), &format!("127.0.0.1:{port}"))
            .await;
        let ws = self.workspace_str();
        for kind in ["read", "write"] {
            let ensure = ControlCommand::CapsEnsure {
                principal: PRINCIPAL.into(),
                pattern: format!("fs:{kind}:{ws}/**"),
                ttl_ms: None,
            };
            self.ctl(ensure).await;
        }
    }

    pub async fn install_upload(&self, up: PackageUpload) {
        match self.ctl(ControlCommand::Install(up)).await {
            ControlResponse::Installed(info) => assert_eq!(
                info.state,
                LifecycleState::Ready,
                "{} did not load: {:?}",
                info.name,
                info.error
            ),
            other => panic!("expected Installed, got {other:?}"),
        }
    }

    /// A control command that must succeed.
    pub async fn ctl(&self, command: ControlCommand) -> ControlResponse {
        let shown = format!("{command:?}");
        control(&self.client, command)
            .await
            .unwrap_or_else(|e| panic!("{shown}: {e}\n{}", self.daemon.log()))
    }

    pub async fn config_set(&self, capsule: &str, key: &str, value: &str) {
        self.ctl(ControlCommand::ConfigSet {
            principal: PRINCIPAL.into(),
            capsule: capsule.into(),
            key: key.into(),
            value: Some(value.into()),
        })
        .await;
    }

    pub async fn egress_allow(&self, capsule: &str, target: &str) {
        self.ctl(ControlCommand::EgressAllow {
            principal: PRINCIPAL.into(),
            capsule: capsule.into(),
            target: target.into(),
        })
        .await;
    }

    pub async fn secret_set(&self, capsule: &str, name: &str, value: &str, origin: &str) {
        self.ctl(ControlCommand::SecretSet {
            principal: PRINCIPAL.into(),
            capsule: capsule.into(),
            name: name.into(),
            value: value.into(),
            origin: origin.into(),
        })
        .await;
    }

    pub fn workspace_str(&self) -> String {
        self.workspace
            .to_str()
            .expect("a UTF-8 workspace")
            .to_string()
    }

    /// A request to a capsule that must succeed, its reply as JSON.
    pub async fn ask_json(&self, topic: &str, body: &Value) -> Value {
        let reply = self
            .client
            .request(topic, body.to_string().into_bytes(), SERVICE_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{topic}: {e}\n{}", self.daemon.log()));
        serde_json::from_slice(&reply)
            .unwrap_or_else(|e| panic!("{topic} replied with something not JSON ({e})"))
    }

    /// `session.v1.open` for `session` (an id or name; `None` makes a new one), creating it.
    pub async fn open_session(&self, session: Option<&str>) -> Value {
        let body = json!({"session": session, "workspace": self.workspace_str(), "create": true});
        self.ask_json("session.v1.open", &body).await
    }

    /// One turn as `astrid -p` runs it: open the session, subscribe to its events, request
    /// `agent.v1.turn` (naming the session as the caller did), collect the events.
    pub async fn turn(&self, session: Option<&str>, input: &str) -> TurnOutcome {
        let opened = self.open_session(session).await;
        let id = opened["id"].as_str().expect("a session id").to_string();
        let mut sub = self
            .client
            .subscribe(&format!("agent.v1.event.{id}"))
            .await
            .expect("subscribing to the turn's events");
        let body = json!({
            "session": session.unwrap_or(&id),
            "input": input,
            "workspace": self.workspace_str(),
            "max_steps": 8,
        });
        let reply = match self
            .client
            .request("agent.v1.turn", body.to_string().into_bytes(), TURN_TIMEOUT)
            .await
        {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("agent.v1.turn replied with something not JSON ({e})"))),
            Err(ClientError::Request(e)) => Err(e),
            Err(e) => panic!("agent.v1.turn: {e}\n{}", self.daemon.log()),
        };
        let events = drain(&mut sub)
            .await
            .into_iter()
            .map(|e| serde_json::from_slice(&e.payload).expect("an event that is JSON"))
            .collect();
        TurnOutcome {
            session: opened,
            reply,
            events,
        }
    }

    /// The completion requests the model server received (what the model was told).
    pub fn model_requests(&self) -> Vec<Recorded> {
        let api = self.provider.api();
        self.fixture
            .requests()
            .into_iter()
            .filter(|r| r.api == api)
            .collect()
    }

    /// The principal's audit chain, oldest first.
    pub fn audit(&self) -> Vec<AuditEntry> {
        read_entries(&self.chain_path())
            .expect("opening the audit chain")
            .map(|e| e.expect("reading an audit entry").entry)
            .collect()
    }

    /// The chain as `astrid audit export` writes it (JSON lines).
    pub fn audit_export(&self) -> String {
        export(&self.chain_path(), &PrincipalId::default_local())
            .expect("exporting the audit chain")
            .map(|line| line.expect("exporting an entry"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn chain_path(&self) -> PathBuf {
        log_path(
            &self.home.home.principals_dir(),
            &PrincipalId::default_local(),
        )
    }
}

/// Everything already delivered to `sub`. The daemon writes a request's reply on the same
/// connection after the events published before it, so once the reply is here, so are they.
async fn drain(sub: &mut Subscription) -> Vec<EventMsg> {
    let mut out = Vec::new();
    loop {
        // Unconstrained: the cooperative budget must not make a ready event look pending.
        let next = tokio::task::unconstrained(tokio::time::timeout(Duration::ZERO, sub.next()));
        match next.await {
            Ok(Some(e)) => out.push(e),
            _ => return out,
        }
    }
}

/// An approver uplink (what `astrid -p --yes`, or a person saying no, does): answers every
/// approval request of the principal with one decision and remembers the requests.
pub struct Approver {
    seen: Arc<Mutex<Vec<ApprovalRequest>>>,
    task: JoinHandle<()>,
}

impl Approver {
    pub async fn start(daemon: &Daemon, decision: ApprovalDecision) -> Approver {
        let client = daemon.client().await;
        let mut stream = client
            .register_approver()
            .await
            .expect("registering an approver");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(req) = stream.next().await {
                record.lock().unwrap().push(req.clone());
                // `astrid -p --yes` says its allow-once is automatic; a no is a person's.
                let by = if decision == ApprovalDecision::AllowOnce {
                    AnsweredBy::AutoYes
                } else {
                    AnsweredBy::Person
                };
                if client
                    .answer_approval_by(req.id, decision, by)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Approver { seen, task }
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<ApprovalRequest> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Approver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The OpenAI request's messages with `role`.
pub fn openai_messages<'a>(req: &'a Recorded, role: &str) -> Vec<&'a Value> {
    req.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] == role)
        .collect()
}

/// `tool_call_id → (tool name, parsed arguments)` from the assistant messages of an OpenAI
/// request, so tool messages can be matched to the calls they answer.
pub fn openai_calls(req: &Recorded) -> Vec<(String, String, Value)> {
    openai_messages(req, "assistant")
        .into_iter()
        .flat_map(|m| m["tool_calls"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            let args = c["function"]["arguments"].as_str().expect("argument text");
            (
                c["id"].as_str().expect("call id").to_string(),
                c["function"]["name"].as_str().expect("name").to_string(),
                serde_json::from_str(args).expect("arguments are JSON"),
            )
        })
        .collect()
}

/// The text of the tool message answering `call_id` in an OpenAI request.
pub fn openai_tool_result(req: &Recorded, call_id: &str) -> String {
    openai_messages(req, "tool")
        .into_iter()
        .find(|m| m["tool_call_id"] == call_id)
        .unwrap_or_else(|| panic!("no tool message answers {call_id}: {}", req.body))["content"]
        .as_str()
        .expect("tool content")
        .to_string()
}

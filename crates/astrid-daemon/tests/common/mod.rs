//! Shared fixtures for the daemon's integration tests: capsules built from this repository
//! (each once per test binary), a real `astrid-daemon` process on a temporary home, and
//! helpers for talking to it through the real socket.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod agent;
pub mod servers;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use astrid_build::{build_capsule, load_package, BuildOptions, LoadedPackage};
use astrid_client::framing::{read_frame, write_frame};
use astrid_client::{ApprovalStream, Client, ClientError, EventMsg, Subscription};
use astrid_types::wire::{
    self, ApprovalRequest, CapsuleInfo, ClientMessage, ComponentUpload, ControlCommand,
    ControlResponse, Credential, DaemonStatus, PackageUpload, RequestError, ServerMessage,
    MAX_FRAME, PROTOCOL_VERSIONS,
};
use astrid_types::{AstridHome, PrincipalId};
use tokio::net::UnixStream;

/// Request timeout handed to the daemon. Only a guard against a hung test: no test depends
/// on how long anything takes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for something that must happen (a daemon starting or exiting, an event).
const HANG_GUARD: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// The capsules the tests install, by source directory under `capsules/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capsule {
    Echo,
    /// `echo` version 0.2.0 (`testdata/echo-v2`).
    EchoV2,
    Counter,
    FsProbe,
    Misbehave,
    DepA,
    /// `dep-b` 0.1.0, which imports `acme:a` (closes the cycle with dep-a).
    DepB,
    /// `dep-b` 0.0.1, which exports `acme:b` and imports nothing.
    DepBBase,
    /// Blocks inside host calls (`testdata/waiter`).
    Waiter,
    /// Requests approval for the resource its payload names (`testdata/asker`).
    Asker,
    /// The asker's code under the name `asker-twin` (`testdata/asker-twin`).
    AskerTwin,
    // The agent fleet (docs/AGENT-PROTOCOL.md).
    Agent,
    Session,
    Registry,
    ProviderOpenAi,
    ProviderAnthropic,
    ToolFs,
    ToolShell,
    ToolHttp,
    /// Declares provider-openai's secret and tries to learn it (`testdata/key-thief`).
    KeyThief,
    /// No capabilities; asks the tools to act for it (`testdata/borrower`).
    Borrower,
    /// One request with `astrid:http`'s options, or a streamed body (`testdata/http-probe`).
    HttpProbe,
    /// Reads one profile fact through `astrid:identity` (`testdata/identity-probe`).
    IdentityProbe,
    /// Lists frontends and sends notices through `astrid:uplink` (`testdata/uplink-probe`).
    UplinkProbe,
    /// One connection through `astrid:net` (`testdata/net-probe`).
    NetProbe,
    /// Asks one question through `astrid:elicit` (`testdata/elicit-probe`).
    ElicitProbe,
}

// The last variant plus one: adding a capsule above cannot leave the cache short.
const ALL: usize = Capsule::ElicitProbe as usize + 1;

impl Capsule {
    fn src(self) -> &'static str {
        match self {
            Capsule::Echo => "echo",
            Capsule::EchoV2 => "testdata/echo-v2",
            Capsule::Counter => "counter",
            Capsule::FsProbe => "fsprobe",
            Capsule::Misbehave => "misbehave",
            Capsule::DepA => "testdata/cycle/dep-a",
            Capsule::DepB => "testdata/cycle/dep-b",
            Capsule::DepBBase => "testdata/cycle/dep-b-base",
            Capsule::Waiter => "testdata/waiter",
            Capsule::Asker => "testdata/asker",
            Capsule::AskerTwin => "testdata/asker-twin",
            Capsule::Agent => "agent",
            Capsule::Session => "session",
            Capsule::Registry => "registry",
            Capsule::ProviderOpenAi => "provider-openai",
            Capsule::ProviderAnthropic => "provider-anthropic",
            Capsule::ToolFs => "tool-fs",
            Capsule::ToolShell => "tool-shell",
            Capsule::ToolHttp => "tool-http",
            Capsule::KeyThief => "testdata/key-thief",
            Capsule::Borrower => "testdata/borrower",
            Capsule::HttpProbe => "testdata/http-probe",
            Capsule::IdentityProbe => "testdata/identity-probe",
            Capsule::UplinkProbe => "testdata/uplink-probe",
            Capsule::NetProbe => "testdata/net-probe",
            Capsule::ElicitProbe => "testdata/elicit-probe",
        }
    }
}

/// The verified package of a capsule, built by `astrid-build` the first time a test asks.
pub fn package(c: Capsule) -> &'static LoadedPackage {
    static BUILT: [OnceLock<LoadedPackage>; ALL] = [const { OnceLock::new() }; ALL];
    BUILT[c as usize].get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../capsules")
            .join(c.src());
        // Only the bytes are kept; the package files go away with the temp dir.
        let out = tempfile::tempdir().expect("temp dir for a capsule package");
        let opts = BuildOptions {
            out_dir: Some(out.path().to_path_buf()),
            ..BuildOptions::default()
        };
        let built = build_capsule(&src, &opts)
            .unwrap_or_else(|e| panic!("building {}: {e}", src.display()));
        load_package(&built.dir).unwrap_or_else(|e| panic!("loading {}: {e}", built.dir.display()))
    })
}

/// What `astrid capsule install` would send for this capsule.
pub fn upload(c: Capsule) -> PackageUpload {
    let p = package(c);
    PackageUpload {
        manifest_toml: p.manifest_text.clone(),
        components: vec![ComponentUpload {
            file: p.component_file.clone(),
            bytes: p.component.clone(),
        }],
    }
}

/// A temporary directory holding an `ASTRID_HOME` (`<tmp>/home`) and the daemons' stderr logs.
pub struct TestHome {
    dir: tempfile::TempDir,
    pub home: AstridHome,
    /// Extra environment for every daemon this home spawns (e.g. the operator's `HOME`).
    env: Vec<(String, OsString)>,
    /// The daemon is given the home relative to the temp dir (its working directory)
    /// rather than as `home`'s absolute path.
    relative: bool,
}

impl TestHome {
    pub fn new() -> TestHome {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = AstridHome::new(dir.path().join("home"));
        std::fs::create_dir_all(home.root()).expect("creating the home");
        TestHome {
            dir,
            home,
            env: Vec::new(),
            relative: false,
        }
    }

    /// The daemon gets `--home home`, a path relative to its working directory.
    pub fn given_relative(mut self) -> TestHome {
        self.relative = true;
        self
    }

    /// The home is reached through a symlink, `<tmp>/link -> home`, and that is the
    /// path the daemon and the clients are given.
    pub fn given_through_symlink(mut self) -> TestHome {
        let link = self.dir.path().join("link");
        // Relative, so the filesystem gate's cap-std follows it (it refuses absolute links
        // outright, which would hide what this is meant to test).
        std::os::unix::fs::symlink("home", &link).expect("linking the home");
        self.home = AstridHome::new(link);
        self
    }

    /// Every daemon started from this home gets `key=value` in its environment.
    pub fn with_env(mut self, key: &str, value: impl Into<OsString>) -> TestHome {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// A home whose `config.toml` sets the per-invocation deadline and memory ceiling.
    pub fn with_quota(timeout_ms: u64, memory_mb: u64) -> TestHome {
        let h = TestHome::new();
        let config = format!("[quota]\ntimeout_ms = {timeout_ms}\nmemory_mb = {memory_mb}\n");
        std::fs::write(h.home.config_file(), config).expect("writing config.toml");
        h
    }

    /// The temp dir around the home: a place outside every capsule root.
    pub fn outside(&self) -> &Path {
        self.dir.path()
    }

    /// What `~` means for capsules running for the `default` principal.
    pub fn principal_home(&self) -> PathBuf {
        self.home.principal_home(&PrincipalId::default_local())
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("daemon-{n}.log"))
    }

    /// Starts `astrid-daemon --home` without waiting for it; its stderr goes to a log file.
    pub fn spawn(&self) -> (Child, PathBuf) {
        let n = (0..)
            .find(|n| !self.log_path(*n).exists())
            .expect("a free log name");
        let log = self.log_path(n);
        let file = std::fs::File::create(&log).expect("creating the daemon log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_astrid-daemon"));
        if self.relative {
            let rel = self.home.root().strip_prefix(self.dir.path()).unwrap();
            cmd.current_dir(self.dir.path()).arg("--home").arg(rel);
        } else {
            cmd.arg("--home").arg(self.home.root());
        }
        let child = cmd
            .env_remove("ASTRID_HOME")
            .env("ASTRID_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawning astrid-daemon");
        (child, log)
    }

    /// Starts a daemon and returns once a client can connect to it.
    pub async fn start(&self) -> Daemon {
        let (child, log) = self.spawn();
        let mut daemon = Daemon {
            child,
            log,
            home: self.home.clone(),
        };
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = daemon.child.try_wait().expect("polling the daemon") {
                panic!("daemon exited during startup ({status}):\n{}", daemon.log());
            }
            // A killed predecessor may have left its socket and token behind; a refusal or a
            // failed connect just means "not yet".
            if Client::connect(&self.home, "default", "probe")
                .await
                .is_ok()
            {
                return daemon;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "daemon did not accept connections within {HANG_GUARD:?}:\n{}",
                daemon.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

/// A running `astrid-daemon`. Dropping it kills the process.
pub struct Daemon {
    child: Child,
    log: PathBuf,
    pub home: AstridHome,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's stderr so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.home, "default", "test")
            .await
            .unwrap_or_else(|e| panic!("connecting: {e}\n{}", self.log()))
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        self.child.kill().expect("killing the daemon");
        self.child.wait().expect("reaping the daemon");
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        wait_child(&mut self.child, &self.log).await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Already exited is fine: kill then fails and wait returns the stored status.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A launcher the killed daemon had just started would wait for ever once the temp
        // home (and its FIFO's name) is deleted; no later daemon starts here to end it.
        astrid_process::end_stale_launchers(&self.home.run_dir());
    }
}

/// Waits for a child process to exit; panics with its log if it does not.
pub async fn wait_child(child: &mut Child, log: &Path) -> ExitStatus {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        if let Some(status) = child.try_wait().expect("polling a process") {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "process did not exit within {HANG_GUARD:?}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Mints a token for `principal` as `op`; its id.
pub async fn grant(op: &Client, principal: &str, pattern: &str) -> String {
    let cmd = ControlCommand::CapsGrant {
        principal: principal.into(),
        pattern: pattern.into(),
        ttl_ms: None,
    };
    match control(op, cmd).await {
        Ok(ControlResponse::Granted(t)) => t.id,
        other => panic!("granting {pattern} to {principal}: {other:?}"),
    }
}

/// The next approval request on `stream`, which must arrive.
pub async fn next_request(stream: &mut ApprovalStream) -> ApprovalRequest {
    tokio::time::timeout(HANG_GUARD, stream.next())
        .await
        .expect("no approval request arrived")
        .expect("the approval stream ended")
}

pub async fn control(c: &Client, command: ControlCommand) -> Result<ControlResponse, String> {
    match c.control(command).await {
        Ok(r) => Ok(r),
        Err(ClientError::Control(message)) => Err(message),
        Err(ClientError::Denied(message)) => Err(format!("denied: {message}")),
        Err(e) => panic!("control command failed outside the daemon: {e}"),
    }
}

/// Installs (or with `update`, hot-swaps) a capsule; panics unless the daemon accepts it.
/// Creates the principal `name` (as the operator `op`) and connects as it.
pub async fn new_agent(home: &AstridHome, op: &Client, name: &str) -> Client {
    let made = control(op, ControlCommand::AgentCreate { name: name.into() }).await;
    assert_eq!(made, Ok(ControlResponse::Done), "creating {name}");
    Client::connect(home, name, "test")
        .await
        .unwrap_or_else(|e| panic!("connecting as {name}: {e}"))
}

/// Pairs a use-only device of `principal` (labelled `label`) through the operator's `op` and
/// connects with its token; returns the device's record and the connection.
pub async fn device(
    home: &AstridHome,
    op: &Client,
    principal: &str,
    label: &str,
) -> (wire::DeviceInfo, Client) {
    let issued = control(
        op,
        ControlCommand::DeviceIssue {
            principal: principal.into(),
            label: label.into(),
            scope: wire::DeviceScope::UseOnly,
            ttl_ms: None,
        },
    )
    .await;
    let Ok(ControlResponse::DeviceIssued { device, token }) = issued else {
        panic!("expected a device, got {issued:?}")
    };
    let client = Client::connect_with(home, Credential::Device(token), principal, label)
        .await
        .unwrap_or_else(|e| panic!("connecting as {principal}'s {label}: {e}"));
    (device, client)
}

pub async fn install(c: &Client, capsule: Capsule) -> CapsuleInfo {
    try_install(c, capsule, false)
        .await
        .unwrap_or_else(|e| panic!("installing {capsule:?}: {e}"))
}

pub async fn try_install(
    c: &Client,
    capsule: Capsule,
    update: bool,
) -> Result<CapsuleInfo, String> {
    let up = upload(capsule);
    let command = if update {
        ControlCommand::Update(up)
    } else {
        ControlCommand::Install(up)
    };
    match control(c, command).await? {
        ControlResponse::Installed(info) => Ok(info),
        other => panic!("expected Installed, got {other:?}"),
    }
}

pub async fn status(c: &Client) -> DaemonStatus {
    match control(c, ControlCommand::Status).await {
        Ok(ControlResponse::Status(s)) => s,
        other => panic!("expected Status, got {other:?}"),
    }
}

pub async fn list(c: &Client) -> Vec<CapsuleInfo> {
    match control(c, ControlCommand::List).await {
        Ok(ControlResponse::Capsules(list)) => list,
        other => panic!("expected Capsules, got {other:?}"),
    }
}

pub async fn request(c: &Client, topic: &str, payload: &[u8]) -> Result<Vec<u8>, ClientError> {
    c.request(topic, payload.to_vec(), REQUEST_TIMEOUT).await
}

/// A request that must succeed; its reply as text.
pub async fn ask(c: &Client, topic: &str, payload: &[u8]) -> String {
    let reply = request(c, topic, payload)
        .await
        .unwrap_or_else(|e| panic!("request on {topic}: {e}"));
    String::from_utf8(reply).unwrap_or_else(|e| panic!("reply on {topic} is not UTF-8: {e}"))
}

/// A request that must fail with an error reply from the daemon.
pub async fn refused(c: &Client, topic: &str, payload: &[u8]) -> RequestError {
    match request(c, topic, payload).await {
        Err(ClientError::Request(e)) => e,
        other => panic!("expected an error reply on {topic}, got {other:?}"),
    }
}

/// The daemon still routes and runs capsules: echo answers byte for byte.
pub async fn assert_echo_serves(c: &Client) {
    let payload = b"still serving \x00\xff".to_vec();
    let reply = request(c, "echo.v1.request", &payload)
        .await
        .unwrap_or_else(|e| panic!("echo no longer answers: {e}"));
    assert_eq!(reply, payload);
}

/// The next event of a subscription that must produce one.
pub async fn next_event(sub: &mut Subscription) -> EventMsg {
    tokio::time::timeout(HANG_GUARD, sub.next())
        .await
        .expect("no event arrived")
        .expect("subscription ended")
}

/// Every entry of principal `p`'s audit chain under `home`, oldest first.
pub fn chain(home: &AstridHome, p: &str) -> Vec<astrid_audit::AuditEntry> {
    let p: PrincipalId = p.parse().unwrap();
    astrid_audit::read_entries(&astrid_audit::log_path(&home.principals_dir(), &p))
        .unwrap()
        .map(|e| e.unwrap().entry)
        .collect()
}

/// The entries of `p`'s chain whose action starts with `action` (`net.connect`, or
/// `elicit.` for a whole package), oldest first.
pub fn actions(home: &AstridHome, p: &str, action: &str) -> Vec<astrid_audit::AuditEntry> {
    chain(home, p)
        .into_iter()
        .filter(|e| e.action.starts_with(action))
        .collect()
}

/// The daemon's current token.
pub fn token(home: &AstridHome) -> String {
    std::fs::read_to_string(home.token_file())
        .expect("reading the token")
        .trim()
        .to_string()
}

/// Connects without the client library and sends a Hello; returns the stream and the answer.
pub async fn raw_hello(
    home: &AstridHome,
    versions: &[u32],
    token: &str,
    principal: &str,
) -> (UnixStream, ServerMessage) {
    raw_hello_with(
        home,
        versions,
        Credential::Operator(token.to_string()),
        principal,
    )
    .await
}

/// Like `raw_hello`, with any credential.
pub async fn raw_hello_with(
    home: &AstridHome,
    versions: &[u32],
    credential: Credential,
    principal: &str,
) -> (UnixStream, ServerMessage) {
    let mut s = UnixStream::connect(home.socket())
        .await
        .expect("connecting to the socket");
    let hello = ClientMessage::Hello {
        versions: versions.to_vec(),
        credential,
        principal: principal.to_string(),
        client_name: "raw".to_string(),
    };
    raw_send(&mut s, &hello).await;
    let answer = raw_recv(&mut s).await.expect("an answer to hello");
    (s, answer)
}

/// A raw connection past the handshake, as the `default` principal.
pub async fn raw_connect(home: &AstridHome) -> UnixStream {
    let (s, answer) = raw_hello(home, PROTOCOL_VERSIONS, &token(home), "default").await;
    assert!(
        matches!(answer, ServerMessage::Welcome { .. }),
        "expected Welcome, got {answer:?}"
    );
    s
}

pub async fn raw_send(s: &mut UnixStream, msg: &ClientMessage) {
    let bytes = wire::encode(msg).expect("encoding");
    write_frame(s, &bytes).await.expect("writing a frame");
}

/// The next message from the daemon, `None` once it closed the connection.
pub async fn raw_recv(s: &mut UnixStream) -> Option<ServerMessage> {
    let frame = tokio::time::timeout(HANG_GUARD, read_frame(s, MAX_FRAME))
        .await
        .expect("the daemon neither answered nor closed")
        .ok()??;
    Some(wire::decode(&frame).expect("decoding a daemon message"))
}

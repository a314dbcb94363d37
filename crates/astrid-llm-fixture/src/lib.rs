//! A local HTTP server that stands in for the OpenAI chat-completions and Anthropic
//! Messages APIs in Astrid's integration tests and benchmarks.
//!
//! It answers from a script of [`Step`]s with the services' own JSON bodies, event-stream
//! framing, headers and error shapes, so a provider that works against the fixture works
//! against the service. Streamed text and tool-call arguments are cut into
//! [`FixtureConfig::chunk_pieces`] pieces, each sent as its own HTTP chunk.
//!
//! Routes: `POST /v1/chat/completions` (OpenAI), `POST /v1/messages` (Anthropic),
//! `GET /v1/models` (Anthropic's shape when the request has `anthropic-version`, else
//! OpenAI's). Every request is recorded, including rejected ones.

mod anthropic;
mod openai;
mod ordered;
mod script;
mod server;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use script::{load_script, parse_script, ScriptError, ScriptedCall, Step, EXHAUSTED_TEXT};

/// How long [`Fixture::shutdown`] lets open responses finish before it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How the fixture behaves, apart from what it answers.
#[derive(Debug, Clone)]
pub struct FixtureConfig {
    /// When set, required: OpenAI as `Authorization: Bearer <key>`, Anthropic as
    /// `x-api-key: <key>`; otherwise any key (or none) is accepted.
    pub api_key: Option<String>,
    /// Served by `GET /v1/models`; a completion naming another model gets the service's
    /// 404. Empty: every name is served (and none listed).
    pub models: Vec<String>,
    /// How many pieces streamed text and each tool call's arguments are cut into.
    pub chunk_pieces: usize,
    /// Pause between streamed pieces; zero only yields, for benchmarks.
    pub piece_delay: Duration,
}

impl Default for FixtureConfig {
    fn default() -> Self {
        FixtureConfig {
            api_key: None,
            models: vec!["gpt-4o-mini".into(), "claude-sonnet-4-5".into()],
            chunk_pieces: 3,
            piece_delay: Duration::ZERO,
        }
    }
}

/// Which service a recorded request addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`
    OpenAi,
    /// `POST /v1/messages`
    Anthropic,
    /// `GET /v1/models`
    Models,
    /// Any other path (answered with the service's 404).
    Unknown,
}

/// A request as the fixture received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub api: Api,
    pub method: String,
    pub path: String,
    /// Names are lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    /// The JSON body; a body that is not JSON is kept as a string, an empty one as null.
    pub body: Value,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the script is played: once (then [`EXHAUSTED_TEXT`] forever), round and round across
/// all requests, or per conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playback {
    Once,
    Loop,
    /// Each request gets the step numbered by how many tool rounds its conversation has had
    /// since the user last spoke (modulo the script's length), as a model answering the
    /// conversation would: concurrent conversations each see the script from its start.
    PerTurn,
}

/// A running fixture. Dropping it stops the server without waiting.
pub struct Fixture {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Fixture {
    /// Serves `script` once on `127.0.0.1` at a free port.
    pub async fn start(config: FixtureConfig, script: Vec<Step>) -> std::io::Result<Fixture> {
        Self::bind(loopback(0), config, script, Playback::Once).await
    }

    /// Serves `steps` round and round forever (e.g. a tool call, then an answer, repeat).
    pub async fn start_looping(
        config: FixtureConfig,
        steps: Vec<Step>,
    ) -> std::io::Result<Fixture> {
        Self::bind(loopback(0), config, steps, Playback::Loop).await
    }

    /// Serves `steps` per conversation (see [`Playback::PerTurn`]): with `[tool call, answer]`
    /// every turn, however many run at once, is one tool call and then the answer.
    pub async fn start_per_turn(
        config: FixtureConfig,
        steps: Vec<Step>,
    ) -> std::io::Result<Fixture> {
        Self::bind(loopback(0), config, steps, Playback::PerTurn).await
    }

    /// Serves on a chosen address. Must be called inside a Tokio runtime, which then runs
    /// the server until [`Fixture::shutdown`] or drop.
    pub async fn bind(
        addr: SocketAddr,
        config: FixtureConfig,
        script: Vec<Step>,
        playback: Playback,
    ) -> std::io::Result<Fixture> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(server::Shared {
            config,
            script: Mutex::new(script::Script::new(script, playback)),
            requests: Mutex::new(Vec::new()),
            ids: wire::Ids::default(),
            stop: stopped.clone(),
        });
        let app = server::router(shared.clone());
        let mut until = stopped;
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = until.wait_for(|stopped| *stopped).await;
            };
            // A failing accept loop only ends the fixture; the test then sees refused
            // connections, which say more than a panic in a background task would.
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(Fixture {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash or `/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends a step to the script (to the cycle, when looping).
    pub fn push(&self, step: Step) {
        server::lock(&self.shared.script).push(step);
    }

    /// Steps not yet played (when looping: the length of the cycle).
    pub fn remaining(&self) -> usize {
        server::lock(&self.shared.script).remaining()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        server::lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests (a benchmark's record would otherwise grow forever).
    pub fn clear_requests(&self) {
        server::lock(&self.shared.requests).clear();
    }

    /// Stops accepting, ends stalled requests, and waits (briefly) for open responses.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

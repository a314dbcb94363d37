//! The HTTP gateway in front of a real daemon with the agent fleet (`common::agent::Rig`):
//! the gateway serves in this process on 127.0.0.1, the daemon is its own process, the model
//! is `astrid-llm-fixture`. Helpers pair devices, add principals configured like `default`,
//! and read server-sent events.
#![allow(dead_code)]

use std::time::Duration;

use astrid_gateway::{Gateway, GatewayConfig};
use astrid_llm_fixture::{FixtureConfig, Step};
use astrid_types::wire::{ControlCommand, ControlResponse, DeviceScope};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::common::agent::{Provider, Rig};

pub struct GwRig {
    pub rig: Rig,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<()>>,
}

impl GwRig {
    pub async fn start(script: Vec<Step>) -> GwRig {
        Self::start_with(script, |_| {}).await
    }

    pub async fn start_with(script: Vec<Step>, tweak: impl FnOnce(&mut GatewayConfig)) -> GwRig {
        let rig = Rig::start(Provider::OpenAi, FixtureConfig::default(), script).await;
        let mut config = GatewayConfig::new(rig.home.home.clone());
        config.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut config);
        let gw = Gateway::bind(config).await.expect("binding the gateway");
        let base = format!("http://{}", gw.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            gw.run(async {
                let _ = stopped.await;
            })
            .await
            .expect("serving");
        });
        GwRig {
            rig,
            base,
            http: reqwest::Client::new(),
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Scripts the model to read `heron.txt` (which says "the heron lands at dawn") and then
    /// answer `answer`. The file is in the user's home: inside tool-fs's ceiling and outside
    /// the workspace, so a person is asked (twice: stat, then read). Returns its path.
    pub fn script_a_read_needing_approval(&self, answer: &str) -> std::path::PathBuf {
        let file = self.rig.user_home.path().join("heron.txt");
        std::fs::write(&file, "the heron lands at dawn").unwrap();
        self.rig.fixture.push(Step::tool_call(
            "fs_read",
            serde_json::json!({"path": file}),
        ));
        self.rig.fixture.push(Step::text(answer));
        file
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the gateway gracefully and waits until it has.
    pub async fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("the gateway stops")
                .expect("the gateway task");
        }
    }

    /// Pairs a use-only device for `principal`; returns (device id, token).
    pub async fn device(&self, principal: &str) -> (String, String) {
        let cmd = ControlCommand::DeviceIssue {
            principal: principal.into(),
            label: "gateway test".into(),
            scope: DeviceScope::UseOnly,
            ttl_ms: None,
        };
        match self.rig.ctl(cmd).await {
            ControlResponse::DeviceIssued { device, token } => (device.id, token),
            other => panic!("expected DeviceIssued, got {other:?}"),
        }
    }

    pub async fn revoke(&self, principal: &str, device_id: &str) {
        self.rig
            .ctl(ControlCommand::DeviceRevoke {
                principal: principal.into(),
                device_id: device_id.into(),
            })
            .await;
    }

    /// Creates `name`, grants it the capsules `default` has (a new principal starts with
    /// none) and configures its agent as the rig configured `default`'s (same provider, model
    /// server and consent; a workspace grant of its own is not given).
    pub async fn add_principal(&self, name: &str) {
        self.rig
            .ctl(ControlCommand::AgentCreate { name: name.into() })
            .await;
        let capsules = match self.rig.ctl(ControlCommand::List).await {
            astrid_types::wire::ControlResponse::Capsules(list) => {
                list.into_iter().map(|c| c.name).collect()
            }
            other => panic!("expected the capsule list, got {other:?}"),
        };
        self.rig
            .ctl(ControlCommand::AgentModify {
                name: name.into(),
                add_capsules: capsules,
                remove_capsules: vec![],
            })
            .await;
        let p = self.rig.provider;
        let base = self.rig.fixture.base_url();
        let set = |capsule: &str, key: &str, value: String| ControlCommand::ConfigSet {
            principal: name.into(),
            capsule: capsule.into(),
            key: key.into(),
            value: Some(value),
        };
        for cmd in [
            set(p.capsule_name(), "base_url", base),
            set(p.capsule_name(), "model", p.model().into()),
            set("registry", "provider", p.name().into()),
            set("registry", "model", p.model().into()),
            set("agent", "describe_timeout_ms", "120000".into()),
            ControlCommand::EgressAllow {
                principal: name.into(),
                capsule: p.capsule_name().into(),
                target: format!("127.0.0.1:{}", self.rig.fixture.addr().port()),
            },
        ] {
            self.rig.ctl(cmd).await;
        }
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(token)
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(token).json(body)
    }
}

impl Drop for GwRig {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A response that must be a problem document with `status`; returns its `detail`.
pub async fn problem(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status, "{resp:?}");
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "{resp:?}"
    );
    let body: Value = resp.json().await.expect("a problem document");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:astrid:problem:"),
        "{body}"
    );
    body["detail"].as_str().expect("a detail").to_string()
}

/// One server-sent event: its name (`None` for unnamed), data, or a comment line.
#[derive(Debug, Clone, PartialEq)]
pub enum Sse {
    Event { name: Option<String>, data: String },
    Comment(String),
}

/// Parses whole frames out of `buf`, leaving a partial one in place.
pub fn parse_frames(buf: &mut String) -> Vec<Sse> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let frame: String = buf.drain(..end + 2).collect();
        let (mut name, mut data) = (None, Vec::new());
        for line in frame.lines() {
            if let Some(c) = line.strip_prefix(": ") {
                out.push(Sse::Comment(c.to_string()));
            } else if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_string());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push(d);
            }
        }
        if !data.is_empty() {
            out.push(Sse::Event {
                name,
                data: data.join("\n"),
            });
        }
    }
    out
}

/// Reads an event stream as it arrives.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
    queued: std::collections::VecDeque<Sse>,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> SseReader {
        assert_eq!(resp.status().as_u16(), 200, "{resp:?}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        SseReader {
            resp,
            buf: String::new(),
            queued: Default::default(),
        }
    }

    /// The next event or comment; `None` when the stream has ended.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(e) = self.queued.pop_front() {
                return Some(e);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(120), self.resp.chunk())
                .await
                .expect("the stream went quiet for two minutes");
            match chunk {
                Ok(Some(bytes)) => {
                    self.buf
                        .push_str(std::str::from_utf8(&bytes).expect("UTF-8"));
                    self.queued.extend(parse_frames(&mut self.buf));
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next named event (skipping comments and keep-alives), parsed.
    pub async fn next_event(&mut self) -> Option<(String, Value)> {
        loop {
            match self.next().await? {
                Sse::Event { name, data } => {
                    let v = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    return Some((name.unwrap_or_default(), v));
                }
                Sse::Comment(_) => continue,
            }
        }
    }

    /// Everything until the stream ends.
    pub async fn all(mut self) -> Vec<Sse> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

/// Debian's Chromium for the console's browser tests (scripts/test.sh installs it and sets
/// ASTRID_TEST_CHROMIUM); a test without it fails rather than skips.
pub fn chromium() -> String {
    let path = std::env::var("ASTRID_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "no Chromium at {path}: run scripts/test.sh (it installs Debian's `chromium`) or set \
         ASTRID_TEST_CHROMIUM"
    );
    path
}

/// Runs `crates/astrid-gateway/tests/python/SCRIPT` with the test venv's Python (scripts/test.sh
/// provides it as ASTRID_TEST_PYTHON, with the pinned official clients; plain python3
/// otherwise); asserts it succeeded and returns its stdout.
#[allow(
    clippy::disallowed_methods,
    reason = "the official HTTP clients under test are Python programs"
)]
pub async fn run_python(
    script: &str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
) -> String {
    let script = format!(
        "{}/../astrid-gateway/tests/python/{script}",
        env!("CARGO_MANIFEST_DIR")
    );
    let python = std::env::var("ASTRID_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .args(&args)
            .envs(env)
            .output()
            .unwrap_or_else(|e| panic!("running {python} {script}: {e}"))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

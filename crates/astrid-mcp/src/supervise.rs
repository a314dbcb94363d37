//! Keeping an added MCP server running: started on first use, restarted when it dies, with
//! an exponential backoff so a server that crashes at every start is not restarted in a loop.
//!
//! Nothing sleeps here: during a backoff a call is refused at once with when the next start
//! will be tried, so a caller's deadline is never spent waiting for a broken server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use astrid_process::SandboxPolicy;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::launch::Launcher;
use crate::remote::{CallOutcome, RemoteServer, ServerConfig};
use crate::McpError;

/// The wait before the second restart in a row; doubled per further failure.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// The longest wait between starts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A server that stayed up this long has its failure count forgotten.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

/// One added server under supervision.
pub struct Supervised {
    policy: SandboxPolicy,
    launcher: Launcher,
    config: ServerConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    server: Option<(Arc<RemoteServer>, Instant)>,
    /// Deaths and failed starts since the server last stayed up [`STABLE_AFTER`].
    failures: u32,
    retry_at: Option<Instant>,
    /// Successful starts.
    starts: u32,
}

impl State {
    fn failed(&mut self) {
        self.server = None;
        self.failures += 1;
        // The first failure is restarted at once (a crash is usually one bad input); from
        // the second on, the wait doubles up to the maximum.
        self.retry_at = (self.failures >= 2).then(|| {
            let exp = (self.failures - 2).min(16);
            Instant::now() + BACKOFF_FIRST.saturating_mul(1 << exp).min(BACKOFF_MAX)
        });
    }
}

impl Supervised {
    pub fn new(policy: SandboxPolicy, launcher: Launcher, config: ServerConfig) -> Supervised {
        Supervised {
            policy,
            launcher,
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// How many times the server was started again after it died or failed to start.
    pub async fn restarts(&self) -> u32 {
        self.state.lock().await.starts.saturating_sub(1)
    }

    async fn server(&self) -> Result<Arc<RemoteServer>, McpError> {
        let mut st = self.state.lock().await;
        if let Some((s, since)) = st.server.clone() {
            if s.is_alive() {
                if since.elapsed() >= STABLE_AFTER {
                    st.failures = 0;
                }
                return Ok(s);
            }
            st.failed();
        }
        if let Some(at) = st.retry_at {
            let left = at.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(McpError::Gone(format!(
                    "`{}` failed {} times in a row; restarting in {} ms",
                    self.config.name,
                    st.failures,
                    left.as_millis()
                )));
            }
        }
        // Granted afresh for every start: a quota or secret changed since applies now. A
        // refused grant (a secret removed) counts as a failed start, with its backoff.
        let started = self.launcher.start(&self.policy, &self.config).await;
        match started {
            Ok(s) => {
                let s = Arc::new(s);
                st.starts += 1;
                st.retry_at = None;
                st.server = Some((s.clone(), Instant::now()));
                Ok(s)
            }
            Err(e) => {
                st.failed();
                Err(e)
            }
        }
    }

    /// The record this server was started from.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The tools the server lists now (bounded), starting it first if it is not running.
    pub async fn tools(&self) -> Result<Vec<crate::pin::ToolDefinition>, McpError> {
        let server = self.server().await?;
        let result = server.tools().await;
        if matches!(result, Err(McpError::Gone(_))) {
            self.mark_failed(&server).await;
        }
        result.map(|(tools, _)| tools)
    }

    async fn mark_failed(&self, server: &Arc<RemoteServer>) {
        let mut st = self.state.lock().await;
        if st
            .server
            .as_ref()
            .is_some_and(|(s, _)| Arc::ptr_eq(s, server))
        {
            st.failed();
        }
    }

    /// Calls a tool, starting the server first if it is not running. A server that dies
    /// during the call is marked for restart; the call fails with [`McpError::Gone`].
    pub async fn call(
        &self,
        tool: &str,
        args: Map<String, Value>,
    ) -> Result<CallOutcome, McpError> {
        let server = self.server().await?;
        let result = server.call(tool, args).await;
        if matches!(result, Err(McpError::Gone(_))) {
            self.mark_failed(&server).await;
        }
        result
    }
}

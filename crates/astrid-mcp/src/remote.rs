//! An MCP server added with `astrid mcp add`: a native program run under the OS sandbox for
//! as long as it is needed, spoken to as an MCP client over its stdio.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use astrid_process::{SandboxPolicy, Service, ServiceSpec};
use astrid_types::mcp::{McpLaunchGrant, McpSecretRef, NetGrant};
use rmcp::model::{CallToolRequestParams, ContentBlock};
use rmcp::service::{RoleClient, RunningService};
use rmcp::ServiceExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::net::unix::pipe;

use crate::pin::{bound, Pinned, ToolDefinition};
use crate::McpError;

/// How long a server gets to answer `initialize` and `tools/list`: node servers start in a
/// few hundred milliseconds; a server that needs longer is reported, not waited for forever.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The last lines of the server's stderr kept to explain a failure.
const STDERR_LINES: usize = 20;
/// Longest stderr line kept.
const STDERR_LINE_MAX: usize = 512;

/// What `astrid mcp add` recorded about one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerConfig {
    pub name: String,
    /// Absolute, symlinks resolved when added (so the code run is the code that was added).
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Read-only grants (absolute, canonical).
    pub allow_read: Vec<PathBuf>,
    /// Read-write grants (absolute, canonical).
    pub allow_write: Vec<PathBuf>,
    /// The tool definitions the user approved, by hash.
    pub pinned: Vec<Pinned>,
    /// Environment variables set from the principal's MCP secrets at each start.
    #[serde(default)]
    pub secrets: Vec<McpSecretRef>,
    /// The hosts the server may reach (`--allow-net`, `--allow-local-net`); none when empty.
    #[serde(default)]
    pub allow_net: Vec<NetGrant>,
}

impl ServerConfig {
    /// The directory that holds the program's own code, bound read-only: an npm package
    /// needs its whole `node_modules` tree (its dependencies are hoisted beside it);
    /// anything else, the directory the program is in. Programs of the system directories
    /// need nothing more.
    pub fn code_dir(&self) -> Option<PathBuf> {
        if ["/usr/", "/bin/", "/sbin/", "/lib"]
            .iter()
            .any(|p| self.program.starts_with(p))
        {
            return None;
        }
        let mut dir = self.program.parent()?;
        let mut top = None;
        while let Some(parent) = dir.parent() {
            if dir.file_name().is_some_and(|n| n == "node_modules") {
                top = Some(dir.to_path_buf());
            }
            dir = parent;
        }
        top.or_else(|| self.program.parent().map(Path::to_path_buf))
    }

    fn spec(&self, grant: &McpLaunchGrant) -> ServiceSpec {
        ServiceSpec {
            program: self.program.to_string_lossy().into_owned(),
            args: self.args.clone(),
            code_dirs: self.code_dir().into_iter().collect(),
            read_dirs: self.allow_read.clone(),
            write_dirs: self.allow_write.clone(),
            env: grant
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect(),
            limits: Some(grant.limits.into()),
            net: None,
        }
    }
}

/// A running sandboxed server and the MCP session with it. Dropping it ends the session and
/// kills the sandbox.
pub struct RemoteServer {
    client: RunningService<RoleClient, ()>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    // Dropped after the session, so the sandbox is killed once nothing talks to it.
    service: Mutex<Service>,
    // Last: the sockets the sandbox's forwarder reaches go once the sandbox is gone.
    _net: Option<astrid_egress::relay::Relay>,
}

/// One `tools/call`'s result as text for the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallOutcome {
    /// The server flagged the result as an error (`isError`).
    pub is_error: bool,
    pub text: String,
}

impl RemoteServer {
    /// Starts the server in its sandbox, under the grant's limits and with its secrets as
    /// the only environment, and completes the MCP handshake.
    pub async fn start(
        policy: &SandboxPolicy,
        config: &ServerConfig,
        grant: &McpLaunchGrant,
    ) -> Result<Self, McpError> {
        Self::start_reporting(policy, config, grant, None).await
    }

    /// [`start`](Self::start), reporting each connection through a granted route to `report`.
    pub async fn start_reporting(
        policy: &SandboxPolicy,
        config: &ServerConfig,
        grant: &McpLaunchGrant,
        report: Option<crate::net::ConnectReport>,
    ) -> Result<Self, McpError> {
        let mut spec = config.spec(grant);
        let net = if config.allow_net.is_empty() {
            None
        } else {
            let (net, routes) = crate::net::open(
                policy.runtime_dir(),
                &config.name,
                &config.allow_net,
                report,
            )?;
            spec.net = Some(routes);
            Some(net)
        };
        let mut service = astrid_process::spawn_service(policy, &spec)?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (
            service.stdin.take(),
            service.stdout.take(),
            service.stderr.take(),
        ) else {
            return Err(McpError::Server("the sandbox's pipes are missing".into()));
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let keep = tail.clone();
        // A thread, not a task: the pipe is a blocking std handle and the server may write
        // to it at any time; nothing but the last lines is kept.
        std::thread::Builder::new()
            .name("astrid-mcp-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let line: String = line.chars().take(STDERR_LINE_MAX).collect();
                    tracing::debug!(target: "astrid_mcp::server_stderr", "{line}");
                    let mut t = keep.lock().unwrap_or_else(|e| e.into_inner());
                    if t.len() == STDERR_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            })
            .map_err(|e| McpError::Server(format!("starting the stderr reader: {e}")))?;
        let reader = pipe::Receiver::from_owned_fd(OwnedFd::from(stdout))
            .map_err(|e| McpError::Server(format!("the server's stdout: {e}")))?;
        let writer = pipe::Sender::from_owned_fd(OwnedFd::from(stdin))
            .map_err(|e| McpError::Server(format!("the server's stdin: {e}")))?;
        let started = tokio::time::timeout(START_TIMEOUT, ().serve((reader, writer))).await;
        let client = match started {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(McpError::Server(format!(
                    "MCP handshake with `{}` failed: {e}{}",
                    config.name,
                    stderr_note(&tail)
                )))
            }
            Err(_) => {
                return Err(McpError::Server(format!(
                    "`{}` did not complete the MCP handshake within {}s{}",
                    config.name,
                    START_TIMEOUT.as_secs(),
                    stderr_note(&tail)
                )))
            }
        };
        Ok(RemoteServer {
            client,
            stderr: tail,
            service: Mutex::new(service),
            _net: net,
        })
    }

    /// The server's tools, bounded (see [`bound`]), with why any were left out.
    pub async fn tools(&self) -> Result<(Vec<ToolDefinition>, Vec<String>), McpError> {
        let listed = tokio::time::timeout(START_TIMEOUT, self.client.peer().list_all_tools())
            .await
            .map_err(|_| McpError::Server("tools/list timed out".into()))?
            .map_err(|e| self.failed("tools/list", e))?;
        Ok(bound(
            listed
                .into_iter()
                .map(|t| {
                    (
                        t.name.into_owned(),
                        t.description.map(|d| d.into_owned()),
                        (*t.input_schema).clone(),
                    )
                })
                .collect(),
        ))
    }

    /// Calls one tool; the result's content is flattened to text (non-text blocks named).
    pub async fn call(
        &self,
        tool: &str,
        args: Map<String, Value>,
    ) -> Result<CallOutcome, McpError> {
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = Some(args);
        let result = self
            .client
            .call_tool(params)
            .await
            .map_err(|e| self.failed("tools/call", e))?;
        let text = result
            .content
            .iter()
            .map(|c| match c {
                ContentBlock::Text(t) => t.text.clone(),
                ContentBlock::Image(_) => "[image]".to_string(),
                ContentBlock::Audio(_) => "[audio]".to_string(),
                ContentBlock::Resource(_) | ContentBlock::ResourceLink(_) => {
                    "[resource]".to_string()
                }
                _ => "[content]".to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        Ok(CallOutcome {
            is_error: result.is_error.unwrap_or(false),
            text,
        })
    }

    /// Whether the session and the sandbox are both still there.
    pub fn is_alive(&self) -> bool {
        let exited = self
            .service
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_wait()
            .map_or(true, |status| status.is_some());
        !exited && !self.client.peer().is_transport_closed()
    }

    /// An error the server answered with leaves it usable; any other (the pipe closed, no
    /// answer in time) means it is gone and must be started again.
    fn failed(&self, what: &str, e: rmcp::service::ServiceError) -> McpError {
        use rmcp::service::ServiceError as E;
        let text = format!("{what}: {e}{}", stderr_note(&self.stderr));
        match e {
            E::McpError(_) | E::UnexpectedResponse | E::InputRequiredRoundsExceeded { .. } => {
                McpError::Server(text)
            }
            _ => McpError::Gone(text),
        }
    }
}

fn stderr_note(tail: &Mutex<VecDeque<String>>) -> String {
    let t = tail.lock().unwrap_or_else(|e| e.into_inner());
    if t.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = t.iter().map(|l| l.escape_debug().to_string()).collect();
    format!(" (server stderr: {})", lines.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(program: &str) -> ServerConfig {
        ServerConfig {
            name: "fs".into(),
            program: program.into(),
            args: vec![],
            allow_read: vec![],
            allow_write: vec![],
            pinned: vec![],
            secrets: vec![],
            allow_net: vec![],
        }
    }

    #[test]
    fn the_code_dir_is_the_outermost_node_modules_or_the_programs_dir() {
        let c = config("/c/npm/node_modules/@m/server-fs/dist/index.js");
        assert_eq!(c.code_dir(), Some(PathBuf::from("/c/npm/node_modules")));
        let c = config("/opt/tools/bin/server");
        assert_eq!(c.code_dir(), Some(PathBuf::from("/opt/tools/bin")));
        assert_eq!(config("/usr/bin/server").code_dir(), None);
    }
}

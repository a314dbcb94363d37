//! Where one start of an added server gets its sandbox limits and its secrets: from the
//! daemon, which resolves the principal's quota and holds the secret values
//! (`ControlCommand::McpLaunch`, admitted and recorded there).

use std::sync::Arc;

use astrid_client::Client;
use astrid_process::{Limits, SandboxPolicy};
use astrid_types::mcp::{ConnectOutcome, McpLaunchGrant};
use astrid_types::wire::{ControlCommand, ControlResponse};

use crate::net::ConnectReport;
use crate::{McpError, RemoteServer, ServerConfig};

/// How a server's starts are granted.
#[derive(Clone)]
pub enum Launcher {
    /// Asked of the daemon before every start (the bridge, and `astrid mcp add | show |
    /// approve`), so a changed quota or secret applies at the next start.
    Daemon { client: Client, principal: String },
    /// A grant the caller decided (this crate's tests; an embedding without a daemon).
    Fixed(McpLaunchGrant),
}

impl Launcher {
    pub async fn grant(&self, config: &ServerConfig) -> Result<McpLaunchGrant, McpError> {
        match self {
            Launcher::Fixed(g) => Ok(g.clone()),
            Launcher::Daemon { client, principal } => {
                let reply = client
                    .control(ControlCommand::McpLaunch {
                        principal: principal.clone(),
                        server: config.name.clone(),
                        secrets: config.secrets.clone(),
                        net: config.allow_net.clone(),
                    })
                    .await?;
                match reply {
                    ControlResponse::McpLaunch(g) => Ok(g),
                    other => Err(McpError::Server(format!(
                        "the daemon answered a launch with {other:?}"
                    ))),
                }
            }
        }
    }
}

impl Launcher {
    /// Granted, then started, reporting its connections through granted routes to the
    /// daemon (for the principal's audit chain) when the daemon grants.
    pub async fn start(
        &self,
        policy: &SandboxPolicy,
        config: &ServerConfig,
    ) -> Result<RemoteServer, McpError> {
        let grant = self.grant(config).await?;
        let report = self.reporter(&config.name);
        RemoteServer::start_reporting(policy, config, &grant, report).await
    }

    /// Sends each report of `server`'s connections to the daemon, in order, from a task of
    /// its own (the relay reports from blocking threads); it ends when the relay is gone.
    fn reporter(&self, server: &str) -> Option<ConnectReport> {
        let Launcher::Daemon { client, .. } = self else {
            return None;
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, ConnectOutcome)>();
        let (client, server) = (client.clone(), server.to_string());
        tokio::spawn(async move {
            while let Some((target, outcome)) = rx.recv().await {
                if let Err(e) = client.report_connection(&server, &target, outcome).await {
                    tracing::warn!(server, target, "reporting a connection to the daemon: {e}");
                }
            }
        });
        Some(Arc::new(move |target: &str, outcome| {
            let _ = tx.send((target.to_string(), outcome));
        }))
    }
}

/// A grant of the default limits and no secrets.
pub fn default_grant() -> McpLaunchGrant {
    McpLaunchGrant {
        limits: Limits::default().into(),
        env: Vec::new(),
    }
}

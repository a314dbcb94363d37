//! Where one start of an added server gets its sandbox limits and its secrets: from the
//! daemon, which resolves the principal's quota and holds the secret values
//! (`ControlCommand::McpLaunch`, admitted and recorded there).

use astrid_client::Client;
use astrid_process::Limits;
use astrid_types::mcp::McpLaunchGrant;
use astrid_types::wire::{ControlCommand, ControlResponse};

use crate::{McpError, ServerConfig};

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

/// A grant of the default limits and no secrets.
pub fn default_grant() -> McpLaunchGrant {
    McpLaunchGrant {
        limits: Limits::default().into(),
        env: Vec::new(),
    }
}

//! `astrid mcp …`: the Model Context Protocol uplink (docs/MCP.md).

use std::process::ExitCode;

use anyhow::Context as _;
use astrid_client::Client;
use astrid_types::wire::Credential;

use super::Ctx;
use crate::args::McpCommand;

/// The client name the daemon records for the connection (audit, logs).
const CLIENT_NAME: &str = "astrid-mcp";

pub async fn run(ctx: &Ctx, cmd: McpCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        McpCommand::Serve { workspace, yes } => serve(ctx, workspace, yes).await,
        McpCommand::Add {
            name,
            allow_read,
            allow_write,
            secrets,
            allow_net,
            allow_local_net,
            command,
        } => {
            let grants = super::mcp_servers::Grants {
                allow_read,
                allow_write,
                secrets,
                allow_net: allow_net.into_iter().chain(allow_local_net).collect(),
            };
            super::mcp_servers::add(ctx, name, grants, command).await
        }
        McpCommand::Bridge => super::mcp_servers::bridge(ctx).await,
        McpCommand::List => super::mcp_servers::list(ctx),
        McpCommand::Show { name } => super::mcp_servers::show(ctx, &name).await,
        McpCommand::Approve { name } => super::mcp_servers::approve(ctx, &name).await,
        McpCommand::Remove { name } => super::mcp_servers::remove(ctx, &name),
        McpCommand::Secret(cmd) => super::mcp_servers::secret(ctx, cmd).await,
    }
}

async fn serve(
    ctx: &Ctx,
    workspace: Option<std::path::PathBuf>,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let workspace = match workspace {
        None => None,
        Some(dir) => Some(
            std::fs::canonicalize(&dir)
                .with_context(|| format!("workspace {}", dir.display()))?
                .to_string_lossy()
                .into_owned(),
        ),
    };
    // stdout is the MCP channel: everything else goes to stderr.
    let client = match &ctx.device_token {
        None => {
            astrid_client::ensure_daemon(&ctx.home, None).await?;
            Client::connect(&ctx.home, &ctx.principal, CLIENT_NAME).await?
        }
        // A device cannot start the daemon for the operator; it connects to a running one.
        Some(token) => {
            let credential = Credential::Device(token.clone());
            Client::connect_with(&ctx.home, credential, &ctx.principal, CLIENT_NAME).await?
        }
    };
    let opts = astrid_mcp::ServeOptions {
        workspace,
        auto_approve: yes,
    };
    astrid_mcp::serve_stdio(client, opts).await?;
    Ok(ExitCode::SUCCESS)
}

//! The agent fleet on a running daemon, as the tool-using benchmarks and the soak need it:
//! the capsules installed for `default`, pointed at a local OpenAI-speaking model server, and
//! allowed to read and write one workspace.

use std::path::Path;

use astrid_client::Client;
use astrid_types::wire::{ControlCommand, ControlResponse, LifecycleState};

use crate::{BenchError, Capsules};

/// Under `dir`: the daemon's home (`home/`) and a workspace (`ws/`) holding `bench.txt`, the
/// file the scripted model reads. Returns the home and the workspace's path.
pub fn home_and_workspace(dir: &Path) -> (astrid_types::AstridHome, String) {
    let home = astrid_types::AstridHome::new(dir.join("home"));
    let workspace = dir.join("ws");
    std::fs::create_dir_all(&workspace).expect("workspace");
    std::fs::write(workspace.join("bench.txt"), "hello from the workspace").expect("file");
    (home, workspace.to_string_lossy().into_owned())
}

/// What a tool-using turn runs through.
pub const AGENT_FLEET: &[&str] = &["session", "registry", "provider-openai", "tool-fs", "agent"];

async fn control(client: &Client, command: ControlCommand) -> Result<ControlResponse, BenchError> {
    Ok(client.control(command).await?)
}

/// Installs [`AGENT_FLEET`] for `default`, points its provider at `base_url` (a server on
/// 127.0.0.1:`port`), and grants the workspace.
pub async fn set_up_agent_fleet(
    client: &Client,
    capsules: &Capsules,
    base_url: &str,
    port: u16,
    workspace: &str,
) -> Result<(), BenchError> {
    for name in AGENT_FLEET {
        match control(client, ControlCommand::Install(capsules.upload(name))).await? {
            ControlResponse::Installed(info) if info.state == LifecycleState::Ready => {}
            other => return Err(BenchError::Daemon(format!("installing {name}: {other:?}"))),
        }
    }
    let p = "default".to_string();
    let settings = [
        ("provider-openai", "base_url", base_url.to_string()),
        ("provider-openai", "model", "gpt-4o-mini".to_string()),
        ("registry", "provider", "openai".to_string()),
        ("registry", "model", "gpt-4o-mini".to_string()),
    ];
    for (capsule, key, value) in settings {
        control(
            client,
            ControlCommand::ConfigSet {
                principal: p.clone(),
                capsule: capsule.into(),
                key: key.into(),
                value: Some(value),
            },
        )
        .await?;
    }
    control(
        client,
        ControlCommand::EgressAllow {
            principal: p.clone(),
            capsule: "provider-openai".into(),
            target: format!("127.0.0.1:{port}"),
        },
    )
    .await?;
    for kind in ["read", "write"] {
        control(
            client,
            ControlCommand::CapsEnsure {
                principal: p.clone(),
                pattern: format!("fs:{kind}:{workspace}/**"),
                ttl_ms: None,
            },
        )
        .await?;
    }
    Ok(())
}

//! An added server's network grants (`--allow-net`, `--allow-local-net`) as the airlock's
//! relay (`astrid_egress::relay`): each grant a route, authorized by being granted (nothing
//! else can arrive on its socket), a local grant with the exact consent for its `host:port`.

use std::path::Path;
use std::sync::Arc;

use astrid_egress::relay::{self, Relay, RelayTarget};
use astrid_egress::{Airlock, AirlockConfig, Consent, LocalTarget, Url};
use astrid_process::{NetRoute, SandboxNet};
use astrid_types::mcp::{NetGrant, MAX_NET_GRANTS};

use crate::McpError;

/// Where the servers' socket directories live, under the Astrid home's `run/` (masked in
/// every sandbox).
const SOCKETS_DIR: &str = "mcp-net";

/// The route is the grant: nothing else can arrive on its socket. A connection the airlock
/// stops is logged by the relay (the bridge cannot append to the audit chain).
struct Granted;

impl relay::Gate for Granted {
    fn authorize(&self, _: &Url) -> Result<(), String> {
        Ok(())
    }
}

/// Opens the routes for `grants` and starts carrying their connections; the returned
/// [`SandboxNet`] is what the sandbox is started with. The sockets live under `runtime`
/// (the Astrid home's `run/`).
pub(crate) fn open(
    runtime: &Path,
    server: &str,
    grants: &[NetGrant],
) -> Result<(Relay, SandboxNet), McpError> {
    if grants.len() > MAX_NET_GRANTS {
        return Err(McpError::Server(format!(
            "`{server}` has {} network grants; at most {MAX_NET_GRANTS}",
            grants.len()
        )));
    }
    let mut targets = Vec::with_capacity(grants.len());
    for g in grants {
        g.check().map_err(McpError::Server)?;
        let local = g.local.then(|| LocalTarget {
            host: g.host.clone(),
            port: g.port,
        });
        targets.push(RelayTarget {
            host: g.host.clone(),
            port: g.port,
            consent: Consent {
                local: local.into_iter().collect(),
            },
        });
    }
    let airlock = Arc::new(
        Airlock::new(AirlockConfig::default())
            .map_err(|e| McpError::Server(format!("the airlock: {e}")))?,
    );
    let (relay, plan) = relay::open(
        &tokio::runtime::Handle::current(),
        airlock,
        Arc::new(Granted),
        &runtime.join(SOCKETS_DIR),
        &format!("mcp:{server}"),
        &targets,
    )
    .map_err(|e| McpError::Server(format!("`{server}`'s network: {e}")))?;
    Ok((relay, sandbox_net(plan)))
}

/// The relay's plan as the sandbox takes it.
pub(crate) fn sandbox_net(plan: relay::RelayPlan) -> SandboxNet {
    SandboxNet {
        socket_dir: plan.socket_dir,
        hosts_file: plan.hosts_file,
        routes: plan
            .routes
            .into_iter()
            .map(|(listen, socket)| NetRoute { listen, socket })
            .collect(),
    }
}

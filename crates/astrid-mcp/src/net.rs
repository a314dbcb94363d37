//! An added server's network grants (`--allow-net`, `--allow-local-net`) as the airlock's
//! relay (`astrid_egress::relay`): each grant a route, authorized by being granted (nothing
//! else can arrive on its socket), a local grant with the exact consent for its `host:port`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use astrid_egress::relay::{self, Relay, RelayTarget};
use astrid_egress::{Airlock, AirlockConfig, Consent, EgressError, LocalTarget, Url};
use astrid_process::{NetRoute, SandboxNet};
use astrid_types::mcp::{ConnectOutcome, NetGrant, MAX_NET_GRANTS};

use crate::McpError;

/// Where the servers' socket directories live, under the Astrid home's `run/` (masked in
/// every sandbox).
const SOCKETS_DIR: &str = "mcp-net";

/// Where each connection through a granted route is reported: `(target, outcome)`, the
/// target as granted (`host:port`). The bridge sends them to the daemon for the principal's
/// audit chain (`Launcher::reporter`).
pub type ConnectReport = Arc<dyn Fn(&str, ConnectOutcome) + Send + Sync>;

/// The route is the grant: nothing else can arrive on its socket. Each connection made or
/// refused is reported (and logged by the relay).
struct Granted {
    report: Option<ConnectReport>,
}

impl Granted {
    fn tell(&self, t: &RelayTarget, outcome: ConnectOutcome) {
        if let Some(report) = &self.report {
            report(&target_of(t), outcome);
        }
    }
}

/// `host:port` as a grant is written (`[::1]:80` for an IPv6 literal).
fn target_of(t: &RelayTarget) -> String {
    if t.host.contains(':') && !t.host.starts_with('[') {
        format!("[{}]:{}", t.host, t.port)
    } else {
        format!("{}:{}", t.host, t.port)
    }
}

impl relay::Gate for Granted {
    fn authorize(&self, _: &Url) -> Result<(), String> {
        Ok(())
    }

    fn connected(&self, t: &RelayTarget, peer: SocketAddr) {
        let address = peer.to_string();
        self.tell(t, ConnectOutcome::Connected { address });
    }

    fn failed(&self, t: &RelayTarget, e: &EgressError) {
        let reason = e.to_string();
        self.tell(t, ConnectOutcome::Refused { reason });
    }
}

/// Opens the routes for `grants` and starts carrying their connections; the returned
/// [`SandboxNet`] is what the sandbox is started with. The sockets live under `runtime`
/// (the Astrid home's `run/`).
pub(crate) fn open(
    runtime: &Path,
    server: &str,
    grants: &[NetGrant],
    report: Option<ConnectReport>,
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
        Arc::new(Granted { report }),
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

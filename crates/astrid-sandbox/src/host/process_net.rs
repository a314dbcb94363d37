//! A subprocess's network: the `[capabilities] process_net` targets of its capsule, routed
//! into its sandbox for one `astrid:process` run through the airlock's relay
//! (`astrid_egress::relay`). Nothing is decided when the run starts: each connection the
//! program opens is one hop through the same gate as an `astrid:net` connect (`HopGate`:
//! the manifest's `net` ceiling, then the operator's local-egress consent or a
//! `net:connect` token or a person), audited as `process.connect`, then the airlock's
//! address rules, whose refusals are audited too. A local target not consented is asked
//! about at run time as for `astrid:net` (`net.local`); a yes holds for the rest of the run.
//! A run without `process_net` gets no route, as before.

use std::sync::Arc;

use astrid_egress::relay::{self, Gate, Relay, RelayTarget};
use astrid_egress::{Authorize, EgressError};
use astrid_process::{NetRoute, SandboxNet, SandboxPolicy};
use astrid_types::mcp::NetGrant;
use url::Url;

use super::http::HopGate;
use super::HostState;
use crate::authorize::Gatekeeper;
use crate::bindings::astrid::process::process::ErrorCode;

const OP: &str = "process.connect";
/// The runs' socket directories, under the Astrid home's `run/` (masked in every sandbox).
const SOCKETS_DIR: &str = "process-net";

/// The capsule's gate for the connections of one run: one `HopGate` for the whole run, so a
/// local target a person allowed once stays allowed for the rest of that run (one use of
/// the program), and nothing outlives it.
struct RunGate {
    hop: HopGate,
    /// The command line, for the audit entry of an airlock refusal.
    line: String,
}

impl Gate for RunGate {
    fn authorize(&self, url: &Url) -> Result<(), String> {
        self.hop.authorize(url)
    }

    fn consent_local(&self, url: &Url, why: &str) -> bool {
        self.hop.consent_local(url, why)
    }

    fn failed(&self, target: &RelayTarget, error: &EgressError) {
        // The gate allowed it; the address rules did not (or the host could not be reached,
        // which is not a refusal and is the program's to see).
        if let EgressError::Denied(reason) = error {
            Gatekeeper {
                ctx: &self.hop.ctx,
                actor: &self.hop.actor,
                deadline: self.hop.deadline,
                may_ask: false,
            }
            .record_denial(
                OP,
                &format!("net:connect:{}:{}", target.host, target.port),
                &format!("airlock: {reason} (for its subprocess `{}`)", self.line),
            );
        }
    }
}

impl HostState {
    /// The routes of this capsule's `process_net` for one run of `line`, or `None` when it
    /// declares none.
    pub(super) fn process_routes(
        &mut self,
        policy: &SandboxPolicy,
        line: &str,
    ) -> Result<Option<(Relay, SandboxNet)>, ErrorCode> {
        let declared = &self.ctx.manifest.capabilities.process_net;
        if declared.is_empty() {
            return Ok(None);
        }
        let Some(net) = self.ctx.net.clone() else {
            let reason = format!(
                "capsule `{}` declares process_net but no [capabilities] net targets",
                self.ctx.capsule()
            );
            self.denied(OP, &format!("process_net:{}", declared.join(",")), &reason);
            return Err(ErrorCode::Denied(reason));
        };
        let mut targets = Vec::with_capacity(declared.len());
        for t in declared {
            // Checked when the manifest was read.
            let g = NetGrant::parse(t, true).map_err(ErrorCode::InvalidArgument)?;
            targets.push(RelayTarget {
                host: g.host,
                port: g.port,
                consent: net.consent.clone(),
            });
        }
        let shown = line.to_string();
        let gate = RunGate {
            hop: HopGate::new(
                self,
                net.clone(),
                OP,
                "open",
                Box::new(move |url| {
                    let host = url.host_str().unwrap_or_default();
                    let port = url.port_or_known_default().unwrap_or_default();
                    format!("a connection to {host}:{port} for its subprocess `{shown}`")
                }),
            ),
            line: line.to_string(),
        };
        let (relay, plan) = relay::open(
            &net.rt,
            net.airlock.clone(),
            Arc::new(gate),
            &policy.runtime_dir().join(SOCKETS_DIR),
            &format!("capsule:{}", self.ctx.capsule()),
            &targets,
        )
        .map_err(|e| ErrorCode::Unavailable(format!("the subprocess's network: {e}")))?;
        let routes = plan
            .routes
            .into_iter()
            .map(|(listen, socket)| NetRoute { listen, socket })
            .collect();
        Ok(Some((
            relay,
            SandboxNet {
                socket_dir: plan.socket_dir,
                hosts_file: plan.hosts_file,
                routes,
            },
        )))
    }
}

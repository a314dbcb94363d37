//! `astrid:http`: outbound requests through the airlock. Each hop of a request (the first
//! URL and every redirect) passes the manifest ceiling, then the operator's local-egress
//! consent or the capability layer (token or human), and is audited before any connection is
//! made; the airlock then applies its address policy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use astrid_crypto::Resource;
use astrid_egress::{Authorize, EgressError, EgressRequest};
use url::Url;

use super::HostState;
use crate::authorize::{Ceiling, Effect, Gatekeeper, How};
use crate::bindings::astrid::http::http::{ErrorCode, Header, Host, Request, ResponseHead};
use crate::chain::Actor;
use crate::context::{CapsuleContext, NetAccess};

/// Open responses per invocation; each holds a connection.
const MAX_OPEN: usize = 16;
/// Longest URL kept in an audit entry.
const MAX_AUDIT_URL: usize = 512;
const OP: &str = "http.request";

fn host_port(url: &Url) -> Option<(String, u16)> {
    let host = match url.host()? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    Some((host, url.port_or_known_default()?))
}

fn short(url: &Url) -> String {
    let mut s = url.as_str().to_string();
    if s.len() > MAX_AUDIT_URL {
        let mut cut = MAX_AUDIT_URL;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// The host's check for one hop, called by the airlock.
struct HopGate {
    ctx: Arc<CapsuleContext>,
    actor: Actor,
    net: Arc<NetAccess>,
    method: String,
    deadline: Option<Instant>,
    deadline_hit: AtomicBool,
    /// Set when this gate refused a hop (and so already audited the refusal).
    refused: AtomicBool,
}

impl HopGate {
    fn gatekeeper(&self) -> Gatekeeper<'_> {
        Gatekeeper {
            ctx: &self.ctx,
            actor: &self.actor,
            // The airlock calls this mid-request and cannot pause the invocation's deadline,
            // so a person gets what is left of it.
            deadline: self.deadline,
            may_ask: true,
        }
    }
}

impl Authorize for HopGate {
    fn authorize(&self, url: &Url) -> Result<(), String> {
        let verdict = self.check(url);
        if verdict.is_err() {
            self.refused.store(true, Ordering::Relaxed);
        }
        verdict
    }
}

impl HopGate {
    fn check(&self, url: &Url) -> Result<(), String> {
        let gate = self.gatekeeper();
        let Some((host, port)) = host_port(url) else {
            let reason = format!("`{}` names no host and port", short(url));
            gate.record_denial(OP, url.as_str(), &reason);
            return Err(reason);
        };
        let what = format!("{} {}", self.method, short(url));
        let mut effect = Effect::new(
            OP,
            Resource::NetConnect { host, port },
            Ceiling::Manifest,
            format!("capsule `{}` wants to send {what}", self.actor),
        );
        effect.consented = url
            .host()
            .is_some_and(|h| self.net.consent.covers(&h, port));
        let how = gate.authorize(&effect).map_err(|denial| {
            if denial.deadline_hit() {
                self.deadline_hit.store(true, Ordering::Relaxed);
            }
            denial.to_string()
        })?;
        gate.record_allowed(
            OP,
            &effect.resource.to_string(),
            &format!("{what} ({})", audit_how(how)),
        )
        .map_err(|d| d.to_string())
    }
}

/// How the audit entry of an allowed hop names what let it through.
fn audit_how(how: How) -> &'static str {
    match how {
        How::Consent => "local-egress consent for this capsule",
        How::Token | How::Person(_) => "capability",
    }
}

fn map(e: EgressError) -> ErrorCode {
    match e {
        EgressError::Denied(m) => ErrorCode::Denied(m),
        EgressError::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
        EgressError::Timeout(m) => ErrorCode::Timeout(m),
        EgressError::TooLarge(m) => ErrorCode::TooLarge(m),
        EgressError::Connection(m) => ErrorCode::Connection(m),
    }
}

impl Host for HostState {
    fn send(&mut self, req: Request) -> Result<(u64, ResponseHead), ErrorCode> {
        let Some(net) = self.ctx.net.clone() else {
            let reason = format!(
                "capsule `{}` declares no [capabilities] net targets",
                self.ctx.capsule()
            );
            self.denied(OP, &req.url, &reason);
            return Err(ErrorCode::Denied(reason));
        };
        if self.http.len() >= MAX_OPEN {
            return Err(ErrorCode::InvalidArgument(format!(
                "at most {MAX_OPEN} open responses per invocation; close some first"
            )));
        }
        let asked = (req.timeout_ms > 0).then(|| Duration::from_millis(u64::from(req.timeout_ms)));
        let budget = self.budget(asked);
        let gate = HopGate {
            ctx: self.ctx.clone(),
            actor: self.actor.clone(),
            net: net.clone(),
            method: req.method.to_ascii_uppercase(),
            deadline: self.deadline,
            deadline_hit: AtomicBool::new(false),
            refused: AtomicBool::new(false),
        };
        let request = EgressRequest {
            method: req.method,
            url: req.url.clone(),
            headers: req.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: req.body,
            timeout: budget,
            credentials: net.credentials.clone(),
        };
        let result = net
            .rt
            .block_on(net.airlock.send(request, &net.consent, &gate));
        if gate.deadline_hit.load(Ordering::Relaxed) {
            self.deadline_hit = true;
        }
        let response = result.map_err(|e| {
            if let EgressError::Denied(reason) = &e {
                // The gate records its own refusals; this records the airlock's.
                if !gate.refused.load(Ordering::Relaxed) {
                    self.denied(OP, &req.url, &format!("airlock: {reason}"));
                }
            }
            if matches!(e, EgressError::Timeout(_))
                && self.budget(None).is_some_and(|d| d.is_zero())
            {
                self.deadline_hit = true;
            }
            map(e)
        })?;
        let head = ResponseHead {
            status: response.status,
            headers: response
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            final_url: response.final_url.clone(),
        };
        let handle = self.next_http;
        self.next_http += 1;
        self.http.insert(handle, response);
        Ok((handle, head))
    }

    fn read_body(&mut self, handle: u64, max_bytes: u32) -> Result<Vec<u8>, ErrorCode> {
        let rt = match &self.ctx.net {
            Some(net) => net.rt.clone(),
            None => return Err(ErrorCode::UnknownHandle),
        };
        let budget = self.budget(None);
        let Some(response) = self.http.get_mut(&handle) else {
            return Err(ErrorCode::UnknownHandle);
        };
        let max = (max_bytes as usize).clamp(1, 1024 * 1024);
        let read = response.chunk(max);
        let result = match budget {
            Some(b) => rt.block_on(async { tokio::time::timeout(b, read).await }),
            None => Ok(rt.block_on(read)),
        };
        match result {
            Ok(Ok(Some(bytes))) => Ok(bytes),
            Ok(Ok(None)) => {
                self.http.remove(&handle);
                Ok(Vec::new())
            }
            Ok(Err(e)) => {
                self.http.remove(&handle);
                Err(map(e))
            }
            Err(_) => {
                self.http.remove(&handle);
                self.deadline_hit = true;
                Err(ErrorCode::Timeout(
                    "the invocation's deadline passed while reading the body".into(),
                ))
            }
        }
    }

    fn close(&mut self, handle: u64) {
        self.http.remove(&handle);
    }
}

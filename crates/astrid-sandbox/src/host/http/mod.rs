//! `astrid:http`: outbound requests through the airlock. Each hop of a request (the first
//! URL and every redirect) passes the manifest ceiling, then the operator's local-egress
//! consent or the capability layer (token or human), and is audited before any connection is
//! made; the airlock then applies its address policy.
//!
//! This module is the version-independent core; `v1_0` and `v1_1` are the thin adapters that
//! turn each WIT version's types into [`SendArgs`] and [`HttpFailure`] back into its
//! `error-code`. A capsule built against either version gets the same checks.

mod upload;
mod v1_0;
mod v1_1;
mod v1_2;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use astrid_crypto::Resource;
use astrid_egress::{Authorize, EgressError, EgressRequest, Integrity, Redirects};
use url::Url;

use super::HostState;
use crate::authorize::{Ceiling, Effect, Gatekeeper, How};
use crate::chain::Actor;
use crate::context::{CapsuleContext, NetAccess};

/// One request, whichever WIT version it came through.
pub(crate) struct SendArgs {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// 0 means the host default.
    pub timeout_ms: u32,
    /// `None` is the operator's default.
    pub redirects: Option<Redirects>,
    /// `None` is the operator's cap.
    pub max_body: Option<u64>,
    pub https_only: bool,
    pub integrity: Option<String>,
}

/// The head of the response a handle was opened for.
pub(crate) struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub final_url: String,
}

/// Why a call failed, before a version's adapter names it in its own `error-code`.
pub(crate) enum HttpFailure {
    Egress(EgressError),
    UnknownHandle,
}

impl From<EgressError> for HttpFailure {
    fn from(e: EgressError) -> Self {
        HttpFailure::Egress(e)
    }
}

/// Longest URL kept in an audit entry.
const MAX_AUDIT_URL: usize = 512;
const OP: &str = "http.request";

pub(crate) fn host_port(url: &Url) -> Option<(String, u16)> {
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

/// What a hop does, for the person asked and the audit entry (`GET https://…`).
pub(crate) type Describe = Box<dyn Fn(&Url) -> String + Send + Sync>;

/// The host's check for one hop (an HTTP request or redirect, an `astrid:net` connect),
/// called by the airlock.
pub(crate) struct HopGate {
    pub ctx: Arc<CapsuleContext>,
    pub actor: Actor,
    pub net: Arc<NetAccess>,
    /// The audit action (`http.request`, `net.connect`).
    pub op: &'static str,
    /// The verb of the question a person is asked (`send`, `open`).
    pub verb: &'static str,
    pub describe: Describe,
    pub deadline: Option<Instant>,
    pub deadline_hit: AtomicBool,
    /// Set when this gate refused a hop (and so already audited the refusal).
    pub refused: AtomicBool,
    /// The local targets (`host`, `port`) a person let this request reach at run time
    /// (`consent_local`); a redirect elsewhere is checked afresh.
    pub local_consent: std::sync::Mutex<Vec<(String, u16)>>,
}

impl HopGate {
    /// The gate of one request, connection or run of `state`'s invocation: `op` is the audit
    /// action, `verb` and `describe` word the question a person is asked.
    pub(crate) fn new(
        state: &HostState,
        net: Arc<NetAccess>,
        op: &'static str,
        verb: &'static str,
        describe: Describe,
    ) -> HopGate {
        HopGate {
            ctx: state.ctx.clone(),
            actor: state.actor.clone(),
            net,
            op,
            verb,
            describe,
            deadline: state.deadline,
            deadline_hit: AtomicBool::new(false),
            refused: AtomicBool::new(false),
            local_consent: Default::default(),
        }
    }

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

    /// A target on this machine or the local network, not consented: the person is asked
    /// (the kernel's question `net.local`, remembered as they choose), and only for a
    /// target the manifest's `net` covers, so a capsule cannot make anyone answer about a
    /// host it may not reach anyway.
    fn consent_local(&self, url: &Url, why: &str) -> bool {
        let Some((host, port)) = host_port(url) else {
            return false;
        };
        let resource = Resource::NetConnect {
            host: host.clone(),
            port,
        };
        let effect = Effect::new(self.op, resource.clone(), Ceiling::Manifest, String::new());
        let gate = self.gatekeeper();
        if gate.within_ceiling(&effect).is_err() {
            return false;
        }
        let what = (self.describe)(url);
        let detail = format!(
            "capsule `{}` wants to {} {what}, which is on this machine or your local network \
             ({why}); you have not consented to it with `astrid egress allow`",
            self.actor, self.verb
        );
        let yes = gate.ask_local(resource, detail);
        if yes {
            self.local_consent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((host, port));
        }
        yes
    }
}

impl HopGate {
    fn check(&self, url: &Url) -> Result<(), String> {
        let gate = self.gatekeeper();
        let Some((host, port)) = host_port(url) else {
            let reason = format!("`{}` names no host and port", short(url));
            gate.record_denial(self.op, url.as_str(), &reason);
            return Err(reason);
        };
        let what = (self.describe)(url);
        let asked_now = self
            .local_consent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(h, p)| *h == host && *p == port);
        let mut effect = Effect::new(
            self.op,
            Resource::NetConnect { host, port },
            Ceiling::Manifest,
            format!("capsule `{}` wants to {} {what}", self.actor, self.verb),
        );
        effect.consented = asked_now
            || url
                .host()
                .is_some_and(|h| self.net.consent.covers(&h, port));
        let how = gate.authorize(&effect).map_err(|denial| {
            if denial.deadline_hit() {
                self.deadline_hit.store(true, Ordering::Relaxed);
            }
            denial.to_string()
        })?;
        gate.record_allowed(
            self.op,
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

impl HostState {
    pub(crate) fn http_send(&mut self, req: SendArgs) -> Result<(u64, Head), HttpFailure> {
        let url = req.url.clone();
        let (net, request, gate) = self.prepare(req)?;
        let result = net
            .rt
            .block_on(net.airlock.send(request, &net.consent, &gate));
        let response = self.settle(&url, &gate, result)?;
        Ok(self.hold(response))
    }

    /// A response's head, and the response kept under a new handle.
    pub(crate) fn hold(&mut self, response: astrid_egress::EgressResponse) -> (u64, Head) {
        let head = Head {
            status: response.status,
            headers: response.headers.clone(),
            final_url: response.final_url.clone(),
        };
        let handle = self.next_handle;
        self.next_handle += 1;
        self.http.insert(handle, response);
        (handle, head)
    }

    /// Everything before a request goes to the airlock: net access (a capsule with none is
    /// refused and audited here), the open-handle bound, the integrity and body caps, the
    /// time budget and the hop gate.
    pub(crate) fn prepare(
        &mut self,
        req: SendArgs,
    ) -> Result<(Arc<NetAccess>, EgressRequest, HopGate), HttpFailure> {
        let Some(net) = self.ctx.net.clone() else {
            let reason = format!(
                "capsule `{}` declares no [capabilities] net targets",
                self.ctx.capsule()
            );
            self.denied(OP, &req.url, &reason);
            return Err(EgressError::Denied(reason).into());
        };
        let max_open = net.airlock.config().max_open_responses;
        if self.http.len() + self.uploads.len() >= max_open {
            return Err(EgressError::InvalidArgument(format!(
                "at most {max_open} open responses and request bodies per invocation; close \
                 some first"
            ))
            .into());
        }
        let integrity = req.integrity.as_deref().map(Integrity::parse).transpose()?;
        // A body checked for integrity is held by the host until the guest reads it, so the
        // bodies one invocation holds that way share the operator's body cap between them
        // (16 open responses must not mean 16 times the cap in host memory).
        let max_body = match integrity {
            None => req.max_body,
            Some(_) => {
                let cap = net.airlock.config().max_body;
                let held: u64 = self.http.values().map(|r| r.held_bytes() as u64).sum();
                let room = cap.saturating_sub(held);
                if room == 0 {
                    return Err(EgressError::TooLarge(format!(
                        "this invocation already holds {held} bytes of checked bodies, the \
                         {cap}-byte cap; read or close them first"
                    ))
                    .into());
                }
                Some(req.max_body.map_or(room, |m| m.min(room)))
            }
        };
        let asked = (req.timeout_ms > 0).then(|| Duration::from_millis(u64::from(req.timeout_ms)));
        let budget = self.budget(asked);
        let method = req.method.to_ascii_uppercase();
        let gate = HopGate::new(
            self,
            net.clone(),
            OP,
            "send",
            Box::new(move |url| format!("{method} {}", short(url))),
        );
        let request = EgressRequest {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
            timeout: budget,
            credentials: net.credentials.clone(),
            redirects: req.redirects,
            max_body,
            https_only: req.https_only,
            integrity,
        };
        Ok((net, request, gate))
    }

    /// What the airlock answered, with its refusals audited (the gate records its own) and a
    /// spent deadline noted.
    pub(crate) fn settle<T>(
        &mut self,
        url: &str,
        gate: &HopGate,
        result: Result<T, EgressError>,
    ) -> Result<T, HttpFailure> {
        if gate.deadline_hit.load(Ordering::Relaxed) {
            self.deadline_hit = true;
        }
        result.map_err(|e| {
            match &e {
                EgressError::Denied(reason) if !gate.refused.load(Ordering::Relaxed) => {
                    self.denied(OP, url, &format!("airlock: {reason}"));
                }
                // The hop was allowed (and audited); what came back was not what the capsule
                // pinned, and that is recorded too.
                EgressError::Integrity(reason) => {
                    self.denied(OP, url, &format!("integrity: {reason}"));
                }
                _ => {}
            }
            if matches!(e, EgressError::Timeout(_))
                && self.budget(None).is_some_and(|d| d.is_zero())
            {
                self.deadline_hit = true;
            }
            e.into()
        })
    }

    pub(crate) fn http_read(
        &mut self,
        handle: u64,
        max_bytes: u32,
    ) -> Result<Vec<u8>, HttpFailure> {
        self.http_read_within(handle, max_bytes, None)
    }

    /// As [`HostState::http_read`], waiting at most `asked` (`None`: as long as the
    /// invocation may). A wait that ran out before the invocation's deadline leaves the
    /// response open: reading is cancel-safe, so nothing of the body is lost.
    pub(crate) fn http_read_within(
        &mut self,
        handle: u64,
        max_bytes: u32,
        asked: Option<std::time::Duration>,
    ) -> Result<Vec<u8>, HttpFailure> {
        let rt = match &self.ctx.net {
            Some(net) => net.rt.clone(),
            None => return Err(HttpFailure::UnknownHandle),
        };
        let budget = self.budget(asked);
        let Some(response) = self.http.get_mut(&handle) else {
            return Err(HttpFailure::UnknownHandle);
        };
        let max = (max_bytes as usize).clamp(1, 1024 * 1024);
        match super::within(&rt, budget, response.chunk(max)) {
            Some(Ok(Some(bytes))) => Ok(bytes),
            Some(Ok(None)) => {
                self.http.remove(&handle);
                Ok(Vec::new())
            }
            Some(Err(e)) => {
                self.http.remove(&handle);
                Err(e.into())
            }
            None if asked.is_some() && self.budget(None).is_none_or(|d| !d.is_zero()) => Err(
                EgressError::Timeout("no part of the body arrived within the time asked".into())
                    .into(),
            ),
            None => {
                self.http.remove(&handle);
                self.deadline_hit = true;
                Err(EgressError::Timeout(
                    "the invocation's deadline passed while reading the body".into(),
                )
                .into())
            }
        }
    }

    pub(crate) fn http_close(&mut self, handle: u64) {
        self.http.remove(&handle);
    }
}

//! The one authorization step every gated effect passes: the manifest ceiling, then a
//! capability token, then (only when no live token covers it) the principal's human, and
//! finally a durable audit entry. Host functions describe the effect as a typed [`Effect`]
//! and get back either [`How`] it was let through or a typed [`Denial`], already audited.
//!
//! The kinds of "no" are kept apart on purpose: a missing token may be put to a person,
//! while a revoked or forged one, a path outside the manifest, or a credential location is
//! refused without asking anyone (see [`Denial::asked_a_person`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use astrid_crypto::{DenialReason, Resource};
use astrid_types::wire::ApprovalDecision;

use crate::chain::Actor;
use crate::context::{ApprovalAsk, Asked, AuditDecision, CapsuleContext};
use crate::host::ceiling::{declared_net, effect_within_manifest};

/// How long an effect waits for a human when no token covers it; the invocation's deadline
/// may cap it sooner (see [`Gatekeeper::deadline`]).
pub const APPROVAL_WAIT: Duration = Duration::from_secs(300);

/// Why the principal's capability tokens did not let an effect through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenDenial {
    /// No live token covers the effect: the one case a person may be asked about.
    #[error("no capability token covers `{0}`")]
    Missing(Resource),
    /// A token covered it and was refused (revoked, forged, expired, …); `reason` says which.
    #[error("capability for `{resource}` refused: {reason}")]
    Refused {
        resource: Resource,
        reason: DenialReason,
    },
}

impl TokenDenial {
    /// The gate's answer for `resource`, typed: "nothing covers it" stays apart from "a
    /// token covers it and is not valid".
    pub fn from_reason(resource: &Resource, reason: DenialReason) -> TokenDenial {
        match reason {
            DenialReason::NoToken => TokenDenial::Missing(resource.clone()),
            reason => TokenDenial::Refused {
                resource: resource.clone(),
                reason,
            },
        }
    }

    /// The effect the tokens were asked about.
    pub fn resource(&self) -> &Resource {
        match self {
            TokenDenial::Missing(r) | TokenDenial::Refused { resource: r, .. } => r,
        }
    }

    /// Whether the principal's human may be asked instead of this token.
    pub fn person_may_decide(&self) -> bool {
        match self {
            TokenDenial::Missing(_) => true,
            TokenDenial::Refused { reason, .. } => reason.person_may_decide(),
        }
    }
}

/// Where the effect stands against the capsule's manifest ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ceiling {
    /// Checked by [`Gatekeeper::authorize`] itself: `[capabilities] net`, `process`,
    /// `identity` and `uplink`.
    Manifest,
    /// Already accepted by the host function's own gate (the filesystem roots, which must
    /// resolve a path before the effect can be named at all).
    Accepted,
    /// Past the manifest's plain roots, reachable only through a token (`$granted`): a
    /// person approving it would widen the ceiling itself, so nobody is asked.
    TokenOnly,
    /// Inside this credential location: only a token whose pattern names the location
    /// opens it, and nobody is ever asked.
    Credential(PathBuf),
}

/// One effect a host function is about to perform, named by the host, never by the guest.
#[derive(Debug, Clone)]
pub struct Effect {
    /// The host's name for the operation (`fs.read`, `http.request`, `process.run`, …).
    pub op: &'static str,
    pub resource: Resource,
    pub ceiling: Ceiling,
    /// What a person asked about it is shown, in the host's words.
    pub ask: String,
    /// The operator consented to this exact target for this capsule (local egress): the
    /// token and approval steps are skipped, the manifest and the audit entry are not.
    pub consented: bool,
}

impl Effect {
    pub fn new(op: &'static str, resource: Resource, ceiling: Ceiling, ask: String) -> Effect {
        Effect {
            op,
            resource,
            ceiling,
            ask,
            consented: false,
        }
    }
}

/// How an effect was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// A capability token of the principal covers it.
    Token,
    /// The operator's local-egress consent for this capsule covers it.
    Consent,
    /// The principal's human said yes (once, for the session or always).
    Person(ApprovalDecision),
}

/// Why an effect was refused. Each one is in the principal's audit chain by the time the
/// caller sees it (an [`AuditUnavailable`](Denial::AuditUnavailable) as far as the chain
/// can take it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// Past the capsule's manifest: nobody is asked, no token is looked at.
    #[error("capsule `{capsule}` does not declare `{what}` in [capabilities] {key}")]
    OutsideManifest {
        capsule: String,
        /// `host:port`, the program or the profile fact.
        what: String,
        /// The manifest key that would have to name it (`net`, `process`, `identity`).
        key: &'static str,
    },
    /// A switch of the manifest (`[capabilities] uplink`) is off: nobody is asked, no token
    /// is looked at.
    #[error("capsule `{capsule}` does not set `{key} = true` in [capabilities]")]
    NotEnabled { capsule: String, key: &'static str },
    /// Reachable only through a token, and none covers it.
    #[error(
        "`{path}` lies outside capsule `{capsule}`'s manifest ceiling, which reaches it only \
         through a capability token ({missing}); nobody is asked. To allow it deliberately, \
         run `astrid caps grant {principal} {}`", .missing.resource()
    )]
    TokenOnly {
        capsule: String,
        principal: String,
        path: String,
        missing: Box<TokenDenial>,
    },
    /// Inside a credential location without a token naming it.
    #[error(
        "`{path}` is inside the credential location `{location}`, which is never opened by an \
         approval ({missing} naming it); to allow it deliberately, run `astrid caps grant \
         {principal} {}`", .missing.resource()
    )]
    CredentialLocation {
        principal: String,
        path: String,
        location: String,
        missing: Box<TokenDenial>,
    },
    /// A token covers it and is revoked or forged (or the revocation list is unreadable):
    /// refused without asking.
    #[error("{0}; nobody is asked")]
    TokenRefused(Box<TokenDenial>),
    /// No token, and the person said no (or did not answer in time).
    #[error("{missing}, and the approval request was denied")]
    ApprovalDenied {
        missing: Box<TokenDenial>,
        /// The invocation's deadline ended the wait, not the person.
        deadline_hit: bool,
    },
    /// No token, and nobody could be asked.
    #[error("{missing}, and approval could not be asked: {why}")]
    ApprovalUnavailable {
        missing: Box<TokenDenial>,
        why: String,
    },
    /// Everything said yes but the audit entry could not be made durable.
    #[error("the audit trail is unavailable: {0}")]
    AuditUnavailable(String),
}

impl Denial {
    /// Whether a person was put the question (and said no or could not answer).
    pub fn asked_a_person(&self) -> bool {
        matches!(self, Denial::ApprovalDenied { .. })
    }

    /// Whether the invocation's deadline, rather than the person, ended the approval wait.
    pub fn deadline_hit(&self) -> bool {
        matches!(
            self,
            Denial::ApprovalDenied {
                deadline_hit: true,
                ..
            }
        )
    }
}

/// The authorization step of one capsule context, acting for `actor`.
pub struct Gatekeeper<'a> {
    pub ctx: &'a CapsuleContext,
    pub actor: &'a Actor,
    /// When set, a person asked gets no longer than what is left before it (a blocking
    /// call that cannot pause the invocation); otherwise [`APPROVAL_WAIT`].
    pub deadline: Option<Instant>,
    /// Whether a person may be asked at all. `false` for a check with nobody behind it: a
    /// missing token is then [`Denial::ApprovalUnavailable`].
    pub may_ask: bool,
}

impl Gatekeeper<'_> {
    /// Manifest ceiling → token → approval, for `effect`. Every refusal is audited before
    /// this returns; an allowed effect is audited by [`record_allowed`](Self::record_allowed)
    /// once the caller knows its outcome (before it acts, for an effect that changes
    /// anything).
    pub fn authorize(&self, effect: &Effect) -> Result<How, Denial> {
        self.decide(effect).inspect_err(|denial| {
            self.record_denial(effect.op, &effect.resource.to_string(), &denial.to_string())
        })
    }

    fn decide(&self, effect: &Effect) -> Result<How, Denial> {
        self.within_ceiling(effect)?;
        if effect.consented {
            return Ok(How::Consent);
        }
        let tokens = &self.ctx.tokens;
        let token = match &effect.ceiling {
            Ceiling::Credential(location) => tokens.check_within(&effect.resource, location),
            _ => tokens.check(&effect.resource),
        };
        let missing = match token {
            Ok(()) => return Ok(How::Token),
            Err(missing) => Box::new(missing),
        };
        if !missing.person_may_decide() {
            return Err(Denial::TokenRefused(missing));
        }
        let principal = self.ctx.origin.principal.to_string();
        match &effect.ceiling {
            Ceiling::TokenOnly => Err(Denial::TokenOnly {
                capsule: self.ctx.capsule().to_string(),
                principal,
                path: fs_path(&effect.resource),
                missing,
            }),
            Ceiling::Credential(location) => Err(Denial::CredentialLocation {
                principal,
                path: fs_path(&effect.resource),
                location: location.display().to_string(),
                missing,
            }),
            Ceiling::Manifest | Ceiling::Accepted if !self.may_ask => {
                Err(Denial::ApprovalUnavailable {
                    missing,
                    why: "nobody is asked for this check".to_string(),
                })
            }
            Ceiling::Manifest | Ceiling::Accepted => self.ask_person(effect, missing),
        }
    }

    pub(crate) fn within_ceiling(&self, effect: &Effect) -> Result<(), Denial> {
        if effect.ceiling != Ceiling::Manifest {
            return Ok(());
        }
        let capsule = || self.ctx.capsule().to_string();
        match &effect.resource {
            Resource::NetConnect { host, port } if !declared_net(self.ctx, host, *port) => {
                Err(Denial::OutsideManifest {
                    capsule: capsule(),
                    what: format!("{host}:{port}"),
                    key: "net",
                })
            }
            Resource::ProcessExec(program)
                if !self.ctx.manifest.capabilities.process.contains(program) =>
            {
                Err(Denial::OutsideManifest {
                    capsule: capsule(),
                    what: program.clone(),
                    key: "process",
                })
            }
            Resource::Identity(fact)
                if !self.ctx.manifest.capabilities.declares_fact(fact.as_ref()) =>
            {
                Err(Denial::OutsideManifest {
                    capsule: capsule(),
                    what: fact.to_string(),
                    key: "identity",
                })
            }
            Resource::Uplink if !self.ctx.manifest.capabilities.uplink => Err(Denial::NotEnabled {
                capsule: capsule(),
                key: "uplink",
            }),
            _ => Ok(()),
        }
    }

    /// How long a person may take: the approval wait, or what is left of the deadline; and
    /// whether the deadline is what cut it.
    fn wait(&self) -> (Duration, bool) {
        match self.deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                (left.min(APPROVAL_WAIT), left < APPROVAL_WAIT)
            }
            None => (APPROVAL_WAIT, false),
        }
    }

    /// Asks the principal's approvers whether the capsule may reach `resource` (a
    /// `net:connect` target on this machine or the local network the operator has not
    /// consented to); `detail` says why it is local. The kernel records the question and
    /// the answer, and remembers an allow-session or allow-always one (the latter as the
    /// operator's consent). Only for a target within the manifest's `net`.
    pub fn ask_local(&self, resource: Resource, detail: String) -> bool {
        if !self.may_ask {
            return false;
        }
        let (timeout, _) = self.wait();
        let decision = self.ctx.approver.request(
            ApprovalAsk {
                actor: self.actor.clone(),
                action: astrid_types::approval::LOCAL_EGRESS.to_string(),
                asked: Asked::Effect(resource),
                detail,
                capsule_says: None,
                outside_manifest: None,
            },
            timeout,
        );
        matches!(decision, Ok(d) if d != ApprovalDecision::Deny)
    }

    fn ask_person(&self, effect: &Effect, missing: Box<TokenDenial>) -> Result<How, Denial> {
        let (timeout, capped) = self.wait();
        let started = Instant::now();
        let decision = self.ctx.approver.request(
            ApprovalAsk {
                actor: self.actor.clone(),
                action: effect.op.to_string(),
                asked: Asked::Effect(effect.resource.clone()),
                detail: effect.ask.clone(),
                capsule_says: None,
                outside_manifest: effect_within_manifest(self.ctx, &effect.resource).err(),
            },
            timeout,
        );
        match decision {
            Ok(ApprovalDecision::Deny) => Err(Denial::ApprovalDenied {
                missing,
                deadline_hit: capped && started.elapsed() >= timeout,
            }),
            Ok(yes) => Ok(How::Person(yes)),
            Err(why) => Err(Denial::ApprovalUnavailable { missing, why }),
        }
    }

    /// The last step: the allowed effect recorded durably. An error is the reason to refuse
    /// it after all (and withhold whatever it produced).
    pub fn record_allowed(&self, op: &str, resource: &str, outcome: &str) -> Result<(), Denial> {
        self.ctx
            .auditor
            .record(self.actor, op, resource, AuditDecision::Allowed, outcome)
            .map_err(|e| {
                tracing::error!(capsule = %self.actor, "audit append failed: {e}");
                Denial::AuditUnavailable(e)
            })
    }

    /// Logs and audits a refusal. The effect is refused whatever the append returns; a
    /// failed append is logged loudly since the chain now misses a decision.
    pub fn record_denial(&self, op: &str, resource: &str, reason: &str) {
        let ctx = self.ctx;
        tracing::warn!(
            principal = %ctx.origin.principal,
            capsule = %self.actor,
            "denied {op} {resource}: {reason}"
        );
        if let Err(e) = ctx
            .auditor
            .record(self.actor, op, resource, AuditDecision::Denied, reason)
        {
            tracing::error!(
                principal = %ctx.origin.principal,
                capsule = %self.actor,
                "audit append failed for a denied {op}: {e}"
            );
        }
    }
}

/// The path of a filesystem resource, as a person reads it.
fn fs_path(resource: &Resource) -> String {
    match resource {
        Resource::FsRead(p) | Resource::FsWrite(p) => p.display().to_string(),
        other => other.to_string(),
    }
}

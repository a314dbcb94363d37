//! `astrid:elicit`: a capsule asks its principal's human. Needs the manifest switch
//! (`[capabilities] elicit = true`); the question is checked here, asked and audited by the
//! kernel. The invocation's deadline is paused while a person reads and answers, as for an
//! approval, and the wait is never longer than an approval's.

use std::time::{Duration, Instant};

use astrid_types::elicit::{ElicitAnswer, ElicitKind};

use super::HostState;
use crate::authorize::{Denial, APPROVAL_WAIT};
use crate::bindings::astrid::elicit::elicit::{ErrorCode, Host};
use crate::context::{ElicitAsk, Elicited};

impl HostState {
    fn elicit(
        &mut self,
        prompt: String,
        kind: ElicitKind,
        timeout_ms: u32,
    ) -> Result<Elicited, ErrorCode> {
        let (action, resource) = kind.audit_names();
        if !self.ctx.manifest.capabilities.elicit {
            let d = Denial::NotEnabled {
                capsule: self.ctx.capsule().to_string(),
                key: "elicit",
            };
            self.denied(action, resource, &d.to_string());
            return Err(ErrorCode::Denied(d.to_string()));
        }
        if let Err(e) = kind.check(&prompt) {
            self.denied(action, resource, &e.to_string());
            return Err(ErrorCode::InvalidArgument(e.to_string()));
        }
        let wait = match timeout_ms {
            0 => APPROVAL_WAIT,
            ms => Duration::from_millis(u64::from(ms)).min(APPROVAL_WAIT),
        };
        let ask = ElicitAsk {
            actor: self.actor.clone(),
            prompt,
            kind,
        };
        let started = Instant::now();
        let outcome = self.ctx.elicitor.ask(ask, wait);
        // A person's reading time is not the capsule's running time.
        self.pause_for(started.elapsed());
        match outcome {
            Ok(Elicited::Answer(ElicitAnswer::Declined)) => Err(ErrorCode::Declined),
            Ok(answered @ (Elicited::Answer(_) | Elicited::SecretStored)) => Ok(answered),
            Ok(Elicited::NobodyToAsk) => Err(ErrorCode::Unavailable(format!(
                "no frontend of principal `{}` answers questions (open `astrid chat`)",
                self.ctx.origin.principal
            ))),
            Ok(Elicited::TimedOut) => Err(ErrorCode::Timeout(format!(
                "nobody answered within {} ms",
                wait.as_millis()
            ))),
            Err(e) => Err(ErrorCode::Failed(e)),
        }
    }
}

impl Host for HostState {
    fn text(&mut self, prompt: String, timeout_ms: u32) -> Result<String, ErrorCode> {
        match self.elicit(prompt, ElicitKind::Text, timeout_ms)? {
            Elicited::Answer(ElicitAnswer::Text(t)) => Ok(t),
            // The kernel takes only answers that fit the question.
            other => Err(ErrorCode::Failed(format!("unexpected answer {other:?}"))),
        }
    }

    fn secret(&mut self, name: String, prompt: String, timeout_ms: u32) -> Result<(), ErrorCode> {
        let decl = self.ctx.manifest.secrets.iter().find(|s| s.name == name);
        let Some(host) = decl.and_then(|d| d.host.clone()) else {
            let why = format!(
                "capsule `{}` declares no [[secret]] `{name}` with a `host` to bind it to",
                self.ctx.capsule()
            );
            self.denied("elicit.secret", "elicit:secret", &why);
            return Err(ErrorCode::InvalidArgument(why));
        };
        let origin = format!("https://{host}");
        // Nothing of the value comes back: only that it was stored.
        match self.elicit(prompt, ElicitKind::Secret { name, origin }, timeout_ms)? {
            Elicited::SecretStored => Ok(()),
            _ => Err(ErrorCode::Failed("the secret was not stored".into())),
        }
    }

    fn choose(
        &mut self,
        prompt: String,
        options: Vec<String>,
        timeout_ms: u32,
    ) -> Result<u32, ErrorCode> {
        match self.elicit(prompt, ElicitKind::Choice { options }, timeout_ms)? {
            Elicited::Answer(ElicitAnswer::Choice(i)) => Ok(i),
            other => Err(ErrorCode::Failed(format!("unexpected answer {other:?}"))),
        }
    }
}

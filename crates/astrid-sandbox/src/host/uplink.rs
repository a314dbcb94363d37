//! `astrid:uplink`: the principal's frontends. Listing them takes the manifest switch
//! (`[capabilities] uplink = true`); a notice is an effect like a file write: the switch,
//! then the `uplink:frontends` token or a person's yes, then the kernel's per-minute
//! allowance, and it is audited (level, size and digest, not the text) before the kernel
//! delivers it to the principal's own clients.

use astrid_crypto::Resource;
use astrid_types::uplink::{check_notice_text, NoticeLevel};

use super::HostState;
use crate::authorize::{Ceiling, Denial, Effect};
use crate::bindings::astrid::uplink::uplink::{ErrorCode, Frontend, Host, Level};

const LIST: &str = "uplink.frontends";
const NOTIFY: &str = "uplink.notify";

fn refused(d: Denial) -> ErrorCode {
    match d {
        Denial::AuditUnavailable(m) => ErrorCode::Failed(m),
        other => ErrorCode::Denied(other.to_string()),
    }
}

impl Host for HostState {
    fn frontends(&mut self) -> Result<Vec<Frontend>, ErrorCode> {
        let effect = Effect::new(LIST, Resource::Uplink, Ceiling::Manifest, String::new());
        let gate = self.gatekeeper();
        if let Err(d) = gate.within_ceiling(&effect) {
            gate.record_denial(LIST, &effect.resource.to_string(), &d.to_string());
            return Err(refused(d));
        }
        let frontends = self.ctx.frontends.list();
        gate.record_allowed(
            LIST,
            &effect.resource.to_string(),
            &format!("{} connected", frontends.len()),
        )
        .map_err(refused)?;
        Ok(frontends
            .into_iter()
            .map(|f| Frontend {
                client: f.client,
                credential: f.credential,
                shows_notices: f.shows_notices,
            })
            .collect())
    }

    fn notify(&mut self, level: Level, text: String) -> Result<u32, ErrorCode> {
        let level = match level {
            Level::Info => NoticeLevel::Info,
            Level::Warning => NoticeLevel::Warning,
            Level::Alert => NoticeLevel::Alert,
        };
        let resource = Resource::Uplink.to_string();
        if let Err(e) = check_notice_text(&text) {
            self.denied(NOTIFY, &resource, &e.to_string());
            return Err(ErrorCode::InvalidArgument(e.to_string()));
        }
        let ask = format!(
            "capsule `{}` wants to send a notice to your frontends",
            self.actor
        );
        let effect = Effect::new(NOTIFY, Resource::Uplink, Ceiling::Manifest, ask);
        self.authorize(&effect).map_err(refused)?;
        if let Err(why) = self.ctx.frontends.admit(&self.ctx.origin) {
            self.denied(NOTIFY, &resource, &why);
            return Err(ErrorCode::QuotaExceeded(why));
        }
        // The entry names the notice without holding it: what a capsule says to a person
        // may carry what it read, and the chain is readable by every device of the principal.
        let digest = blake3::hash(text.as_bytes()).to_hex();
        let outcome = format!("{level}, {} bytes, blake3 {}", text.len(), &digest[..16]);
        self.gatekeeper()
            .record_allowed(NOTIFY, &resource, &outcome)
            .map_err(refused)?;
        let reached = self.ctx.frontends.notify(&self.ctx.origin, level, &text);
        Ok(u32::try_from(reached).unwrap_or(u32::MAX))
    }
}

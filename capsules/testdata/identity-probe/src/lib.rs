//! `identity-probe`: reads the profile fact named by the payload through `astrid:identity`
//! and replies with what the guest got: `<principal> ok: <value>`, `<principal> unset`, or
//! `<principal> error: <error-code>: <message>`.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

#[derive(Default)]
struct IdentityProbe;

#[capsule]
impl IdentityProbe {
    #[astrid::handler]
    fn read(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let name = String::from_utf8_lossy(&event.payload);
        let who = identity::principal();
        let answer = match identity::fact(name.trim()) {
            Ok(Some(value)) => format!("{who} ok: {value}"),
            Ok(None) => format!("{who} unset"),
            Err(e) => format!("{who} error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }
}

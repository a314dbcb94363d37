//! `uplink-probe`: `notify` sends the payload (`<level> <text>`) as a notice through
//! `astrid:uplink` and replies `ok: <frontends reached>` or `error: <error-code>: <message>`;
//! `list` replies one line per frontend (`<client> <credential> <shows-notices>`) or the
//! error.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

#[derive(Default)]
struct UplinkProbe;

#[capsule]
impl UplinkProbe {
    #[astrid::handler]
    fn notify(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let payload = String::from_utf8_lossy(&event.payload);
        let (level, text) = payload.split_once(' ').unwrap_or((&payload, ""));
        let level = match level {
            "info" => uplink::Level::Info,
            "warning" => uplink::Level::Warning,
            _ => uplink::Level::Alert,
        };
        let answer = match uplink::notify(level, text) {
            Ok(n) => format!("ok: {n}"),
            Err(e) => format!("error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }

    #[astrid::handler]
    fn list(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let answer = match uplink::frontends() {
            Ok(list) => list
                .iter()
                .map(|f| format!("{} {} {}", f.client, f.credential, f.shows_notices))
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }
}

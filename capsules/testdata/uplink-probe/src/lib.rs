//! `uplink-probe`: `notify` sends the payload (`<level> <text>`) as a notice through
//! `astrid:uplink` and replies `ok: <frontends reached>` or `error: <error-code>: <message>`;
//! `list` replies one line per frontend (`<client> <credential> <shows-notices>`) or the
//! error. The hook `probe.ping` (`{"msg": …}`) becomes an info notice naming the hook, who
//! sent it and the message.
#![forbid(unsafe_code)]

use astrid_sdk::hooks::Hook;
use astrid_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(crate = "astrid_sdk::serde")]
struct Ping {
    msg: String,
}

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

    #[astrid::hook]
    fn on_ping(&self, hook: &Hook) -> Result<(), CapsuleError> {
        let ping: Ping = hook.payload_as()?;
        let text = format!("hook {} from {}: {}", hook.name, hook.source, ping.msg);
        uplink::notify(uplink::Level::Info, &text)?;
        Ok(())
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

//! `echo` 0.2.0: the same handlers as `capsules/echo`, but every reply names the version, so
//! the daemon's tests can tell which version served a call across a hot update.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

const VERSION: &str = "0.2.0";

#[derive(Default)]
struct Echo;

#[derive(Deserialize)]
struct ShoutArgs {
    text: String,
}

#[derive(Serialize)]
struct ShoutReply {
    text: String,
    version: &'static str,
}

#[capsule]
impl Echo {
    /// Replies `0.2.0:` followed by the payload.
    #[astrid::handler]
    fn echo(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let mut reply = format!("{VERSION}:").into_bytes();
        reply.extend_from_slice(&event.payload);
        Ok(Some(reply))
    }

    #[astrid::tool]
    fn shout(&self, args: ShoutArgs) -> Result<ShoutReply, CapsuleError> {
        Ok(ShoutReply {
            text: args.text.to_uppercase(),
            version: VERSION,
        })
    }

    #[astrid::handler]
    fn whoami(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(serde_json::to_vec(&env::caller())?))
    }

    /// Replies `0.2.0:` followed by the `GREETING` setting.
    #[astrid::handler]
    fn config(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(
            format!("{VERSION}:{}", env::var("GREETING")?).into_bytes(),
        ))
    }

    #[astrid::handler]
    fn forward(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        ipc::publish("echo.v1.out", &event.payload)?;
        Ok(Some(VERSION.as_bytes().to_vec()))
    }

    /// Busy-waits for the number of milliseconds in the payload, then names this version.
    #[astrid::handler]
    fn slow(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let ms: u64 = event
            .text()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| CapsuleError::invalid("payload must be a decimal millisecond count"))?;
        let until = time::Instant::now() + std::time::Duration::from_millis(ms);
        while time::Instant::now() < until {
            std::hint::spin_loop();
        }
        Ok(Some(format!("echo {VERSION}").into_bytes()))
    }
}

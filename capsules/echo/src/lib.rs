//! `echo`: the smallest useful capsule, and the runtime tests' probe for payloads, tools,
//! caller identity, configuration and publishing.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

/// Reported by `slow`, so a test can tell which version answered.
const VERSION: &str = "0.1.0";

#[derive(Default)]
struct Echo;

#[derive(Deserialize)]
struct ShoutArgs {
    text: String,
}

#[derive(Serialize)]
struct ShoutReply {
    text: String,
}

#[capsule]
impl Echo {
    /// Replies with the payload, byte for byte.
    #[astrid::handler]
    fn echo(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(event.payload.clone()))
    }

    #[astrid::tool]
    fn shout(&self, args: ShoutArgs) -> Result<ShoutReply, CapsuleError> {
        Ok(ShoutReply {
            text: args.text.to_uppercase(),
        })
    }

    /// Reports who the kernel says is calling: `{"principal", "capsule", "source"}`.
    #[astrid::handler]
    fn whoami(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(serde_json::to_vec(&env::caller())?))
    }

    /// Replies with the `GREETING` setting.
    #[astrid::handler]
    fn config(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(env::var("GREETING")?.into_bytes()))
    }

    /// Re-publishes the payload on `echo.v1.out`.
    #[astrid::handler]
    fn forward(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        ipc::publish("echo.v1.out", &event.payload)?;
        Ok(Some(b"ok".to_vec()))
    }

    /// Busy-waits for the number of milliseconds in the payload, then replies with this
    /// version, so tests can hold a call in flight across an update or a shutdown.
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

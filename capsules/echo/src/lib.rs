//! `echo`: the smallest useful capsule, and the runtime tests' probe for payloads, tools,
//! caller identity, configuration and publishing.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

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
}

//! `waiter`: a capsule that spends its time blocked in host calls rather than running code, so
//! the epoch deadline (which only interrupts guest code) is not what stops it. The host must
//! cap every wait at the invocation's deadline.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

/// A minute: far past any deadline the tests configure.
const LONG_MS: u32 = 60_000;

#[derive(Default)]
struct Waiter;

#[capsule]
impl Waiter {
    /// Waits for a message on a topic nobody publishes on.
    #[astrid::handler]
    fn receive(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        ipc::subscribe("waiter.v1.never")?;
        let got = ipc::receive(LONG_MS)?;
        Ok(Some(match got {
            Some(_) => b"received".to_vec(),
            None => b"receive returned nothing".to_vec(),
        }))
    }

    /// Asks a handler (its own `receive`, on `waiter.v1.stall`) that never answers in time.
    #[astrid::handler]
    fn request(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let reply = ipc::request("waiter.v1.stall", b"", LONG_MS);
        Ok(Some(match reply {
            Ok(_) => b"request answered".to_vec(),
            Err(e) => format!("request failed: {e}").into_bytes(),
        }))
    }
}

//! `counter`: exercises the key-value store (compare-and-swap, listing) and request/reply
//! between capsules.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

#[derive(Default)]
struct Counter;

const COUNT: &str = "count";

#[derive(Deserialize)]
struct SetArgs {
    key: String,
    value: String,
}

fn parse_count(bytes: &[u8]) -> Result<u64, CapsuleError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CapsuleError::failed("stored count is not a decimal u64"))
}

fn payload_str(event: &Event) -> Result<&str, CapsuleError> {
    event
        .text()
        .ok_or_else(|| CapsuleError::invalid("payload is not UTF-8"))
}

#[capsule]
impl Counter {
    /// Adds one to `count` with a compare-and-swap loop, so concurrent instances never lose
    /// an increment; replies with the new value in decimal.
    #[astrid::handler]
    fn incr(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        loop {
            let current = kv::get(COUNT)?;
            let n = match &current {
                Some(bytes) => parse_count(bytes)?,
                None => 0,
            };
            let next = n
                .checked_add(1)
                .ok_or_else(|| CapsuleError::failed("count overflow"))?
                .to_string();
            if kv::cas(COUNT, current.as_deref(), Some(next.as_bytes()))? {
                return Ok(Some(next.into_bytes()));
            }
        }
    }

    /// An empty payload reads `count` (in decimal, `0` when unset); otherwise the payload is a
    /// key and the reply is its value (empty when unset).
    #[astrid::handler]
    fn get(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let key = payload_str(event)?;
        if key.is_empty() {
            let n = match kv::get(COUNT)? {
                Some(bytes) => parse_count(&bytes)?,
                None => 0,
            };
            return Ok(Some(n.to_string().into_bytes()));
        }
        Ok(Some(kv::get(key)?.unwrap_or_default()))
    }

    /// Replies with the JSON list of keys starting with the payload.
    #[astrid::handler]
    fn list(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let keys = kv::list(payload_str(event)?)?;
        Ok(Some(serde_json::to_vec(&keys)?))
    }

    /// Stores `{"key", "value"}`; replies `ok`.
    #[astrid::handler]
    fn set(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let args: SetArgs = event.json()?;
        kv::set(&args.key, args.value.as_bytes())?;
        Ok(Some(b"ok".to_vec()))
    }

    /// Asks `echo` (through the kernel) and passes its reply back.
    #[astrid::handler]
    fn relay(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(ipc::request("echo.v1.request", &event.payload, 2000)?))
    }
}

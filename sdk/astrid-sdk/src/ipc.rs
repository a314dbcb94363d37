//! The event bus. Every topic used here must be declared in the manifest (`[publish]`,
//! `[subscribe]`); the kernel stamps the true source on everything sent.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bindings::astrid::ipc::ipc;
use crate::error::{IpcError, SysError};
use crate::event::Event;

/// Identifies a subscription made with [`subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(pub u64);

/// Fire-and-forget delivery to every subscriber of `topic`.
pub fn publish(topic: &str, payload: impl AsRef<[u8]>) -> Result<(), IpcError> {
    ipc::publish(topic, payload.as_ref()).map_err(Into::into)
}

/// Publishes `value` encoded as JSON.
pub fn publish_json<T: Serialize + ?Sized>(topic: &str, value: &T) -> Result<(), SysError> {
    let bytes = serde_json::to_vec(value)?;
    publish(topic, bytes)?;
    Ok(())
}

/// Publishes and waits up to `timeout_ms` for the first subscriber's reply.
pub fn request(
    topic: &str,
    payload: impl AsRef<[u8]>,
    timeout_ms: u32,
) -> Result<Vec<u8>, IpcError> {
    ipc::request(topic, payload.as_ref(), timeout_ms).map_err(Into::into)
}

/// [`request`] with a JSON body and a JSON reply.
pub fn request_json<T: Serialize + ?Sized, R: DeserializeOwned>(
    topic: &str,
    value: &T,
    timeout_ms: u32,
) -> Result<R, SysError> {
    let bytes = serde_json::to_vec(value)?;
    let reply = request(topic, bytes, timeout_ms)?;
    Ok(serde_json::from_slice(&reply)?)
}

/// Publishes as a request to every subscribed handler and collects their replies (a
/// scatter/gather), waiting for each or `timeout_ms`, whichever is first. Handlers that fail
/// or do not answer in time are left out; each reply's `source` names who answered.
pub fn gather(
    topic: &str,
    payload: impl AsRef<[u8]>,
    timeout_ms: u32,
) -> Result<Vec<Event>, IpcError> {
    ipc::gather(topic, payload.as_ref(), timeout_ms)
        .map(|ms| ms.into_iter().map(Event::from).collect())
        .map_err(Into::into)
}

/// [`gather`] with a JSON body and JSON replies. Replies that do not decode as `R` are left
/// out, like handlers that fail; use [`gather`] to see every raw reply and its source.
pub fn gather_json<T: Serialize + ?Sized, R: DeserializeOwned>(
    topic: &str,
    value: &T,
    timeout_ms: u32,
) -> Result<Vec<R>, SysError> {
    let bytes = serde_json::to_vec(value)?;
    let replies = gather(topic, bytes, timeout_ms)?;
    Ok(replies
        .iter()
        .filter_map(|e| serde_json::from_slice(&e.payload).ok())
        .collect())
}

/// Subscribes this instance to `pattern` (exact, or a trailing `*`); read with [`receive`].
pub fn subscribe(pattern: &str) -> Result<SubscriptionId, IpcError> {
    ipc::subscribe(pattern)
        .map(SubscriptionId)
        .map_err(Into::into)
}

/// Drops a subscription.
pub fn unsubscribe(id: SubscriptionId) -> Result<(), IpcError> {
    ipc::unsubscribe(id.0).map_err(Into::into)
}

/// The next message for this instance's subscriptions, or `None` after `timeout_ms`.
pub fn receive(timeout_ms: u32) -> Result<Option<Event>, IpcError> {
    ipc::receive(timeout_ms)
        .map(|m| m.map(Event::from))
        .map_err(Into::into)
}

//! The event a handler receives, and the messages `ipc::receive` returns.

use serde::de::DeserializeOwned;

use crate::bindings::astrid;

/// One event on the bus. `source` and `principal` are stamped by the kernel, never by the
/// sender, so a handler may trust them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The topic it was published on.
    pub topic: String,
    /// The raw payload bytes.
    pub payload: Vec<u8>,
    /// The true sender: `capsule:<name>` or `client:<id>`.
    pub source: String,
    /// The principal (tenant) the event belongs to.
    pub principal: String,
}

impl Event {
    /// Decodes the payload as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.payload)
    }

    /// The payload as UTF-8 text, or `None` when it is not valid UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

impl From<astrid::capsule::types::Event> for Event {
    fn from(e: astrid::capsule::types::Event) -> Self {
        Self {
            topic: e.topic,
            payload: e.payload,
            source: e.source,
            principal: e.principal,
        }
    }
}

impl From<astrid::ipc::ipc::Message> for Event {
    fn from(m: astrid::ipc::ipc::Message) -> Self {
        Self {
            topic: m.topic,
            payload: m.payload,
            source: m.source,
            principal: m.principal,
        }
    }
}

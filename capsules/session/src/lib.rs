//! `session`: the conversations of each principal, in this capsule's kv namespace (the
//! kernel gives every principal its own store, so principals never see each other's).
//! Contract: `docs/AGENT-PROTOCOL.md`, section `session.v1.*`.
#![forbid(unsafe_code)]

mod model;
mod records;
mod store;

use astrid_sdk::prelude::*;

#[derive(Default)]
struct Session;

/// Published (to this principal only, as every event) after a change to the session list: a
/// session created, resumed, appended to, renamed or deleted. Uplinks that keep a copy of the
/// list (the HTTP gateway) drop it on this event instead of asking again on every read.
const CHANGED_TOPIC: &str = "session.v1.changed";

/// Tells watchers that session `id` changed. A failed publish is logged, not an error: the
/// change itself succeeded, and a watcher's copy also expires on its own.
fn changed(id: &str) {
    if let Err(e) = ipc::publish_json(CHANGED_TOPIC, &serde_json::json!({"id": id})) {
        log::warn(&format!("publishing {CHANGED_TOPIC}: {e}"));
    }
}

#[derive(Serialize)]
struct ListReply {
    sessions: Vec<model::Info>,
}

#[derive(Deserialize)]
struct RenameRequest {
    id: String,
    name: String,
}

#[derive(Serialize)]
struct AppendReply {
    messages: u64,
}

#[capsule]
impl Session {
    /// `{"session", "workspace", "create"}` → the session's description.
    #[astrid::handler]
    fn open(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        let info = store::open(event.json()?)?;
        changed(&info.id);
        Ok(serde_json::to_vec(&info)?)
    }

    /// `{}` → `{"sessions": [...]}`, newest first.
    #[astrid::handler]
    fn list(&self, _event: &Event) -> Result<Vec<u8>, CapsuleError> {
        Ok(serde_json::to_vec(&ListReply {
            sessions: store::list()?,
        })?)
    }

    /// `{"id"}` → `{"messages": [...]}`.
    #[astrid::handler]
    fn history(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        let req: model::HistoryRequest = event.json()?;
        store::history(&req.id)
    }

    /// `{"id", "messages"}` → `{"messages": n}`, the new total.
    #[astrid::handler]
    fn append(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        let req: model::AppendRequest<'_> = serde_json::from_slice(&event.payload)?;
        let id = req.id.to_string();
        let messages = store::append(req)?;
        changed(&id);
        Ok(serde_json::to_vec(&AppendReply { messages })?)
    }

    /// `{"id", "name"}` → the session's description under its new name.
    #[astrid::handler]
    fn rename(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        let req: RenameRequest = event.json()?;
        let info = store::rename(&req.id, &req.name)?;
        changed(&req.id);
        Ok(serde_json::to_vec(&info)?)
    }

    /// `{"id"}` → `{"deleted": "<id>"}`; the session, its name and its history are gone.
    #[astrid::handler]
    fn delete(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        let req: model::HistoryRequest = event.json()?;
        store::delete(&req.id)?;
        changed(&req.id);
        Ok(serde_json::to_vec(&serde_json::json!({"deleted": req.id}))?)
    }
}

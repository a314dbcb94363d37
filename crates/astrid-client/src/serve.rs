//! Serving tools from a client connection (the MCP bridge): the daemon hands this connection
//! the calls it let through its gate, and the connection answers each one.

use std::time::Duration;

use astrid_types::wire::ClientMessage;
use tokio::sync::mpsc;

use crate::handles::PendingReply;
use crate::{Client, ClientError};

/// How long the daemon may take to acknowledge a `serve_tools`.
const SERVE_ACK: Duration = Duration::from_secs(10);

/// A tool call or `tool.v1.describe` gather for a tool this connection serves. Answer it with
/// [`Client::respond`]; the daemon has already checked and recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub id: u64,
    pub topic: String,
    pub payload: Vec<u8>,
    /// Who sent it (`capsule:<name>` or `client:<id>`), as the daemon stamped it.
    pub source: String,
}

impl Client {
    /// Where this connection's invocations arrive. Call it before
    /// [`serve_tools`](Self::serve_tools); a second call takes them over from the first
    /// receiver.
    pub fn invocations(&self) -> Result<mpsc::UnboundedReceiver<Invocation>, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut r = self.shared().routes();
        if r.closed {
            return Err(ClientError::Disconnected);
        }
        r.invocations = Some(tx);
        Ok(rx)
    }

    /// Serves `tools` of `server` (the agent sees `<server>__<tool>`) for this connection's
    /// principal, replacing the earlier list for `server`; returns once the daemon accepted
    /// it. Needs the operator's credential.
    pub async fn serve_tools(&self, server: &str, tools: Vec<String>) -> Result<(), ClientError> {
        let id = self.next_id();
        let (rx, guard) = self.await_reply(id)?;
        self.send(&ClientMessage::ServeTools {
            id,
            server: server.to_string(),
            tools,
        })
        .await?;
        PendingReply {
            rx,
            _guard: guard,
            timeout: SERVE_ACK,
        }
        .wait()
        .await
        .map(drop)
    }

    /// Answers invocation `id`: the reply bytes, or why the tool failed.
    pub async fn respond(
        &self,
        id: u64,
        result: Result<Vec<u8>, String>,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::Respond { id, result }).await
    }
}

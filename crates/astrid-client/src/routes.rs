//! The connection's two background tasks and the table that routes what the reader receives
//! to whoever is waiting for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use astrid_types::wire::{self, ApprovalRequest, ServerMessage, MAX_FRAME};
use tokio::io::BufReader;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use crate::framing::{read_frame, write_frame};
use crate::ClientError;

/// An event delivered to a [`Subscription`](crate::Subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMsg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub source: String,
    pub principal: String,
}

pub(crate) enum SubItem {
    Event(EventMsg),
    Closed(String),
}

/// Where replies and events go. One lock for all three so that registering a waiter and the
/// connection closing cannot interleave into a waiter nobody will ever answer.
#[derive(Default)]
pub(crate) struct Routes {
    pub(crate) closed: bool,
    pub(crate) pending: HashMap<u64, oneshot::Sender<ServerMessage>>,
    // Unbounded on purpose: a slow subscriber must not stall the reader, which would also
    // stall every reply on the connection.
    pub(crate) subs: HashMap<u64, mpsc::UnboundedSender<SubItem>>,
    /// Every [`ApprovalStream`](crate::ApprovalStream) of this connection gets every request.
    pub(crate) approvers: Vec<mpsc::UnboundedSender<ApprovalRequest>>,
    /// Every [`ElicitStream`](crate::ElicitStream) of this connection gets every question.
    pub(crate) elicitors: Vec<mpsc::UnboundedSender<astrid_types::elicit::ElicitRequest>>,
    /// Where tool calls for tools this connection serves go (`Client::invocations`).
    pub(crate) invocations: Option<mpsc::UnboundedSender<crate::Invocation>>,
}

#[derive(Default)]
pub(crate) struct Shared {
    routes: Mutex<Routes>,
}

impl Shared {
    pub(crate) fn routes(&self) -> MutexGuard<'_, Routes> {
        // A panic while holding this lock leaves only maps behind, which stay consistent.
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails every waiter with `Disconnected` (their senders drop) and ends every subscription.
    pub(crate) fn close(&self) {
        let mut r = self.routes();
        r.closed = true;
        r.pending.clear();
        r.subs.clear();
        r.approvers.clear();
        r.elicitors.clear();
        r.invocations = None;
    }

    fn route(&self, msg: ServerMessage) {
        let mut r = self.routes();
        match msg {
            ServerMessage::Event {
                subscription,
                topic,
                payload,
                source,
                principal,
            } => {
                let Some(tx) = r.subs.get(&subscription) else {
                    return; // unsubscribed while the event was in flight
                };
                let ev = EventMsg {
                    topic,
                    payload,
                    source,
                    principal,
                };
                if tx.send(SubItem::Event(ev)).is_err() {
                    r.subs.remove(&subscription);
                }
            }
            ServerMessage::Reply { id, .. }
            | ServerMessage::ControlReply { id, .. }
            | ServerMessage::Gathered { id, .. } => {
                if let Some(tx) = r.pending.remove(&id) {
                    let _ = tx.send(msg);
                }
            }
            ServerMessage::Error { id: Some(id), .. } => {
                if let Some(tx) = r.pending.remove(&id) {
                    let _ = tx.send(msg);
                } else if let Some(tx) = r.subs.remove(&id) {
                    if let ServerMessage::Error { message, .. } = msg {
                        let _ = tx.send(SubItem::Closed(message));
                    }
                } else {
                    tracing::warn!(id, ?msg, "daemon error for an unknown id");
                }
            }
            ServerMessage::Error { id: None, message } => {
                tracing::warn!(%message, "daemon reported a protocol error");
            }
            ServerMessage::ApprovalRequest(req) => {
                r.approvers.retain(|tx| tx.send(req.clone()).is_ok());
            }
            ServerMessage::ElicitRequest(req) => {
                r.elicitors.retain(|tx| tx.send(req.clone()).is_ok());
            }
            ServerMessage::Invoke {
                id,
                topic,
                payload,
                source,
            } => {
                let call = crate::Invocation {
                    id,
                    topic,
                    payload,
                    source,
                };
                // Nobody listening: the daemon's call waits until the requester gives up or
                // this connection closes, which fails it.
                if let Some(tx) = &r.invocations {
                    if tx.send(call).is_err() {
                        r.invocations = None;
                    }
                }
            }
            other @ (ServerMessage::Welcome { .. } | ServerMessage::Refused { .. }) => {
                tracing::warn!(?other, "unexpected handshake message after the handshake");
            }
        }
    }
}

/// Removes a waiter whose caller gave up (timeout or dropped future), so the map cannot grow.
pub(crate) struct PendingGuard {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.shared.routes().pending.remove(&self.id);
    }
}

pub(crate) fn unexpected(msg: ServerMessage) -> ClientError {
    match msg {
        ServerMessage::Error { message, .. } => ClientError::Protocol(message),
        other => ClientError::Unexpected(format!("{other:?}")),
    }
}

/// What the writer task is asked to do, in order.
pub(crate) enum Outgoing {
    Frame(Vec<u8>),
    /// Answered once every earlier frame has been written.
    Flush(oneshot::Sender<()>),
}

pub(crate) async fn write_loop(
    mut w: OwnedWriteHalf,
    mut outbox: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
) {
    while let Some(item) = outbox.recv().await {
        match item {
            Outgoing::Frame(frame) => {
                if let Err(e) = write_frame(&mut w, &frame).await {
                    tracing::debug!(error = %e, "writing to the daemon failed");
                    shared.close();
                    return;
                }
            }
            Outgoing::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

pub(crate) async fn read_loop(r: OwnedReadHalf, shared: Arc<Shared>) {
    let mut r = BufReader::new(r);
    loop {
        match read_frame(&mut r, MAX_FRAME).await {
            Ok(Some(bytes)) => match wire::decode::<ServerMessage>(&bytes) {
                Ok(msg) => shared.route(msg),
                Err(e) => {
                    // Most likely a daemon of another build: whatever reply this was, some
                    // caller waits for it, so end the connection and fail every pending call
                    // rather than let one hang.
                    tracing::error!(
                        error = %e,
                        "undecodable message from the daemon (is it another version?); disconnecting"
                    );
                    break;
                }
            },
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "reading from the daemon failed");
                break;
            }
        }
    }
    shared.close();
}

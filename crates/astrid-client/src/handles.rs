//! Handles returned by [`Client`](crate::Client) for things that outlive one call.

use std::time::Duration;

use astrid_types::wire::{ApprovalRequest, ClientMessage, ServerMessage};
use tokio::sync::{mpsc, oneshot};

use crate::client::{encode_frame, REPLY_GRACE};
use crate::routes::{unexpected, EventMsg, Outgoing, PendingGuard, SubItem};
use crate::{Client, ClientError};

/// A request on its way; dropping it abandons the reply.
pub struct PendingReply {
    pub(crate) rx: oneshot::Receiver<ServerMessage>,
    pub(crate) _guard: PendingGuard,
    pub(crate) timeout: Duration,
}

impl PendingReply {
    pub async fn wait(self) -> Result<Vec<u8>, ClientError> {
        let PendingReply {
            rx,
            _guard,
            timeout,
        } = self;
        match tokio::time::timeout(timeout.saturating_add(REPLY_GRACE), rx).await {
            Err(_) => Err(ClientError::Timeout(timeout)),
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Ok(Ok(ServerMessage::Reply { result, .. })) => result.map_err(ClientError::Request),
            Ok(Ok(other)) => Err(unexpected(other)),
        }
    }
}

/// Events matching one pattern. Dropping it unsubscribes.
pub struct Subscription {
    pub(crate) id: u64,
    pub(crate) rx: mpsc::UnboundedReceiver<SubItem>,
    pub(crate) client: Client,
    pub(crate) close_reason: Option<String>,
}

impl Subscription {
    /// The next matching event; `None` once the subscription or the connection has ended.
    pub async fn next(&mut self) -> Option<EventMsg> {
        match self.rx.recv().await? {
            SubItem::Event(e) => Some(e),
            SubItem::Closed(reason) => {
                self.close_reason = Some(reason);
                self.rx.close();
                None
            }
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Why the daemon ended this subscription (e.g. an invalid pattern), once `next` returned None.
    pub fn close_reason(&self) -> Option<&str> {
        self.close_reason.as_deref()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let shared = &self.client.shared();
        if shared.routes().subs.remove(&self.id).is_none() {
            return; // already ended by the daemon or the connection
        }
        // Best effort: if the outbox is full, stray events are dropped by the router anyway.
        if let Ok(frame) = encode_frame(&ClientMessage::Unsubscribe { id: self.id }) {
            let _ = self.client.outbox().try_send(Outgoing::Frame(frame));
        }
    }
}

/// Approval requests for this connection's principal, from
/// [`Client::register_approver`](crate::Client::register_approver).
pub struct ApprovalStream {
    pub(crate) rx: mpsc::UnboundedReceiver<ApprovalRequest>,
}

impl ApprovalStream {
    /// The next request; `None` once the connection has ended.
    pub async fn next(&mut self) -> Option<ApprovalRequest> {
        self.rx.recv().await
    }
}

/// Capsules' questions to this connection's principal (`astrid:elicit`), from
/// [`Client::register_elicitor`](crate::Client::register_elicitor).
pub struct ElicitStream {
    pub(crate) rx: mpsc::UnboundedReceiver<astrid_types::elicit::ElicitRequest>,
}

impl ElicitStream {
    /// The next question; `None` once the connection has ended.
    pub async fn next(&mut self) -> Option<astrid_types::elicit::ElicitRequest> {
        self.rx.recv().await
    }
}

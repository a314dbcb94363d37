//! The event bus: who is subscribed to what, and delivery of one event to all of them.
//!
//! Three kinds of subscriber: capsule handlers (declared in manifests, looked up in the
//! registry at delivery time so an update takes effect for the next event), client
//! connections, and capsule instances that called `ipc.subscribe` (their inbox). Delivery is
//! scoped to the event's principal: one tenant never sees another's events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use astrid_sandbox::{Chain, Inbox, InboxMessage};
use astrid_types::topic::pattern_matches;
use astrid_types::wire::{RequestError, ServerMessage};
use astrid_types::PrincipalId;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc::UnboundedSender;

/// One event in flight. The source is stamped by the kernel from the connection or the
/// invocation it came from; nothing in the payload can change it.
#[derive(Clone)]
pub(crate) struct Envelope {
    pub topic: String,
    pub payload: Arc<Vec<u8>>,
    pub source: String,
    pub principal: PrincipalId,
    /// Handler hops that led here; see `astrid_sandbox::Bus`.
    pub depth: u8,
    /// Who asked, oldest first, ending with the sender: started here from the connection
    /// (or the kernel), extended by the host at every capsule hop. Never from a payload.
    pub chain: Chain,
    pub reply: Option<Arc<ReplySlot>>,
}

pub(crate) enum Target {
    Client {
        subscription: u64,
        tx: UnboundedSender<ServerMessage>,
    },
    Inbox(Inbox),
}

pub(crate) struct Subscription {
    pub pattern: String,
    pub principal: PrincipalId,
    pub target: Target,
    /// Connection that owns it (client subscriptions), for cleanup on disconnect.
    pub connection: Option<u64>,
}

#[derive(Default)]
pub(crate) struct Subscriptions {
    subs: RwLock<HashMap<u64, Subscription>>,
}

impl Subscriptions {
    pub fn insert(&self, id: u64, sub: Subscription) {
        self.subs.write().insert(id, sub);
    }

    pub fn remove(&self, id: u64) {
        self.subs.write().remove(&id);
    }

    pub fn remove_client_sub(&self, connection: u64, subscription: u64) {
        self.subs.write().retain(|_, s| {
            !(s.connection == Some(connection)
                && matches!(s.target, Target::Client { subscription: sid, .. } if sid == subscription))
        });
    }

    pub fn remove_connection(&self, connection: u64) {
        self.subs
            .write()
            .retain(|_, s| s.connection != Some(connection));
    }

    /// Hands the event to every matching client and inbox; returns how many received it.
    pub fn deliver_passive(&self, env: &Envelope) -> usize {
        self.deliver_where(env, true)
    }

    /// As [`deliver_passive`](Self::deliver_passive), to client connections only: for what
    /// the kernel shows a principal's frontends and no capsule may read (`astrid:uplink`
    /// notices).
    pub fn deliver_to_clients(&self, env: &Envelope) -> usize {
        self.deliver_where(env, false)
    }

    /// Whether client connection `connection` has a subscription matching `topic`.
    pub fn client_listens(&self, connection: u64, topic: &str) -> bool {
        self.subs.read().values().any(|s| {
            s.connection == Some(connection)
                && matches!(s.target, Target::Client { .. })
                && pattern_matches(&s.pattern, topic)
        })
    }

    fn deliver_where(&self, env: &Envelope, inboxes: bool) -> usize {
        let subs = self.subs.read();
        let mut n = 0;
        for sub in subs.values() {
            if sub.principal != env.principal || !pattern_matches(&sub.pattern, &env.topic) {
                continue;
            }
            match &sub.target {
                Target::Client { subscription, tx } => {
                    let _ = tx.send(ServerMessage::Event {
                        subscription: *subscription,
                        topic: env.topic.clone(),
                        payload: env.payload.as_ref().clone(),
                        source: env.source.clone(),
                        principal: env.principal.to_string(),
                    });
                }
                Target::Inbox(_) if !inboxes => continue,
                Target::Inbox(tx) => {
                    let msg = InboxMessage {
                        topic: env.topic.clone(),
                        payload: env.payload.clone(),
                        source: env.source.clone(),
                        principal: env.principal.to_string(),
                    };
                    if tx.try_send(msg).is_err() {
                        tracing::warn!(topic = %env.topic, "subscriber inbox full; event dropped");
                        continue;
                    }
                }
            }
            n += 1;
        }
        n
    }
}

type ReplySink = Box<dyn FnOnce(Result<Vec<u8>, RequestError>) + Send>;
type GatherSink = Box<dyn FnOnce(Vec<(String, Vec<u8>)>) + Send>;

/// How a request's replies are consumed: the first one, or all of them.
enum Sink {
    First(ReplySink),
    All {
        sink: GatherSink,
        replies: Vec<(String, Vec<u8>)>,
    },
}

/// Collects the first reply to a request from however many handlers received it. When every
/// handler has finished without replying, the requester hears the last error (or that nobody
/// answered) instead of waiting for its timeout.
pub(crate) struct ReplySlot {
    sink: Mutex<Option<Sink>>,
    pending: AtomicUsize,
    last_error: Mutex<Option<RequestError>>,
    had_handlers: std::sync::atomic::AtomicBool,
    topic: String,
    /// Signalled once the requester has its answer (or gave up), so the timer that would
    /// answer "timeout" ends then instead of holding the slot until the deadline: a client
    /// sending many requests with long timeouts would otherwise keep one sleeping task per
    /// request alive for up to ten minutes.
    settled: tokio::sync::Notify,
}

impl ReplySlot {
    pub fn new(topic: &str, sink: ReplySink) -> Arc<Self> {
        Self::with_sink(topic, Sink::First(sink))
    }

    /// A slot that collects every handler's reply and hands them over once all are done.
    pub fn gather(topic: &str, sink: GatherSink) -> Arc<Self> {
        Self::with_sink(
            topic,
            Sink::All {
                sink,
                replies: Vec::new(),
            },
        )
    }

    fn with_sink(topic: &str, sink: Sink) -> Arc<Self> {
        Arc::new(ReplySlot {
            sink: Mutex::new(Some(sink)),
            // Held by the dispatcher until every handler is scheduled, so an early finisher
            // cannot conclude "nobody replied" while others are still being started.
            pending: AtomicUsize::new(1),
            last_error: Mutex::new(None),
            had_handlers: std::sync::atomic::AtomicBool::new(false),
            topic: topic.to_string(),
            settled: tokio::sync::Notify::new(),
        })
    }

    /// A request answered by its first reply (not a gather).
    pub fn wants_first(&self) -> bool {
        matches!(*self.sink.lock(), Some(Sink::First(_)))
    }

    pub fn add_pending(&self) {
        self.had_handlers.store(true, Ordering::Release);
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// A reply to a first-reply request; gathering slots ignore it.
    pub fn reply(&self, result: Result<Vec<u8>, RequestError>) {
        let mut guard = self.sink.lock();
        if matches!(*guard, Some(Sink::First(_))) {
            if let Some(Sink::First(sink)) = guard.take() {
                drop(guard);
                sink(result);
                self.settled.notify_one();
            }
        }
    }

    /// One handler (or the dispatcher's own hold, `from` empty) is done, with or without a
    /// reply; `from` is the replier's source.
    pub fn finish(&self, from: &str, outcome: Result<Option<Vec<u8>>, RequestError>) {
        match outcome {
            Ok(Some(bytes)) => {
                let mut guard = self.sink.lock();
                match guard.as_mut() {
                    Some(Sink::All { replies, .. }) => replies.push((from.to_string(), bytes)),
                    Some(Sink::First(_)) => {
                        drop(guard);
                        self.reply(Ok(bytes));
                    }
                    None => {}
                }
            }
            Ok(None) => {}
            Err(e) => *self.last_error.lock() = Some(e),
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut guard = self.sink.lock();
            if matches!(*guard, Some(Sink::All { .. })) {
                if let Some(Sink::All { sink, replies }) = guard.take() {
                    drop(guard);
                    sink(replies);
                    self.settled.notify_one();
                }
                return;
            }
            drop(guard);
            let err = self.last_error.lock().take().unwrap_or_else(|| {
                if self.had_handlers.load(Ordering::Acquire) {
                    RequestError::Failed(format!("no handler replied to `{}`", self.topic))
                } else {
                    RequestError::NoSubscriber(self.topic.clone())
                }
            });
            self.reply(Err(err));
        }
    }

    /// Gives up waiting on a gathering slot and returns the replies that came in so far.
    pub fn take_gathered(&self) -> Vec<(String, Vec<u8>)> {
        match self.sink.lock().take() {
            Some(Sink::All { replies, .. }) => replies,
            _ => Vec::new(),
        }
    }

    /// Gives up waiting on a gathering slot: the replies so far, or `None` if the slot has
    /// already handed them over (so a client hears exactly one answer).
    pub fn expire_gather(&self) -> Option<Vec<(String, Vec<u8>)>> {
        match self.sink.lock().take() {
            Some(Sink::All { replies, .. }) => Some(replies),
            _ => None,
        }
    }

    /// Gives up waiting (the requester timed out or went away).
    pub fn cancel(&self) {
        self.sink.lock().take();
        self.settled.notify_one();
    }

    /// Completes once the requester has its answer or the slot was given up. A single
    /// waiter (the request's timer); a settlement before it waits is not lost.
    pub async fn settled(&self) {
        self.settled.notified().await;
    }
}

#[cfg(test)]
mod tests;

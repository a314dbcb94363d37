use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use astrid_types::manifest::{is_tool_topic, TOOL_TOPIC_PREFIX};
use astrid_types::topic;
use astrid_types::wire::RequestError;

use super::HostState;
use crate::bindings::astrid::ipc::ipc::{ErrorCode, Host, Message};
use crate::context::InboxMessage;

const MAX_PAYLOAD: usize = 4 * 1024 * 1024;
/// A whole agent turn can wait on a model for minutes; the invocation deadline caps it.
const MAX_WAIT: Duration = Duration::from_secs(3600);
const MAX_SUBSCRIPTIONS: usize = 64;
/// Longest chain of handlers triggering handlers. Deep enough for any real pipeline; a loop
/// (a capsule re-triggering itself through the bus) ends here with a typed error.
pub const MAX_EVENT_DEPTH: u8 = 16;
/// How often a blocked `receive` looks up to see whether its capsule is being stopped.
const STOP_POLL: Duration = Duration::from_millis(50);

impl HostState {
    /// The IPC ACL for sending: a valid topic, not a kernel topic, declared in `[publish]`;
    /// for a tool call, every capsule on the requester chain entitled to it.
    fn check_publish(&self, topic_name: &str, payload_len: usize) -> Result<(), ErrorCode> {
        topic::validate_topic(topic_name).map_err(|e| ErrorCode::InvalidArgument(e.to_string()))?;
        if topic::is_kernel_topic(topic_name) {
            let reason = format!("topic `{topic_name}` is reserved for the kernel");
            self.denied("ipc.publish", topic_name, &reason);
            return Err(ErrorCode::Denied(reason));
        }
        if is_tool_topic(topic_name) {
            self.check_tool_call(topic_name)?;
        }
        if !self.ctx.manifest.may_publish(topic_name) {
            let reason = format!(
                "capsule `{}` does not declare topic `{topic_name}` in [publish]",
                self.ctx.capsule()
            );
            self.denied("ipc.publish", topic_name, &reason);
            return Err(ErrorCode::Denied(reason));
        }
        if self.depth >= MAX_EVENT_DEPTH {
            let reason = format!(
                "event chain is {MAX_EVENT_DEPTH} handlers deep; refusing to send `{topic_name}` (a loop?)"
            );
            self.denied("ipc.publish", topic_name, &reason);
            return Err(ErrorCode::QuotaExceeded(reason));
        }
        if payload_len > MAX_PAYLOAD {
            return Err(ErrorCode::QuotaExceeded(format!(
                "payload of {payload_len} bytes exceeds {MAX_PAYLOAD}"
            )));
        }
        Ok(())
    }

    /// A tool acts with the principal's tokens, so it acts only for a chain that may use it:
    /// this capsule must name the tool in `[publish]` explicitly, and so must every capsule
    /// before it on the chain (clients and the kernel speak for the principal). Otherwise a
    /// capsule with no tool rights could borrow them through a deputy such as the agent.
    fn check_tool_call(&self, topic_name: &str) -> Result<(), ErrorCode> {
        let me = self.ctx.capsule();
        let reason = if !self.ctx.manifest.may_invoke_tool(topic_name) {
            format!(
                "capsule `{me}` may not invoke `{topic_name}`: a tool acts only for capsules \
                 whose [publish] names it explicitly (`{TOOL_TOPIC_PREFIX}<name>` or \
                 `{TOOL_TOPIC_PREFIX}*`)"
            )
        } else if let Some(who) = self.chain.refuses_tool(topic_name) {
            format!(
                "capsule `{me}` may not invoke `{topic_name}` for `{who}`: every capsule on the \
                 requester chain ({} > {me}) must name the tool in its [publish], and `{who}` \
                 does not",
                self.chain
            )
        } else {
            return Ok(());
        };
        self.denied("ipc.publish", topic_name, &reason);
        Err(ErrorCode::Denied(reason))
    }
}

impl Host for HostState {
    fn publish(&mut self, topic: String, payload: Vec<u8>) -> Result<(), ErrorCode> {
        self.check_publish(&topic, payload.len())?;
        let chain = self.outgoing_chain();
        self.ctx
            .bus
            .publish(&self.ctx.origin, &chain, self.depth + 1, &topic, payload);
        Ok(())
    }

    fn request(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<Vec<u8>, ErrorCode> {
        self.check_publish(&topic, payload.len())?;
        let asked = Duration::from_millis(u64::from(timeout_ms)).min(MAX_WAIT);
        let (timeout, capped) = self.wait_budget(asked);
        let chain = self.outgoing_chain();
        let result = self.ctx.bus.request(
            &self.ctx.origin,
            &chain,
            self.depth + 1,
            &topic,
            payload,
            timeout,
        );
        if capped && matches!(result, Err(RequestError::Timeout(_))) {
            self.deadline_hit = true;
        }
        result.map_err(|e| match e {
            RequestError::Denied(m) => ErrorCode::Denied(m),
            RequestError::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
            RequestError::Timeout(_) | RequestError::NoSubscriber(_) => ErrorCode::Timeout,
            RequestError::Failed(m) | RequestError::Crashed(m) => ErrorCode::Failed(m),
            RequestError::QuotaExceeded(m) => ErrorCode::QuotaExceeded(m),
        })
    }

    fn gather(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<Vec<Message>, ErrorCode> {
        self.check_publish(&topic, payload.len())?;
        let asked = Duration::from_millis(u64::from(timeout_ms)).min(MAX_WAIT);
        let (timeout, capped) = self.wait_budget(asked);
        let started = Instant::now();
        let chain = self.outgoing_chain();
        let replies = self.ctx.bus.gather(
            &self.ctx.origin,
            &chain,
            self.depth + 1,
            &topic,
            payload,
            timeout,
        );
        if capped && started.elapsed() >= timeout {
            self.deadline_hit = true;
        }
        Ok(replies
            .into_iter()
            .map(|m| Message {
                topic: m.topic,
                payload: m.payload.as_ref().clone(),
                source: m.source,
                principal: m.principal,
            })
            .collect())
    }

    fn subscribe(&mut self, pattern: String) -> Result<u64, ErrorCode> {
        topic::validate_pattern(&pattern).map_err(|e| ErrorCode::InvalidArgument(e.to_string()))?;
        if !self.ctx.manifest.may_subscribe(&pattern) {
            let reason = format!(
                "capsule `{}` does not declare a [subscribe] pattern covering `{pattern}`",
                self.ctx.capsule()
            );
            self.denied("ipc.subscribe", &pattern, &reason);
            return Err(ErrorCode::Denied(reason));
        }
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(ErrorCode::QuotaExceeded(format!(
                "at most {MAX_SUBSCRIPTIONS} subscriptions per instance"
            )));
        }
        let tx = self
            .inbox
            .get_or_insert_with(|| crossbeam_channel::bounded(1024))
            .0
            .clone();
        let id = self.ctx.bus.subscribe(&self.ctx.origin, &pattern, tx);
        self.subscriptions.push(id);
        Ok(id)
    }

    fn unsubscribe(&mut self, id: u64) -> Result<(), ErrorCode> {
        let Some(pos) = self.subscriptions.iter().position(|s| *s == id) else {
            return Err(ErrorCode::InvalidArgument(format!(
                "no subscription {id} in this instance"
            )));
        };
        self.subscriptions.swap_remove(pos);
        self.ctx.bus.unsubscribe(id);
        Ok(())
    }

    fn receive(&mut self, timeout_ms: u32) -> Result<Option<Message>, ErrorCode> {
        let Some((_, rx)) = &self.inbox else {
            return Ok(None);
        };
        let rx = rx.clone();
        let asked = Duration::from_millis(u64::from(timeout_ms)).min(MAX_WAIT);
        let (budget, capped) = self.wait_budget(asked);
        let deadline = Instant::now() + budget;
        loop {
            if self.ctx.stopping.load(Ordering::Relaxed) {
                return Err(ErrorCode::Denied("capsule is stopping".into()));
            }
            let now = Instant::now();
            if now >= deadline {
                // A zero (or spent) budget still takes what is already waiting: `receive(0)`
                // is how a capsule polls, e.g. the agent looking for a cancel between steps.
                if let Ok(m) = rx.try_recv() {
                    return Ok(Some(guest_message(m)));
                }
                self.deadline_hit |= capped;
                return Ok(None);
            }
            match rx.recv_timeout((deadline - now).min(STOP_POLL)) {
                Ok(m) => return Ok(Some(guest_message(m))),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }
}

/// A bus message as the guest sees it.
fn guest_message(m: InboxMessage) -> Message {
    Message {
        topic: m.topic,
        payload: m.payload.as_ref().clone(),
        source: m.source,
        principal: m.principal,
    }
}

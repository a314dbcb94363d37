//! Tools served by a client connection: the MCP bridge (`astrid mcp bridge`) answers
//! `tool.v1.execute.<server>__<tool>` and `tool.v1.describe` for its principal, so an MCP
//! server's tools reach the agent next to capsule tools without the kernel learning MCP.
//!
//! The gate is here, where the kernel hands a call to the connection, not in the bridge: the
//! bridge holds the untrusted server's pipes, and one implementation of the requester chain,
//! tokens, approvals and audit serves capsules and served tools alike. A call goes through:
//! the requester chain (every capsule on it must declare the tool topic, as for a capsule
//! handler), then a `tool:<server>.<tool>` token of the principal, else a person's approval
//! (a revoked or forged token is refused without asking), then an audit entry with the BLAKE3
//! digest of the arguments. The outcome is a second entry when the bridge answers.

use std::collections::HashMap;
use std::sync::Arc;

use astrid_audit::Decision;
use astrid_crypto::Resource;
use astrid_sandbox::{Actor, ApprovalAsk, Asked, TokenDenial, TokenGate, APPROVAL_WAIT};
use astrid_types::topic::pattern_matches;
use astrid_types::wire::{ApprovalDecision, RequestError, ServerMessage};
use astrid_types::{CapsuleName, PrincipalId};
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedSender;

use crate::bus::{Envelope, ReplySlot};
use crate::kernel::Inner;

/// The tool topics' common prefix.
const EXECUTE: &str = "tool.v1.execute.";
const DESCRIBE: &str = "tool.v1.describe";
/// Separates server and tool in the name the model sees (one topic segment, which providers
/// also accept as a function name); the token and the audit say `<server>.<tool>`.
const SEPARATOR: &str = "__";
/// Longest name the model sees: one topic segment.
const MAX_TOOL_NAME: usize = 64;
/// Calls a connection may have waiting for its answer; more are refused, so a bridge that
/// stops answering cannot grow the kernel's memory.
const MAX_WAITING_PER_CONNECTION: usize = 256;

/// One connection that serves tools.
struct Server {
    principal: PrincipalId,
    tx: UnboundedSender<ServerMessage>,
    /// Tool names as the model sees them, `<server>__<tool>`, to `(server, tool)`.
    tools: HashMap<String, (String, String)>,
}

/// A call handed to a connection and not answered yet.
struct Waiting {
    connection: u64,
    slot: Arc<ReplySlot>,
    principal: PrincipalId,
    /// `tool:<server>.<tool>` for a call, `None` for a describe (nothing to record).
    resource: Option<String>,
    actor: String,
}

#[derive(Default)]
pub(crate) struct ServedTools {
    servers: Mutex<HashMap<u64, Server>>,
    waiting: Mutex<HashMap<u64, Waiting>>,
}

/// Why a `ServeTools` was refused.
fn check_names(server: &str, tools: &[String]) -> Result<(), String> {
    let is_name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !is_name(server) || server.contains(SEPARATOR) {
        return Err(format!(
            "server name {server:?} must be letters, digits, `-` and single `_`"
        ));
    }
    for t in tools {
        let full = format!("{server}{SEPARATOR}{t}");
        if !is_name(t) || full.len() > MAX_TOOL_NAME {
            return Err(format!(
                "tool {t:?} of {server:?}: `{full}` must be one topic segment of at most \
                 {MAX_TOOL_NAME} characters"
            ));
        }
    }
    Ok(())
}

impl Inner {
    /// `ClientMessage::ServeTools`, from an operator connection.
    pub(crate) fn serve_tools(
        &self,
        connection: u64,
        principal: &PrincipalId,
        tx: &UnboundedSender<ServerMessage>,
        server: &str,
        tools: &[String],
    ) -> Result<(), RequestError> {
        check_names(server, tools).map_err(RequestError::InvalidArgument)?;
        // A capsule tool of the same name would make one of the two unreachable.
        let held = self.profile(principal);
        for inst in self.capsules.snapshot() {
            if !held.capsules.contains(&inst.name) {
                continue;
            }
            for t in tools {
                let topic = format!("{EXECUTE}{server}{SEPARATOR}{t}");
                if inst
                    .handlers
                    .iter()
                    .any(|(p, _)| pattern_matches(p, &topic))
                {
                    return Err(RequestError::InvalidArgument(format!(
                        "`{server}{SEPARATOR}{t}` is already a tool of capsule `{}`",
                        inst.name
                    )));
                }
            }
        }
        let mut servers = self.served.servers.lock();
        // Another connection of the principal serving the same name would split its calls.
        for (id, other) in servers.iter() {
            if *id == connection || other.principal != *principal {
                continue;
            }
            if let Some(t) = tools
                .iter()
                .find(|t| other.tools.contains_key(&format!("{server}{SEPARATOR}{t}")))
            {
                return Err(RequestError::InvalidArgument(format!(
                    "`{server}{SEPARATOR}{t}` is already served by connection {id}"
                )));
            }
        }
        let entry = servers.entry(connection).or_insert_with(|| Server {
            principal: principal.clone(),
            tx: tx.clone(),
            tools: HashMap::new(),
        });
        entry.tools.retain(|_, (s, _)| s != server);
        for t in tools {
            entry.tools.insert(
                format!("{server}{SEPARATOR}{t}"),
                (server.to_string(), t.clone()),
            );
        }
        drop(servers);
        let listed = if tools.is_empty() {
            "withdrawn".to_string()
        } else {
            tools.join(", ")
        };
        self.record(
            principal,
            &format!("client:{connection}"),
            "tool.serve",
            &format!("tool:{server}.*"),
            Decision::Recorded,
            &format!("served by connection {connection}: {listed}"),
        )
        .map_err(|e| RequestError::Failed(e.to_string()))
    }

    /// Hands a request or gather to the connections that serve its topic; true when one
    /// does. Publishes are not delivered: a served tool only answers.
    pub(crate) fn deliver_served(self: &Arc<Self>, env: &Envelope) -> bool {
        let Some(slot) = &env.reply else {
            return false;
        };
        if env.topic == DESCRIBE {
            let targets: Vec<(u64, UnboundedSender<ServerMessage>)> = self
                .served
                .servers
                .lock()
                .iter()
                .filter(|(_, s)| s.principal == env.principal && !s.tools.is_empty())
                .map(|(id, s)| (*id, s.tx.clone()))
                .collect();
            for (connection, tx) in &targets {
                slot.add_pending();
                self.hand_over(*connection, tx, env, slot, None);
            }
            return !targets.is_empty();
        }
        let Some(name) = env.topic.strip_prefix(EXECUTE) else {
            return false;
        };
        let found = self.served.servers.lock().iter().find_map(|(id, s)| {
            (s.principal == env.principal)
                .then(|| s.tools.get(name).map(|t| (*id, s.tx.clone(), t.clone())))
                .flatten()
        });
        let Some((connection, tx, (server, tool))) = found else {
            return false;
        };
        slot.add_pending();
        // A person may be asked: off the dispatcher, on the blocking pool like a handler.
        let inner = self.clone();
        let env = env.clone();
        let slot = slot.clone();
        self.rt.spawn_blocking(move || {
            let resource = format!("tool:{server}.{tool}");
            match inner.gate_served_call(&env, &server, &tool) {
                Ok(()) => inner.hand_over(connection, &tx, &env, &slot, Some(resource)),
                Err(e) => slot.finish(&format!("client:{connection}"), Err(e)),
            }
        });
        true
    }

    /// The requester chain, then a token, then a person; each refusal on the record.
    fn gate_served_call(
        &self,
        env: &Envelope,
        server: &str,
        tool: &str,
    ) -> Result<(), RequestError> {
        let p = &env.principal;
        let resource = Resource::Tool(format!("{server}.{tool}"));
        let shown = resource.to_string();
        let digest = blake3::hash(&env.payload);
        let args = format!("arguments blake3:{}", digest.to_hex());
        // The MCP server is where the effect runs; the capsule that started the chain is
        // whom it is for. Server names are capsule-name shaped (`astrid mcp add` checks).
        let acting = CapsuleName::new(format!("mcp-{server}"))
            .map_err(|e| RequestError::InvalidArgument(format!("server name `{server}`: {e}")))?;
        let actor = Actor::new(&acting, &env.chain);
        let deny = |decision: Decision, why: String| {
            if let Err(e) = self.record(p, &env.source, "tool.call", &shown, decision, &why) {
                tracing::error!(principal = %p, "recording a refused tool call: {e}");
            }
            RequestError::Denied(format!("{shown}: {why}"))
        };
        if let Some(who) = env.chain.refuses_tool(&env.topic) {
            return Err(deny(
                Decision::Denied,
                format!(
                    "capsule `{who}` on the chain ({}) does not declare the tool; {args}",
                    env.chain
                ),
            ));
        }
        let tokens = self
            .token_gate(p, &acting)
            .map_err(|e| RequestError::Failed(e.to_string()))?;
        let how = match tokens.check(&resource) {
            Ok(()) => "a capability token".to_string(),
            Err(d @ TokenDenial::Refused { .. }) => {
                return Err(deny(Decision::Denied, format!("{d}; {args}")));
            }
            Err(TokenDenial::Missing(_)) => {
                let ask = ApprovalAsk {
                    actor: actor.clone(),
                    action: "tool.call".into(),
                    asked: Asked::Effect(resource.clone()),
                    detail: format!("call the tool `{tool}` of the MCP server `{server}` ({args})"),
                    capsule_says: None,
                    outside_manifest: None,
                };
                let decision = self
                    .approve(p, ask, APPROVAL_WAIT)
                    .map_err(RequestError::Failed)?;
                if decision == ApprovalDecision::Deny {
                    // `approve` has recorded the question and the answer.
                    return Err(RequestError::Denied(format!(
                        "{shown}: no capability token covers it and the approval was denied"
                    )));
                }
                format!("approval ({})", decision.as_str())
            }
        };
        self.record(
            p,
            &actor.to_string(),
            "tool.call",
            &shown,
            Decision::Allowed,
            &format!("by {how}, asked by {}; {args}", env.chain),
        )
        .map_err(|e| RequestError::Failed(e.to_string()))
    }

    fn hand_over(
        &self,
        connection: u64,
        tx: &UnboundedSender<ServerMessage>,
        env: &Envelope,
        slot: &Arc<ReplySlot>,
        resource: Option<String>,
    ) {
        let source = format!("client:{connection}");
        let id = self.next_id();
        {
            let mut waiting = self.served.waiting.lock();
            let mine = waiting
                .values()
                .filter(|w| w.connection == connection)
                .count();
            if mine >= MAX_WAITING_PER_CONNECTION {
                drop(waiting);
                slot.finish(
                    &source,
                    Err(RequestError::QuotaExceeded(format!(
                        "connection {connection} has {mine} tool calls unanswered"
                    ))),
                );
                return;
            }
            waiting.insert(
                id,
                Waiting {
                    connection,
                    slot: slot.clone(),
                    principal: env.principal.clone(),
                    resource,
                    actor: env.source.clone(),
                },
            );
        }
        let sent = tx.send(ServerMessage::Invoke {
            id,
            topic: env.topic.clone(),
            payload: env.payload.as_ref().clone(),
            source: env.source.clone(),
        });
        if sent.is_err() {
            self.answer_served(connection, id, Err("the tool's connection closed".into()));
        }
    }

    /// `ClientMessage::Respond` from `connection`.
    pub(crate) fn answer_served(&self, connection: u64, id: u64, result: Result<Vec<u8>, String>) {
        let w = {
            let mut waiting = self.served.waiting.lock();
            match waiting.get(&id) {
                Some(w) if w.connection == connection => waiting.remove(&id),
                _ => None,
            }
        };
        let Some(w) = w else {
            tracing::warn!(connection, id, "ignored an answer to no waiting tool call");
            return;
        };
        if let Some(resource) = &w.resource {
            let outcome = match &result {
                Ok(bytes) => format!("ok, {} bytes", bytes.len()),
                Err(e) => format!("failed: {}", truncate(e, 200)),
            };
            if let Err(e) = self.record(
                &w.principal,
                &w.actor,
                "tool.result",
                resource,
                Decision::Recorded,
                &outcome,
            ) {
                tracing::error!(principal = %w.principal, "recording a tool result: {e}");
            }
        }
        let source = format!("client:{connection}");
        w.slot
            .finish(&source, result.map(Some).map_err(RequestError::Failed));
    }

    /// The connection closed: its tools are gone and its waiting calls fail now.
    pub(crate) fn forget_served(&self, connection: u64) {
        self.served.servers.lock().remove(&connection);
        let ids: Vec<u64> = self
            .served
            .waiting
            .lock()
            .iter()
            .filter(|(_, w)| w.connection == connection)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.answer_served(
                connection,
                id,
                Err("the connection serving the tool closed".into()),
            );
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::check_names;

    #[test]
    fn served_names_are_one_segment() {
        assert!(check_names("fs", &["read_file".into()]).is_ok());
        assert!(check_names("fs", &[]).is_ok());
        assert!(
            check_names("f__s", &["x".into()]).is_err(),
            "separator in server"
        );
        assert!(check_names("fs", &["a.b".into()]).is_err(), "dot in tool");
        assert!(check_names("fs", &["".into()]).is_err());
        assert!(check_names("", &["x".into()]).is_err());
        assert!(
            check_names("fs", &["x".repeat(61)]).is_err(),
            "too long in all"
        );
        assert!(check_names("fs", &["x".repeat(60)]).is_ok());
    }
}

//! Runs a turn against the bus: every host call of the agent is here, every decision is in
//! [`crate::turn`].

use astrid_sdk::prelude::*;
use serde::de::DeserializeOwned;

use crate::config::{self, Config};
use crate::errors;
use crate::protocol::{
    Append, Complete, Completion, Current, Event as TurnEvent, Execute, History, OpenSession,
    SessionId, SessionInfo, SessionRef, Stop, ToolCall, ToolContext, TurnReply, TurnRequest,
};
use crate::tools::{self, ToolSet};
use crate::turn::{Next, Turn};

/// How long the session and registry capsules get to answer (they only touch kv).
const SERVICE_TIMEOUT_MS: u32 = 30_000;

/// `agent.v1.turn`: the reply bytes.
pub fn turn(payload: &[u8]) -> Result<Vec<u8>, CapsuleError> {
    let req: TurnRequest = serde_json::from_slice(payload)
        .map_err(|e| CapsuleError::invalid(format!("malformed agent.v1.turn request: {e}")))?;
    if req.input.trim().is_empty() {
        return Err(CapsuleError::invalid("the input is empty"));
    }
    let cfg = Config::load(|k| env::var_opt(k).ok().flatten()).map_err(CapsuleError::failed)?;
    let max_steps = cfg
        .steps_for(req.max_steps)
        .map_err(CapsuleError::invalid)?;

    let session: SessionInfo = ask(
        "session.v1.open",
        "session",
        &OpenSession {
            session: req.session.as_deref(),
            workspace: req.workspace.as_deref(),
            create: true,
        },
    )?;
    if !tools::is_segment(&session.id) {
        return Err(CapsuleError::failed(format!(
            "the session capsule returned an unusable id `{}`",
            session.id
        )));
    }
    // Subscribed before anything slow happens, so a cancel sent from here on is seen.
    let cancel_topic = format!("agent.v1.cancel.{}", session.id);
    let sub = ipc::subscribe(&cancel_topic)
        .map_err(|e| CapsuleError::failed(format!("subscribing to {cancel_topic}: {e}")))?;
    let result = run(&req, &cfg, max_steps, &session, &cancel_topic);
    let event_topic = format!("agent.v1.event.{}", session.id);
    publish(&event_topic, &TurnEvent::End { ok: result.is_ok() });
    if let Err(e) = ipc::unsubscribe(sub) {
        log::warn(&format!("unsubscribing from {cancel_topic}: {e}"));
    }
    result
}

/// Events are for watching the turn; losing one must not fail it.
fn publish(topic: &str, event: &TurnEvent<'_>) {
    let sent = serde_json::to_vec(event)
        .map_err(|e| e.to_string())
        .and_then(|b| ipc::publish(topic, b).map_err(|e| e.to_string()));
    if let Err(e) = sent {
        log::warn(&format!("publishing on {topic}: {e}"));
    }
}

fn run(
    req: &TurnRequest,
    cfg: &Config,
    max_steps: u32,
    session: &SessionInfo,
    cancel_topic: &str,
) -> Result<Vec<u8>, CapsuleError> {
    let current: Current = ask("registry.v1.current", "registry", &serde_json::Map::new())?;
    let provider = current.provider.as_str();
    if !tools::is_segment(provider) {
        return Err(CapsuleError::failed(format!(
            "the registry names an invalid provider `{provider}`"
        )));
    }
    let history_bytes = request(
        "session.v1.history",
        "session",
        &SessionId { id: &session.id },
    )?;
    let history: History<'_> = serde_json::from_slice(&history_bytes).map_err(|e| {
        CapsuleError::failed(format!("malformed history from the session capsule: {e}"))
    })?;
    let tools = describe_tools(cfg.describe_timeout_ms)?;
    let system = config::system_prompt(cfg.system_prompt.as_deref(), session.workspace.as_deref());

    let ctx = Ctx {
        cfg,
        session,
        provider,
        model: current.model.as_deref(),
        system: &system,
        history: &history.messages,
        tools: &tools,
        event_topic: format!("agent.v1.event.{}", session.id),
        llm_topic: format!("llm.v1.complete.{provider}"),
        cancel_topic,
    };
    let mut turn = Turn::new(
        &req.input,
        max_steps,
        tools.names.clone(),
        cfg.tool_output_limit,
    );
    match ctx.drive(&mut turn) {
        Ok(stop) => {
            save(&session.id, &turn).map_err(|e| {
                CapsuleError::failed(format!(
                    "the turn finished but could not be saved to session `{}`: {e}",
                    session.name
                ))
            })?;
            let reply = TurnReply {
                session: SessionRef {
                    id: &session.id,
                    name: &session.name,
                },
                answer: turn.answer(),
                steps: turn.steps(),
                stop,
                usage: turn.usage(),
                tool_calls: turn.outcomes(),
            };
            Ok(serde_json::to_vec(&reply)?)
        }
        Err(mut msg) => {
            // Keep what the model and the tools already did: the user saw it happen.
            if turn.has_progress() {
                turn.abandon("not run: the turn failed");
                if let Err(e) = save(&session.id, &turn) {
                    msg = format!("{msg} (and this turn could not be saved: {e})");
                }
            }
            Err(CapsuleError::failed(msg))
        }
    }
}

/// What the loop needs, borrowed for the length of the turn.
struct Ctx<'a> {
    cfg: &'a Config,
    session: &'a SessionInfo,
    provider: &'a str,
    model: Option<&'a str>,
    system: &'a str,
    history: &'a [&'a serde_json::value::RawValue],
    tools: &'a ToolSet,
    event_topic: String,
    llm_topic: String,
    cancel_topic: &'a str,
}

impl Ctx<'_> {
    /// Runs the loop until the turn ends; `Err` is the message the turn fails with.
    fn drive(&self, turn: &mut Turn) -> Result<Stop, String> {
        let mut cancelled = false;
        loop {
            if !cancelled && cancel_requested() {
                cancelled = true;
                turn.cancel();
            }
            match turn.next() {
                Next::Done(stop) => return Ok(stop),
                Next::Model { step } => {
                    self.emit(&TurnEvent::Step { n: step });
                    let reply = self.complete(turn)?;
                    turn.model_done(reply);
                }
                Next::Tool(call) => {
                    self.emit_call(&call);
                    self.execute(turn, &call);
                }
                Next::Refuse(call, why) => {
                    self.emit_call(&call);
                    self.emit_result(&call, false, &why);
                    turn.tool_done(&call, Err(&why));
                }
            }
        }
    }

    fn complete(&self, turn: &Turn) -> Result<Completion, String> {
        let body = serde_json::to_vec(&Complete {
            model: self.model,
            system: self.system,
            history: self.history,
            new: turn.messages(),
            tools: if turn.sends_tools() {
                &self.tools.specs
            } else {
                &[]
            },
            max_tokens: self.cfg.max_tokens,
            stream_topic: &self.event_topic,
            cancel_topic: self.cancel_topic,
            offer_tools: turn.offers_tools(),
        })
        .map_err(|e| format!("encoding the model request: {e}"))?;
        let timeout = self.cfg.provider_timeout_ms;
        let reply = ipc::request(&self.llm_topic, &body, timeout)
            .map_err(|e| errors::provider(self.provider, &e, timeout))?;
        serde_json::from_slice(&reply).map_err(|e| {
            format!(
                "{}: malformed reply from the provider capsule: {e}",
                self.provider
            )
        })
    }

    fn execute(&self, turn: &mut Turn, call: &ToolCall) {
        let default_args = serde_json::value::RawValue::NULL;
        let body = serde_json::to_vec(&Execute {
            args: call.arguments.as_deref().unwrap_or(default_args),
            context: ToolContext {
                session: &self.session.id,
                workspace: self.session.workspace.as_deref(),
            },
        });
        let timeout = self.cfg.tool_timeout_ms;
        let outcome = match body {
            Ok(body) => ipc::request(&format!("tool.v1.execute.{}", call.name), &body, timeout)
                .map_err(|e| errors::tool(&call.name, &e, timeout)),
            Err(e) => Err(format!("encoding the tool call: {e}")),
        };
        match &outcome {
            Ok(reply) => {
                let text = tools::reply_text(reply);
                self.emit_result(call, true, &text);
                turn.tool_done(call, Ok(&text));
            }
            Err(why) => {
                self.emit_result(call, false, why);
                turn.tool_done(call, Err(why));
            }
        }
    }

    fn emit_call(&self, call: &ToolCall) {
        let empty = serde_json::value::RawValue::NULL;
        self.emit(&TurnEvent::ToolCall {
            id: &call.id,
            name: &call.name,
            arguments: call.arguments.as_deref().unwrap_or(empty),
        });
    }

    fn emit_result(&self, call: &ToolCall, ok: bool, output: &str) {
        self.emit(&TurnEvent::ToolResult {
            id: &call.id,
            name: &call.name,
            ok,
            output: tools::prefix(output, tools::EVENT_OUTPUT_MAX),
        });
    }

    fn emit(&self, event: &TurnEvent<'_>) {
        publish(&self.event_topic, event);
    }
}

/// True when a cancel arrived on the turn's cancel topic (the only subscription it holds).
fn cancel_requested() -> bool {
    match ipc::receive(0) {
        Ok(m) => m.is_some(),
        Err(e) => {
            log::warn(&format!("polling for a cancel: {e}"));
            false
        }
    }
}

/// The tools every installed tool capsule offers right now.
fn describe_tools(timeout_ms: u32) -> Result<ToolSet, CapsuleError> {
    let replies = match ipc::gather("tool.v1.describe", b"{}", timeout_ms) {
        Ok(r) => r,
        // No tool capsule answered at all: the model gets no tools.
        Err(IpcError::Timeout) => Vec::new(),
        Err(e) => {
            return Err(CapsuleError::failed(format!(
                "collecting the tool list: {e}"
            )))
        }
    };
    let set = tools::collect(
        replies
            .iter()
            .map(|e| (e.source.as_str(), e.payload.as_slice()))
            .collect(),
    );
    for why in &set.skipped {
        log::warn(&format!("tool left out: {why}"));
    }
    Ok(set)
}

fn save(id: &str, turn: &Turn) -> Result<(), CapsuleError> {
    request(
        "session.v1.append",
        "session",
        &Append {
            id,
            messages: turn.messages(),
        },
    )
    .map(drop)
}

fn request<T: Serialize + ?Sized>(
    topic: &str,
    capsule: &str,
    body: &T,
) -> Result<Vec<u8>, CapsuleError> {
    let bytes = serde_json::to_vec(body)?;
    ipc::request(topic, &bytes, SERVICE_TIMEOUT_MS)
        .map_err(|e| CapsuleError::failed(errors::service(topic, capsule, &e)))
}

fn ask<T: Serialize + ?Sized, R: DeserializeOwned>(
    topic: &str,
    capsule: &str,
    body: &T,
) -> Result<R, CapsuleError> {
    let reply = request(topic, capsule, body)?;
    serde_json::from_slice(&reply).map_err(|e| {
        CapsuleError::failed(format!(
            "malformed reply from the `{capsule}` capsule on {topic}: {e}"
        ))
    })
}

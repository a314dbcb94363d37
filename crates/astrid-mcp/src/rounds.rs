//! Approvals and capsules' questions on protocol 2026-07-28, which has no server-to-client
//! requests: a `tools/call` that needs a person's answer returns an `InputRequiredResult`
//! holding one elicitation form and an opaque `requestState`; the client fills the form and
//! calls again with the answer and the state; the call goes on, and ends with its result or
//! the next form.
//!
//! The daemon-side call is not restarted per round: it keeps waiting in the kernel (whose
//! approval broker holds it) on a task of this server, and `requestState` is only a random
//! handle to it, never data the client could change. A handle is good for one retry, for the
//! same tool, within the kernel's own wait; an unknown, used or expired one is a tool error
//! that says to call again. A call nobody comes back for is denied when its handle expires,
//! so the kernel's wait does not hold a capsule for nothing.
//!
//! Which call a request belongs to: the kernel's approval requests name the effect, not the
//! MCP call that led to it. A request is given to the call waiting when it arrives (one that
//! arrived while no call was waiting is left to the principal's other approvers), which is
//! exact for a host that makes one call at a time; with several at once a form may come back
//! on another of them, and the form always says what exactly is being approved.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use astrid_client::Client;
use astrid_types::elicit::{ElicitAnswer, ElicitKind, ElicitRequest};
use astrid_types::wire::{AnsweredBy, ApprovalDecision, ApprovalRequest};
use rmcp::model::{
    CallToolResult, ContentBlock, ElicitResult, InputRequest, InputRequests, InputRequiredResult,
    InputResponses,
};
use rmcp::ErrorData;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::elicit;

/// Most calls waiting for their client's answer at once; past it a new request is denied.
const MAX_WAITING: usize = 32;
/// The key of the one input request in each round.
const INPUT_KEY: &str = "astrid";

/// A person's answer the kernel is waiting for.
#[derive(Debug)]
pub(crate) enum Asked {
    Approval(ApprovalRequest),
    Question(ElicitRequest),
}

struct Arrival {
    at: Instant,
    asked: Asked,
}

/// A call between rounds: its daemon-side task and what its client was asked.
struct Waiting {
    tool: String,
    call: JoinHandle<Result<CallToolResult, ErrorData>>,
    asked: Asked,
    started: Instant,
    since: Instant,
}

/// How one round ended.
pub(crate) enum Round {
    Done(Result<CallToolResult, ErrorData>),
    Ask(InputRequiredResult),
}

/// The server's side of the rounds: what the kernel asked, and the calls waiting for answers.
pub(crate) struct Rounds {
    client: Client,
    inbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<Arrival>>,
    waiting: Mutex<HashMap<String, Waiting>>,
    /// How long a call may wait for its client to come back (the kernel's own wait).
    expire: Duration,
}

impl Rounds {
    /// Registers `client` to answer its principal's approvals and (non-secret) questions,
    /// which from now on wait for a call to carry them to the MCP client.
    pub(crate) async fn start(
        client: Client,
        expire: Duration,
    ) -> Result<Rounds, astrid_client::ClientError> {
        let mut approvals = client.register_approver().await?;
        // Not for secrets, as over the older protocol: the host would see the value.
        let mut questions = client.register_elicitor(false).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let to_inbox = tx.clone();
        tokio::spawn(async move {
            while let Some(req) = approvals.next().await {
                let arrival = Arrival {
                    at: Instant::now(),
                    asked: Asked::Approval(req),
                };
                if to_inbox.send(arrival).is_err() {
                    break;
                }
            }
        });
        let declines = client.clone();
        tokio::spawn(async move {
            while let Some(q) = questions.next().await {
                if matches!(q.kind, ElicitKind::Secret { .. }) {
                    let _ = declines
                        .answer_elicitation(q.id, ElicitAnswer::Declined)
                        .await;
                    continue;
                }
                let arrival = Arrival {
                    at: Instant::now(),
                    asked: Asked::Question(q),
                };
                if tx.send(arrival).is_err() {
                    break;
                }
            }
        });
        Ok(Rounds {
            client,
            inbox: tokio::sync::Mutex::new(rx),
            waiting: Mutex::new(HashMap::new()),
            expire,
        })
    }

    /// The first round of a call: `call` runs on a task from now on.
    pub(crate) async fn begin(
        &self,
        tool: &str,
        call: JoinHandle<Result<CallToolResult, ErrorData>>,
    ) -> Round {
        self.wait(tool, call, Instant::now()).await
    }

    /// A later round: the answer in `responses` goes to the kernel, and the call goes on.
    pub(crate) async fn resume(
        &self,
        tool: &str,
        state: &str,
        responses: Option<&InputResponses>,
    ) -> Round {
        self.expire_old().await;
        let found = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state);
        let Some(w) = found else {
            return Round::Done(Ok(CallToolResult::error(vec![ContentBlock::text(
                "this call's approval is no longer waiting (answered already, expired, or from \
                 an earlier run of the server): call the tool again",
            )])));
        };
        if w.tool != tool {
            // Not the call the state was handed out for: its question stays unanswered
            // (and is denied once it expires), and this request is refused.
            let msg = format!(
                "the request state belongs to a call of `{}`, not `{tool}`",
                w.tool
            );
            self.waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(state.to_string(), w);
            return Round::Done(Ok(CallToolResult::error(vec![ContentBlock::text(msg)])));
        }
        let result = responses
            .and_then(|r| r.get(INPUT_KEY))
            .and_then(|v| serde_json::from_value::<ElicitResult>(v.clone()).ok());
        self.answer(&w.asked, result.as_ref()).await;
        self.wait(tool, w.call, w.started).await
    }

    /// Waits for the call to end or for the kernel to ask something on its behalf.
    async fn wait(
        &self,
        tool: &str,
        mut call: JoinHandle<Result<CallToolResult, ErrorData>>,
        started: Instant,
    ) -> Round {
        let mut inbox = self.inbox.lock().await;
        loop {
            tokio::select! {
                done = &mut call => return Round::Done(joined(done)),
                arrived = inbox.recv() => {
                    let Some(a) = arrived else {
                        drop(inbox);
                        return Round::Done(joined(call.await));
                    };
                    if a.at < started {
                        // Asked before this call began: not this call's to carry.
                        continue;
                    }
                    drop(inbox);
                    return self.hand_out(tool, call, a.asked, started).await;
                }
            }
        }
    }

    /// Keeps the call waiting under a fresh handle and returns the form for its client.
    async fn hand_out(
        &self,
        tool: &str,
        call: JoinHandle<Result<CallToolResult, ErrorData>>,
        asked: Asked,
        started: Instant,
    ) -> Round {
        self.expire_old().await;
        let full = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_WAITING;
        if full {
            self.answer(&asked, None).await;
            // Denied: the call goes on to its (refused) end.
            return Round::Done(joined(call.await));
        }
        let params = match &asked {
            Asked::Approval(req) => elicit::approval_form(req),
            Asked::Question(q) => elicit::question_form(q),
        };
        let state = handle();
        let mut requests = InputRequests::new();
        requests.insert(
            INPUT_KEY.to_string(),
            InputRequest::Elicitation(rmcp::model::ElicitRequest::new(params)),
        );
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                state.clone(),
                Waiting {
                    tool: tool.to_string(),
                    call,
                    asked,
                    started,
                    since: Instant::now(),
                },
            );
        Round::Ask(InputRequiredResult::new(Some(requests), Some(state)))
    }

    /// Gives the kernel the client's answer; no usable answer is a deny (a declined
    /// question).
    async fn answer(&self, asked: &Asked, result: Option<&ElicitResult>) {
        match asked {
            Asked::Approval(req) => {
                let decision = result.map_or(ApprovalDecision::Deny, elicit::decision_of);
                tracing::info!(
                    id = req.id, capsule = %req.capsule, action = %req.action,
                    resource = %req.resource.pattern(), decision = decision.as_str(),
                    "approval answered through an MCP input round"
                );
                let _ = self
                    .client
                    .answer_approval_by(req.id, decision, AnsweredBy::McpClient)
                    .await;
            }
            Asked::Question(q) => {
                let answer =
                    result.map_or(ElicitAnswer::Declined, |r| elicit::answer_of(&q.kind, r));
                let _ = self.client.answer_elicitation(q.id, answer).await;
            }
        }
    }

    /// Denies what calls nobody came back for were waiting on; their tasks end refused.
    async fn expire_old(&self) {
        let old: Vec<Waiting> = {
            let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<String> = w
                .iter()
                .filter(|(_, v)| v.since.elapsed() >= self.expire)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| w.remove(k)).collect()
        };
        for w in old {
            self.answer(&w.asked, None).await;
        }
    }
}

fn joined(
    r: Result<Result<CallToolResult, ErrorData>, tokio::task::JoinError>,
) -> Result<CallToolResult, ErrorData> {
    r.unwrap_or_else(|e| {
        Err(ErrorData::internal_error(
            format!("the tool call failed inside the server: {e}"),
            None,
        ))
    })
}

/// 128 random bits, hex: a handle the client cannot guess for another call.
fn handle() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

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
//! MCP call that led to it. A request is given to a call that is waiting when it arrives,
//! which is exact for a host that makes one call at a time; with several at once a form may
//! come back on another of them, and the form always says what exactly is being approved.
//! One that arrives while no call waits is not this server's to carry (the principal's agent
//! in `astrid chat`, say): it is passed (`ApprovalPass`, `ElicitPass`), so the kernel does
//! not wait on this server for an answer that cannot come.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use astrid_client::Client;
use astrid_types::elicit::{ElicitAnswer, ElicitKind, ElicitRequest};
use astrid_types::wire::{AnsweredBy, ApprovalDecision, ApprovalRequest};
use rmcp::model::{
    CallToolResult, ContentBlock, ElicitResult, InputRequest, InputRequests, InputRequiredResult,
    InputResponses,
};
use rmcp::service::RoleServer;
use rmcp::{ErrorData, Peer};
use tokio::sync::oneshot;
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

/// A call's daemon-side task.
pub(crate) type Call = JoinHandle<Result<CallToolResult, ErrorData>>;

/// A call listening for what the kernel asks on its behalf.
pub(crate) struct Listening(oneshot::Receiver<Asked>);

/// A call between rounds: its daemon-side task and what its client was asked.
struct Waiting {
    tool: String,
    call: Call,
    asked: Asked,
    since: Instant,
}

/// How one round ended.
pub(crate) enum Round {
    Done(Result<CallToolResult, ErrorData>),
    Ask(InputRequiredResult),
}

/// The server's side of the rounds: the calls listening for the kernel's questions, and the
/// calls waiting for their client's answers.
pub(crate) struct Rounds {
    client: Client,
    listening: Mutex<VecDeque<oneshot::Sender<Asked>>>,
    waiting: Mutex<HashMap<String, Waiting>>,
    /// How long a call may wait for its client to come back (the kernel's own wait).
    expire: Duration,
    /// The two dispatchers; each holds this, so [`Rounds::stop`] ends them to let it go.
    dispatchers: Mutex<Vec<JoinHandle<()>>>,
}

impl Rounds {
    /// Registers `client` to answer its principal's approvals and (non-secret) questions;
    /// each is handed to a listening call, or passed.
    pub(crate) async fn start(
        client: Client,
        expire: Duration,
    ) -> Result<Arc<Rounds>, astrid_client::ClientError> {
        let mut approvals = client.register_approver().await?;
        // Not for secrets, as over the older protocol: the host would see the value.
        let mut questions = client.register_elicitor(false).await?;
        let rounds = Arc::new(Rounds {
            client,
            listening: Mutex::new(VecDeque::new()),
            waiting: Mutex::new(HashMap::new()),
            expire,
            dispatchers: Mutex::new(Vec::with_capacity(2)),
        });
        let to = rounds.clone();
        let approving = tokio::spawn(async move {
            while let Some(req) = approvals.next().await {
                to.dispatch(Asked::Approval(req)).await;
            }
        });
        let to = rounds.clone();
        let answering = tokio::spawn(async move {
            while let Some(q) = questions.next().await {
                to.dispatch(Asked::Question(q)).await;
            }
        });
        rounds
            .dispatchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend([approving, answering]);
        Ok(rounds)
    }

    /// Stops answering: the dispatchers end, and with the last handle to this the connection
    /// closes, which passes whatever it was still asked.
    pub(crate) fn stop(&self) {
        let tasks = std::mem::take(
            &mut *self
                .dispatchers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in tasks {
            t.abort();
        }
    }

    /// No call is waiting for its client to come back.
    pub(crate) fn is_idle(&self) -> bool {
        self.lock_waiting().is_empty()
    }

    /// The connection it answers on is still up.
    pub(crate) fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Starts listening for what the kernel asks on behalf of a call; before the call is
    /// sent, so nothing it causes can arrive unheard.
    pub(crate) fn listen(&self) -> Listening {
        let (tx, rx) = oneshot::channel();
        self.lock_listening().push_back(tx);
        Listening(rx)
    }

    /// The first round of a call, listening since before it was sent.
    pub(crate) async fn begin(&self, tool: &str, call: Call, listening: Listening) -> Round {
        self.wait(tool, call, listening).await
    }

    /// A later round: the answer in `responses` goes to the kernel, and the call goes on.
    pub(crate) async fn resume(
        &self,
        tool: &str,
        state: &str,
        responses: Option<&InputResponses>,
    ) -> Round {
        self.expire_old().await;
        let found = self.lock_waiting().remove(state);
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
            self.lock_waiting().insert(state.to_string(), w);
            return Round::Done(Ok(CallToolResult::error(vec![ContentBlock::text(msg)])));
        }
        let result = responses
            .and_then(|r| r.get(INPUT_KEY))
            .and_then(|v| serde_json::from_value::<ElicitResult>(v.clone()).ok());
        // Listening before answering: the call's next question may follow at once.
        let listening = self.listen();
        self.answer(&w.asked, result.as_ref()).await;
        self.wait(tool, w.call, listening).await
    }

    /// Hands what the kernel asked to a listening call, or passes it.
    async fn dispatch(&self, mut asked: Asked) {
        if let Asked::Question(q) = &asked {
            if matches!(q.kind, ElicitKind::Secret { .. }) {
                // Never sent to a connection that did not register for secrets.
                let _ = self
                    .client
                    .answer_elicitation(q.id, ElicitAnswer::Declined)
                    .await;
                return;
            }
        }
        loop {
            let next = self.lock_listening().pop_front();
            match next {
                Some(tx) => match tx.send(asked) {
                    Ok(()) => return,
                    // That call ended meanwhile: the next one.
                    Err(back) => asked = back,
                },
                None => return self.pass(&asked).await,
            }
        }
    }

    async fn pass(&self, asked: &Asked) {
        let _ = match asked {
            Asked::Approval(r) => self.client.pass_approval(r.id).await,
            Asked::Question(q) => self.client.pass_elicitation(q.id).await,
        };
    }

    /// Waits for the call to end or for the kernel to ask something on its behalf.
    async fn wait(&self, tool: &str, mut call: Call, listening: Listening) -> Round {
        let mut rx = listening.0;
        loop {
            tokio::select! {
                done = &mut call => {
                    self.stop_listening(rx).await;
                    return Round::Done(joined(done));
                }
                asked = &mut rx => match asked {
                    Ok(asked) => {
                        self.expire_old().await;
                        if self.lock_waiting().len() < MAX_WAITING {
                            return self.hand_out(tool, call, asked);
                        }
                        // Too many calls wait already: denied, and the call goes on.
                        rx = self.listen().0;
                        self.answer(&asked, None).await;
                    }
                    // The dispatcher is gone (the daemon connection closed): the call ends
                    // too.
                    Err(_) => return Round::Done(joined(call.await)),
                },
            }
        }
    }

    /// Over a session (protocols before 2026-07-28 on HTTP): waits for the call, putting
    /// what the kernel asks on its behalf to the client as `elicitation/create` requests.
    /// They are sent from this task, the call's own handler, so the SDK sends them on the
    /// call's response stream; a spawned task would send them on the session's GET stream,
    /// which a client may not have opened yet (and which the specification keeps for
    /// messages unrelated to a running request).
    pub(crate) async fn ask_within(
        &self,
        mut call: Call,
        listening: Listening,
        peer: &Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut rx = listening.0;
        loop {
            tokio::select! {
                done = &mut call => {
                    self.stop_listening(rx).await;
                    return joined(done);
                }
                asked = &mut rx => {
                    let Ok(asked) = asked else {
                        // The dispatcher is gone (the daemon connection closed).
                        return joined(call.await);
                    };
                    // Listening before answering: the call's next question may follow at once.
                    rx = self.listen().0;
                    let (form, wait) = match &asked {
                        Asked::Approval(req) => (elicit::approval_form(req), elicit::FORM_WAIT),
                        Asked::Question(q) => (
                            elicit::question_form(q),
                            Duration::from_millis(u64::from(q.timeout_ms)).min(elicit::FORM_WAIT),
                        ),
                    };
                    tokio::select! {
                        form = peer.create_elicitation_with_timeout(form, Some(wait)) => {
                            let result = form
                                .inspect_err(|e| tracing::warn!("the MCP client did not answer the form: {e}"))
                                .ok();
                            self.answer(&asked, result.as_ref()).await;
                        }
                        // The kernel stopped waiting (its own timeout) and the call ended: the
                        // form's answer would go nowhere.
                        done = &mut call => {
                            self.answer(&asked, None).await;
                            self.stop_listening(rx).await;
                            return joined(done);
                        }
                    }
                }
            }
        }
    }

    /// The call ended: what was handed to it just then is not its to carry.
    async fn stop_listening(&self, mut rx: oneshot::Receiver<Asked>) {
        rx.close();
        if let Ok(asked) = rx.try_recv() {
            self.pass(&asked).await;
        }
    }

    /// Keeps the call waiting under a fresh handle and returns the form for its client.
    fn hand_out(&self, tool: &str, call: Call, asked: Asked) -> Round {
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
        self.lock_waiting().insert(
            state.clone(),
            Waiting {
                tool: tool.to_string(),
                call,
                asked,
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
            let mut w = self.lock_waiting();
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

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_listening(&self) -> std::sync::MutexGuard<'_, VecDeque<oneshot::Sender<Asked>>> {
        self.listening.lock().unwrap_or_else(|e| e.into_inner())
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use astrid_types::home::AstridHome;
use astrid_types::wire::{
    self, AnsweredBy, ApprovalDecision, ClientMessage, ControlCommand, ControlError,
    ControlResponse, Credential, ServerMessage, MAX_FRAME, MAX_HELLO_FRAME, PROTOCOL_VERSIONS,
};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::framing::{read_frame, write_frame};
use crate::handles::{ApprovalStream, PendingReply, Subscription};
use crate::routes::{read_loop, unexpected, write_loop, Outgoing, PendingGuard, Shared};
use crate::ClientError;

/// A daemon that accepts the connection but never answers the hello is as good as dead.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The daemon enforces the request timeout itself and reports it precisely; our own deadline
/// only exists so a wedged daemon cannot hang the caller, so it allows some slack.
pub(crate) const REPLY_GRACE: Duration = Duration::from_secs(2);
/// Frames queued for the writer task; senders wait when the socket cannot keep up.
const OUTBOX: usize = 256;

struct Inner {
    out: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    connection_id: u64,
    protocol_version: u32,
    daemon_version: String,
    reader: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer task ends by itself once `out` is gone; the reader would otherwise wait
        // on the socket forever.
        self.reader.abort();
    }
}

/// One authenticated connection to the daemon. Clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Connects to the daemon under `home` as the operator (its token file), acting for
    /// `principal`.
    pub async fn connect(
        home: &AstridHome,
        principal: &str,
        client_name: &str,
    ) -> Result<Client, ClientError> {
        let path = home.token_file();
        let token = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ClientError::NoToken { path })
            }
            Err(source) => return Err(ClientError::Token { path, source }),
        };
        Client::connect_with(home, Credential::Operator(token), principal, client_name).await
    }

    /// Connects with any credential, e.g. a device token from `astrid pair-device issue`
    /// (whose `principal` must be the device's own).
    pub async fn connect_with(
        home: &AstridHome,
        credential: Credential,
        principal: &str,
        client_name: &str,
    ) -> Result<Client, ClientError> {
        let socket = home.socket();
        let stream = UnixStream::connect(&socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: socket,
                source,
            })?;
        Client::handshake_with(stream, credential, principal, client_name).await
    }

    /// Performs the hello/welcome exchange as the operator on an already connected stream.
    pub async fn handshake(
        stream: UnixStream,
        token: &str,
        principal: &str,
        client_name: &str,
    ) -> Result<Client, ClientError> {
        let credential = Credential::Operator(token.to_string());
        Client::handshake_with(stream, credential, principal, client_name).await
    }

    /// Performs the hello/welcome exchange on an already connected stream.
    pub async fn handshake_with(
        mut stream: UnixStream,
        credential: Credential,
        principal: &str,
        client_name: &str,
    ) -> Result<Client, ClientError> {
        let hello = ClientMessage::Hello {
            versions: PROTOCOL_VERSIONS.to_vec(),
            credential,
            principal: principal.to_string(),
            client_name: client_name.to_string(),
        };
        let exchange = async {
            write_frame(&mut stream, &wire::encode(&hello)?).await?;
            match read_frame(&mut stream, MAX_HELLO_FRAME).await? {
                Some(bytes) => Ok(wire::decode::<ServerMessage>(&bytes)?),
                None => Err(ClientError::Handshake(
                    "daemon closed the connection without answering".into(),
                )),
            }
        };
        let answer = tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                ClientError::Handshake(format!("no answer within {HANDSHAKE_TIMEOUT:?}"))
            })??;
        let (version, connection_id, daemon_version) = match answer {
            ServerMessage::Welcome {
                version,
                connection_id,
                daemon_version,
            } => (version, connection_id, daemon_version),
            ServerMessage::Refused { reason } => return Err(ClientError::Refused(reason)),
            other => {
                return Err(ClientError::Handshake(format!(
                    "expected Welcome, got {other:?}"
                )))
            }
        };
        if !PROTOCOL_VERSIONS.contains(&version) {
            return Err(ClientError::Handshake(format!(
                "daemon chose protocol version {version}, which this client does not speak \
                 (speaks {PROTOCOL_VERSIONS:?})"
            )));
        }
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared::default());
        let (out, outbox) = mpsc::channel(OUTBOX);
        tokio::spawn(write_loop(write, outbox, shared.clone()));
        let reader = tokio::spawn(read_loop(read, shared.clone()));
        Ok(Client {
            inner: Arc::new(Inner {
                out,
                shared,
                next_id: AtomicU64::new(1),
                connection_id,
                protocol_version: version,
                daemon_version,
                reader,
            }),
        })
    }

    /// The id the daemon assigned this connection (it appears in the daemon's logs).
    pub fn connection_id(&self) -> u64 {
        self.inner.connection_id
    }

    pub fn daemon_version(&self) -> &str {
        &self.inner.daemon_version
    }

    pub fn protocol_version(&self) -> u32 {
        self.inner.protocol_version
    }

    /// False once the connection has dropped; every further call fails with `Disconnected`.
    pub fn is_connected(&self) -> bool {
        !self.inner.shared.routes().closed
    }

    /// Sends a request event and waits for the first handler's reply.
    pub async fn request(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        self.send_request(topic, payload, timeout)
            .await?
            .wait()
            .await
    }

    /// Sends a request and returns once it is on its way; the reply is awaited separately.
    /// Requests sent one after another from one task reach the daemon in that order, which
    /// `request` from several tasks cannot promise.
    pub async fn send_request(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        timeout: Duration,
    ) -> Result<PendingReply, ClientError> {
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let id = self.next_id();
        let (rx, guard) = self.await_reply(id)?;
        self.send(&ClientMessage::Request {
            id,
            topic: topic.to_string(),
            payload: payload.into(),
            timeout_ms,
        })
        .await?;
        Ok(PendingReply {
            rx,
            _guard: guard,
            timeout,
        })
    }

    /// Sends a request to every handler of `topic` and returns each reply with its source
    /// (`capsule:<name>`): all of them once every handler has finished, or those in by the
    /// timeout. Handlers that fail are left out, as for a capsule's `ipc.gather`.
    pub async fn gather(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<(String, Vec<u8>)>, ClientError> {
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let id = self.next_id();
        let (rx, _guard) = self.await_reply(id)?;
        self.send(&ClientMessage::Gather {
            id,
            topic: topic.to_string(),
            payload: payload.into(),
            timeout_ms,
        })
        .await?;
        match tokio::time::timeout(timeout.saturating_add(REPLY_GRACE), rx).await {
            Err(_) => Err(ClientError::Timeout(timeout)),
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Ok(Ok(ServerMessage::Gathered { replies, .. })) => Ok(replies),
            Ok(Ok(other)) => Err(unexpected(other)),
        }
    }

    /// Publishes an event; the daemon does not acknowledge it.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::Publish {
            topic: topic.to_string(),
            payload: payload.into(),
        })
        .await
    }

    /// Waits until everything sent before this call has been written to the socket. A
    /// process that publishes and then exits calls this so its last events are not lost.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(Outgoing::Flush(tx)).await?;
        rx.await.map_err(|_| ClientError::Disconnected)
    }

    /// Starts receiving events whose topic matches `pattern`, until the subscription is dropped.
    pub async fn subscribe(&self, pattern: &str) -> Result<Subscription, ClientError> {
        let id = self.next_id();
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut r = self.inner.shared.routes();
            if r.closed {
                return Err(ClientError::Disconnected);
            }
            r.subs.insert(id, tx);
        }
        let sub = Subscription {
            id,
            rx,
            client: self.clone(),
            close_reason: None,
        };
        self.send(&ClientMessage::Subscribe {
            id,
            pattern: pattern.to_string(),
        })
        .await?;
        Ok(sub)
    }

    /// Registers this connection as an approver for its principal. Returns once the daemon
    /// has registered it, so requests made after this call reach the stream.
    pub async fn register_approver(&self) -> Result<ApprovalStream, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut r = self.inner.shared.routes();
            if r.closed {
                return Err(ClientError::Disconnected);
            }
            r.approvers.push(tx);
        }
        self.send(&ClientMessage::RegisterApprover).await?;
        // The daemon handles a connection's frames in order: once this reply is back, the
        // registration before it is in effect.
        self.control(ControlCommand::Status).await?;
        Ok(ApprovalStream { rx })
    }

    /// Registers this connection to answer capsules' questions to its principal's human
    /// (`astrid:elicit`); with `secrets`, also requests for credentials to store. Returns
    /// once the daemon has registered it.
    pub async fn register_elicitor(
        &self,
        secrets: bool,
    ) -> Result<crate::ElicitStream, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut r = self.inner.shared.routes();
            if r.closed {
                return Err(ClientError::Disconnected);
            }
            r.elicitors.push(tx);
        }
        self.send(&ClientMessage::RegisterElicitor { secrets })
            .await?;
        // As for approvers: the reply to a later frame means the registration is in effect.
        self.control(ControlCommand::Status).await?;
        Ok(crate::ElicitStream { rx })
    }

    /// Answers a question received on an [`ElicitStream`](crate::ElicitStream). The daemon
    /// ignores answers to questions that are not this principal's, are no longer waiting,
    /// or do not fit the question.
    pub async fn answer_elicitation(
        &self,
        id: u64,
        answer: astrid_types::elicit::ElicitAnswer,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::ElicitAnswer { id, answer }).await
    }

    /// Answers an approval request received on an [`ApprovalStream`] as a person who read
    /// it. The daemon ignores answers to requests that are not this principal's or are no
    /// longer waiting.
    pub async fn answer_approval(
        &self,
        id: u64,
        decision: ApprovalDecision,
    ) -> Result<(), ClientError> {
        self.answer_approval_by(id, decision, AnsweredBy::Person)
            .await
    }

    /// [`answer_approval`](Self::answer_approval), saying who answered: an automatic
    /// approver (`astrid -p --yes`) says [`AnsweredBy::AutoYes`], and the daemon records
    /// that and never takes its answer as more than allow-once.
    pub async fn answer_approval_by(
        &self,
        id: u64,
        decision: ApprovalDecision,
        by: AnsweredBy,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::ApprovalAnswer { id, decision, by })
            .await
    }

    /// Says this connection will not answer approval request `id` (it was not its to
    /// carry): once every approver asked has passed, the daemon denies it at once rather
    /// than waiting out its time. Another approver may still answer before then.
    pub async fn pass_approval(&self, id: u64) -> Result<(), ClientError> {
        self.send(&ClientMessage::ApprovalPass { id }).await
    }

    /// The same for a capsule's question `id`.
    pub async fn pass_elicitation(&self, id: u64) -> Result<(), ClientError> {
        self.send(&ClientMessage::ElicitPass { id }).await
    }

    /// Reports one connection that the MCP server `server` (served by this connection's
    /// bridge) made through a granted route, for the principal's audit chain. Needs the
    /// operator's credential; the daemon records a device's report as refused.
    pub async fn report_connection(
        &self,
        server: &str,
        target: &str,
        outcome: astrid_types::mcp::ConnectOutcome,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::ServedConnect {
            server: server.into(),
            target: target.into(),
            outcome,
        })
        .await
    }

    /// Runs a control command. Daemon-side failures come back as `ClientError::Control`,
    /// refusals of the connection's credential as `ClientError::Denied`.
    pub async fn control(&self, command: ControlCommand) -> Result<ControlResponse, ClientError> {
        let id = self.next_id();
        let (rx, _guard) = self.await_reply(id)?;
        self.send(&ClientMessage::Control { id, command }).await?;
        match rx.await {
            Err(_) => Err(ClientError::Disconnected),
            Ok(ServerMessage::ControlReply { result, .. }) => result.map_err(|e| match e {
                ControlError::Denied(m) => ClientError::Denied(m),
                ControlError::Failed(m) => ClientError::Control(m),
            }),
            Ok(other) => Err(unexpected(other)),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub(crate) fn outbox(&self) -> &mpsc::Sender<Outgoing> {
        &self.inner.out
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn await_reply(
        &self,
        id: u64,
    ) -> Result<(oneshot::Receiver<ServerMessage>, PendingGuard), ClientError> {
        let (tx, rx) = oneshot::channel();
        let mut r = self.inner.shared.routes();
        if r.closed {
            return Err(ClientError::Disconnected);
        }
        r.pending.insert(id, tx);
        let guard = PendingGuard {
            shared: self.inner.shared.clone(),
            id,
        };
        Ok((rx, guard))
    }

    pub(crate) async fn send(&self, msg: &ClientMessage) -> Result<(), ClientError> {
        let frame = encode_frame(msg)?;
        self.enqueue(Outgoing::Frame(frame)).await
    }

    async fn enqueue(&self, item: Outgoing) -> Result<(), ClientError> {
        // The writer may outlive the reader's discovery that the peer is gone; refuse here so
        // callers learn it now rather than from a write error nobody reports.
        if !self.is_connected() {
            return Err(ClientError::Disconnected);
        }
        self.inner
            .out
            .send(item)
            .await
            .map_err(|_| ClientError::Disconnected)
    }
}

/// Encodes a message, refusing locally what the daemon would close the connection for.
pub(crate) fn encode_frame(msg: &ClientMessage) -> Result<Vec<u8>, ClientError> {
    let frame = wire::encode(msg)?;
    if frame.len() > MAX_FRAME {
        return Err(crate::framing::FrameError::TooLarge {
            size: frame.len(),
            max: MAX_FRAME,
        }
        .into());
    }
    Ok(frame)
}

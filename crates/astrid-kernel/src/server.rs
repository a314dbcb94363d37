//! The Unix socket: handshake, framing, and one task per connection. A malformed frame, an
//! oversized frame or a failed handshake closes that connection only.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use astrid_client::framing::{read_frame, write_frame};
use astrid_sandbox::Chain;
use astrid_types::topic::{is_kernel_topic, validate_pattern, validate_topic};
use astrid_types::wire::{
    self, ClientMessage, RequestError, ServerMessage, MAX_FRAME, MAX_HELLO_FRAME, PROTOCOL_VERSIONS,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::bus::{Envelope, ReplySlot, Subscription, Target};
use crate::identity::{Authority, Caller};
use crate::kernel::Inner;

const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUEST_TIMEOUT_MS: u32 = 600_000;
const CLOSED_BEFORE_HELLO: &str = "connection closed before hello";

pub(crate) async fn accept_loop(inner: Arc<Inner>, listener: UnixListener, token: String) {
    let mut shutdown = inner.shutdown.subscribe();
    let token = Arc::new(token);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(inner.clone(), stream, token.clone()));
                }
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
            _ = shutdown.changed() => break,
        }
    }
}

async fn handshake(
    inner: &Inner,
    stream: &mut UnixStream,
    token: &str,
) -> Result<Arc<Caller>, String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("cannot read peer credentials: {e}"))?;
    let me = nix::unistd::geteuid().as_raw();
    if cred.uid() != me {
        return Err(format!(
            "peer uid {} is not the daemon's uid {me}",
            cred.uid()
        ));
    }
    let frame = tokio::time::timeout(HELLO_TIMEOUT, read_frame(stream, MAX_HELLO_FRAME))
        .await
        .map_err(|_| "no hello within 5 s".to_string())?
        .map_err(|e| format!("bad hello frame: {e}"))?
        .ok_or(CLOSED_BEFORE_HELLO)?;
    let wire::Hello {
        credential,
        principal,
        client_name,
        ..
    } = wire::decode_hello(&frame)?;
    let id = inner.next_id();
    let caller = inner.authenticate(&credential, &principal, &client_name, token, id)?;
    tracing::debug!(
        connection = id,
        principal = %caller.principal,
        credential = %caller.credential(),
        client = %client_name,
        "client connected"
    );
    Ok(Arc::new(caller))
}

async fn send(stream: &mut UnixStream, msg: &ServerMessage) -> std::io::Result<()> {
    let bytes = wire::encode(msg).map_err(std::io::Error::other)?;
    write_frame(stream, &bytes)
        .await
        .map_err(std::io::Error::other)
}

async fn connection(inner: Arc<Inner>, mut stream: UnixStream, token: Arc<String>) {
    let peer = match handshake(&inner, &mut stream, &token).await {
        Ok(p) => p,
        Err(reason) if reason == CLOSED_BEFORE_HELLO => {
            // `astrid` probes liveness by connecting and closing; not worth a warning.
            tracing::debug!("connection closed before hello");
            return;
        }
        Err(reason) => {
            tracing::warn!("refused connection: {reason}");
            let _ = send(&mut stream, &ServerMessage::Refused { reason }).await;
            return;
        }
    };
    let version = *PROTOCOL_VERSIONS.last().expect("at least one version");
    let welcome = ServerMessage::Welcome {
        version,
        connection_id: peer.connection,
        daemon_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    if send(&mut stream, &welcome).await.is_err() {
        return;
    }
    inner.clients.fetch_add(1, Ordering::Relaxed);
    inner.connections.begin();
    inner.frontends.attach(
        peer.connection,
        peer.principal.clone(),
        &peer.client,
        peer.credential(),
    );

    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = unbounded_channel::<ServerMessage>();
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let Ok(bytes) = wire::encode(&msg) else {
                continue;
            };
            if write_frame(&mut wr, &bytes).await.is_err() {
                break;
            }
        }
    });

    let mut shutdown = inner.shutdown.subscribe();
    // A device's connection ends when the device is revoked or expires.
    let device = match &peer.authority {
        Authority::Device(d) => Some(d.clone()),
        Authority::Operator => None,
    };
    let revoked = device
        .as_ref()
        .map(|d| inner.live_devices.attach(&d.id, peer.connection));
    let expiry = device.as_ref().and_then(|d| d.expires_ms).map(|e| {
        let left = e.saturating_sub(astrid_crypto::now_ms());
        tokio::time::Instant::now() + Duration::from_millis(left)
    });
    loop {
        let read = tokio::select! {
            r = read_frame(&mut rd, MAX_FRAME) => r,
            // Stop taking new work; replies already owed still go out before the writer ends.
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = async { revoked.as_ref().expect("guarded").notified().await },
                if revoked.is_some() => {
                let _ = tx.send(ServerMessage::Error {
                    id: None,
                    message: "closing connection: its device token was revoked".into(),
                });
                break;
            }
            _ = async { tokio::time::sleep_until(expiry.expect("guarded")).await },
                if expiry.is_some() => {
                let _ = tx.send(ServerMessage::Error {
                    id: None,
                    message: "closing connection: its device token expired".into(),
                });
                break;
            }
        };
        // A frame that is oversized, truncated or undecodable ends this connection only.
        let msg = match read {
            Ok(None) => break,
            Ok(Some(frame)) => wire::decode::<ClientMessage>(&frame).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match msg {
            Ok(msg) => handle(&inner, &peer, &tx, msg),
            Err(e) => {
                tracing::warn!(connection = peer.connection, "closing connection: {e}");
                let _ = tx.send(ServerMessage::Error {
                    id: None,
                    message: format!("closing connection: {e}"),
                });
                break;
            }
        }
    }

    if let Some(d) = &device {
        inner.live_devices.detach(&d.id, peer.connection);
    }
    inner.frontends.detach(peer.connection);
    inner.subs.remove_connection(peer.connection);
    inner.approvals.unregister(peer.connection);
    inner.elicitations.unregister(peer.connection);
    inner.forget_served(peer.connection);
    inner.clients.fetch_sub(1, Ordering::Relaxed);
    drop(tx);
    let _ = writer.await;
    inner.connections.end();
}

fn handle(
    inner: &Arc<Inner>,
    peer: &Arc<Caller>,
    tx: &UnboundedSender<ServerMessage>,
    msg: ClientMessage,
) {
    let source = format!("client:{}", peer.connection);
    match msg {
        ClientMessage::Hello { .. } => {
            let _ = tx.send(ServerMessage::Error {
                id: None,
                message: "already greeted".into(),
            });
        }
        ClientMessage::Publish { topic, payload } => {
            if let Err(message) = check_client_topic(&topic) {
                let _ = tx.send(ServerMessage::Error { id: None, message });
                return;
            }
            inner.deliver(Envelope {
                topic,
                payload: Arc::new(payload),
                chain: Chain::from_principal(source.clone()),
                source,
                principal: peer.principal.clone(),
                depth: 0,
                reply: None,
            });
        }
        ClientMessage::Request {
            id,
            topic,
            payload,
            timeout_ms,
        } => {
            if let Err(message) = check_client_topic(&topic) {
                let _ = tx.send(ServerMessage::Reply {
                    id,
                    result: Err(RequestError::InvalidArgument(message)),
                });
                return;
            }
            let reply_tx = tx.clone();
            let env = Envelope {
                chain: Chain::from_principal(source.clone()),
                topic,
                payload: Arc::new(payload),
                source,
                principal: peer.principal.clone(),
                depth: 0,
                reply: None,
            };
            let slot = inner.request(
                env,
                Box::new(move |result| {
                    let _ = reply_tx.send(ServerMessage::Reply { id, result });
                }),
            );
            let timeout_ms = timeout_ms.min(MAX_REQUEST_TIMEOUT_MS);
            tokio::spawn(async move {
                let deadline = tokio::time::sleep(Duration::from_millis(u64::from(timeout_ms)));
                tokio::select! {
                    () = deadline => slot.reply(Err(RequestError::Timeout(timeout_ms))),
                    () = slot.settled() => {}
                }
            });
        }
        ClientMessage::Subscribe { id, pattern } => {
            if let Err(e) = validate_pattern(&pattern) {
                let _ = tx.send(ServerMessage::Error {
                    id: Some(id),
                    message: e.to_string(),
                });
                return;
            }
            inner.subs.insert(
                inner.next_id(),
                Subscription {
                    pattern,
                    principal: peer.principal.clone(),
                    target: Target::Client {
                        subscription: id,
                        tx: tx.clone(),
                    },
                    connection: Some(peer.connection),
                },
            );
        }
        ClientMessage::Unsubscribe { id } => inner.subs.remove_client_sub(peer.connection, id),
        ClientMessage::RegisterApprover => {
            inner
                .approvals
                .register(peer.connection, peer.principal.clone(), tx.clone());
        }
        ClientMessage::ApprovalAnswer { id, decision, by } => {
            inner.approvals.answer(&peer.principal, id, decision, by);
        }
        ClientMessage::RegisterElicitor { secrets } => {
            inner.elicitations.register(
                peer.connection,
                peer.principal.clone(),
                tx.clone(),
                secrets,
            );
        }
        ClientMessage::ApprovalPass { id } => {
            inner.approvals.pass(&peer.principal, peer.connection, id);
        }
        ClientMessage::ElicitPass { id } => {
            inner
                .elicitations
                .pass(&peer.principal, peer.connection, id);
        }
        ClientMessage::ServedConnect {
            server,
            target,
            outcome,
        } => {
            let from_operator = matches!(peer.authority, crate::identity::Authority::Operator);
            if let Err(e) =
                inner.mcp_connect(&peer.principal, from_operator, &server, &target, &outcome)
            {
                tracing::warn!(connection = peer.connection, "a connection report: {e}");
            }
        }
        ClientMessage::ElicitAnswer { id, answer } => {
            inner.elicitations.answer(&peer.principal, id, answer);
        }
        ClientMessage::Gather {
            id,
            topic,
            payload,
            timeout_ms,
        } => gather(inner, peer, tx, source, id, topic, payload, timeout_ms),
        ClientMessage::ServeTools { id, server, tools } => {
            // Serving a tool takes the principal's tool calls and their arguments: only the
            // operator (who may act for any principal anyway) may do it, not a device.
            let result = match peer.authority {
                crate::identity::Authority::Operator => inner
                    .serve_tools(peer.connection, &peer.principal, tx, &server, &tools)
                    .map(|()| Vec::new()),
                crate::identity::Authority::Device(_) => {
                    let why = "serving tools needs the operator's credential, not a device token";
                    if let Err(e) = inner.record(
                        &peer.principal,
                        &source,
                        "tool.serve",
                        &format!("tool:{server}.*"),
                        astrid_audit::Decision::Denied,
                        &format!("{why} ({})", peer.credential()),
                    ) {
                        tracing::error!("recording a refused serve: {e}");
                    }
                    Err(RequestError::Denied(why.into()))
                }
            };
            let _ = tx.send(ServerMessage::Reply { id, result });
        }
        ClientMessage::Respond { id, result } => {
            inner.answer_served(peer.connection, id, result);
        }
        ClientMessage::Control { id, command } => {
            let inner = inner.clone();
            let tx = tx.clone();
            let caller = peer.clone();
            tokio::spawn(async move {
                let result = crate::control::run(&inner, caller, command).await;
                let _ = tx.send(ServerMessage::ControlReply { id, result });
            });
        }
    }
}

/// A client's scatter/gather: the same slot a capsule's `ipc.gather` uses, answered once,
/// either when every handler has finished or at the timeout with the replies in so far.
#[allow(clippy::too_many_arguments)]
fn gather(
    inner: &Arc<Inner>,
    peer: &Arc<Caller>,
    tx: &UnboundedSender<ServerMessage>,
    source: String,
    id: u64,
    topic: String,
    payload: Vec<u8>,
    timeout_ms: u32,
) {
    if let Err(message) = check_client_topic(&topic) {
        let _ = tx.send(ServerMessage::Error {
            id: Some(id),
            message,
        });
        return;
    }
    let done_tx = tx.clone();
    let slot = ReplySlot::gather(
        &topic,
        Box::new(move |replies| {
            let _ = done_tx.send(ServerMessage::Gathered { id, replies });
        }),
    );
    inner.deliver(Envelope {
        chain: Chain::from_principal(source.clone()),
        topic,
        payload: Arc::new(payload),
        source,
        principal: peer.principal.clone(),
        depth: 0,
        reply: Some(slot.clone()),
    });
    let timeout_ms = timeout_ms.min(MAX_REQUEST_TIMEOUT_MS);
    let tx = tx.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(Duration::from_millis(u64::from(timeout_ms)));
        tokio::select! {
            () = deadline => {
                // `None` when the slot answered meanwhile.
                if let Some(replies) = slot.expire_gather() {
                    let _ = tx.send(ServerMessage::Gathered { id, replies });
                }
            }
            () = slot.settled() => {}
        }
    });
}

fn check_client_topic(topic: &str) -> Result<(), String> {
    validate_topic(topic).map_err(|e| e.to_string())?;
    if is_kernel_topic(topic) {
        return Err(format!("topic `{topic}` is reserved for the kernel"));
    }
    Ok(())
}

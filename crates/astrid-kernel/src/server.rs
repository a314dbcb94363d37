//! The Unix socket: handshake, framing, and one task per connection. A malformed frame, an
//! oversized frame or a failed handshake closes that connection only.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use astrid_client::framing::{read_frame, write_frame};
use astrid_types::topic::{is_kernel_topic, validate_pattern, validate_topic};
use astrid_types::wire::{
    self, ClientMessage, RequestError, ServerMessage, MAX_FRAME, MAX_HELLO_FRAME, PROTOCOL_VERSIONS,
};
use astrid_types::PrincipalId;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::bus::{Envelope, Subscription, Target};
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

/// Compares without an early exit so the token cannot be recovered byte by byte from timing.
fn token_matches(given: &str, expected: &str) -> bool {
    let a = blake3::hash(given.as_bytes());
    let b = blake3::hash(expected.as_bytes());
    a.as_bytes()
        .iter()
        .zip(b.as_bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

struct Peer {
    id: u64,
    principal: PrincipalId,
}

async fn handshake(inner: &Inner, stream: &mut UnixStream, token: &str) -> Result<Peer, String> {
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
    let hello: ClientMessage = wire::decode(&frame).map_err(|e| format!("bad hello: {e}"))?;
    let ClientMessage::Hello {
        versions,
        token: given,
        principal,
        client_name,
    } = hello
    else {
        return Err("the first message must be Hello".into());
    };
    if !versions.iter().any(|v| PROTOCOL_VERSIONS.contains(v)) {
        return Err(format!(
            "protocol versions {versions:?} are not supported; this daemon speaks {PROTOCOL_VERSIONS:?}"
        ));
    }
    if !token_matches(given.trim(), token) {
        return Err("invalid daemon token".into());
    }
    let principal: PrincipalId = principal
        .parse()
        .map_err(|e| format!("invalid principal: {e}"))?;
    if !inner.principal_exists(&principal) {
        return Err(format!("unknown principal `{principal}`"));
    }
    let id = inner.next_id();
    tracing::debug!(connection = id, %principal, client = %client_name, "client connected");
    Ok(Peer { id, principal })
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
        connection_id: peer.id,
        daemon_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    if send(&mut stream, &welcome).await.is_err() {
        return;
    }
    inner.clients.fetch_add(1, Ordering::Relaxed);
    inner.connections.begin();

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
    loop {
        let read = tokio::select! {
            r = read_frame(&mut rd, MAX_FRAME) => r,
            // Stop taking new work; replies already owed still go out before the writer ends.
            _ = shutdown.wait_for(|stop| *stop) => break,
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
                tracing::warn!(connection = peer.id, "closing connection: {e}");
                let _ = tx.send(ServerMessage::Error {
                    id: None,
                    message: format!("closing connection: {e}"),
                });
                break;
            }
        }
    }

    inner.subs.remove_connection(peer.id);
    inner.approvals.unregister(peer.id);
    inner.clients.fetch_sub(1, Ordering::Relaxed);
    drop(tx);
    let _ = writer.await;
    inner.connections.end();
}

fn handle(
    inner: &Arc<Inner>,
    peer: &Peer,
    tx: &UnboundedSender<ServerMessage>,
    msg: ClientMessage,
) {
    let source = format!("client:{}", peer.id);
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
            let slot = inner.request(
                source,
                peer.principal.clone(),
                0,
                &topic,
                payload,
                Box::new(move |result| {
                    let _ = reply_tx.send(ServerMessage::Reply { id, result });
                }),
            );
            let timeout_ms = timeout_ms.min(MAX_REQUEST_TIMEOUT_MS);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(u64::from(timeout_ms))).await;
                slot.reply(Err(RequestError::Timeout(timeout_ms)));
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
                    connection: Some(peer.id),
                },
            );
        }
        ClientMessage::Unsubscribe { id } => inner.subs.remove_client_sub(peer.id, id),
        ClientMessage::RegisterApprover => {
            inner
                .approvals
                .register(peer.id, peer.principal.clone(), tx.clone());
        }
        ClientMessage::ApprovalAnswer { id, decision, by } => {
            inner.approvals.answer(&peer.principal, id, decision, by);
        }
        ClientMessage::Control { id, command } => {
            let inner = inner.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let result = crate::control::run(&inner, command).await;
                let _ = tx.send(ServerMessage::ControlReply { id, result });
            });
        }
    }
}

fn check_client_topic(topic: &str) -> Result<(), String> {
    validate_topic(topic).map_err(|e| e.to_string())?;
    if is_kernel_topic(topic) {
        return Err(format!("topic `{topic}` is reserved for the kernel"));
    }
    Ok(())
}

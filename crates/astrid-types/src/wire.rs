//! Messages spoken on the daemon's Unix socket. Each frame is a big-endian u32 length followed
//! by one postcard-encoded message; the framing itself lives with the I/O (astrid-client).
//!
//! The protocol is versioned in the handshake rather than per message: a client offers the
//! versions it speaks, the daemon picks one or refuses naming the versions it speaks.

use serde::{Deserialize, Serialize};

mod control;

pub use control::*;

/// Protocol versions this build speaks, newest last. Version 2 replaced the bare token in
/// `Hello` with a typed [`Credential`] and made control errors typed ([`ControlError`]);
/// a version-1 client is refused with a message naming both.
pub const PROTOCOL_VERSIONS: &[u32] = &[2];

/// Frames before the handshake completes are tiny; a peer that sends more is not a client.
pub const MAX_HELLO_FRAME: usize = 64 * 1024;

/// Hard cap on any frame after the handshake. Large enough for a capsule package upload.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Must be the first frame on a connection.
    Hello {
        versions: Vec<u32>,
        /// Who is connecting: the operator, or a device of one principal.
        credential: Credential,
        /// The principal this connection acts for, for its whole lifetime. A device credential
        /// must name its own principal here.
        principal: String,
        client_name: String,
    },
    /// Fire-and-forget event on the bus, within this connection's principal.
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
    /// An event whose first handler reply comes back as `ServerMessage::Reply { id }`.
    Request {
        id: u64,
        topic: String,
        payload: Vec<u8>,
        timeout_ms: u32,
    },
    /// Events matching `pattern` arrive as `ServerMessage::Event { subscription: id }`.
    Subscribe {
        id: u64,
        pattern: String,
    },
    Unsubscribe {
        id: u64,
    },
    /// Operator commands: answered with `ServerMessage::ControlReply { id }`.
    Control {
        id: u64,
        command: ControlCommand,
    },
    /// From now on this connection is asked (`ServerMessage::ApprovalRequest`) whenever a
    /// capsule running for its principal requests approval.
    RegisterApprover,
    /// The answer to `ServerMessage::ApprovalRequest { id }`. Ignored unless the request
    /// belongs to this connection's principal and is still waiting.
    ApprovalAnswer {
        id: u64,
        decision: ApprovalDecision,
        /// Recorded with the decision; `AutoYes` is never taken as more than allow-once.
        by: AnsweredBy,
    },
    /// A request delivered to every matching handler (like a capsule's `ipc.gather`); every
    /// reply that arrives within `timeout_ms` comes back in one `ServerMessage::Gathered { id }`.
    /// Uplinks that present the principal's tools (the MCP server) collect
    /// `tool.v1.describe` this way, as the agent does.
    Gather {
        id: u64,
        topic: String,
        payload: Vec<u8>,
        timeout_ms: u32,
    },
    /// Operator connections only (the MCP bridge): from now on this connection answers, for
    /// its principal, `tool.v1.execute.<server>__<tool>` for each tool named, and
    /// `tool.v1.describe` gathers. Each call reaches it as `ServerMessage::Invoke` only after
    /// the kernel's gate (the requester chain, a `tool:<server>.<tool>` token or a person's
    /// approval, an audit entry). Replaces this connection's earlier list for `server`; an
    /// empty list withdraws it. Acknowledged with `ServerMessage::Reply { id }`.
    ServeTools {
        id: u64,
        server: String,
        tools: Vec<String>,
    },
    /// The answer to `ServerMessage::Invoke { id }`: the reply bytes, or why the tool failed
    /// (an MCP `isError` result, a server that died). Ignored unless the invocation is this
    /// connection's and still waiting.
    Respond {
        id: u64,
        result: Result<Vec<u8>, String>,
    },
    /// From now on this connection is asked (`ServerMessage::ElicitRequest`) whenever a
    /// capsule running for its principal asks its human for input (`astrid:elicit`); with
    /// `secrets`, also for credentials a capsule asks to have stored (the answer goes to the
    /// secret store, so only a frontend that keeps typed secrets off screens and out of other
    /// systems should set it).
    RegisterElicitor {
        secrets: bool,
    },
    /// The answer to `ServerMessage::ElicitRequest { id }`. Ignored unless the request
    /// belongs to this connection's principal, is still waiting, and takes this answer.
    ElicitAnswer {
        id: u64,
        answer: crate::elicit::ElicitAnswer,
    },
    /// This connection will not answer `ServerMessage::ApprovalRequest { id }` (it was not
    /// its to carry). Once every connection asked has passed (or closed), the request is
    /// denied at once instead of waiting out its time; any other approver may still answer
    /// before that.
    ApprovalPass {
        id: u64,
    },
    /// The same for `ServerMessage::ElicitRequest { id }`: once everyone asked passed, the
    /// capsule hears that nobody could answer.
    ElicitPass {
        id: u64,
    },
    /// An MCP bridge's report of one connection its server `server` made through a granted
    /// route (`astrid mcp add --allow-net`): recorded in the connection's principal's audit
    /// chain as `mcp.connect` by `mcp:<server>`, as the bridge's report. Only the operator's
    /// credential may report, as only it may serve tools; a device's report is refused and
    /// that is recorded instead. No reply.
    ServedConnect {
        server: String,
        /// `host:port` as granted.
        target: String,
        outcome: crate::mcp::ConnectOutcome,
    },
}

/// What a connection authenticates with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Credential {
    /// Contents of `$ASTRID_HOME/run/token`: the peer can read the operator's files, so it is
    /// the operator and may act for (and administer) any principal.
    Operator(String),
    /// A device token from `astrid pair-device issue`: exactly one principal, within the
    /// token's scope, until it expires or is revoked.
    Device(String),
}

impl std::fmt::Debug for Credential {
    // Secrets stay out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Operator(_) => f.write_str("Operator(..)"),
            Credential::Device(_) => f.write_str("Device(..)"),
        }
    }
}

/// What a device token lets its holder do for its principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceScope {
    /// Use the principal's capsules and agent (publish, request, subscribe, approvals) and
    /// read its own tokens and settings; no administering control command.
    UseOnly,
    /// Also manage the principal's capability tokens, but only within these resource
    /// patterns, each covered by a live token of the principal when the device was paired.
    Patterns(Vec<String>),
}

impl std::fmt::Display for DeviceScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceScope::UseOnly => f.write_str("use-only"),
            DeviceScope::Patterns(p) => f.write_str(&p.join(" ")),
        }
    }
}

/// A paired device as the operator sees it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// 32 hex characters; also the second field of the device token.
    pub id: String,
    pub principal: String,
    pub label: String,
    pub scope: DeviceScope,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
    pub revoked_ms: Option<u64>,
}

pub use crate::approval::{
    AlwaysOffer, AnsweredBy, ApprovalDecision, ApprovalRequest, ApprovalResource, CapsuleWords,
    ResourceKind,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    Welcome {
        version: u32,
        connection_id: u64,
        daemon_version: String,
    },
    Refused {
        reason: String,
    },
    Event {
        subscription: u64,
        topic: String,
        payload: Vec<u8>,
        source: String,
        principal: String,
    },
    Reply {
        id: u64,
        result: Result<Vec<u8>, RequestError>,
    },
    ControlReply {
        id: u64,
        result: Result<ControlResponse, ControlError>,
    },
    /// A protocol violation that does not close the connection (e.g. a bad topic).
    Error {
        id: Option<u64>,
        message: String,
    },
    /// Sent to registered approvers; answer with `ClientMessage::ApprovalAnswer`.
    ApprovalRequest(ApprovalRequest),
    /// The answer to `ClientMessage::Gather { id }`: each reply with the source that sent it
    /// (`capsule:<name>`), in the order they arrived; handlers that failed or ran out of time
    /// are left out.
    Gathered {
        id: u64,
        replies: Vec<(String, Vec<u8>)>,
    },
    /// A request for a tool this connection serves (`ClientMessage::ServeTools`), already
    /// let through by the kernel's gate; answer with `ClientMessage::Respond { id }`.
    Invoke {
        id: u64,
        topic: String,
        payload: Vec<u8>,
        /// Who sent it (`capsule:<name>` or `client:<id>`), stamped by the kernel.
        source: String,
    },
    /// Sent to registered elicitors; answer with `ClientMessage::ElicitAnswer`.
    ElicitRequest(crate::elicit::ElicitRequest),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RequestError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("no reply within {0} ms")]
    Timeout(u32),
    #[error("nobody is subscribed to `{0}`")]
    NoSubscriber(String),
    #[error("handler failed: {0}")]
    Failed(String),
    /// The capsule trapped, ran past its deadline, or exceeded its memory limit.
    #[error("capsule crashed: {0}")]
    Crashed(String),
    /// The principal's quota refused it (e.g. too many invocations waiting).
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {size} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { size: usize, max: usize },
    #[error("malformed message: {0}")]
    Malformed(#[source] postcard::Error),
}

/// The parts of a connection's first frame, once [`decode_hello`] accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The versions the client offered; at least one is in [`PROTOCOL_VERSIONS`].
    pub versions: Vec<u32>,
    pub credential: Credential,
    pub principal: String,
    pub client_name: String,
}

/// Reads only the version list of a hello, whatever its protocol version: every version's
/// `Hello` is the first variant and starts with the versions, so an old client is told the
/// versions apart instead of getting a decoding error.
#[derive(Deserialize)]
enum VersionProbe {
    Hello { versions: Vec<u32> },
}

/// Decodes the first frame of a connection. Pure, so the daemon's handshake and the fuzzer
/// run the same code; the refusal is the sentence the peer is sent.
pub fn decode_hello(frame: &[u8]) -> Result<Hello, String> {
    let (versions, hello) = match decode::<ClientMessage>(frame) {
        Ok(ClientMessage::Hello {
            versions,
            credential,
            principal,
            client_name,
        }) => (versions, Some((credential, principal, client_name))),
        Ok(_) => return Err("the first message must be Hello".into()),
        // Perhaps another protocol version's hello: its versions still say so.
        Err(e) => match decode::<VersionProbe>(frame) {
            Ok(VersionProbe::Hello { versions }) => (versions, None),
            Err(_) => return Err(format!("bad hello: {e}")),
        },
    };
    if !versions.iter().any(|v| PROTOCOL_VERSIONS.contains(v)) {
        return Err(format!(
            "protocol versions {versions:?} are not supported; this daemon speaks \
             {PROTOCOL_VERSIONS:?} (upgrade the client)"
        ));
    }
    let (credential, principal, client_name) =
        hello.ok_or_else(|| "bad hello: not the hello of the versions it offers".to_string())?;
    Ok(Hello {
        versions,
        credential,
        principal,
        client_name,
    })
}

pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, WireError> {
    postcard::to_stdvec(msg).map_err(WireError::Malformed)
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    postcard::from_bytes(bytes).map_err(WireError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_request() {
        let m = ClientMessage::Request {
            id: 7,
            topic: "echo.v1.request".into(),
            payload: b"hi".to_vec(),
            timeout_ms: 100,
        };
        let bytes = encode(&m).unwrap();
        assert_eq!(decode::<ClientMessage>(&bytes).unwrap(), m);
    }

    #[test]
    fn a_malformed_message_keeps_postcard_as_the_source() {
        let e = decode::<ClientMessage>(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(e.to_string().starts_with("malformed message: "), "{e}");
        let source = std::error::Error::source(&e).expect("postcard's error is kept");
        assert!(source.is::<postcard::Error>(), "{source:?}");
    }

    #[test]
    fn a_hello_of_another_version_is_told_the_versions() {
        let hello = encode(&ClientMessage::Hello {
            versions: PROTOCOL_VERSIONS.to_vec(),
            credential: Credential::Operator("t".into()),
            principal: "default".into(),
            client_name: "test".into(),
        })
        .unwrap();
        assert_eq!(decode_hello(&hello).unwrap().principal, "default");
        // A version-1 hello (variant 0, versions [1], then a bare token string), which this
        // build cannot read past the versions.
        let old = [0x00, 0x01, 0x01, 0x05, b'h', b'e', b'l', b'l', b'o'];
        let err = decode_hello(&old).unwrap_err();
        assert!(
            err.contains("protocol versions [1] are not supported"),
            "{err}"
        );
        let err = decode_hello(&encode(&ClientMessage::RegisterApprover).unwrap()).unwrap_err();
        assert_eq!(err, "the first message must be Hello");
    }

    #[test]
    fn garbage_is_a_clear_error_not_a_panic() {
        let err = decode::<ClientMessage>(&[0xff, 0xff, 0xff, 0x01]).unwrap_err();
        assert!(err.to_string().starts_with("malformed message"), "{err}");
    }
}

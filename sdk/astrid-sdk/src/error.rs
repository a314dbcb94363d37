//! Typed errors for every host package, one umbrella [`SysError`], and the [`CapsuleError`] a
//! handler returns to the kernel.
//!
//! Each package error mirrors its WIT `error-code` variant for variant, so a capsule can match
//! on exactly what the kernel refused. `Display` prints `<wit-variant-name>: <message>`, which
//! is what callers see when an error crosses the bus as text.

use std::fmt;

use crate::bindings::astrid;

/// Declares a mirror of one WIT `error-code` variant plus its conversion from the generated
/// bindings type. Kept as a macro so the packages cannot drift apart in shape.
macro_rules! host_error {
    (
        $(#[$doc:meta])*
        $name:ident from $wit:path {
            $( $(#[$vdoc:meta])* $variant:ident($wit_name:literal) ),* $(,)?
        }
        $( unit { $( $(#[$udoc:meta])* $unit:ident($unit_name:literal) ),* $(,)? } )?
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vdoc])* $variant(String), )*
            $( $( $(#[$udoc])* $unit, )* )?
        }

        impl $name {
            /// The WIT name of the variant, such as `denied` or `not-found`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $wit_name, )*
                    $( $( Self::$unit => $unit_name, )* )?
                }
            }

            /// The kernel's explanation; empty for variants that carry none.
            pub fn message(&self) -> &str {
                match self {
                    $( Self::$variant(m) => m, )*
                    $( $( Self::$unit => "", )* )?
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if self.message().is_empty() {
                    f.write_str(self.kind())
                } else {
                    write!(f, "{}: {}", self.kind(), self.message())
                }
            }
        }

        impl std::error::Error for $name {}

        impl From<$wit> for $name {
            fn from(code: $wit) -> Self {
                type W = $wit;
                match code {
                    $( W::$variant(m) => Self::$variant(m), )*
                    $( $( W::$unit => Self::$unit, )* )?
                }
            }
        }
    };
}

host_error! {
    /// An error from `astrid:sys` (randomness, configuration).
    SysCallError from astrid::sys::sys::ErrorCode {
        /// The kernel refused the call; the message names the rule.
        Denied("denied"),
        /// An argument was out of range or malformed.
        InvalidArgument("invalid-argument"),
        /// The request exceeded a quota.
        QuotaExceeded("quota-exceeded"),
    }
}

host_error! {
    /// An error from `astrid:ipc` (the event bus).
    IpcError from astrid::ipc::ipc::ErrorCode {
        /// The manifest does not declare this topic, or the topic is reserved.
        Denied("denied"),
        /// The topic or payload was malformed.
        InvalidArgument("invalid-argument"),
        /// Too many messages, subscriptions or bytes.
        QuotaExceeded("quota-exceeded"),
        /// The handler that served a request failed; the message is its error.
        Failed("failed"),
    }
    unit {
        /// A request got no reply in time, or nobody is subscribed.
        Timeout("timeout"),
    }
}

host_error! {
    /// An error from `astrid:kv` (the capsule's key-value store).
    KvError from astrid::kv::kv::ErrorCode {
        /// The manifest does not grant `kv`.
        Denied("denied"),
        /// The key or value was malformed.
        InvalidArgument("invalid-argument"),
        /// The store quota is used up.
        QuotaExceeded("quota-exceeded"),
        /// The store failed underneath.
        Io("io"),
    }
}

host_error! {
    /// An error from `astrid:fs` (files under the roots the manifest grants).
    FsError from astrid::fs::fs::ErrorCode {
        /// The path is outside every granted root, or escapes one.
        Denied("denied"),
        /// Nothing exists at the path.
        NotFound("not-found"),
        /// Something already exists at the path.
        AlreadyExists("already-exists"),
        /// The path or arguments were malformed.
        InvalidArgument("invalid-argument"),
        /// A directory was expected.
        NotADirectory("not-a-directory"),
        /// A file was expected but the path is a directory.
        IsADirectory("is-a-directory"),
        /// The write would exceed the principal's quota.
        QuotaExceeded("quota-exceeded"),
        /// Any other I/O failure.
        Io("io"),
    }
}

host_error! {
    /// An error from `astrid:approval` (asking the principal's human). A refusal is not an
    /// error: it is [`Decision::Deny`](crate::approval::Decision::Deny).
    ApprovalError from astrid::approval::approval::ErrorCode {
        /// The action, resource or reason was empty or too long, or the resource is not a
        /// capability pattern.
        InvalidArgument("invalid-argument"),
        /// The resource lies outside the capsule's manifest ceiling; nobody was asked.
        Denied("denied"),
        /// The kernel could not record the request or its decision; nothing was decided.
        Failed("failed"),
    }
}

host_error! {
    /// An error from `astrid:http` (outbound requests through the kernel's network airlock).
    HttpError from astrid::http1_2_0::http::ErrorCode {
        /// Refused by the manifest, the capability gate, the human or the airlock; the message
        /// says which layer and why.
        Denied("denied"),
        /// The method, URL or headers were malformed.
        InvalidArgument("invalid-argument"),
        /// The whole exchange ran past its time limit.
        Timeout("timeout"),
        /// The body grew past the size cap.
        TooLarge("too-large"),
        /// DNS, connect, TLS or protocol failure, or more redirects than the request allowed.
        Connection("connection"),
        /// The body's digest is not the one [`Request::integrity`](crate::http::Request::integrity)
        /// named; none of it reached the capsule. The message names the digest it had.
        IntegrityMismatch("integrity-mismatch"),
    }
    unit {
        /// No open response with that handle in this invocation.
        UnknownHandle("unknown-handle"),
    }
}

host_error! {
    /// An error from `astrid:process` (sandboxed subprocesses). A program that ran and failed
    /// is not an error: see [`Output::exit_code`](crate::process::Output::exit_code).
    ProcessError from astrid::process::process::ErrorCode {
        /// Refused by the manifest, the capability gate or the human; the message says why.
        Denied("denied"),
        /// The program, arguments or working directory were malformed.
        InvalidArgument("invalid-argument"),
        /// The program does not exist inside the sandbox.
        NotFound("not-found"),
        /// The sandbox could not be set up on this machine; nothing ran.
        Unavailable("unavailable"),
    }
}

host_error! {
    /// An error from `astrid:identity` (who the capsule runs for). A fact the principal has
    /// not set is not an error: it is `Ok(None)`.
    IdentityError from astrid::identity::identity::ErrorCode {
        /// The manifest does not name the fact, or the principal did not allow it (no
        /// `identity:<fact>` token, a revoked one, or a person said no).
        Denied("denied"),
        /// Not a fact name.
        InvalidArgument("invalid-argument"),
        /// The kernel could not record the read; nothing was read.
        Failed("failed"),
    }
}

host_error! {
    /// An error from `astrid:uplink` (the principal's frontends). A notice that reached no
    /// frontend is not an error: `notify` returns 0.
    UplinkError from astrid::uplink::uplink::ErrorCode {
        /// The manifest does not set `[capabilities] uplink = true`, or the principal did not
        /// allow notices (no `uplink:frontends` token, a revoked one, or a person said no).
        Denied("denied"),
        /// An empty or oversized text, or one with control characters.
        InvalidArgument("invalid-argument"),
        /// Too many notices this minute.
        QuotaExceeded("quota-exceeded"),
        /// The kernel could not record the notice; nothing was sent.
        Failed("failed"),
    }
}

host_error! {
    /// An error from `astrid:net` (TCP and TLS connections).
    NetError from astrid::net::net::ErrorCode {
        /// Outside the manifest's `net`, not allowed (no token, consent or yes), or refused
        /// by the airlock's address policy.
        Denied("denied"),
        /// Not a host or address, port 0, or too many open connections.
        InvalidArgument("invalid-argument"),
        /// The lookup, connect, TLS, or a read or write failed.
        Connection("connection"),
        /// The time allowed ran out.
        Timeout("timeout"),
        /// The kernel could not record the connect; nothing was opened.
        Failed("failed"),
    }
    unit {
        /// The connection is closed or was never opened.
        UnknownHandle("unknown-handle"),
    }
}

host_error! {
    /// An error from `astrid:io` (reading, writing and waiting on streams).
    IoError from astrid::io::streams::StreamError {
        /// The stream cannot do that (writing to a response body).
        Unsupported("unsupported"),
        /// Nothing arrived within the time asked (the stream stays open), or the
        /// invocation's deadline passed.
        Timeout("timeout"),
        /// The connection failed, or a body broke its limits; the stream is closed.
        Failed("failed"),
    }
    unit {
        /// No open stream of this invocation has this handle.
        UnknownHandle("unknown-handle"),
    }
}

host_error! {
    /// An error from `astrid:elicit` (asking the principal's human). Each one is the
    /// capsule's to handle: carry on without the answer, or say why it cannot.
    ElicitError from astrid::elicit::elicit::ErrorCode {
        /// The manifest does not set `[capabilities] elicit = true`.
        Denied("denied"),
        /// An empty or oversized prompt, or choices out of bounds.
        InvalidArgument("invalid-argument"),
        /// No frontend of the principal that answers questions is connected.
        Unavailable("unavailable"),
        /// Nobody answered in time.
        Timeout("timeout"),
        /// The kernel could not record the question; nobody was asked.
        Failed("failed"),
    }
    unit {
        /// The person chose not to answer.
        Declined("declined"),
    }
}

/// Any failure of a host call, so one `?` works across packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysError {
    /// From `astrid:sys`.
    Sys(SysCallError),
    /// From `astrid:ipc`.
    Ipc(IpcError),
    /// From `astrid:kv`.
    Kv(KvError),
    /// From `astrid:fs`.
    Fs(FsError),
    /// From `astrid:approval`.
    Approval(ApprovalError),
    /// From `astrid:http`.
    Http(HttpError),
    /// A response arrived with a status the convenience call treats as failure (not 2xx).
    HttpStatus {
        /// The status code.
        status: u16,
        /// The URL that answered.
        url: String,
    },
    /// From `astrid:process`.
    Process(ProcessError),
    /// From `astrid:identity`.
    Identity(IdentityError),
    /// From `astrid:uplink`.
    Uplink(UplinkError),
    /// From `astrid:net`.
    Net(NetError),
    /// From `astrid:elicit`.
    Elicit(ElicitError),
    /// From `astrid:io`.
    Io(IoError),
    /// A configuration value the manifest's `[env]` table does not provide.
    NotPresent(String),
    /// A value could not be encoded to or decoded from JSON.
    Json(String),
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sys(e) => write!(f, "sys: {e}"),
            Self::Ipc(e) => write!(f, "ipc: {e}"),
            Self::Kv(e) => write!(f, "kv: {e}"),
            Self::Fs(e) => write!(f, "fs: {e}"),
            Self::Approval(e) => write!(f, "approval: {e}"),
            Self::Http(e) => write!(f, "http: {e}"),
            Self::HttpStatus { status, url } => write!(f, "http: {url} answered status {status}"),
            Self::Process(e) => write!(f, "process: {e}"),
            Self::Identity(e) => write!(f, "identity: {e}"),
            Self::Uplink(e) => write!(f, "uplink: {e}"),
            Self::Net(e) => write!(f, "net: {e}"),
            Self::Elicit(e) => write!(f, "elicit: {e}"),
            Self::Io(e) => write!(f, "io: {e}"),
            Self::NotPresent(key) => write!(f, "env: {key} is not set"),
            Self::Json(e) => write!(f, "json: {e}"),
        }
    }
}

impl std::error::Error for SysError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Sys(e) => Some(e),
            Self::Ipc(e) => Some(e),
            Self::Kv(e) => Some(e),
            Self::Fs(e) => Some(e),
            Self::Approval(e) => Some(e),
            Self::Http(e) => Some(e),
            Self::Process(e) => Some(e),
            Self::Identity(e) => Some(e),
            Self::Uplink(e) => Some(e),
            Self::Net(e) => Some(e),
            Self::Elicit(e) => Some(e),
            Self::Io(e) => Some(e),
            Self::HttpStatus { .. } | Self::NotPresent(_) | Self::Json(_) => None,
        }
    }
}

impl From<SysCallError> for SysError {
    fn from(e: SysCallError) -> Self {
        Self::Sys(e)
    }
}

impl From<IpcError> for SysError {
    fn from(e: IpcError) -> Self {
        Self::Ipc(e)
    }
}

impl From<KvError> for SysError {
    fn from(e: KvError) -> Self {
        Self::Kv(e)
    }
}

impl From<FsError> for SysError {
    fn from(e: FsError) -> Self {
        Self::Fs(e)
    }
}

impl From<ApprovalError> for SysError {
    fn from(e: ApprovalError) -> Self {
        Self::Approval(e)
    }
}

impl From<HttpError> for SysError {
    fn from(e: HttpError) -> Self {
        Self::Http(e)
    }
}

impl From<ProcessError> for SysError {
    fn from(e: ProcessError) -> Self {
        Self::Process(e)
    }
}

impl From<IdentityError> for SysError {
    fn from(e: IdentityError) -> Self {
        Self::Identity(e)
    }
}

impl From<UplinkError> for SysError {
    fn from(e: UplinkError) -> Self {
        Self::Uplink(e)
    }
}

impl From<NetError> for SysError {
    fn from(e: NetError) -> Self {
        Self::Net(e)
    }
}

impl From<IoError> for SysError {
    fn from(e: IoError) -> Self {
        Self::Io(e)
    }
}

impl From<ElicitError> for SysError {
    fn from(e: ElicitError) -> Self {
        Self::Elicit(e)
    }
}

impl From<serde_json::Error> for SysError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e.to_string())
    }
}

/// What a handler returns when it fails; it crosses the boundary as the guest `error-code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapsuleError {
    /// The handler ran and failed; the message is shown to the caller.
    Failed(String),
    /// The input was malformed (bad JSON, wrong shape, out of range).
    InvalidArgument(String),
    /// No handler by that name; produced by the `#[capsule]` dispatcher.
    UnknownHandler(String),
}

impl CapsuleError {
    /// Shorthand for [`CapsuleError::Failed`].
    pub fn failed(msg: impl Into<String>) -> Self {
        Self::Failed(msg.into())
    }

    /// Shorthand for [`CapsuleError::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidArgument(msg.into())
    }
}

impl fmt::Display for CapsuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(m) => write!(f, "failed: {m}"),
            Self::InvalidArgument(m) => write!(f, "invalid-argument: {m}"),
            Self::UnknownHandler(m) => write!(f, "unknown-handler: {m}"),
        }
    }
}

impl std::error::Error for CapsuleError {}

impl From<SysError> for CapsuleError {
    fn from(e: SysError) -> Self {
        match e {
            // Malformed JSON at this level is nearly always the caller's payload.
            SysError::Json(m) => Self::InvalidArgument(m),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// Lets `?` lift a package error straight into a handler's `CapsuleError`, which a single
/// `From` hop through `SysError` would not.
macro_rules! capsule_error_from {
    ($($t:ty),*) => {
        $(impl From<$t> for CapsuleError {
            fn from(e: $t) -> Self {
                SysError::from(e).into()
            }
        })*
    };
}

capsule_error_from!(
    SysCallError,
    IpcError,
    KvError,
    FsError,
    ApprovalError,
    HttpError,
    ProcessError,
    IdentityError,
    UplinkError,
    NetError,
    ElicitError
);

impl From<serde_json::Error> for CapsuleError {
    fn from(e: serde_json::Error) -> Self {
        Self::InvalidArgument(e.to_string())
    }
}

impl From<String> for CapsuleError {
    fn from(m: String) -> Self {
        Self::Failed(m)
    }
}

impl From<&str> for CapsuleError {
    fn from(m: &str) -> Self {
        Self::Failed(m.to_owned())
    }
}

impl From<std::convert::Infallible> for CapsuleError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

impl From<CapsuleError> for astrid::capsule::types::ErrorCode {
    fn from(e: CapsuleError) -> Self {
        match e {
            CapsuleError::Failed(m) => Self::Failed(m),
            CapsuleError::InvalidArgument(m) => Self::InvalidArgument(m),
            CapsuleError::UnknownHandler(m) => Self::UnknownHandler(m),
        }
    }
}

use std::path::PathBuf;
use std::time::Duration;

use astrid_types::wire::{RequestError, WireError};

use crate::framing::FrameError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("daemon not running? (no token at {})", path.display())]
    NoToken { path: PathBuf },
    #[error("cannot read the daemon token at {}: {source}", path.display())]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to the daemon at {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("handshake with the daemon failed: {0}")]
    Handshake(String),
    #[error("daemon refused the connection: {0}")]
    Refused(String),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The daemon answered the request with an error.
    #[error(transparent)]
    Request(RequestError),
    /// The daemon rejected a control command; its message is meant for the operator as is.
    #[error("{0}")]
    Control(String),
    /// The connection's credential does not allow the control command (the daemon recorded
    /// the refusal in the audit chains).
    #[error("denied: {0}")]
    Denied(String),
    /// The daemon flagged a message of ours as a protocol violation.
    #[error("daemon rejected the message: {0}")]
    Protocol(String),
    #[error("no answer from the daemon within {0:?}")]
    Timeout(Duration),
    #[error("connection to the daemon closed")]
    Disconnected,
    #[error("daemon answered with an unexpected message: {0}")]
    Unexpected(String),
    #[error("cannot find the astrid-daemon executable (looked in {0}); set ASTRID_DAEMON")]
    DaemonNotFound(String),
    /// Starting the daemon's executable (or handing it the log file) failed.
    #[error("cannot start the daemon: {}: {source}", path.display())]
    DaemonSpawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The daemon's log directory or file could not be created or opened.
    #[error("cannot start the daemon: cannot {action} {}: {source}", path.display())]
    DaemonLog {
        /// `create` or `open`.
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("daemon did not come up: {reason}\n--- last lines of {} ---\n{log_tail}", log.display())]
    DaemonStart {
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
}

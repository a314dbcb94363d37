/// Why the MCP server stopped, or why an added MCP server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("talking to the daemon: {0}")]
    Daemon(#[from] astrid_client::ClientError),
    /// The MCP handshake with the client over stdio failed.
    #[error("MCP transport: {0}")]
    Transport(#[source] Box<rmcp::service::ServerInitializeError>),
    /// The task serving the MCP session panicked or was cancelled.
    #[error("MCP transport: {0}")]
    Serve(#[source] tokio::task::JoinError),
    /// The sandbox for an added server could not be made or refused its grants.
    #[error("sandbox: {0}")]
    Sandbox(#[from] astrid_process::ProcessError),
    /// An added server did not speak MCP as expected.
    #[error("MCP server: {0}")]
    Server(String),
    /// An added server died, or is waiting out its restart backoff.
    #[error("MCP server gone: {0}")]
    Gone(String),
    #[error("invalid MCP server name `{0}`: use 1-32 of a-z 0-9 - starting with a letter")]
    InvalidName(String),
    /// Reading or writing the added servers' records.
    #[error("MCP server records: {0}")]
    Store(String),
}

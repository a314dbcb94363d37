/// Why the MCP server stopped.
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
}

/// Why the MCP server stopped.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("talking to the daemon: {0}")]
    Daemon(#[from] astrid_client::ClientError),
    #[error("MCP transport: {0}")]
    Transport(String),
}

//! Operator commands arriving over the socket.

use std::sync::Arc;

use astrid_types::wire::{ControlCommand, ControlResponse, DaemonStatus};

use crate::kernel::Inner;

pub(crate) async fn run(
    inner: &Arc<Inner>,
    command: ControlCommand,
) -> Result<ControlResponse, String> {
    match command {
        ControlCommand::Status => Ok(ControlResponse::Status(DaemonStatus {
            pid: std::process::id(),
            uptime_ms: inner.started.elapsed().as_millis() as u64,
            version: env!("CARGO_PKG_VERSION").to_string(),
            connected_clients: inner.clients.load(std::sync::atomic::Ordering::Relaxed),
            capsules: inner.list(),
        })),
        ControlCommand::Ps | ControlCommand::List => Ok(ControlResponse::Capsules(inner.list())),
        ControlCommand::Tree => Ok(ControlResponse::Tree(inner.tree())),
        ControlCommand::Install(upload) => blocking(inner, move |k| k.install(upload, false))
            .await
            .map(ControlResponse::Installed),
        ControlCommand::Update(upload) => blocking(inner, move |k| k.install(upload, true))
            .await
            .map(ControlResponse::Installed),
        ControlCommand::Remove { name } => {
            let n = name.clone();
            blocking(inner, move |k| k.remove(&n))
                .await
                .map(|()| ControlResponse::Removed { name })
        }
        ControlCommand::Shutdown => {
            let _ = inner.shutdown.send(true);
            Ok(ControlResponse::ShuttingDown)
        }
    }
}

async fn blocking<T: Send + 'static>(
    inner: &Arc<Inner>,
    f: impl FnOnce(&Arc<Inner>) -> Result<T, crate::KernelError> + Send + 'static,
) -> Result<T, String> {
    let k = inner.clone();
    tokio::task::spawn_blocking(move || f(&k))
        .await
        .map_err(|e| format!("internal error: {e}"))?
        .map_err(|e| e.to_string())
}

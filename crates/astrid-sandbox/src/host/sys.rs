use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::RngCore;

use super::HostState;
use crate::bindings::astrid::sys::sys::{CallerInfo, ErrorCode, Host, Level};

const MAX_RANDOM_BYTES: u32 = 64 * 1024;
const MAX_LOG_BYTES: usize = 16 * 1024;

fn monotonic_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("…[truncated]");
        }
        let capsule = self.ctx.capsule();
        let principal = self.ctx.origin.principal.as_ref();
        match level {
            Level::Trace => tracing::trace!(target: "capsule", capsule, principal, "{message}"),
            Level::Debug => tracing::debug!(target: "capsule", capsule, principal, "{message}"),
            Level::Info => tracing::info!(target: "capsule", capsule, principal, "{message}"),
            Level::Warn => tracing::warn!(target: "capsule", capsule, principal, "{message}"),
            Level::Error => tracing::error!(target: "capsule", capsule, principal, "{message}"),
        }
    }

    fn wall_clock_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn monotonic_ns(&mut self) -> u64 {
        monotonic_origin().elapsed().as_nanos() as u64
    }

    fn random_bytes(&mut self, len: u32) -> Result<Vec<u8>, ErrorCode> {
        if len > MAX_RANDOM_BYTES {
            return Err(ErrorCode::QuotaExceeded(format!(
                "at most {MAX_RANDOM_BYTES} random bytes per call, asked for {len}"
            )));
        }
        let mut buf = vec![0u8; len as usize];
        rand::rng().fill_bytes(&mut buf);
        Ok(buf)
    }

    fn config_get(&mut self, key: String) -> Result<Option<String>, ErrorCode> {
        match self.ctx.manifest.env.get(&key) {
            None => Err(ErrorCode::InvalidArgument(format!(
                "`{key}` is not declared in the manifest's [env] table"
            ))),
            Some(decl) if decl.secret => {
                let reason = format!("`{key}` is a secret; secrets never enter a capsule");
                self.denied("sys.config-get", &key, &reason);
                Err(ErrorCode::Denied(reason))
            }
            Some(_) => Ok(self.ctx.config.get(&key).cloned()),
        }
    }

    fn caller(&mut self) -> CallerInfo {
        CallerInfo {
            principal: self.ctx.origin.principal.to_string(),
            capsule: self.ctx.capsule().to_string(),
            source: self.source.clone(),
        }
    }
}

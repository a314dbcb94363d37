//! Shared set-up for the Astrid benchmarks under `benches/benches/`: capsules built from this
//! repository, an in-process kernel, the real `astrid-daemon` on a temporary home, and the
//! latency statistics the benchmarks print next to criterion's own report.
//!
//! Every benchmark builds the capsules it needs itself, so a number can never come from a
//! stale or missing artifact.

mod capsules;
mod daemon;
mod fleet;
mod inproc;
mod stats;

use std::path::PathBuf;

pub use capsules::{capsule_src, Capsules};
pub use daemon::{daemon_exe, wait_ready, Daemon};
pub use fleet::{home_and_workspace, set_up_agent_fleet, AGENT_FLEET};
pub use inproc::InProcessKernel;
pub use stats::{fmt_duration, median, time_each, verdict, Summary};

/// Topics of the `bench` capsule.
pub const NOP_LOOP: &str = "bench.v1.nop_loop";
pub const KV_LOOP: &str = "bench.v1.kv_loop";
pub const PONG: &str = "bench.v1.pong";
pub const HTTP_LOOP: &str = "bench.v1.http_loop";

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("building capsule `{name}`: {source}")]
    Build {
        name: String,
        #[source]
        source: astrid_build::BuildError,
    },
    #[error("in-process kernel: {0}")]
    Kernel(#[from] astrid_kernel::KernelError),
    #[error("request on `{topic}` failed: {reason}")]
    Request { topic: String, reason: String },
    #[error("client: {0}")]
    Client(#[from] astrid_client::ClientError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Daemon(String),
    #[error("unexpected reply on `{topic}`: {reply}")]
    Reply { topic: String, reply: String },
}

impl BenchError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Parses the decimal nanosecond count the `bench` capsule's loops reply with.
pub fn parse_ns(topic: &str, reply: &[u8]) -> Result<u64, BenchError> {
    std::str::from_utf8(reply)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| BenchError::Reply {
            topic: topic.to_string(),
            reply: String::from_utf8_lossy(reply).into_owned(),
        })
}

/// A numeric setting of a benchmark program from the environment, e.g. `SOAK_SECONDS`; a value
/// that is not a number ends the run, naming it.
pub fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

/// Benchmarks are programs, not libraries: a failed set-up ends the run with the reason.
pub fn or_die<T>(what: &str, r: Result<T, BenchError>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

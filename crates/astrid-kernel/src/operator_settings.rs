//! The operator's effective `config.toml` settings, as `astrid config show` prints them: the
//! values the running daemon uses (defaults included), under the keys the file takes.

use std::time::Duration;

use astrid_egress::AirlockConfig;
use astrid_sandbox::Quota;

use crate::kernel::Inner;
use crate::ProcessLimits;

const MIB: u64 = 1024 * 1024;

/// `section.key = value` for `[quota]`, `[http]` and `[process]`.
pub fn operator_settings(
    quota: &Quota,
    http: &AirlockConfig,
    process: &ProcessLimits,
) -> Vec<(String, String)> {
    let secs = |d: Duration| d.as_secs().to_string();
    [
        ("quota.memory_mb", (quota.memory_bytes / MIB).to_string()),
        ("quota.timeout_ms", quota.timeout.as_millis().to_string()),
        ("http.max_body_mb", (http.max_body / MIB).to_string()),
        ("http.default_timeout_secs", secs(http.default_timeout)),
        ("http.max_timeout_secs", secs(http.max_timeout)),
        ("http.connect_timeout_secs", secs(http.connect_timeout)),
        ("http.max_redirects", http.max_redirects.to_string()),
        (
            "http.max_header_kb",
            (http.max_header_bytes / 1024).to_string(),
        ),
        ("http.max_headers", http.max_headers.to_string()),
        (
            "http.max_open_responses",
            http.max_open_responses.to_string(),
        ),
        ("process.max_processes", process.max_processes.to_string()),
        (
            "process.memory_mb",
            (process.max_memory_bytes / MIB).to_string(),
        ),
        ("process.cpu_seconds", process.max_cpu_seconds.to_string()),
        ("process.open_files", process.max_open_files.to_string()),
        (
            "process.file_size_mb",
            (process.max_file_bytes / MIB).to_string(),
        ),
        ("process.tmp_mb", (process.tmp_bytes / MIB).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl Inner {
    pub(crate) fn operator_settings(&self) -> Vec<(String, String)> {
        operator_settings(&self.quota, self.airlock.config(), &self.process_limits())
    }
}

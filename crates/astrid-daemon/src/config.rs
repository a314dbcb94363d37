//! `$ASTRID_HOME/config.toml`: operator settings. A bad file stops the daemon with the file,
//! the key and the reason, rather than running with settings nobody chose.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use astrid_kernel::{KernelConfig, ProcessLimits};
use astrid_types::AstridHome;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    quota: QuotaConfig,
    #[serde(default)]
    process: ProcessConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaConfig {
    /// Memory ceiling per capsule invocation, MiB.
    memory_mb: Option<u64>,
    /// Deadline per capsule invocation, milliseconds.
    timeout_ms: Option<u64>,
}

/// `[process]`: the resource limits of every subprocess sandbox (docs/SANDBOX.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessConfig {
    /// Processes alive at once in one sandbox.
    max_processes: Option<u64>,
    /// Memory of one sandbox (its /tmp included), MiB.
    memory_mb: Option<u64>,
    /// CPU time of each process, seconds.
    cpu_seconds: Option<u64>,
    /// Open files of each process.
    open_files: Option<u64>,
    /// Largest file a process may write, MiB.
    file_size_mb: Option<u64>,
    /// Size of the sandbox's private /tmp, MiB.
    tmp_mb: Option<u64>,
}

const MIB: u64 = 1024 * 1024;

fn ranged(path: &Path, key: &str, v: Option<u64>, lo: u64, hi: u64) -> Result<Option<u64>> {
    match v {
        Some(v) if !(lo..=hi).contains(&v) => bail!(
            "{}: `{key}`: must be between {lo} and {hi}, got {v}",
            path.display()
        ),
        other => Ok(other),
    }
}

fn apply_process(path: &Path, p: &ProcessConfig, limits: &mut ProcessLimits) -> Result<()> {
    const MAX_MB: u64 = 1 << 20;
    if let Some(n) = ranged(path, "process.max_processes", p.max_processes, 8, 65_536)? {
        limits.max_processes = n as u32;
    }
    if let Some(mb) = ranged(path, "process.memory_mb", p.memory_mb, 64, MAX_MB)? {
        limits.max_memory_bytes = mb * MIB;
    }
    if let Some(s) = ranged(path, "process.cpu_seconds", p.cpu_seconds, 1, 86_400)? {
        limits.max_cpu_seconds = s;
    }
    if let Some(n) = ranged(path, "process.open_files", p.open_files, 32, 1 << 20)? {
        limits.max_open_files = n;
    }
    if let Some(mb) = ranged(path, "process.file_size_mb", p.file_size_mb, 1, MAX_MB)? {
        limits.max_file_bytes = mb * MIB;
    }
    if let Some(mb) = ranged(path, "process.tmp_mb", p.tmp_mb, 1, MAX_MB)? {
        limits.tmp_bytes = mb * MIB;
    }
    Ok(())
}

pub fn apply(home: &AstridHome, config: &mut KernelConfig) -> Result<()> {
    let path = home.config_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("{}: {e}", path.display()),
    };
    let file: FileConfig =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if let Some(mb) = file.quota.memory_mb {
        if !(1..=4096).contains(&mb) {
            bail!(
                "{}: `quota.memory_mb`: must be between 1 and 4096, got {mb}",
                path.display()
            );
        }
        config.quota.memory_bytes = mb * 1024 * 1024;
    }
    if let Some(ms) = file.quota.timeout_ms {
        if !(10..=3_600_000).contains(&ms) {
            bail!(
                "{}: `quota.timeout_ms`: must be between 10 and 3600000, got {ms}",
                path.display()
            );
        }
        config.quota.timeout = Duration::from_millis(ms);
    }
    apply_process(&path, &file.process, &mut config.process_limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(text: &str) -> Result<KernelConfig> {
        let dir = tempfile::tempdir().unwrap();
        let home = AstridHome::new(dir.path().to_path_buf());
        std::fs::write(home.config_file(), text).unwrap();
        let mut config = KernelConfig::new(home.clone());
        apply(&home, &mut config).map(|()| config)
    }

    #[test]
    fn process_limits_default_and_are_read_from_the_process_section() {
        let c = applied("").unwrap();
        assert_eq!(c.process_limits, ProcessLimits::default());
        let c = applied(
            "[process]\nmax_processes = 64\nmemory_mb = 512\ncpu_seconds = 30\n\
             open_files = 256\nfile_size_mb = 100\ntmp_mb = 64\n",
        )
        .unwrap();
        let l = c.process_limits;
        assert_eq!(
            (l.max_processes, l.max_memory_bytes, l.max_cpu_seconds),
            (64, 512 * MIB, 30)
        );
        assert_eq!(
            (l.max_open_files, l.max_file_bytes, l.tmp_bytes),
            (256, 100 * MIB, 64 * MIB)
        );
    }

    #[test]
    fn bad_process_limits_stop_the_daemon_with_the_key() {
        for (text, key) in [
            ("[process]\nmax_processes = 0\n", "process.max_processes"),
            ("[process]\nmemory_mb = 1\n", "process.memory_mb"),
            ("[process]\nopen_files = 3\n", "process.open_files"),
            ("[process]\ntmp_mb = 0\n", "process.tmp_mb"),
        ] {
            let err = applied(text).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        let err = applied("[process]\nnproc = 5\n").unwrap_err().to_string();
        assert!(err.contains("nproc"), "{err}");
    }
}

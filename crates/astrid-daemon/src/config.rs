//! `$ASTRID_HOME/config.toml`: operator settings. A bad file stops the daemon with the file,
//! the key and the reason, rather than running with settings nobody chose.

use std::time::Duration;

use anyhow::{bail, Result};
use astrid_kernel::KernelConfig;
use astrid_types::AstridHome;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    quota: QuotaConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaConfig {
    /// Memory ceiling per capsule invocation, MiB.
    memory_mb: Option<u64>,
    /// Deadline per capsule invocation, milliseconds.
    timeout_ms: Option<u64>,
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
    Ok(())
}

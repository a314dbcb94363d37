//! `$ASTRID_HOME/config.toml`: operator settings. A bad file stops the daemon with the file,
//! the key and the reason, rather than running with settings nobody chose.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    #[serde(default)]
    gateway: Option<GatewayConfig>,
    #[serde(default)]
    http: crate::config_http::HttpConfig,
}

/// `[gateway]`: the HTTP gateway the daemon starts and supervises (docs/GATEWAY.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayConfig {
    #[serde(default)]
    enabled: bool,
    /// `IP:PORT`; loopback by default.
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_body_bytes: Option<u64>,
    request_timeout_secs: Option<u64>,
    turn_timeout_secs: Option<u64>,
    rate_per_sec: Option<f64>,
    rate_burst: Option<u64>,
    /// The `astrid-gateway` executable (default: beside `astrid-daemon`).
    program: Option<PathBuf>,
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

pub(crate) const MIB: u64 = 1024 * 1024;

pub(crate) fn ranged(
    path: &Path,
    key: &str,
    v: Option<u64>,
    lo: u64,
    hi: u64,
) -> Result<Option<u64>> {
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

/// What `[gateway]` asks the daemon to run: the program and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewaySpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl GatewaySpec {
    /// The supervised child: a cleared environment (the gateway is given no credential), and
    /// the address it prints first written to `run/gateway` for `astrid status`.
    pub fn child(self, home: &AstridHome) -> crate::child::ChildSpec {
        crate::child::ChildSpec {
            name: "gateway".into(),
            program: self.program,
            args: self.args,
            pass_env: &[],
            announce_to: Some(home.run_dir().join("gateway")),
        }
    }
}

/// The gateway's command line from `[gateway]`, or `None` when it is absent or not enabled.
/// Every value is checked here, so a mistake stops the daemon naming the key rather than
/// leaving a gateway that restarts and fails forever.
fn gateway_spec(path: &Path, home: &AstridHome, g: &GatewayConfig) -> Result<Option<GatewaySpec>> {
    if !g.enabled {
        return Ok(None);
    }
    let file = path.display();
    let mut args: Vec<OsString> = vec!["--home".into(), home.root().into()];
    let listen = g
        .listen
        .as_deref()
        .unwrap_or(astrid_gateway_default_listen());
    let addr: SocketAddr = listen.parse().map_err(|e| {
        anyhow::anyhow!("{file}: `gateway.listen`: `{listen}` is not IP:PORT ({e})")
    })?;
    args.extend(["--listen".into(), addr.to_string().into()]);
    match (&g.tls_cert, &g.tls_key) {
        (Some(cert), Some(key)) => {
            for (k, p) in [("gateway.tls_cert", cert), ("gateway.tls_key", key)] {
                if let Err(e) = std::fs::metadata(p) {
                    bail!("{file}: `{k}`: {}: {e}", p.display());
                }
            }
            args.extend([
                "--tls-cert".into(),
                cert.into(),
                "--tls-key".into(),
                key.into(),
            ]);
        }
        (Some(_), None) => bail!("{file}: `gateway.tls_key`: missing (tls_cert needs its key)"),
        (None, Some(_)) => {
            bail!("{file}: `gateway.tls_cert`: missing (tls_key needs its certificate)")
        }
        (None, None) => {}
    }
    let numbers = [
        ("max_body_bytes", g.max_body_bytes, 1024, 1 << 30),
        ("request_timeout_secs", g.request_timeout_secs, 1, 3600),
        ("turn_timeout_secs", g.turn_timeout_secs, 1, 86_400),
        ("rate_burst", g.rate_burst, 1, 1_000_000),
    ];
    for (key, v, lo, hi) in numbers {
        if let Some(v) = ranged(path, &format!("gateway.{key}"), v, lo, hi)? {
            args.extend([
                format!("--{}", key.replace('_', "-")).into(),
                v.to_string().into(),
            ]);
        }
    }
    if let Some(r) = g.rate_per_sec {
        if !(r > 0.0 && r <= 1_000_000.0) {
            bail!("{file}: `gateway.rate_per_sec`: must be above 0 and at most 1000000, got {r}");
        }
        args.extend(["--rate-per-sec".into(), r.to_string().into()]);
    }
    let program = match &g.program {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("finding astrid-daemon's own path: {e}"))?
            .with_file_name("astrid-gateway"),
    };
    if !program.is_file() {
        bail!(
            "{file}: `gateway.program`: {} is not a file (install astrid-gateway beside              astrid-daemon, or set gateway.program to its path)",
            program.display()
        );
    }
    args.push("--exit-on-stdin-eof".into());
    Ok(Some(GatewaySpec { program, args }))
}

/// The gateway's own default address (the daemon does not link the gateway).
fn astrid_gateway_default_listen() -> &'static str {
    "127.0.0.1:8787"
}

/// Daemon settings outside the kernel's.
#[derive(Debug, Default)]
pub struct DaemonSettings {
    pub gateway: Option<GatewaySpec>,
}

pub fn apply(home: &AstridHome, config: &mut KernelConfig) -> Result<DaemonSettings> {
    let path = home.config_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DaemonSettings::default()),
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
    apply_process(&path, &file.process, &mut config.process_limits)?;
    crate::config_http::apply_http(&path, &file.http, &mut config.airlock)?;
    let gateway = match &file.gateway {
        Some(g) => gateway_spec(&path, home, g)?,
        None => None,
    };
    Ok(DaemonSettings { gateway })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(text: &str) -> Result<KernelConfig> {
        let dir = tempfile::tempdir().unwrap();
        let home = AstridHome::new(dir.path().to_path_buf());
        std::fs::write(home.config_file(), text).unwrap();
        let mut config = KernelConfig::new(home.clone());
        apply(&home, &mut config).map(|_| config)
    }

    fn gateway(text: &str) -> Result<Option<GatewaySpec>> {
        let dir = tempfile::tempdir().unwrap();
        let home = AstridHome::new(dir.path().to_path_buf());
        std::fs::write(home.config_file(), text).unwrap();
        let mut config = KernelConfig::new(home.clone());
        apply(&home, &mut config).map(|s| s.gateway)
    }

    #[test]
    fn the_gateway_table_becomes_its_command_line() {
        assert_eq!(gateway("").unwrap(), None);
        assert_eq!(gateway("[gateway]\nenabled = false\n").unwrap(), None);
        // `program` must exist: this test's own executable stands in for it.
        let me = std::env::current_exe().unwrap();
        let text = format!(
            "[gateway]\nenabled = true\nlisten = \"127.0.0.1:9000\"\nrate_burst = 7\n\
             rate_per_sec = 2.5\nprogram = {:?}\n",
            me.display().to_string()
        );
        let spec = gateway(&text).unwrap().unwrap();
        assert_eq!(spec.program, me);
        let args: Vec<String> = spec
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        assert!(line.contains("--listen 127.0.0.1:9000"), "{line}");
        assert!(line.contains("--rate-burst 7"), "{line}");
        assert!(line.contains("--rate-per-sec 2.5"), "{line}");
        assert!(line.ends_with("--exit-on-stdin-eof"), "{line}");
    }

    #[test]
    fn a_bad_gateway_table_stops_the_daemon_naming_the_key() {
        let me = format!(
            "{:?}",
            std::env::current_exe().unwrap().display().to_string()
        );
        for (text, key) in [
            ("listen = \"everywhere\"", "gateway.listen"),
            ("tls_cert = \"/nonexistent/cert.pem\"", "gateway.tls_key"),
            ("tls_key = \"/k\"", "gateway.tls_cert"),
            (
                "tls_cert = \"/nonexistent/c\"\ntls_key = \"/nonexistent/k\"",
                "gateway.tls_cert",
            ),
            ("request_timeout_secs = 0", "gateway.request_timeout_secs"),
            ("rate_per_sec = -1.0", "gateway.rate_per_sec"),
            ("port = 80", "port"),
        ] {
            let full = format!("[gateway]\nenabled = true\nprogram = {me}\n{text}\n");
            let err = gateway(&full).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = gateway("[gateway]\nenabled = true\nprogram = \"/nonexistent/gw\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("gateway.program"), "{err}");
    }

    /// `astrid config show` prints the kernel's `operator_settings`; every key it prints must
    /// be one this file takes, and a value written there must come back as written.
    #[test]
    fn every_shown_setting_is_a_config_key_that_round_trips() {
        let wanted = [
            ("quota.memory_mb", "128"),
            ("quota.timeout_ms", "7000"),
            ("http.max_body_mb", "2"),
            ("http.default_timeout_secs", "5"),
            ("http.max_timeout_secs", "30"),
            ("http.connect_timeout_secs", "3"),
            ("http.max_redirects", "2"),
            ("http.max_header_kb", "16"),
            ("http.max_headers", "20"),
            ("http.max_open_responses", "4"),
            ("process.max_processes", "64"),
            ("process.memory_mb", "512"),
            ("process.cpu_seconds", "30"),
            ("process.open_files", "256"),
            ("process.file_size_mb", "100"),
            ("process.tmp_mb", "64"),
        ];
        let mut text = String::new();
        for section in ["quota", "http", "process"] {
            text.push_str(&format!("[{section}]\n"));
            for (key, value) in wanted {
                if let Some(k) = key.strip_prefix(&format!("{section}.")) {
                    text.push_str(&format!("{k} = {value}\n"));
                }
            }
        }
        let c = applied(&text).unwrap();
        let shown = astrid_kernel::operator_settings(&c.quota, &c.airlock, &c.process_limits);
        let expected: Vec<(String, String)> = wanted
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(shown, expected);
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

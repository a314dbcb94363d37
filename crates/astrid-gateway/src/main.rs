//! `astrid-gateway`: serves the HTTP gateway for the daemon of `--home` until SIGTERM or
//! Ctrl-C. See docs/GATEWAY.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use astrid_gateway::{Gateway, GatewayConfig, RateLimit, TlsFiles, DEFAULT_LISTEN};
use astrid_types::home::AstridHome;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

/// The version this binary reports: `ASTRID_RELEASE_VERSION` at build time (how a release,
/// or the test of `astrid update`, builds a second version from the same sources), else the
/// crate's.
const VERSION: &str = match option_env!("ASTRID_RELEASE_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// The HTTP gateway of an Astrid daemon: each request acts as its bearer device token.
#[derive(Debug, Parser)]
#[command(name = "astrid-gateway", version = VERSION)]
struct Args {
    /// The daemon's home (default: $ASTRID_HOME, else ~/.astrid).
    #[arg(long)]
    home: Option<PathBuf>,
    /// Address to listen on. Anything but loopback should use TLS.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// Seconds an ordinary request may take.
    #[arg(long, default_value_t = 30)]
    request_timeout_secs: u64,
    /// Seconds one agent turn may take.
    #[arg(long, default_value_t = 600)]
    turn_timeout_secs: u64,
    /// Requests per second per token (average).
    #[arg(long, default_value_t = 50.0)]
    rate_per_sec: f64,
    /// Requests a token may send at once before the average applies.
    #[arg(long, default_value_t = 100)]
    rate_burst: u32,
    /// Shut down gracefully when standard input reaches its end. The daemon starts the
    /// gateway with a pipe as stdin (`[gateway]` in config.toml), so the gateway stops with
    /// the daemon even when the daemon is killed without a chance to stop it.
    #[arg(long)]
    exit_on_stdin_eof: bool,
}

/// Completes when stdin reaches its end (or fails): the supervising daemon is gone. A plain
/// thread blocks on the read; nothing else in the gateway reads stdin.
async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 256];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    let _ = rx.await;
}

fn home(arg: Option<PathBuf>) -> Result<AstridHome, String> {
    match arg {
        Some(p) => Ok(AstridHome::new(p)),
        None => AstridHome::from_env()
            .ok_or_else(|| "neither --home, ASTRID_HOME nor HOME is set".into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASTRID_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let home = match home(args.home) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("astrid-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = GatewayConfig::new(home);
    config.listen = args.listen;
    config.tls = args
        .tls_cert
        .zip(args.tls_key)
        .map(|(cert, key)| TlsFiles { cert, key });
    config.max_body_bytes = args.max_body_bytes;
    config.request_timeout = Duration::from_secs(args.request_timeout_secs);
    config.turn_timeout = Duration::from_secs(args.turn_timeout_secs);
    config.rate = RateLimit {
        per_second: args.rate_per_sec,
        burst: args.rate_burst,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let gateway = match Gateway::bind(config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("astrid-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The first line of stdout is the base URL, so a script can read it (port 0 picks one).
    println!("{scheme}://{}", gateway.local_addr());
    let watch_stdin = args.exit_on_stdin_eof;
    let shutdown = async move {
        let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
        let parent_gone = async {
            if watch_stdin {
                stdin_closed().await;
                tracing::info!("stdin closed: the supervising daemon is gone");
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = parent_gone => {}
        }
        tracing::info!("shutting down: no new connections; ending streams");
    };
    match gateway.run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("astrid-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `astrid-daemon`: the kernel process. Users do not run it by hand; `astrid` starts it.

mod child;
mod config;
mod config_http;
mod mcp_bridges;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use astrid_kernel::{Kernel, KernelConfig};
use astrid_types::AstridHome;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

/// The version this binary reports: `ASTRID_RELEASE_VERSION` at build time (how a release,
/// or the test of `astrid update`, builds a second version from the same sources), else the
/// crate's.
const VERSION: &str = match option_env!("ASTRID_RELEASE_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

#[derive(Parser)]
#[command(name = "astrid-daemon", version = VERSION, about = "The Astrid kernel")]
struct Args {
    /// Astrid home directory (default: $ASTRID_HOME, else ~/.astrid).
    #[arg(long)]
    home: Option<PathBuf>,
    /// Leave the controlling terminal's session so closing it does not stop the daemon.
    #[arg(long)]
    detach: bool,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("astrid-daemon: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASTRID_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if args.detach {
        // Fails only if we already lead a process group, in which case we are detached enough.
        let _ = nix::unistd::setsid();
    }
    let home = match args.home {
        Some(h) => AstridHome::new(h),
        None => AstridHome::from_env().context("neither ASTRID_HOME nor HOME is set")?,
    };
    let mut config = KernelConfig::new(home.clone());
    let settings = config::apply(&home, &mut config)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(256)
        .build()
        .context("starting the async runtime")?;
    let served = rt.block_on(async move {
        let kernel = Kernel::boot(config).context("booting the kernel")?;
        // After boot: the daemon lock is held, so a second daemon never starts a gateway.
        // The gateway waits for the socket itself (`/readyz`), so serving need not start first.
        let gateway = settings
            .gateway
            .map(|spec| child::Supervisor::start(spec.child(&home)));
        let bridges = mcp_bridges::Bridges::start(home.clone());
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        // Registering SIGHUP replaces its default action (exit): a closed terminal is not a
        // reason to stop serving.
        let mut hup = signal(SignalKind::hangup())?;
        let serve = kernel.serve();
        tokio::pin!(serve);
        let served = loop {
            tokio::select! {
                r = &mut serve => break r.context("serving"),
                _ = term.recv() => kernel.shutdown(),
                _ = int.recv() => kernel.shutdown(),
                _ = hup.recv() => tracing::info!("ignoring SIGHUP"),
            }
        };
        // Blocking (each waits for its child): off the async workers.
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(g) = gateway {
                g.stop();
            }
            if let Some(b) = bridges {
                b.stop();
            }
        })
        .await;
        served
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    served
}

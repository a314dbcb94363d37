//! The HTTP gateway: an uplink like the CLI, a protocol client on the daemon's socket. Each
//! request's `Authorization: Bearer <device token>` opens (or reuses) a socket connection
//! authenticated *as that token*, so the kernel decides what the request may see and do; the
//! gateway holds no operator credential. See docs/GATEWAY.md and docs/ARCHITECTURE.md.

mod agent;
mod app;
mod approvals;
mod error;
mod limits;
mod listcache;
mod metrics;
mod openapi;
mod questions;
mod routes;
mod search;
mod sse;
mod tls;
mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use astrid_types::home::AstridHome;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use error::{ApiError, GatewayError, Problem};
pub use limits::RateLimit;
pub use openapi::openapi_json;

/// Where the gateway listens by default: loopback only; exposing it is a deliberate choice.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

/// A certificate chain and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The daemon's home: the gateway needs only its socket.
    pub home: AstridHome,
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Deadline for an ordinary request until its response head (504 beyond).
    pub request_timeout: Duration,
    /// Deadline for one agent turn (chat completions, thread turns).
    pub turn_timeout: Duration,
    pub rate: RateLimit,
    /// Daemon connections kept open for reuse (one per token).
    pub max_pooled: usize,
    /// Events queued for one stream reader before it is judged too slow and dropped.
    pub stream_queue: usize,
    /// How long a token's thread list is served from the gateway's copy at most; change
    /// events drop the copy sooner (see the `listcache` module). Zero reads it every time.
    pub list_max_age: Duration,
}

impl GatewayConfig {
    pub fn new(home: AstridHome) -> GatewayConfig {
        GatewayConfig {
            home,
            listen: DEFAULT_LISTEN.parse().expect("a valid default address"),
            tls: None,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            turn_timeout: Duration::from_secs(600),
            rate: RateLimit::default(),
            max_pooled: 1024,
            stream_queue: 256,
            list_max_age: listcache::MAX_AGE,
        }
    }
}

/// A bound gateway, not yet serving.
pub struct Gateway {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<app::AppState>,
    stop: watch::Sender<bool>,
}

impl Gateway {
    /// Binds the listening socket and loads the certificate, so both errors surface before
    /// anything is served.
    pub async fn bind(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let tls = match &config.tls {
            Some(f) => Some(tls::acceptor(&f.cert, &f.key)?),
            None => None,
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(app::AppState::new(config, stopped));
        Ok(Gateway {
            listener,
            tls,
            state,
            stop,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting, ends open event streams (so
    /// their clients see an end rather than a hang) and waits for requests in flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        let Gateway {
            listener,
            tls,
            state,
            stop,
        } = self;
        let router = app::router(state);
        let signal = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        match tls {
            // Small responses should leave at once rather than wait for Nagle.
            None => axum::serve(
                listener.tap_io(|s| {
                    let _ = s.set_nodelay(true);
                }),
                router,
            )
            .with_graceful_shutdown(signal)
            .await
            .map_err(GatewayError::Serve),
            Some(acceptor) => {
                let listener =
                    tls::TlsListener::new(listener, acceptor).map_err(GatewayError::Serve)?;
                axum::serve(listener, router)
                    .with_graceful_shutdown(signal)
                    .await
                    .map_err(GatewayError::Serve)
            }
        }
    }
}

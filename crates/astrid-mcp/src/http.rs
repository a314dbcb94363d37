//! The MCP streamable HTTP service the gateway mounts at `/mcp`.
//!
//! A client on protocol 2026-07-28 is served statelessly (that protocol has no sessions).
//! A client on an older protocol gets a session (`Mcp-Session-Id`), because only a session
//! lets the server send it requests: the elicitation forms that put approvals and capsules'
//! questions to its user. A session is bound to the device token that opened it: a request
//! naming it with another token (even of the same principal) is answered 404, exactly as
//! for a session that does not exist, so a leaked session id opens nothing without its
//! token. Every request still acts for the token it brought (the gateway authenticated it
//! and the request carries that token's connection), so binding decides only whose forms a
//! session's calls raise and who may end it.
//!
//! Sessions are bounded: [`MAX_SESSIONS_PER_DEVICE`] per device and [`MAX_SESSIONS`] in all
//! (a new one past either is closed at once and refused with 429 or 503), and a session with
//! no traffic for [`SESSION_IDLE`] ends, which closes the connection it answered on.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use astrid_client::Client;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::SessionManager as _;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::device_rounds::AnsweringDevice;
use crate::server::{CapsuleTools, ServeOptions};

/// Most sessions one device token may hold open at once.
pub const MAX_SESSIONS_PER_DEVICE: usize = 16;
/// Most sessions open at once, over all devices.
pub const MAX_SESSIONS: usize = 1024;
/// A session with no request or answer for this long ends. Longer than the longest call
/// (`shell`'s ten minutes), since a call waiting in the kernel sends nothing meanwhile.
pub const SESSION_IDLE: Duration = Duration::from_secs(11 * 60);
/// The header naming a session (MCP streamable HTTP).
const SESSION_HEADER: &str = "mcp-session-id";

/// An HTTP response of the MCP service.
pub type McpResponse = Response<BoxBody<Bytes, Infallible>>;

/// `/mcp`: rmcp's streamable HTTP service, with sessions bound to device tokens.
pub struct McpHttp {
    service: StreamableHttpService<CapsuleTools, LocalSessionManager>,
    sessions: Arc<LocalSessionManager>,
    /// The device key (a hash of the token) that opened each session.
    owners: Mutex<HashMap<String, [u8; 32]>>,
}

impl McpHttp {
    /// The service, answering with JSON where a request needs no stream; `stop` ends it and
    /// every session. The `Host` check against DNS rebinding is left off because every
    /// request is authenticated by a bearer token first, which a rebinding page cannot send.
    pub fn new(opts: ServeOptions, stop: CancellationToken) -> McpHttp {
        let tools = CapsuleTools::for_http(opts);
        let mut sessions = LocalSessionManager::default();
        sessions.session_config.keep_alive = Some(SESSION_IDLE);
        let sessions = Arc::new(sessions);
        let mut config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .with_cancellation_token(stop);
        config.legacy_session_mode = true;
        config.json_response = true;
        let service =
            StreamableHttpService::new(move || Ok(tools.for_session()), sessions.clone(), config);
        McpHttp {
            service,
            sessions,
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// Serves one request the gateway authenticated: `client` is the connection of its
    /// device token, `device` that token (as a hash) and a way to open another connection
    /// as it.
    pub async fn handle<B>(
        &self,
        mut req: Request<B>,
        client: Client,
        device: AnsweringDevice,
    ) -> McpResponse
    where
        B: http_body::Body + Send + 'static,
        B::Error: Display,
    {
        let named = req
            .headers()
            .get(SESSION_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if let Some(id) = &named {
            if self.owner(id) != Some(device.key) {
                return text(StatusCode::NOT_FOUND, "Not Found: Session not found");
            }
        }
        let ending = req.method() == Method::DELETE;
        let key = device.key;
        req.extensions_mut().insert(client);
        req.extensions_mut().insert(device);
        let resp = self.service.handle(req).await;
        match named {
            None => {
                // Only an `initialize` of an older protocol opens a session, which is known
                // once it is open; one past the bounds is closed again at once.
                let Some(id) = resp.headers().get(SESSION_HEADER) else {
                    return resp;
                };
                let id = String::from_utf8_lossy(id.as_bytes()).into_owned();
                let (mine, all) = self.open_sessions(&key).await;
                let refusal = if mine >= MAX_SESSIONS_PER_DEVICE {
                    Some(text(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!(
                            "this device token already holds {MAX_SESSIONS_PER_DEVICE} MCP \
                             sessions: end one (DELETE /mcp) or let it expire"
                        ),
                    ))
                } else if all >= MAX_SESSIONS {
                    Some(text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the gateway holds as many MCP sessions as it serves; try again later",
                    ))
                } else {
                    None
                };
                if let Some(refusal) = refusal {
                    let _ = self.sessions.close_session(&id.as_str().into()).await;
                    return refusal;
                }
                self.lock_owners().insert(id, key);
            }
            Some(id) if ending && resp.status().is_success() => {
                self.lock_owners().remove(&id);
            }
            Some(_) => {}
        }
        resp
    }

    fn lock_owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, [u8; 32]>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn owner(&self, session: &str) -> Option<[u8; 32]> {
        self.lock_owners().get(session).copied()
    }

    /// How many sessions `device` and everyone hold open (not counting one just opened and
    /// not yet bound); forgets those that ended.
    async fn open_sessions(&self, device: &[u8; 32]) -> (usize, usize) {
        let live: HashSet<String> = self
            .sessions
            .sessions
            .read()
            .await
            .keys()
            .map(|id| id.to_string())
            .collect();
        let mut owners = self.lock_owners();
        owners.retain(|id, _| live.contains(id));
        let mine = owners.values().filter(|k| *k == device).count();
        (mine, owners.len())
    }
}

fn text(status: StatusCode, body: &str) -> McpResponse {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("a valid response")
}

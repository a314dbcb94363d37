//! The MCP handler: tools/list and tools/call, each a bus message on the daemon connection
//! that acts for the caller. Over stdio that is the one connection `astrid mcp serve` opened;
//! over streamable HTTP (the gateway's `/mcp`) it is the connection of the request's device
//! token, which the gateway puts in the request's extensions after the kernel accepted it.
//!
//! Approvals (and capsules' questions) are asked through the client's elicitation forms when
//! it declared them: as server-to-client requests before protocol 2026-07-28 (over HTTP
//! within the call, on a session the gateway binds to one device token) and as input rounds
//! on it (over HTTP per device, `device_rounds`).

use std::sync::Arc;
use std::time::Duration;

use astrid_client::{Client, ClientError};
use astrid_types::wire::{AnsweredBy, ApprovalDecision, RequestError};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeRequestParams, InitializeResult, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::{json, Value};
use tokio::sync::{OnceCell, RwLock};

use crate::device_rounds::{AnsweringDevice, DeviceRounds, Session};
use crate::elicit;
use crate::rounds::{Round, Rounds};
use crate::tools::{parse_describe, ToolDef};
use crate::McpError;

/// How long capsules get to describe their tools. Describing is answered from the manifest
/// compiled into each capsule, so this only bounds a capsule that hangs.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
/// A tool call's bound: the longest tool (`shell`) may run 10 minutes; the daemon applies
/// each capsule's own deadline within it.
const CALL_TIMEOUT: Duration = Duration::from_secs(610);
/// Kernel topic on which installs, updates and removals are announced.
pub(crate) const CAPSULE_CHANGED: &str = "astrid.v1.capsule.changed";

/// What the operator chose when starting the server.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Passed to tools as the context workspace: relative paths resolve against it. It grants
    /// nothing by itself; what a call may touch is still the principal's tokens.
    pub workspace: Option<String>,
    /// Answer every approval request of this principal with allow-once (`--yes`). Without
    /// it, a stdio client that declared form elicitation is asked through it (see
    /// `elicit`); with neither, the server is not an approver, so an effect no token covers
    /// is denied unless another approver of the principal (e.g. `astrid chat`) allows it.
    pub auto_approve: bool,
}

/// One principal's capsule tools as an MCP server.
#[derive(Clone)]
pub struct CapsuleTools {
    /// The connection every call goes through (stdio); `None` over HTTP, where each request
    /// brings the connection of its own device token.
    client: Option<Client>,
    opts: Arc<ServeOptions>,
    /// The last tool list; `None` after a capsule change, so the next list or call gathers
    /// afresh. Kept only with a fixed connection: over HTTP each request may act for another
    /// principal, and lists are gathered per request.
    tools: Arc<RwLock<Option<Arc<Vec<ToolDef>>>>>,
    /// Set once the stdio client's approvals are settled: asked through its elicitation
    /// forms (server-to-client requests, or input rounds within the call on 2026-07-28,
    /// which hold the `Rounds`), or not at all. Settled before the first call is sent, so
    /// no approval of that call can arrive before the server listens for it. `None` over
    /// HTTP and with `--yes`.
    elicit: Option<Arc<OnceCell<Option<Arc<Rounds>>>>>,
    /// Over HTTP: each device's input rounds, for clients on 2026-07-28 that fill forms.
    devices: Option<Arc<DeviceRounds>>,
    /// Over HTTP, for a client on an older protocol: its session's own connection, asking
    /// and list watching. Each session gets a handler of its own (`for_session`), so this
    /// is never shared between sessions.
    session: Option<Arc<Session>>,
}

/// How the kernel's questions during a call reach its client.
enum Asker {
    /// As input rounds: the call returns a form and is resumed (2026-07-28).
    Rounds(Arc<Rounds>),
    /// As server-to-client requests within the call (an older protocol over HTTP).
    Within(Arc<Rounds>),
}

impl CapsuleTools {
    /// Starts answering approvals through the client's forms if it can fill them; once.
    /// Returns the rounds when they are how the client is asked.
    async fn settle_approvals(
        &self,
        client: &Client,
        context: &RequestContext<RoleServer>,
    ) -> Option<Arc<Rounds>> {
        let cell = self.elicit.as_ref()?;
        cell.get_or_init(|| async {
            let started = match elicit::asking(context) {
                elicit::Asking::No => return None,
                elicit::Asking::Requests => elicit::start(client.clone(), context.peer.clone())
                    .await
                    .map(|()| None),
                elicit::Asking::Rounds => Rounds::start(client.clone(), elicit::FORM_WAIT)
                    .await
                    .map(Some),
            };
            started.unwrap_or_else(|e| {
                // Without the registration nobody is asked here: calls are denied as before.
                tracing::warn!("cannot answer approvals through MCP elicitation: {e}");
                None
            })
        })
        .await
        .clone()
    }

    /// How this request's client is asked during its call, if at all: over stdio as
    /// settled at the first call; over HTTP by the request's device (which the gateway put in
    /// the request's extensions), as input rounds on 2026-07-28 and within the call on its
    /// session before it.
    async fn asker(&self, client: &Client, context: &RequestContext<RoleServer>) -> Option<Asker> {
        let Some(devices) = self.devices.as_ref() else {
            return self
                .settle_approvals(client, context)
                .await
                .map(Asker::Rounds);
        };
        let device = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<AnsweringDevice>())?;
        match elicit::asking(context) {
            elicit::Asking::No => None,
            elicit::Asking::Rounds => devices
                .get(device, elicit::FORM_WAIT)
                .await
                .map(Asker::Rounds),
            elicit::Asking::Requests => self
                .session
                .as_ref()?
                .rounds(device)
                .await
                .map(Asker::Within),
        }
    }

    /// The handler of the gateway's `/mcp`: no connection of its own (each request brings
    /// its device token's), and answering per device and per session.
    pub(crate) fn for_http(opts: ServeOptions) -> CapsuleTools {
        CapsuleTools {
            client: None,
            opts: Arc::new(opts),
            tools: Arc::new(RwLock::new(None)),
            elicit: None,
            devices: Some(Arc::new(DeviceRounds::default())),
            session: None,
        }
    }

    /// A handler for one new HTTP session (or stateless request): the same tools, with
    /// answering of its own.
    pub(crate) fn for_session(&self) -> CapsuleTools {
        CapsuleTools {
            session: Some(Arc::default()),
            ..self.clone()
        }
    }

    /// The connection that acts for this request.
    fn client(&self, context: &RequestContext<RoleServer>) -> Result<Client, ErrorData> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Client>())
            .cloned()
            .ok_or_else(|| {
                // The gateway authenticates before the request reaches MCP; a request without
                // a connection is a wiring fault, refused rather than served as anyone.
                ErrorData::internal_error(
                    "no authenticated Astrid connection for this request",
                    None,
                )
            })
    }

    async fn tools(&self, client: &Client) -> Result<Arc<Vec<ToolDef>>, ErrorData> {
        let cached = self.client.is_some();
        if cached {
            if let Some(t) = self.tools.read().await.as_ref() {
                return Ok(t.clone());
            }
        }
        let replies = client
            .gather("tool.v1.describe", b"{}".to_vec(), DESCRIBE_TIMEOUT)
            .await
            .map_err(|e| ErrorData::internal_error(format!("listing tools: {e}"), None))?;
        let tools = Arc::new(parse_describe(&replies));
        if cached {
            *self.tools.write().await = Some(tools.clone());
        }
        Ok(tools)
    }

    async fn forget_tools(&self) {
        *self.tools.write().await = None;
    }

    async fn call(
        &self,
        client: &Client,
        name: &str,
        args: Value,
    ) -> Result<CallToolResult, ErrorData> {
        if !self.tools(client).await?.iter().any(|t| t.name == name) {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`"),
                None,
            ));
        }
        let payload = json!({
            "args": args,
            "context": {"session": "mcp", "workspace": self.opts.workspace},
        });
        let topic = format!("tool.v1.execute.{name}");
        let reply = client
            .request(&topic, payload.to_string().into_bytes(), CALL_TIMEOUT)
            .await;
        Ok(match reply {
            Ok(bytes) => CallToolResult::success(vec![ContentBlock::text(output_text(&bytes))]),
            Err(ClientError::Request(e)) => {
                CallToolResult::error(vec![ContentBlock::text(refusal_text(name, &e))])
            }
            Err(e @ (ClientError::Disconnected | ClientError::Protocol(_))) => {
                return Err(ErrorData::internal_error(
                    format!("the Astrid daemon connection failed: {e}"),
                    None,
                ))
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
        })
    }
}

/// A tool's reply is `{"output": text}`; anything else is passed on as it came.
fn output_text(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(mut o)) => match o.remove("output") {
            Some(Value::String(s)) => s,
            _ => String::from_utf8_lossy(bytes).into_owned(),
        },
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The reason the call did not succeed, for the MCP host's model and user, word for word
/// from the daemon or the tool (a denial's text names the missing token and the audit).
fn refusal_text(name: &str, e: &RequestError) -> String {
    match e {
        RequestError::Failed(m) => m.clone(),
        RequestError::NoSubscriber(_) => format!("tool `{name}` is no longer installed"),
        other => other.to_string(),
    }
}

impl ServerHandler for CapsuleTools {
    fn get_info(&self) -> ServerConfig {
        // Over stateless HTTP there is no stream to announce a change on; a client lists
        // again (each list is gathered afresh there).
        let capabilities = if self.client.is_some() {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build()
        } else {
            ServerCapabilities::builder().enable_tools().build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("astrid", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools of the capsules installed in Astrid. Every call is checked by the Astrid \
             daemon (capsule manifest, the principal's capability tokens or a human's \
             approval) and recorded in its signed audit chain; a refusal comes back as a \
             tool error with the reason.",
            )
    }

    /// Over HTTP an `initialize` opens a session (2026-07-28 has no `initialize`), which has
    /// a stream to announce changes on: the capability says so there too.
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let mut result = self.negotiate_initialize(&request)?;
        if self.session.is_some() {
            result
                .capabilities
                .tools
                .get_or_insert_with(Default::default)
                .list_changed = Some(true);
        }
        Ok(result)
    }

    /// A session's client is ready: from now on it hears of its principal's capsule changes.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let Some(session) = &self.session else {
            return;
        };
        let device = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<AnsweringDevice>());
        if let Some(device) = device {
            session.watch(device, context.peer.clone()).await;
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let client = self.client(&context)?;
        let tools = self.tools(&client).await?;
        Ok(ListToolsResult::with_all_items(
            tools
                .iter()
                .map(|t| {
                    Tool::new(
                        t.name.clone(),
                        t.description.clone(),
                        Arc::new(t.input_schema.clone()),
                    )
                })
                .collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let client = self.client(&context)?;
        let asker = self.asker(&client, &context).await;
        let args = Value::Object(request.arguments.unwrap_or_default());
        let rounds = match asker {
            None => return Ok(self.call(&client, &request.name, args).await?.into()),
            Some(Asker::Within(rounds)) => {
                let listening = rounds.listen();
                // On a task, so the kernel's questions can be put while it waits.
                let (this, name) = (self.clone(), request.name.to_string());
                let call = tokio::spawn(async move { this.call(&client, &name, args).await });
                return Ok(rounds
                    .ask_within(call, listening, &context.peer)
                    .await?
                    .into());
            }
            Some(Asker::Rounds(rounds)) => rounds,
        };
        let round = match request.request_state.as_deref() {
            Some(state) => {
                rounds
                    .resume(&request.name, state, request.input_responses.as_ref())
                    .await
            }
            None => {
                let listening = rounds.listen();
                // On a task: a call that needs an answer outlives this round.
                let (this, name) = (self.clone(), request.name.to_string());
                let call = tokio::spawn(async move { this.call(&client, &name, args).await });
                rounds.begin(&request.name, call, listening).await
            }
        };
        match round {
            Round::Done(result) => Ok(result?.into()),
            Round::Ask(input) => Ok(input.into()),
        }
    }
}

/// Serves MCP on stdin/stdout until the client closes stdin or the daemon goes away.
pub async fn serve_stdio(client: Client, opts: ServeOptions) -> Result<(), McpError> {
    if opts.auto_approve {
        let mut approvals = client.register_approver().await?;
        let answerer = client.clone();
        tokio::spawn(async move {
            while let Some(req) = approvals.next().await {
                tracing::info!(
                    capsule = %req.capsule, action = %req.action,
                    resource = %req.resource.pattern(), "approving once (--yes)"
                );
                // Recorded as automatic, not as a person's answer.
                let _ = answerer
                    .answer_approval_by(req.id, ApprovalDecision::AllowOnce, AnsweredBy::AutoYes)
                    .await;
            }
        });
    }
    let mut changes = client.subscribe(CAPSULE_CHANGED).await?;
    let elicit = (!opts.auto_approve).then(|| Arc::new(OnceCell::new()));
    let bridge = CapsuleTools {
        client: Some(client),
        opts: Arc::new(opts),
        tools: Arc::new(RwLock::new(None)),
        elicit,
        devices: None,
        session: None,
    };
    let running = bridge
        .clone()
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(|e| McpError::Transport(Box::new(e)))?;
    let peer = running.peer().clone();
    let watcher = tokio::spawn(async move {
        while changes.next().await.is_some() {
            bridge.forget_tools().await;
            if peer.notify_tool_list_changed().await.is_err() {
                break;
            }
        }
    });
    let quit = running.waiting().await;
    watcher.abort();
    quit.map(|_| ()).map_err(McpError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_the_reply_text_or_the_raw_reply() {
        assert_eq!(output_text(br#"{"output":"hello"}"#), "hello");
        assert_eq!(output_text(br#"{"other":1}"#), r#"{"other":1}"#);
        assert_eq!(output_text(b"plain"), "plain");
    }

    #[test]
    fn refusals_keep_the_daemons_words() {
        let e = RequestError::Failed("cannot read /x: denied: no capability token".into());
        assert_eq!(
            refusal_text("fs_read", &e),
            "cannot read /x: denied: no capability token"
        );
        assert_eq!(
            refusal_text("gone", &RequestError::NoSubscriber("t".into())),
            "tool `gone` is no longer installed"
        );
        assert_eq!(
            refusal_text("x", &RequestError::Denied("nope".into())),
            "denied: nope"
        );
    }
}

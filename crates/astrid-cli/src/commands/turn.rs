//! One agent turn as an uplink runs it (docs/AGENT-PROTOCOL.md, "A turn"): the session, the
//! workspace grant, the event stream, approvals and cancellation. `astrid -p` and `astrid chat`
//! differ only in their [`TurnUi`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use astrid_client::{ApprovalStream, Client, ClientError};
use astrid_types::wire::{
    AnsweredBy, ApprovalDecision, ApprovalRequest, ControlCommand, RequestError,
};
use serde::Deserialize;
use serde_json::json;
use tokio::signal::unix::Signal;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::render::TurnEvent;

/// A turn may run many model steps and tools on a slow machine.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Session bookkeeping is a key-value lookup; this is generous.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// The session workspace grant: long enough for a project, short enough to lapse on its own.
pub const WORKSPACE_GRANT_TTL_MS: u64 = 30 * 86_400_000;
/// After the reply, events already on their way are still shown; this is how long to wait
/// for the next one before deciding there are none.
const DRAIN_GAP: Duration = Duration::from_millis(30);

/// A session as `session.v1.open` and `session.v1.list` describe it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub updated_ms: u64,
}

impl SessionInfo {
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionRef {
    pub id: String,
    pub name: String,
}

/// The agent's reply to `agent.v1.turn`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TurnReply {
    pub session: SessionRef,
    #[serde(default)]
    pub answer: String,
    #[serde(default)]
    pub steps: u64,
    /// `end`, `max_steps` or `cancelled`.
    #[serde(default)]
    pub stop: String,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// Tokens the turn's model calls used, as the provider counted them.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
}

/// How a turn ended, as far as the uplink is concerned.
pub struct TurnResult {
    pub reply: anyhow::Result<TurnReply>,
    /// The user pressed Ctrl-C during the turn (and a cancel was published).
    pub interrupted: bool,
}

/// What differs between the headless and the interactive uplink.
pub trait TurnUi {
    fn on_event(&mut self, ev: &TurnEvent);
    /// Answer at once, or return `None` to answer later from [`TurnUi::on_line`].
    fn on_approval(&mut self, req: ApprovalRequest) -> Option<(u64, ApprovalDecision)>;
    /// A line typed while the turn runs.
    fn on_line(&mut self, line: String) -> Option<(u64, ApprovalDecision)>;
    /// Who the answers come from, recorded by the daemon with each decision.
    fn answered_by(&self) -> AnsweredBy;
    fn notice(&mut self, text: &str);
}

/// The turn's inputs besides the UI.
pub struct Turn<'a> {
    pub client: &'a Client,
    pub session_id: &'a str,
    pub input: &'a str,
    pub workspace: Option<&'a str>,
}

/// The canonical workspace directory: `dir` or the current directory.
pub fn workspace_dir(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().context("cannot determine the current directory")?,
    };
    let canonical =
        std::fs::canonicalize(&dir).with_context(|| format!("workspace {}", dir.display()))?;
    if !canonical.is_dir() {
        anyhow::bail!("workspace {} is not a directory", canonical.display());
    }
    Ok(canonical)
}

/// `fs:read:<ws>/**` and `fs:write:<ws>/**`.
pub fn workspace_patterns(ws: &str) -> [String; 2] {
    let base = ws.trim_end_matches('/');
    [format!("fs:read:{base}/**"), format!("fs:write:{base}/**")]
}

/// The session workspace grant: the principal may read and write below `ws` for 30 days.
/// `CapsEnsure` reuses a live token, so running many turns does not pile up tokens.
pub async fn grant_workspace(client: &Client, principal: &str, ws: &str) -> anyhow::Result<()> {
    for pattern in workspace_patterns(ws) {
        client
            .control(ControlCommand::CapsEnsure {
                principal: principal.to_string(),
                pattern,
                ttl_ms: Some(WORKSPACE_GRANT_TTL_MS),
            })
            .await?;
    }
    Ok(())
}

/// `session.v1.open`; `session` is an id or a name, `None` for a new session.
pub async fn open_session(
    client: &Client,
    session: Option<&str>,
    workspace: Option<&str>,
    create: bool,
) -> anyhow::Result<SessionInfo> {
    let body = json!({"session": session, "workspace": workspace, "create": create});
    let reply = client
        .request("session.v1.open", body.to_string(), SESSION_TIMEOUT)
        .await
        .map_err(|e| request_error("session.v1.open", e))?;
    parse_reply(&reply, "session")
}

/// `session.v1.list`: the principal's sessions, newest first.
pub async fn list_sessions(client: &Client) -> anyhow::Result<Vec<SessionInfo>> {
    #[derive(Deserialize)]
    struct List {
        sessions: Vec<SessionInfo>,
    }
    let reply = client
        .request("session.v1.list", "{}", SESSION_TIMEOUT)
        .await
        .map_err(|e| request_error("session.v1.list", e))?;
    let list: List = parse_reply(&reply, "session")?;
    Ok(list.sessions)
}

/// Decodes a capsule's JSON reply, naming who sent something else.
pub fn parse_reply<T: serde::de::DeserializeOwned>(bytes: &[u8], who: &str) -> anyhow::Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        anyhow!(
            "malformed reply from the {who} capsule: {e}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    })
}

/// A failed request as the user should read it: a handler's own message verbatim (it is
/// written for them), and a hint when nobody answers the topic at all.
pub fn request_error(topic: &str, e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Request(RequestError::Failed(msg)) => anyhow!(msg),
        ClientError::Request(RequestError::NoSubscriber(_)) => anyhow!(
            "nobody answers `{topic}`: is the capsule that provides it installed and running? \
             (`astrid doctor` checks, `astrid init` installs the distro)"
        ),
        other => anyhow!(other.to_string()),
    }
}

/// Runs one turn to its end: streams events to `ui`, routes approval requests and typed
/// lines, and turns Ctrl-C into a cancel (a second Ctrl-C exits with 130 at once).
pub async fn run_turn(
    turn: Turn<'_>,
    ui: &mut impl TurnUi,
    approvals: &mut ApprovalStream,
    interrupts: &mut Signal,
    mut lines: Option<&mut UnboundedReceiver<String>>,
) -> TurnResult {
    let mut interrupted = false;
    let reply = drive(
        turn,
        ui,
        approvals,
        interrupts,
        &mut lines,
        &mut interrupted,
    )
    .await;
    TurnResult { reply, interrupted }
}

async fn drive(
    turn: Turn<'_>,
    ui: &mut impl TurnUi,
    approvals: &mut ApprovalStream,
    interrupts: &mut Signal,
    lines: &mut Option<&mut UnboundedReceiver<String>>,
    interrupted: &mut bool,
) -> anyhow::Result<TurnReply> {
    let Turn {
        client,
        session_id,
        input,
        workspace,
    } = turn;
    // Subscribed before the request is sent: the daemon handles our frames in order, so no
    // delta of this turn can be missed.
    let mut events = client
        .subscribe(&format!("agent.v1.event.{session_id}"))
        .await?;
    let body = json!({"session": session_id, "input": input, "workspace": workspace});
    let pending = client
        .send_request("agent.v1.turn", body.to_string(), TURN_TIMEOUT)
        .await?;
    let reply = pending.wait();
    tokio::pin!(reply);
    let (mut events_open, mut approvals_open) = (true, true);
    let mut lines_open = lines.is_some();
    let result = loop {
        tokio::select! {
            biased;
            _ = interrupts.recv() => {
                if *interrupted {
                    ui.notice("interrupted");
                    std::process::exit(i32::from(crate::exit::INTERRUPTED));
                }
                *interrupted = true;
                ui.notice("cancelling the turn… (Ctrl-C again to quit at once)");
                client
                    .publish(&format!("agent.v1.cancel.{session_id}"), Vec::new())
                    .await?;
            }
            ev = events.next(), if events_open => match ev {
                Some(ev) => {
                    if let Some(ev) = TurnEvent::parse(&ev.payload) {
                        ui.on_event(&ev);
                    }
                }
                None => events_open = false,
            },
            req = approvals.next(), if approvals_open => match req {
                Some(req) => {
                    if let Some((id, decision)) = ui.on_approval(req) {
                        client.answer_approval_by(id, decision, ui.answered_by()).await?;
                    }
                }
                None => approvals_open = false,
            },
            line = next_line(lines), if lines_open => match line {
                Some(line) => {
                    if let Some((id, decision)) = ui.on_line(line) {
                        client.answer_approval_by(id, decision, ui.answered_by()).await?;
                    }
                }
                None => lines_open = false,
            },
            r = &mut reply => break r,
        }
    };
    // Deltas published just before the reply may still be in flight.
    while events_open {
        match tokio::time::timeout(DRAIN_GAP, events.next()).await {
            Ok(Some(ev)) => {
                if let Some(ev) = TurnEvent::parse(&ev.payload) {
                    ui.on_event(&ev);
                }
            }
            Ok(None) | Err(_) => events_open = false,
        }
    }
    let bytes = result.map_err(|e| request_error("agent.v1.turn", e))?;
    parse_reply(&bytes, "agent")
}

/// The tool an answer pretends to call, when the model ended its turn by writing a tool call
/// as text (`{"name": "fs_read", "arguments": {...}}`, perhaps in a code fence or
/// `<tool_call>` tags) instead of answering. Small local models do this after a tool result;
/// shown as the answer it looks like a result, yet no tool ran. Checked: the whole answer,
/// else its last line (prose, then a call). `None` for an ordinary answer.
pub fn imitated_tool_call(answer: &str) -> Option<String> {
    let text = answer.trim();
    if let Some(name) = call_name(text) {
        return Some(name);
    }
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    call_name(last)
}

/// `Some(tool name)` when `text`, unwrapped, is JSON shaped like a tool call.
fn call_name(text: &str) -> Option<String> {
    let mut t = text.trim();
    for (open, close) in [
        ("<tool_call>", "</tool_call>"),
        ("```json", "```"),
        ("```", "```"),
    ] {
        if let Some(inner) = t.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            t = inner.trim();
        }
    }
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    shaped_like_call(&serde_json::from_str(t).ok()?)
}

/// `{"name", "arguments"|"parameters"}`, the OpenAI `{"function": {...}}` and
/// `{"tool_calls": [...]}` shapes, and a list of any of these.
fn shaped_like_call(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Array(items) => items.first().and_then(shaped_like_call),
        serde_json::Value::Object(o) => {
            if let Some(inner) = o.get("function").or_else(|| o.get("tool_calls")) {
                return shaped_like_call(inner);
            }
            let name = o.get("name")?.as_str()?;
            (o.contains_key("arguments") || o.contains_key("parameters")).then(|| name.to_string())
        }
        _ => None,
    }
}

async fn next_line(lines: &mut Option<&mut UnboundedReceiver<String>>) -> Option<String> {
    match lines {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_grant_patterns_cover_the_tree() {
        assert_eq!(
            workspace_patterns("/home/u/proj"),
            ["fs:read:/home/u/proj/**", "fs:write:/home/u/proj/**"]
        );
        assert_eq!(workspace_patterns("/")[0], "fs:read:/**");
    }

    #[test]
    fn workspace_is_canonical() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        let ws = workspace_dir(Some(&dir.path().join("a/../a/."))).unwrap();
        assert_eq!(ws, std::fs::canonicalize(dir.path().join("a")).unwrap());
        let err = workspace_dir(Some(&dir.path().join("missing"))).unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(workspace_dir(Some(&file)).is_err());
    }

    #[test]
    fn replies_parse_and_handler_messages_come_through_verbatim() {
        let r: TurnReply = parse_reply(
            br#"{"session":{"id":"0123456789abcdef","name":"s"},"answer":"hi","steps":2,
                "stop":"max_steps","usage":{"input_tokens":1,"output_tokens":2},"tool_calls":[]}"#,
            "agent",
        )
        .unwrap();
        assert_eq!(
            (r.answer.as_str(), r.steps, r.stop.as_str()),
            ("hi", 2, "max_steps")
        );
        let err = parse_reply::<TurnReply>(b"oops", "agent").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("malformed reply from the agent capsule"));

        let e = request_error(
            "agent.v1.turn",
            ClientError::Request(RequestError::Failed(
                "the provider rejected the API key (401)".into(),
            )),
        );
        assert_eq!(e.to_string(), "the provider rejected the API key (401)");
        let e = request_error(
            "agent.v1.turn",
            ClientError::Request(RequestError::NoSubscriber("agent.v1.turn".into())),
        );
        assert!(e.to_string().contains("astrid init"), "{e}");
    }

    #[test]
    fn tool_calls_written_as_text_are_recognised() {
        let call = r#"{"name": "fs_read", "arguments": {"path": "notes.txt"}}"#;
        assert_eq!(imitated_tool_call(call).as_deref(), Some("fs_read"));
        assert_eq!(
            imitated_tool_call(&format!("\n```json\n{call}\n```\n")).as_deref(),
            Some("fs_read")
        );
        assert_eq!(
            imitated_tool_call(&format!("<tool_call>\n{call}\n</tool_call>")).as_deref(),
            Some("fs_read")
        );
        assert_eq!(
            imitated_tool_call(&format!("I will read the file.\n{call}")).as_deref(),
            Some("fs_read")
        );
        assert_eq!(
            imitated_tool_call(r#"{"name": "shell", "parameters": {"command": "ls"}}"#).as_deref(),
            Some("shell")
        );
        assert_eq!(
            imitated_tool_call(
                r#"{"tool_calls": [{"type": "function", "function": {"name": "fs_list", "arguments": "{}"}}]}"#
            )
            .as_deref(),
            Some("fs_list")
        );
        assert_eq!(
            imitated_tool_call(&format!("[{call}]")).as_deref(),
            Some("fs_read")
        );
    }

    #[test]
    fn ordinary_answers_are_not_tool_calls() {
        for answer in [
            "The launch code is AURORA-7.",
            "",
            "Here is the config:\n```json\n{\"name\": \"astrid\", \"version\": 1}\n```",
            r#"{"name": "astrid", "version": "0.1.0"}"#,
            r#"{"arguments": {"path": "x"}}"#,
            "[1, 2, 3]",
            "{not json",
        ] {
            assert_eq!(imitated_tool_call(answer), None, "{answer:?}");
        }
    }
}

//! Approvals a capsule cannot spoof (issue 8): the prompt is the kernel's rendering of the
//! effect with the capsule's words apart and escaped; allow-always mints no wide token,
//! nothing past the manifest, and only a token bound to the asking capsule; `--yes`
//! answers are recorded as automatic and never outlive the prompt.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use astrid_audit::{log_path, read_entries, AuditEntry, Decision};
use astrid_client::{ApprovalStream, Client};
use astrid_types::text::is_unsafe_char;
use astrid_types::wire::{
    AlwaysOffer, AnsweredBy, ApprovalDecision, ApprovalRequest, ApprovalResource, ControlCommand,
    ControlResponse, ResourceKind, TokenInfo,
};
use astrid_types::{AstridHome, PrincipalId};
use common::{ask, control, install, next_request, Capsule, Daemon, TestHome};
use tokio::task::JoinHandle;

/// The asker's manifest ceiling (`capsules/testdata/asker/Capsule.toml`).
const CEILING: &str = "/tmp/astrid-approval";

fn entries(home: &AstridHome) -> Vec<AuditEntry> {
    read_entries(&log_path(
        &home.principals_dir(),
        &PrincipalId::default_local(),
    ))
    .expect("opening the chain")
    .map(|e| e.expect("reading an entry").entry)
    .collect()
}

/// A fresh directory under the asker's ceiling, removed when dropped.
fn scratch() -> tempfile::TempDir {
    std::fs::create_dir_all(CEILING).unwrap();
    tempfile::Builder::new()
        .prefix("t")
        .tempdir_in(CEILING)
        .unwrap()
}

async fn fixture() -> (TestHome, Daemon, Client) {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Asker).await;
    install(&c, Capsule::AskerTwin).await;
    (home, daemon, c)
}

fn start(c: &Client, topic: &'static str, payload: String) -> JoinHandle<String> {
    let c = c.clone();
    tokio::spawn(async move { ask(&c, topic, payload.as_bytes()).await })
}

async fn nothing_asked(stream: &mut ApprovalStream) {
    let asked = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
    assert!(asked.is_err(), "nobody should have been asked: {asked:?}");
}

async fn tokens(c: &Client) -> Vec<TokenInfo> {
    let shown = control(
        c,
        ControlCommand::CapsShow {
            principal: "default".into(),
        },
    )
    .await
    .unwrap();
    let ControlResponse::Tokens(tokens) = shown else {
        panic!("expected tokens, got {shown:?}");
    };
    tokens
}

fn text_fields(req: &ApprovalRequest) -> Vec<String> {
    let mut out = vec![
        req.capsule.clone(),
        req.action.clone(),
        req.resource.target.clone(),
        req.detail.clone(),
    ];
    if let Some(w) = &req.capsule_says {
        out.extend([w.action.clone(), w.reason.clone()]);
    }
    match &req.always {
        AlwaysOffer::Token { pattern, capsule } => out.extend([pattern.clone(), capsule.clone()]),
        AlwaysOffer::NotOffered { why } => out.push(why.clone()),
        AlwaysOffer::Consent { target, capsule } => out.extend([target.clone(), capsule.clone()]),
    }
    out
}

#[tokio::test]
async fn an_escaping_reason_and_a_wide_pattern_get_an_escaped_prompt_and_no_token() {
    let (home, daemon, c) = fixture().await;
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();
    // The capsule tries to erase the line naming the resource and to write its own.
    let reason =
        "routine check\x1b[2K\x1b[1A\rresource: fs:read:/tmp/harmless \u{202e}txt.exe\u{200b}";
    // asker-twin's ceiling is `/` (like tool-fs): only the wideness rule stands in the way.
    let reply = start(&c, "asker-twin.v1.ask", format!("fs:write:/**\n{reason}"));
    let req = next_request(&mut stream).await;
    assert_eq!(req.capsule, "asker-twin");
    assert_eq!(
        req.resource,
        ApprovalResource {
            kind: ResourceKind::FsWrite,
            target: "/**".into()
        }
    );
    for field in text_fields(&req) {
        assert!(
            !field.chars().any(is_unsafe_char),
            "raw control in {field:?}"
        );
    }
    let words = req.capsule_says.clone().expect("the capsule's words");
    assert_eq!(
        words.reason,
        "routine check\\x1b[2K\\x1b[1A\\rresource: fs:read:/tmp/harmless \\u{202e}txt.exe\\u{200b}"
    );
    let AlwaysOffer::NotOffered { why } = &req.always else {
        panic!(
            "allow-always must not be offered for fs:write:/**: {:?}",
            req.always
        );
    };
    assert!(why.contains("astrid caps grant"), "{why}");

    approver
        .answer_approval(req.id, ApprovalDecision::AllowAlways)
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "allow-once");
    let wide: Vec<_> = tokens(&c)
        .await
        .into_iter()
        .filter(|t| t.pattern.starts_with("fs:write:/**") || t.pattern == "fs:write:/**")
        .collect();
    assert!(wide.is_empty(), "{wide:?}");
    let chain = entries(&home.home);
    assert!(!chain
        .iter()
        .any(|e| e.action == "capability.mint" && e.resource == "fs:write:/**"));
    let decided = chain
        .iter()
        .rfind(|e| e.resource == "fs:write:/**" && e.decision == Decision::Approved)
        .expect("the decision is audited");
    assert!(decided.outcome.contains("allow-once"), "{decided:?}");
    assert!(decided.outcome.contains("not offered"), "{decided:?}");
    // The request entry keeps the capsule's words escaped too.
    let requested = chain
        .iter()
        .find(|e| e.resource == "fs:write:/**" && e.decision == Decision::Recorded)
        .expect("the request is audited");
    assert!(
        !requested.outcome.chars().any(is_unsafe_char),
        "{requested:?}"
    );
    assert!(requested.outcome.contains("\\x1b[2K"), "{requested:?}");
}

#[tokio::test]
async fn requests_that_are_not_patterns_or_past_the_manifest_are_refused_unasked() {
    let (home, daemon, c) = fixture().await;
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();

    let reply = ask(&c, "asker.v1.ask", b"/tmp/plain\nplease").await;
    assert!(reply.starts_with("error: invalid-argument"), "{reply}");
    // asker's ceiling is /tmp/astrid-approval: `/**` and /etc are past it.
    for pattern in [
        "fs:write:/**",
        "fs:read:/etc/passwd",
        "net:connect:example.com:443",
    ] {
        let reply = ask(&c, "asker.v1.ask", pattern.as_bytes()).await;
        assert!(reply.starts_with("error: denied"), "{pattern}: {reply}");
        assert!(reply.contains("nobody was asked"), "{pattern}: {reply}");
    }
    nothing_asked(&mut stream).await;
    let denied: Vec<_> = entries(&home.home)
        .into_iter()
        .filter(|e| e.action == "approval.request" && e.decision == Decision::Denied)
        .collect();
    assert_eq!(denied.len(), 4, "{denied:?}");
    assert!(denied.iter().all(|e| e.capsule == "asker"), "{denied:?}");
    assert!(denied
        .iter()
        .any(|e| e.resource == "fs:write:/**" && e.outcome.contains("outside capsule `asker`")));
    assert!(!tokens(&c).await.iter().any(|t| t.pattern == "fs:write:/**"));
}

fn secret_file(dir: &Path) -> PathBuf {
    let file = dir.join("notes.txt");
    std::fs::write(&file, b"twelve bytes").unwrap();
    file
}

#[tokio::test]
async fn an_allow_always_token_serves_only_the_capsule_that_asked() {
    let (home, daemon, c) = fixture().await;
    let dir = scratch();
    let file = secret_file(dir.path());
    let path = file.to_str().unwrap().to_string();
    let pattern = format!("fs:read:{path}");
    {
        let approver = daemon.client().await;
        let mut stream = approver.register_approver().await.unwrap();
        let reply = start(&c, "asker.v1.ask", pattern.clone());
        let req = next_request(&mut stream).await;
        assert_eq!(
            req.always,
            AlwaysOffer::Token {
                pattern: pattern.clone(),
                capsule: "asker".into()
            }
        );
        approver
            .answer_approval(req.id, ApprovalDecision::AllowAlways)
            .await
            .unwrap();
        assert_eq!(reply.await.unwrap(), "allow-always");
    }
    let minted: Vec<_> = tokens(&c)
        .await
        .into_iter()
        .filter(|t| t.pattern == pattern)
        .collect();
    assert_eq!(minted.len(), 1, "{minted:?}");
    assert_eq!(minted[0].capsule.as_deref(), Some("asker"));

    // No approver is connected now: only a token can let a read through.
    assert_eq!(
        ask(&c, "asker.v1.read", path.as_bytes()).await,
        "ok: 12 bytes"
    );
    let other = ask(&c, "asker-twin.v1.read", path.as_bytes()).await;
    assert!(other.starts_with("error: denied"), "{other}");
    let refused = entries(&home.home)
        .into_iter()
        .rfind(|e| e.capsule == "asker-twin" && e.decision == Decision::Denied)
        .expect("the twin's refusal is audited");
    assert_eq!(refused.resource, pattern);
    assert!(
        refused.outcome.contains("bound to capsule `asker`"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_host_effect_is_asked_as_the_effect_and_its_token_is_exact_and_bound() {
    let (_home, daemon, c) = fixture().await;
    let dir = scratch();
    let file = secret_file(dir.path());
    let path = file.to_str().unwrap().to_string();
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();
    let reply = start(&c, "asker-twin.v1.read", path.clone());
    let req = next_request(&mut stream).await;
    assert_eq!(req.capsule, "asker-twin");
    assert_eq!(req.action, "fs.read");
    assert_eq!(
        req.resource,
        ApprovalResource {
            kind: ResourceKind::FsRead,
            target: path.clone()
        }
    );
    assert_eq!(req.capsule_says, None);
    approver
        .answer_approval(req.id, ApprovalDecision::AllowAlways)
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "ok: 12 bytes");
    let minted: Vec<_> = tokens(&c)
        .await
        .into_iter()
        .filter(|t| t.capsule.as_deref() == Some("asker-twin"))
        .map(|t| t.pattern)
        .collect();
    assert_eq!(minted, [format!("fs:read:{path}")]);
    // Covered now: asked again, nobody is bothered.
    assert_eq!(
        ask(&c, "asker-twin.v1.read", path.as_bytes()).await,
        "ok: 12 bytes"
    );
    nothing_asked(&mut stream).await;
}

#[tokio::test]
async fn yes_answers_are_recorded_as_automatic_and_count_once() {
    let (home, daemon, c) = fixture().await;
    let dir = scratch();
    let pattern = format!("fs:read:{}/auto/**", dir.path().display());
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();
    // What `astrid -p --yes` sends is allow-once; even an automatic allow-always (a
    // modified client) is taken as once and mints nothing.
    for decision in [ApprovalDecision::AllowOnce, ApprovalDecision::AllowAlways] {
        let reply = start(&c, "asker.v1.ask", pattern.clone());
        let req = next_request(&mut stream).await;
        approver
            .answer_approval_by(req.id, decision, AnsweredBy::AutoYes)
            .await
            .unwrap();
        assert_eq!(reply.await.unwrap(), "allow-once");
    }
    assert!(!tokens(&c).await.iter().any(|t| t.pattern == pattern));
    let decided: Vec<_> = entries(&home.home)
        .into_iter()
        .filter(|e| e.resource == pattern && e.decision == Decision::Approved)
        .collect();
    assert_eq!(decided.len(), 2, "{decided:?}");
    for e in &decided {
        assert!(e.outcome.contains("allow-once"), "{e:?}");
        assert!(e.outcome.contains("by auto-yes"), "{e:?}");
        assert!(e.outcome.contains("not a person"), "{e:?}");
    }
    assert!(decided[1].outcome.contains("counts once"), "{decided:?}");
}

#[tokio::test]
async fn an_mcp_clients_allow_always_lasts_the_session_and_mints_nothing() {
    let (home, daemon, c) = fixture().await;
    let dir = scratch();
    let pattern = format!("fs:read:{}/mcp/**", dir.path().display());
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();
    // `astrid mcp serve` never offers allow-always in its form; a modified one that sent it
    // still gets no lasting token.
    let reply = start(&c, "asker.v1.ask", pattern.clone());
    let req = next_request(&mut stream).await;
    approver
        .answer_approval_by(req.id, ApprovalDecision::AllowAlways, AnsweredBy::McpClient)
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "allow-session");
    assert!(!tokens(&c).await.iter().any(|t| t.pattern == pattern));
    let decided: Vec<_> = entries(&home.home)
        .into_iter()
        .filter(|e| e.resource == pattern && e.decision == Decision::Approved)
        .collect();
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert!(
        decided[0]
            .outcome
            .contains("allow-session (answered through the MCP client's elicitation form"),
        "{decided:?}"
    );
    assert!(
        decided[0].outcome.contains("lasts the session at most"),
        "{decided:?}"
    );
}

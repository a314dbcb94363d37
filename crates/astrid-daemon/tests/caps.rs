//! Capability tokens on the filesystem through a real daemon: a path the manifest grants
//! but no token covers is denied (and audited); `CapsGrant` opens it, `CapsRevoke` closes
//! it again at once (the gate had the token cached), and both survive a restart.

mod common;

use astrid_audit::{log_path, read_entries, Decision};
use astrid_client::Client;
use astrid_types::wire::{ApprovalDecision, ControlCommand, ControlResponse, TokenInfo};
use astrid_types::PrincipalId;
use common::{ask, control, upload, Capsule, TestHome};
use serde_json::{json, Value};

/// fsprobe with an extra absolute read root, `<tmp>/shared`. Only the manifest text
/// changes; the component and its hash are fsprobe's own.
async fn install_with_shared_root(c: &Client, shared: &str) {
    let mut up = upload(Capsule::FsProbe);
    let line = "fs_read = [\"~/data\"]";
    assert!(up.manifest_toml.contains(line), "{}", up.manifest_toml);
    up.manifest_toml = up
        .manifest_toml
        .replace(line, &format!("fs_read = [\"~/data\", \"{shared}\"]"));
    match control(c, ControlCommand::Install(up)).await.unwrap() {
        ControlResponse::Installed(_) => {}
        other => panic!("{other:?}"),
    }
}

/// `<tmp>/shared/f.txt` holding "shared data", outside every principal's home: the
/// directory, its path as text, and the file's path.
fn shared_file(home: &TestHome) -> (std::path::PathBuf, String, String) {
    let dir = home.outside().join("shared");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f.txt"), "shared data").unwrap();
    let shared = dir.to_str().unwrap().to_string();
    let file = format!("{shared}/f.txt");
    (dir, shared, file)
}

async fn read(c: &Client, path: &str) -> Value {
    let op = json!({ "op": "read", "path": path });
    serde_json::from_str(&ask(c, "fsprobe.v1.op", op.to_string().as_bytes()).await).unwrap()
}

async fn tokens(c: &Client) -> Vec<TokenInfo> {
    let cmd = ControlCommand::CapsShow {
        principal: "default".into(),
    };
    match control(c, cmd).await.unwrap() {
        ControlResponse::Tokens(t) => t,
        other => panic!("{other:?}"),
    }
}

fn assert_token_denied(reply: &Value) {
    let err = reply["err"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(
        err.starts_with("denied: ") && err.contains("no capability token covers"),
        "{err}"
    );
}

#[tokio::test]
async fn fs_needs_a_token_grant_opens_and_revoke_closes() {
    let home = TestHome::new();
    let (_, shared, file) = shared_file(&home);

    let mut daemon = home.start().await;
    let c = daemon.client().await;
    install_with_shared_root(&c, &shared).await;
    std::fs::create_dir_all(home.principal_home().join("data")).unwrap();
    std::fs::write(home.principal_home().join("data/h.txt"), "home").unwrap();

    // The default grants cover the principal's home, nothing else.
    let defaults = tokens(&c).await;
    let home_dir = home.principal_home();
    let patterns: Vec<&str> = defaults.iter().map(|t| t.pattern.as_str()).collect();
    assert_eq!(
        patterns,
        vec![
            format!("fs:read:{}/**", home_dir.display()),
            format!("fs:write:{}/**", home_dir.display())
        ]
    );
    assert_eq!(read(&c, "~/data/h.txt").await, json!({ "ok": "home" }));

    // Manifest says yes, no token: denied, and the denial is in the chain.
    assert_token_denied(&read(&c, &file).await);
    let chain = log_path(&home.home.principals_dir(), &PrincipalId::default_local());
    let denied = read_entries(&chain)
        .unwrap()
        .map(|e| e.unwrap().entry)
        .find(|e| e.decision == Decision::Denied && e.resource == format!("fs:read:{file}"))
        .expect("the token denial was audited");
    assert_eq!(
        (denied.capsule.as_str(), denied.action.as_str()),
        ("fsprobe", "fs.read")
    );
    assert!(
        denied.outcome.contains("no capability token covers"),
        "{}",
        denied.outcome
    );

    let grant = ControlCommand::CapsGrant {
        principal: "default".into(),
        pattern: format!("fs:read:{shared}/**"),
        ttl_ms: Some(3_600_000),
    };
    let token = match control(&c, grant).await.unwrap() {
        ControlResponse::Granted(t) => t,
        other => panic!("{other:?}"),
    };
    assert!(!token.revoked && token.expires_at_ms.is_some());
    assert_eq!(read(&c, &file).await, json!({ "ok": "shared data" }));
    // A second read is served from the gate's verified-token cache.
    assert_eq!(read(&c, &file).await, json!({ "ok": "shared data" }));

    let revoke = ControlCommand::CapsRevoke {
        token_id: token.id.clone(),
    };
    assert_eq!(
        control(&c, revoke).await.unwrap(),
        ControlResponse::RevokedToken {
            token_id: token.id.clone()
        }
    );
    assert_token_denied_or_revoked(&read(&c, &file).await);
    let shown = tokens(&c).await;
    assert!(
        shown.iter().any(|t| t.id == token.id && t.revoked),
        "{shown:?}"
    );
    let minted_and_revoked: Vec<String> = read_entries(&chain)
        .unwrap()
        .map(|e| e.unwrap().entry)
        .filter(|e| e.action.starts_with("capability."))
        .map(|e| e.action)
        .collect();
    assert_eq!(
        minted_and_revoked,
        [
            "capability.mint",
            "capability.mint",
            "capability.mint",
            "capability.revoke"
        ]
    );

    // Grants and revocations are durable: after a restart the home still works and the
    // revoked token stays revoked.
    daemon.kill();
    let daemon = home.start().await;
    let c = daemon.client().await;
    assert_eq!(read(&c, "~/data/h.txt").await, json!({ "ok": "home" }));
    assert_token_denied_or_revoked(&read(&c, &file).await);
    assert_eq!(tokens(&c).await.len(), 3);

    // Unknown tokens and bad patterns are refused with a reason.
    let bogus = ControlCommand::CapsRevoke {
        token_id: "00".repeat(16),
    };
    assert!(control(&c, bogus).await.unwrap_err().contains("no token"));
    let climb = ControlCommand::CapsGrant {
        principal: "default".into(),
        pattern: format!("fs:read:{shared}/../**"),
        ttl_ms: None,
    };
    assert!(control(&c, climb).await.is_err());
}

/// After a revocation the only token that matched is revoked: the gate names that.
fn assert_token_denied_or_revoked(reply: &Value) {
    let err = reply["err"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(
        err.starts_with("denied: ") && err.contains("revoked"),
        "{err}"
    );
}

/// Approval requests recorded in `chain` for `resource` (each is durable before it is sent).
fn approval_requests(chain: &std::path::Path, resource: &str) -> usize {
    read_entries(chain)
        .unwrap()
        .map(|e| e.unwrap().entry)
        .filter(|e| {
            e.decision == Decision::Recorded
                && e.resource == resource
                && e.outcome.contains("requested")
        })
        .count()
}

/// The gate tells "no token" from "a token that was withdrawn": without a token a person is
/// asked (and here says yes), but once the grant covering the file is revoked, the same read
/// is refused outright, with the revocation named and no question put to anyone, although
/// the approver would still say yes.
#[tokio::test]
async fn a_revoked_token_is_refused_without_asking_a_person() {
    let home = TestHome::new();
    let (shared_dir, shared, file) = shared_file(&home);
    let resource = format!("fs:read:{file}");
    let chain = log_path(&home.home.principals_dir(), &PrincipalId::default_local());

    let daemon = home.start().await;
    let c = daemon.client().await;
    install_with_shared_root(&c, &shared).await;
    // An approver that says "once" to everything it is asked.
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();
    let answering = tokio::spawn(async move {
        let mut asked = 0;
        while let Some(req) = stream.next().await {
            asked += 1;
            approver
                .answer_approval(req.id, ApprovalDecision::AllowOnce)
                .await
                .unwrap();
        }
        asked
    });

    // No token: the person is asked and lets it through once.
    assert_eq!(read(&c, &file).await, json!({ "ok": "shared data" }));
    assert_eq!(approval_requests(&chain, &resource), 1);

    let grant = ControlCommand::CapsGrant {
        principal: "default".into(),
        pattern: format!("fs:read:{shared}/**"),
        ttl_ms: None,
    };
    let token = match control(&c, grant).await.unwrap() {
        ControlResponse::Granted(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(read(&c, &file).await, json!({ "ok": "shared data" }));
    let revoke = ControlCommand::CapsRevoke {
        token_id: token.id.clone(),
    };
    control(&c, revoke).await.unwrap();

    // Revoked: refused, naming the token and saying nobody was asked.
    let reply = read(&c, &file).await;
    let err = reply["err"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(
        err.starts_with("denied: ")
            && err.contains(&format!("token {} has been revoked", token.id))
            && err.contains("nobody is asked"),
        "{err}"
    );
    // The reply is back, so a question would already be in the chain: there is none.
    assert_eq!(approval_requests(&chain, &resource), 1);
    let refused = read_entries(&chain)
        .unwrap()
        .map(|e| e.unwrap().entry)
        .filter(|e| e.decision == Decision::Denied && e.resource == resource)
        .last()
        .expect("the refusal was audited");
    assert!(
        refused.outcome.contains("revoked") && refused.outcome.contains("nobody is asked"),
        "{}",
        refused.outcome
    );

    // The revocation withdraws the whole pattern: another file under it is refused the same
    // way, and nobody is asked about it either.
    std::fs::write(shared_dir.join("g.txt"), "other").unwrap();
    let other = format!("{shared}/g.txt");
    let reply = read(&c, &other).await;
    let err = reply["err"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(
        err.contains("revoked") && err.contains("nobody is asked"),
        "{err}"
    );
    assert_eq!(approval_requests(&chain, &format!("fs:read:{other}")), 0);
    drop(daemon);
    assert_eq!(answering.await.unwrap(), 1, "the approver was asked once");
}

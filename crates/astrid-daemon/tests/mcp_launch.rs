//! The grant for one start of an added MCP server (`ControlCommand::McpLaunch`), on a real
//! daemon: the principal's MCP secrets come back only to the operator, under the
//! principal's quota; a missing or removed secret fails the grant by name; a device token
//! (even of the principal itself) is refused with an audit entry; and no secret value is
//! ever written to the audit chain.

mod common;

use astrid_audit::Decision;
use astrid_client::ClientError;
use astrid_types::mcp::{McpSecretRef, NetGrant, SecretText};
use astrid_types::wire::{ControlCommand, ControlResponse, QuotaSpec};
use common::{chain, control, TestHome};

const VALUE: &str = "ghp-value-never-logged-9931";

fn launch(secrets: &[(&str, &str)]) -> ControlCommand {
    ControlCommand::McpLaunch {
        principal: "alice".into(),
        server: "gh".into(),
        secrets: secrets
            .iter()
            .map(|(env, name)| McpSecretRef {
                env: env.to_string(),
                name: name.to_string(),
            })
            .collect(),
        net: vec![
            NetGrant::parse("api.github.com:443", false).unwrap(),
            NetGrant::parse("127.0.0.1:8080", true).unwrap(),
        ],
    }
}

#[tokio::test]
async fn a_launch_grant_carries_the_secrets_and_quota_to_the_operator_only() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let op = daemon.client().await;
    let made = control(
        &op,
        ControlCommand::AgentCreate {
            name: "alice".into(),
        },
    )
    .await;
    assert_eq!(made, Ok(ControlResponse::Done));
    let quota = QuotaSpec {
        processes: Some(7),
        memory_bytes: Some(300 << 20),
        ..QuotaSpec::default()
    };
    let set = ControlCommand::QuotaSet {
        principal: "alice".into(),
        quota,
    };
    assert!(matches!(
        control(&op, set).await,
        Ok(ControlResponse::Quota(_))
    ));

    // Before the secret is stored, the grant fails and says which one and how to fix it.
    let missing = control(&op, launch(&[("GITHUB_TOKEN", "github")])).await;
    let why = missing.expect_err("granted without the secret");
    assert!(
        why.contains("needs secret `github`") && why.contains("astrid mcp secret set github"),
        "{why}"
    );

    let stored = ControlCommand::McpSecretSet {
        principal: "alice".into(),
        name: "github".into(),
        value: SecretText(VALUE.into()),
    };
    assert_eq!(control(&op, stored).await, Ok(ControlResponse::Done));
    let bad = ControlCommand::McpSecretSet {
        principal: "alice".into(),
        name: "multi".into(),
        value: SecretText("line\nbreak".into()),
    };
    assert!(control(&op, bad).await.is_err());

    let grant = match control(&op, launch(&[("GITHUB_TOKEN", "github")])).await {
        Ok(ControlResponse::McpLaunch(g)) => g,
        other => panic!("expected a grant, got {other:?}"),
    };
    assert_eq!(
        grant.env,
        vec![("GITHUB_TOKEN".to_string(), SecretText(VALUE.into()))]
    );
    assert_eq!(grant.limits.max_processes, 7);
    assert_eq!(grant.limits.max_memory_bytes, 300 << 20);
    assert!(
        !format!("{grant:?}").contains(VALUE),
        "Debug shows no value"
    );
    // A reserved variable is refused even if a record names it.
    let reserved = control(&op, launch(&[("LD_PRELOAD", "github")])).await;
    assert!(reserved.is_err(), "{reserved:?}");

    // A device token of alice herself gets no grant: the values are the operator's.
    let (device, dev) = common::device(&home.home, &op, "alice", "laptop").await;
    match dev.control(launch(&[("GITHUB_TOKEN", "github")])).await {
        Err(ClientError::Denied(why)) => assert!(why.contains("needs the operator"), "{why}"),
        other => panic!("a device got a launch grant: {other:?}"),
    }
    let secret_read = dev
        .control(ControlCommand::McpSecretSet {
            principal: "alice".into(),
            name: "github".into(),
            value: SecretText("replaced".into()),
        })
        .await;
    assert!(
        matches!(secret_read, Err(ClientError::Denied(_))),
        "{secret_read:?}"
    );

    // Removed: the next grant fails again.
    let removed = ControlCommand::McpSecretRemove {
        principal: "alice".into(),
        name: "github".into(),
    };
    assert_eq!(control(&op, removed).await, Ok(ControlResponse::Done));
    assert!(control(&op, launch(&[("GITHUB_TOKEN", "github")]))
        .await
        .is_err());

    // The chain names each release and the device's refusal, and never holds the value.
    let entries = chain(&home.home, "alice");
    let launches: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "control.mcp-launch")
        .collect();
    assert!(
        launches.iter().any(|e| e.decision == Decision::Allowed
            && e.resource
                == "mcp:gh secrets:[GITHUB_TOKEN=github] net:[api.github.com:443,local:127.0.0.1:8080]"),
        "{launches:#?}"
    );
    assert!(
        launches.iter().any(|e| e.decision == Decision::Denied
            && e.capsule == format!("device:{}", device.id)),
        "{launches:#?}"
    );
    assert!(entries.iter().any(|e| e.action == "mcp.secret.set"));
    assert!(entries.iter().any(|e| e.action == "mcp.secret.remove"));
    let raw = std::fs::read_dir(home.home.principals_dir().join("alice"))
        .unwrap()
        .flatten()
        .filter(|f| f.path().is_file())
        .map(|f| std::fs::read(f.path()).unwrap())
        .collect::<Vec<_>>();
    assert!(!raw.is_empty());
    for bytes in raw {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(VALUE),
            "a file of alice's holds the secret in the clear"
        );
    }
}

/// A bridge's reports of its server's connections through granted routes land in the
/// principal's chain as `mcp.connect` (carried: allowed, with the address; refused: denied,
/// with the airlock's reason). A device token cannot put a connection in the chain: its
/// report is recorded as refused. A report naming no server or no `host:port` is dropped.
#[tokio::test]
async fn connection_reports_are_recorded_from_the_operator_only() {
    use astrid_types::mcp::ConnectOutcome;
    let home = TestHome::new();
    let daemon = home.start().await;
    let op = daemon.client().await;
    op.report_connection(
        "gh",
        "api.github.com:443",
        ConnectOutcome::Connected {
            address: "140.82.112.5:443".into(),
        },
    )
    .await
    .unwrap();
    op.report_connection(
        "gh",
        "intranet.example:443",
        ConnectOutcome::Refused {
            reason: "airlock: intranet.example resolved to 10.0.0.7, a private address".into(),
        },
    )
    .await
    .unwrap();
    for (server, target) in [("../x", "a.example:1"), ("gh", "no-port"), ("gh", "[x]:1")] {
        let outcome = ConnectOutcome::Connected {
            address: "192.0.2.1:1".into(),
        };
        op.report_connection(server, target, outcome).await.unwrap();
    }
    let (_, dev) = common::device(&home.home, &op, "default", "phone").await;
    let forged = ConnectOutcome::Connected {
        address: "203.0.113.9:22".into(),
    };
    dev.report_connection("gh", "evil.example:22", forged)
        .await
        .unwrap();
    // Frames of one connection are handled in order: once a later reply is back, the
    // reports before it are recorded.
    for c in [&op, &dev] {
        c.control(ControlCommand::Status).await.unwrap();
    }

    let connects: Vec<_> = chain(&home.home, "default")
        .into_iter()
        .filter(|e| e.action == "mcp.connect")
        .collect();
    assert_eq!(connects.len(), 3, "{connects:#?}");
    assert!(connects.iter().any(|e| e.capsule == "mcp:gh"
        && e.resource == "net:connect:api.github.com:443"
        && e.decision == Decision::Allowed
        && e.outcome.contains("140.82.112.5:443")));
    assert!(connects
        .iter()
        .any(|e| e.resource == "net:connect:intranet.example:443"
            && e.decision == Decision::Denied
            && e.outcome.contains("a private address")));
    assert!(connects
        .iter()
        .any(|e| e.resource == "net:connect:evil.example:22"
            && e.decision == Decision::Denied
            && e.outcome.contains("operator's credential")
            && !e.outcome.contains("203.0.113.9")));
}

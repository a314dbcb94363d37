//! The grant for one start of an added MCP server (`ControlCommand::McpLaunch`), on a real
//! daemon: the principal's MCP secrets come back only to the operator, under the
//! principal's quota; a missing or removed secret fails the grant by name; a device token
//! (even of the principal itself) is refused with an audit entry; and no secret value is
//! ever written to the audit chain.

mod common;

use astrid_audit::Decision;
use astrid_client::ClientError;
use astrid_types::mcp::{McpSecretRef, NetGrant, SecretText};
use astrid_types::wire::{ControlCommand, ControlResponse, Credential, DeviceScope, QuotaSpec};
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
    let issued = control(
        &op,
        ControlCommand::DeviceIssue {
            principal: "alice".into(),
            label: "laptop".into(),
            scope: DeviceScope::UseOnly,
            ttl_ms: None,
        },
    )
    .await;
    let Ok(ControlResponse::DeviceIssued { device, token }) = issued else {
        panic!("{issued:?}")
    };
    let dev = astrid_client::Client::connect_with(
        &home.home,
        Credential::Device(token),
        "alice",
        "laptop",
    )
    .await
    .unwrap();
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

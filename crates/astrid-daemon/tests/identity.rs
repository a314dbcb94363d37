//! Identity on the socket, tried as an attacker would: a connection authenticated with
//! alice's device token tries every control command against bob and `default`, a hello
//! naming bob with alice's credential, and forged, expired, revoked (also while connected)
//! and widened device tokens. Each is refused with a typed error and an audit entry naming
//! alice's credential; the operator acting on alice is recorded in both chains.

mod common;

use std::time::Duration;

use astrid_audit::{AuditEntry as Entry, Decision};
use astrid_client::{Client, ClientError};
use astrid_types::wire::{
    ControlCommand, ControlResponse, Credential, DeviceInfo, DeviceScope, ServerMessage,
    PROTOCOL_VERSIONS,
};
use astrid_types::AstridHome;
use common::{
    assert_echo_serves, chain, control, install, next_event, raw_hello_with, raw_recv, upload,
    Capsule, Daemon, TestHome,
};

/// A daemon with echo, principals alice and bob made with `AgentCreate`, and the operator.
async fn fixture() -> (TestHome, Daemon, Client) {
    let home = TestHome::new();
    let daemon = home.start().await;
    let op = daemon.client().await;
    install(&op, Capsule::Echo).await;
    for name in ["alice", "bob"] {
        let done = control(&op, ControlCommand::AgentCreate { name: name.into() }).await;
        assert_eq!(done, Ok(ControlResponse::Done));
        let grant = ControlCommand::AgentModify {
            name: name.into(),
            add_capsules: vec!["echo".into()],
            remove_capsules: vec![],
        };
        assert!(matches!(
            control(&op, grant).await,
            Ok(ControlResponse::Agent(_))
        ));
    }
    (home, daemon, op)
}

async fn issue(
    op: &Client,
    principal: &str,
    scope: DeviceScope,
    ttl_ms: Option<u64>,
) -> (DeviceInfo, String) {
    let cmd = ControlCommand::DeviceIssue {
        principal: principal.into(),
        label: "test device".into(),
        scope,
        ttl_ms,
    };
    match control(op, cmd).await {
        Ok(ControlResponse::DeviceIssued { device, token }) => (device, token),
        other => panic!("expected DeviceIssued, got {other:?}"),
    }
}

async fn as_device(home: &AstridHome, token: &str, principal: &str) -> Client {
    Client::connect_with(home, Credential::Device(token.into()), principal, "phone")
        .await
        .unwrap_or_else(|e| panic!("device login: {e}"))
}

fn refused_reason(answer: ServerMessage) -> String {
    match answer {
        ServerMessage::Refused { reason } => reason,
        other => panic!("expected Refused, got {other:?}"),
    }
}

/// Every control command, aimed at `target`.
fn commands_against(target: &str) -> Vec<ControlCommand> {
    let p = || target.to_string();
    vec![
        ControlCommand::CapsShow { principal: p() },
        ControlCommand::CapsGrant {
            principal: p(),
            pattern: "fs:read:/tmp/**".into(),
            ttl_ms: None,
        },
        ControlCommand::CapsEnsure {
            principal: p(),
            pattern: "fs:read:/tmp/**".into(),
            ttl_ms: None,
        },
        ControlCommand::ConfigSet {
            principal: p(),
            capsule: "echo".into(),
            key: "k".into(),
            value: Some("v".into()),
        },
        ControlCommand::ConfigShow {
            principal: p(),
            capsule: "echo".into(),
        },
        ControlCommand::SecretSet {
            principal: p(),
            capsule: "echo".into(),
            name: "key".into(),
            value: "stolen".into(),
            origin: "https://example.com".into(),
        },
        ControlCommand::SecretList { principal: p() },
        ControlCommand::SecretRemove {
            principal: p(),
            capsule: "echo".into(),
            name: "key".into(),
        },
        ControlCommand::EgressAllow {
            principal: p(),
            capsule: "echo".into(),
            target: "127.0.0.1:9".into(),
        },
        ControlCommand::EgressRevoke {
            principal: p(),
            capsule: "echo".into(),
            target: "127.0.0.1:9".into(),
        },
        ControlCommand::EgressShow { principal: p() },
        ControlCommand::DeviceIssue {
            principal: p(),
            label: String::new(),
            scope: DeviceScope::UseOnly,
            ttl_ms: None,
        },
        ControlCommand::DeviceList { principal: p() },
        ControlCommand::DeviceRevoke {
            principal: p(),
            device_id: "00".repeat(16),
        },
        ControlCommand::McpSecretSet {
            principal: p(),
            name: "token".into(),
            value: astrid_types::mcp::SecretText("planted".into()),
        },
        ControlCommand::McpSecretRemove {
            principal: p(),
            name: "token".into(),
        },
        ControlCommand::McpLaunch {
            principal: p(),
            server: "files".into(),
            secrets: vec![],
            net: vec![],
        },
        ControlCommand::AgentCreate { name: p() },
        ControlCommand::ProfileSet {
            principal: p(),
            fact: "display_name".parse().unwrap(),
            value: Some("planted".into()),
        },
        ControlCommand::ProfileShow { principal: p() },
    ]
}

fn denied(r: Result<ControlResponse, ClientError>, what: &str) -> String {
    match r {
        Err(ClientError::Denied(why)) => why,
        other => panic!("{what}: expected a denial, got {other:?}"),
    }
}

/// The denial entry for `action` made by device `id`, in `p`'s chain.
fn denial_in(home: &AstridHome, p: &str, action: &str, id: &str) -> Entry {
    chain(home, p)
        .into_iter()
        .find(|e| {
            e.action == action
                && e.decision == Decision::Denied
                && e.capsule == format!("device:{id}")
        })
        .unwrap_or_else(|| panic!("no denial of {action} by device {id} in {p}'s chain"))
}

#[tokio::test]
async fn a_device_of_alice_cannot_act_on_bob_or_default() {
    let (home, _daemon, op) = fixture().await;
    let (dev, token) = issue(&op, "alice", DeviceScope::UseOnly, None).await;
    let alice = as_device(&home.home, &token, "alice").await;
    let bob_tokens = control(
        &op,
        ControlCommand::CapsShow {
            principal: "bob".into(),
        },
    )
    .await;

    for target in ["bob", "default"] {
        for cmd in commands_against(target) {
            let what = format!("{cmd:?}");
            let why = denied(alice.control(cmd).await, &what);
            assert!(why.contains(&dev.id), "{what}: {why}");
        }
        // Each attempt is in the target's chain and in alice's, naming alice and the device.
        for action in [
            "control.caps-grant",
            "control.secret-list",
            "control.egress-allow",
            "control.profile-set",
        ] {
            for p in [target, "alice"] {
                let on = format!("on {target}: denied");
                let e = chain(&home.home, p)
                    .into_iter()
                    .find(|e| {
                        e.action == action
                            && e.decision == Decision::Denied
                            && e.capsule == format!("device:{}", dev.id)
                            && e.outcome.contains(&on)
                    })
                    .unwrap_or_else(|| panic!("no {action} denial on {target} in {p}'s chain"));
                assert!(e.outcome.contains("principal=alice"), "{}", e.outcome);
                assert!(e.outcome.contains("client=\"phone\""), "{}", e.outcome);
            }
        }
    }
    // Revoking bob's token by id: the owner is found and the attempt is refused.
    let Ok(ControlResponse::Tokens(list)) = &bob_tokens else {
        panic!("{bob_tokens:?}")
    };
    let cmd = ControlCommand::CapsRevoke {
        token_id: list[0].id.clone(),
    };
    denied(alice.control(cmd).await, "revoke bob's token");
    denial_in(&home.home, "bob", "control.caps-revoke", &dev.id);

    // Daemon-wide changes are the operator's alone.
    for cmd in [
        ControlCommand::Install(upload(Capsule::Counter)),
        ControlCommand::Update(upload(Capsule::Echo)),
        ControlCommand::Remove {
            name: "echo".into(),
        },
        ControlCommand::AgentList,
        ControlCommand::Shutdown,
    ] {
        let what = format!("{:?}", std::mem::discriminant(&cmd));
        denied(alice.control(cmd).await, &what);
    }
    denial_in(&home.home, "alice", "control.shutdown", &dev.id);
    denial_in(&home.home, "alice", "control.remove", &dev.id);

    // Nothing changed: bob's tokens are as they were, echo still serves everyone.
    let after = control(
        &op,
        ControlCommand::CapsShow {
            principal: "bob".into(),
        },
    )
    .await;
    assert_eq!(after, bob_tokens);
    assert_echo_serves(&op).await;
    assert_echo_serves(&alice).await;
    // Alice's device reads her own tokens, and a use-only device administers nothing.
    assert!(matches!(
        alice
            .control(ControlCommand::CapsShow {
                principal: "alice".into()
            })
            .await,
        Ok(ControlResponse::Tokens(_))
    ));
    // And her own profile, which only the operator changes: nothing was planted.
    assert_eq!(
        alice
            .control(ControlCommand::ProfileShow {
                principal: "alice".into()
            })
            .await
            .unwrap(),
        ControlResponse::Facts(Default::default())
    );
    for cmd in commands_against("alice").into_iter().filter(|c| {
        !matches!(
            c,
            ControlCommand::CapsShow { .. }
                | ControlCommand::ConfigShow { .. }
                | ControlCommand::EgressShow { .. }
                | ControlCommand::DeviceList { .. }
                | ControlCommand::ProfileShow { .. }
        )
    }) {
        let what = format!("{cmd:?}");
        denied(alice.control(cmd).await, &what);
    }
}

#[tokio::test]
async fn a_hello_naming_bob_with_alices_device_token_is_refused() {
    let (home, _daemon, op) = fixture().await;
    let (dev, token) = issue(&op, "alice", DeviceScope::UseOnly, None).await;
    let (mut s, answer) = raw_hello_with(
        &home.home,
        PROTOCOL_VERSIONS,
        Credential::Device(token.clone()),
        "bob",
    )
    .await;
    let reason = refused_reason(answer);
    assert!(reason.contains("not `bob`"), "{reason}");
    assert_eq!(raw_recv(&mut s).await, None);
    for p in ["alice", "bob"] {
        let e = chain(&home.home, p)
            .into_iter()
            .find(|e| e.action == "auth.refuse")
            .unwrap_or_else(|| panic!("no refusal in {p}'s chain"));
        assert_eq!(e.decision, Decision::Denied);
        assert!(e.outcome.contains(&dev.id), "{}", e.outcome);
    }
    // The same token naming alice gets in, and its login is recorded.
    let alice = as_device(&home.home, &token, "alice").await;
    assert_echo_serves(&alice).await;
    assert!(chain(&home.home, "alice")
        .iter()
        .any(|e| e.action == "auth.device" && e.resource == format!("device:{}", dev.id)));
}

#[tokio::test]
async fn forged_unknown_expired_and_revoked_device_tokens_get_nothing() {
    let (home, _daemon, op) = fixture().await;
    let (dev, token) = issue(&op, "alice", DeviceScope::UseOnly, None).await;
    // Same device, another secret.
    let (head, secret) = token.rsplit_once('.').unwrap();
    let flipped = if secret.starts_with('0') { "1" } else { "0" };
    let forged = format!("{head}.{flipped}{}", &secret[1..]);
    // Another id entirely.
    let unknown = format!("astrid-device.alice.{}.{secret}", "ab".repeat(16));
    let (_short, short_token) = issue(&op, "alice", DeviceScope::UseOnly, Some(1)).await;
    let (revoked_dev, revoked_token) = issue(&op, "alice", DeviceScope::UseOnly, None).await;
    let done = control(
        &op,
        ControlCommand::DeviceRevoke {
            principal: "alice".into(),
            device_id: revoked_dev.id.clone(),
        },
    )
    .await;
    assert_eq!(done, Ok(ControlResponse::Done));
    // A 1 ms lifetime has passed once the next millisecond starts.
    tokio::time::sleep(Duration::from_millis(5)).await;

    for (credential, wanted) in [
        (forged.as_str(), "wrong secret"),
        (unknown.as_str(), "unknown device"),
        (short_token.as_str(), "expired"),
        (revoked_token.as_str(), "revoked"),
        ("", "malformed"),
        ("astrid-device.alice.zz.zz", "malformed"),
    ] {
        let (_s, answer) = raw_hello_with(
            &home.home,
            PROTOCOL_VERSIONS,
            Credential::Device(credential.into()),
            "alice",
        )
        .await;
        let reason = refused_reason(answer);
        assert!(reason.contains(wanted), "{wanted}: {reason}");
        // The client library reports it as a refusal too.
        let err = Client::connect_with(
            &home.home,
            Credential::Device(credential.into()),
            "alice",
            "t",
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{wanted}: welcomed"));
        assert!(matches!(err, ClientError::Refused(_)), "{err:?}");
    }
    let refusals: Vec<String> = chain(&home.home, "alice")
        .into_iter()
        .filter(|e| e.action == "auth.refuse" && e.decision == Decision::Denied)
        .map(|e| e.outcome)
        .collect();
    for wanted in ["wrong secret", "unknown device", "expired", "revoked"] {
        assert!(
            refusals.iter().any(|o| o.contains(wanted)),
            "no `{wanted}` refusal in alice's chain: {refusals:?}"
        );
    }
    // Malformed tokens name no principal the kernel can trust: the operator's chain has them.
    assert!(chain(&home.home, "alice")
        .iter()
        .chain(chain(&home.home, "default").iter())
        .any(|e| e.action == "auth.refuse" && e.outcome.contains("malformed")));
    // The real token still works: none of this locked alice out.
    let alice = as_device(&home.home, &token, "alice").await;
    assert_echo_serves(&alice).await;
    assert!(!dev.id.is_empty());
}

#[tokio::test]
async fn revoking_a_device_closes_its_live_connections() {
    let (home, _daemon, op) = fixture().await;
    let (dev, token) = issue(&op, "alice", DeviceScope::UseOnly, None).await;
    let alice = as_device(&home.home, &token, "alice").await;
    let mut sub = alice.subscribe("echo.v1.out").await.unwrap();
    assert_echo_serves(&alice).await;

    let done = control(
        &op,
        ControlCommand::DeviceRevoke {
            principal: "alice".into(),
            device_id: dev.id.clone(),
        },
    )
    .await;
    assert_eq!(done, Ok(ControlResponse::Done));
    // The subscription ends because the daemon closed the connection.
    let end = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("the connection of a revoked device stayed open");
    assert!(end.is_none(), "{end:?}");
    assert!(matches!(
        alice.control(ControlCommand::Status).await,
        Err(ClientError::Disconnected)
    ));
    let err = Client::connect_with(&home.home, Credential::Device(token), "alice", "t")
        .await
        .err()
        .expect("a revoked device was welcomed again");
    assert!(err.to_string().contains("revoked"), "{err}");
    let revoke = chain(&home.home, "alice")
        .into_iter()
        .find(|e| e.action == "device.revoke")
        .expect("the revocation is recorded");
    assert!(
        revoke.outcome.contains("closed 1 live"),
        "{}",
        revoke.outcome
    );
}

#[tokio::test]
async fn a_device_scope_may_only_narrow_the_principals_grants() {
    let (home, _daemon, op) = fixture().await;
    let grant = ControlCommand::CapsGrant {
        principal: "alice".into(),
        pattern: "fs:read:/srv/data/**".into(),
        ttl_ms: None,
    };
    assert!(matches!(
        control(&op, grant).await,
        Ok(ControlResponse::Granted(_))
    ));

    for wider in [
        "fs:read:/srv/**",
        "fs:write:/srv/data/**",
        "fs:read:/etc/**",
    ] {
        let cmd = ControlCommand::DeviceIssue {
            principal: "alice".into(),
            label: String::new(),
            scope: DeviceScope::Patterns(vec![wider.into()]),
            ttl_ms: None,
        };
        let err = control(&op, cmd).await.expect_err(wider);
        assert!(err.contains("may only narrow"), "{wider}: {err}");
    }
    let narrow = DeviceScope::Patterns(vec!["fs:read:/srv/data/pub/**".into()]);
    let (dev, token) = issue(&op, "alice", narrow, None).await;
    let alice = as_device(&home.home, &token, "alice").await;

    // Within its scope the device may mint alice a token; wider than it, it may not.
    let inside = ControlCommand::CapsGrant {
        principal: "alice".into(),
        pattern: "fs:read:/srv/data/pub/docs/**".into(),
        ttl_ms: None,
    };
    let minted = match alice.control(inside).await {
        Ok(ControlResponse::Granted(t)) => t,
        other => panic!("expected Granted, got {other:?}"),
    };
    let outside = ControlCommand::CapsGrant {
        principal: "alice".into(),
        pattern: "fs:read:/srv/data/**".into(),
        ttl_ms: None,
    };
    let why = denied(alice.control(outside).await, "widening grant");
    assert!(why.contains("outside the scope"), "{why}");
    let e = denial_in(&home.home, "alice", "control.caps-grant", &dev.id);
    assert_eq!(e.resource, "fs:read:/srv/data/**");
    // It may revoke what it could have minted, and nothing else of alice's.
    let revoke = ControlCommand::CapsRevoke {
        token_id: minted.id.clone(),
    };
    assert!(matches!(
        alice.control(revoke).await,
        Ok(ControlResponse::RevokedToken { .. })
    ));
    let tokens = match control(
        &op,
        ControlCommand::CapsShow {
            principal: "alice".into(),
        },
    )
    .await
    {
        Ok(ControlResponse::Tokens(t)) => t,
        other => panic!("{other:?}"),
    };
    let home_token = tokens
        .iter()
        .find(|t| t.pattern.starts_with("fs:write:"))
        .unwrap();
    let revoke = ControlCommand::CapsRevoke {
        token_id: home_token.id.clone(),
    };
    denied(
        alice.control(revoke).await,
        "revoking a token outside the scope",
    );
}

#[tokio::test]
async fn the_operator_acting_on_alice_is_recorded_in_both_chains() {
    let (home, _daemon, op) = fixture().await;
    let grant = ControlCommand::CapsGrant {
        principal: "alice".into(),
        pattern: "fs:read:/srv/x/**".into(),
        ttl_ms: None,
    };
    assert!(matches!(
        control(&op, grant).await,
        Ok(ControlResponse::Granted(_))
    ));
    for p in ["alice", "default"] {
        let e = chain(&home.home, p)
            .into_iter()
            .find(|e| e.action == "control.caps-grant")
            .unwrap_or_else(|| panic!("no caps-grant entry in {p}'s chain"));
        assert_eq!(e.decision, Decision::Allowed);
        assert_eq!(e.capsule, "operator");
        assert_eq!(e.resource, "fs:read:/srv/x/**");
        assert!(e.outcome.contains("principal=default"), "{}", e.outcome);
        assert!(e.outcome.contains("on alice"), "{}", e.outcome);
    }
    // Acting on itself lands once, in its own chain.
    let own = ControlCommand::CapsShow {
        principal: "default".into(),
    };
    assert!(control(&op, own).await.is_ok());
    let shows = chain(&home.home, "default")
        .into_iter()
        .filter(|e| e.action == "control.caps-show")
        .count();
    assert_eq!(shows, 1);
    assert!(!chain(&home.home, "alice")
        .iter()
        .any(|e| e.action == "control.caps-show"));
    // `agent list` shows every principal.
    assert_eq!(
        control(&op, ControlCommand::AgentList).await,
        Ok(ControlResponse::Agents(vec![
            "alice".into(),
            "bob".into(),
            "default".into()
        ]))
    );
    // A principal that exists cannot be created again over its data.
    let again = control(
        &op,
        ControlCommand::AgentCreate {
            name: "alice".into(),
        },
    )
    .await;
    assert!(again.unwrap_err().contains("already exists"));
}

#[tokio::test]
async fn a_devices_events_never_see_another_principals() {
    let (home, _daemon, op) = fixture().await;
    let (_dev, token) = issue(&op, "alice", DeviceScope::UseOnly, None).await;
    let alice = as_device(&home.home, &token, "alice").await;
    let bob = Client::connect(&home.home, "bob", "test").await.unwrap();
    let mut seen = alice.subscribe("echo.v1.out").await.unwrap();
    // Make sure the subscription is in place before bob publishes.
    assert_echo_serves(&alice).await;

    bob.publish("echo.v1.out", b"bob's".to_vec()).await.unwrap();
    // Bob's publish is routed before the daemon answers his next control command.
    assert!(bob.control(ControlCommand::Status).await.is_ok());
    alice
        .publish("echo.v1.out", b"alice's".to_vec())
        .await
        .unwrap();
    let first = next_event(&mut seen).await;
    assert_eq!(
        (first.principal.as_str(), first.payload.as_slice()),
        ("alice", b"alice's".as_slice())
    );
}

#[tokio::test]
async fn a_version_1_client_is_told_to_upgrade() {
    let home = TestHome::new();
    let _daemon = home.start().await;
    // The version-1 hello, as an old client encodes it.
    #[derive(serde::Serialize)]
    enum V1 {
        Hello {
            versions: Vec<u32>,
            token: String,
            principal: String,
            client_name: String,
        },
    }
    let mut s = tokio::net::UnixStream::connect(home.home.socket())
        .await
        .unwrap();
    let old = V1::Hello {
        versions: vec![1],
        token: common::token(&home.home),
        principal: "default".into(),
        client_name: "old".into(),
    };
    let bytes = astrid_types::wire::encode(&old).unwrap();
    astrid_client::framing::write_frame(&mut s, &bytes)
        .await
        .unwrap();
    let reason = refused_reason(raw_recv(&mut s).await.expect("an answer"));
    assert!(reason.contains("[1]"), "{reason}");
    assert!(
        reason.contains(&format!("{PROTOCOL_VERSIONS:?}")),
        "{reason}"
    );
    assert!(reason.contains("upgrade"), "{reason}");
}

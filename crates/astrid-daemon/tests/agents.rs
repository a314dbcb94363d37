//! Agents: `agent create --clone` makes a replica (capsules, quota, settings, KV, home,
//! secrets re-sealed) whose capability tokens are minted anew for it: they verify for the
//! clone and not for the source, and the source's device token does not log in as the clone.
//! `agent delete` archives the chain and removes the rest.

mod common;

use astrid_audit::{log_path, read_entries, AuditEntry as Entry};
use astrid_client::Client;
use astrid_crypto::{
    now_ms, CapabilityToken, DenialReason, Gate, PublicKey, Resource, RevocationList,
    DEFAULT_MAX_SKEW, RUNTIME_PUB_FILE,
};
use astrid_store::{PrincipalStore, SecretKey};
use astrid_types::wire::{
    AgentInfo, ControlCommand, ControlResponse, Credential, DeviceScope, QuotaSpec,
};
use astrid_types::{AstridHome, PrincipalId};
use common::{ask, control, install, new_agent, upload, Capsule, TestHome};
use serde_json::json;

const SHARED: &str = "/srv/shared";

fn pid(p: &str) -> PrincipalId {
    p.parse().unwrap()
}

fn chain_at(path: &std::path::Path) -> Vec<Entry> {
    read_entries(path)
        .unwrap()
        .map(|e| e.unwrap().entry)
        .collect()
}

async fn ok(op: &Client, cmd: ControlCommand) -> ControlResponse {
    let shown = format!("{cmd:?}");
    control(op, cmd)
        .await
        .unwrap_or_else(|e| panic!("{shown}: {e}"))
}

/// The principal's tokens as stored, read from its store file.
fn stored_tokens(home: &AstridHome, p: &str) -> Vec<CapabilityToken> {
    let store = PrincipalStore::open(&home.principal_store(&pid(p))).unwrap();
    store
        .token_list()
        .unwrap()
        .iter()
        .map(|b| CapabilityToken::from_bytes(b).unwrap())
        .collect()
}

fn gate(home: &AstridHome) -> Gate {
    let key: PublicKey = std::fs::read_to_string(home.keys_dir().join(RUNTIME_PUB_FILE))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Gate::new([key], RevocationList::in_memory(), now_ms, DEFAULT_MAX_SKEW)
}

#[tokio::test]
async fn a_clone_is_a_replica_whose_tokens_are_its_own() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let op = daemon.client().await;
    ok(&op, ControlCommand::AgentCreate { name: "src".into() }).await;
    let src = Client::connect(&home.home, "src", "test").await.unwrap();
    for c in [Capsule::Counter, Capsule::FsProbe] {
        install(&src, c).await;
    }
    ok(
        &src,
        ControlCommand::Install(upload(Capsule::ProviderOpenAi)),
    )
    .await;
    // State of every kind.
    assert_eq!(ask(&src, "counter.v1.incr", b"").await, "1");
    assert_eq!(ask(&src, "counter.v1.incr", b"").await, "2");
    let note = json!({"op": "write", "path": "~/data/out/note.txt", "data": "src's note"});
    ask(&src, "fsprobe.v1.op", note.to_string().as_bytes()).await;
    let quota = QuotaSpec {
        storage_bytes: Some(10 << 20),
        concurrency: Some(4),
        ..QuotaSpec::default()
    };
    ok(
        &op,
        ControlCommand::QuotaSet {
            principal: "src".into(),
            quota: quota.clone(),
        },
    )
    .await;
    ok(
        &op,
        ControlCommand::ConfigSet {
            principal: "src".into(),
            capsule: "provider-openai".into(),
            key: "model".into(),
            value: Some("cloned-model".into()),
        },
    )
    .await;
    ok(
        &op,
        ControlCommand::SecretSet {
            principal: "src".into(),
            capsule: "provider-openai".into(),
            name: "api_key".into(),
            value: "sk-cloned-secret".into(),
            origin: "https://api.openai.com".into(),
        },
    )
    .await;
    ok(
        &op,
        ControlCommand::CapsGrant {
            principal: "src".into(),
            pattern: format!("fs:read:{SHARED}/**"),
            ttl_ms: None,
        },
    )
    .await;
    let (_dev, device_token) = match ok(
        &op,
        ControlCommand::DeviceIssue {
            principal: "src".into(),
            label: "src's phone".into(),
            scope: DeviceScope::UseOnly,
            ttl_ms: None,
        },
    )
    .await
    {
        ControlResponse::DeviceIssued { device, token } => (device, token),
        other => panic!("{other:?}"),
    };

    let clone = ControlCommand::AgentClone {
        name: "twin".into(),
        source: "src".into(),
    };
    let ControlResponse::Agent(info) = ok(&op, clone).await else {
        panic!("expected Agent");
    };
    assert_eq!(info.capsules, ["counter", "fsprobe", "provider-openai"]);
    assert_eq!(info.quota.set, quota);
    assert!(info.devices.is_empty(), "devices are not cloned");

    // KV, home and settings came along; the twin's instance is its own from here on.
    let twin = Client::connect(&home.home, "twin", "test").await.unwrap();
    assert_eq!(ask(&twin, "counter.v1.get", b"").await, "2");
    let read = json!({"op": "read", "path": "~/data/out/note.txt"});
    let got = ask(&twin, "fsprobe.v1.op", read.to_string().as_bytes()).await;
    assert!(got.contains("src's note"), "{got}");
    assert_eq!(ask(&twin, "counter.v1.incr", b"").await, "3");
    assert_eq!(ask(&src, "counter.v1.get", b"").await, "2");
    let cfg = ok(
        &op,
        ControlCommand::ConfigShow {
            principal: "twin".into(),
            capsule: "provider-openai".into(),
        },
    )
    .await;
    let ControlResponse::Config(cfg) = cfg else {
        panic!("{cfg:?}")
    };
    assert!(cfg.contains(&("model".to_string(), "cloned-model".to_string())));

    // The secret was re-sealed: it decrypts from the twin's store to the same value.
    let key = SecretKey::load_or_create(&home.home.keys_dir().join("secrets.key")).unwrap();
    let twin_store = PrincipalStore::open(&home.home.principal_store(&pid("twin"))).unwrap();
    let (value, origin) = twin_store
        .secret_get(&key, "provider-openai", "api_key")
        .unwrap()
        .expect("the secret is in the clone");
    assert_eq!(value.as_slice(), b"sk-cloned-secret");
    assert_eq!(origin, "https://api.openai.com:443");

    // Tokens: minted anew, none copied.
    let (src_tokens, twin_tokens) = (
        stored_tokens(&home.home, "src"),
        stored_tokens(&home.home, "twin"),
    );
    for t in &twin_tokens {
        assert_eq!(t.principal, pid("twin"));
        assert!(
            src_tokens.iter().all(|s| s.id != t.id),
            "token {} copied",
            t.id
        );
    }
    let twin_home = home.home.principal_home(&pid("twin"));
    let patterns: Vec<String> = twin_tokens.iter().map(|t| t.resource.to_string()).collect();
    assert!(
        patterns.contains(&format!("fs:read:{SHARED}/**")),
        "{patterns:?}"
    );
    assert!(patterns.contains(&format!("fs:write:{}/**", twin_home.display())));
    let src_home = home.home.principal_home(&pid("src")).display().to_string();
    assert!(
        patterns.iter().all(|p| !p.contains(&src_home)),
        "{patterns:?}"
    );
    // Verified as the gate does: the twin's tokens hold for the twin, not for the source;
    // the source's do not hold for the twin.
    let g = gate(&home.home);
    let shared = Resource::FsRead(format!("{SHARED}/doc.txt").into());
    assert!(g.check(&pid("twin"), &shared, &twin_tokens).is_ok());
    let denial = g.check(&pid("src"), &shared, &twin_tokens).unwrap_err();
    assert_eq!(denial.reason, DenialReason::WrongPrincipal);
    let denial = g.check(&pid("twin"), &shared, &src_tokens).unwrap_err();
    assert_eq!(denial.reason, DenialReason::WrongPrincipal);
    assert!(g.check(&pid("src"), &shared, &src_tokens).is_ok());
    // The source's device does not log in as the twin.
    let err = Client::connect_with(&home.home, Credential::Device(device_token), "twin", "t")
        .await
        .err()
        .expect("the source's device must not act for the clone");
    assert!(err.to_string().contains("src"), "{err}");

    // Both chains say what happened.
    let twin_log = log_path(&home.home.principals_dir(), &pid("twin"));
    let twin_chain = chain_at(&twin_log);
    let made = twin_chain
        .iter()
        .find(|e| e.action == "principal.clone")
        .expect("principal.clone in the twin's chain");
    assert!(
        made.outcome.contains("1 secrets re-sealed"),
        "{}",
        made.outcome
    );
    let src_chain = chain_at(&log_path(&home.home.principals_dir(), &pid("src")));
    assert!(src_chain.iter().any(|e| e.action == "principal.cloned"));
}

#[tokio::test]
async fn a_deleted_agents_chain_is_archived_not_destroyed() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let op = daemon.client().await;
    let gone = new_agent(&home.home, &op, "gone").await;
    install(&gone, Capsule::Counter).await;
    assert_eq!(ask(&gone, "counter.v1.incr", b"").await, "1");
    drop(gone);
    let refused = control(
        &op,
        ControlCommand::AgentDelete {
            name: "default".into(),
        },
    )
    .await;
    assert!(refused.unwrap_err().contains("cannot be deleted"));

    ok(
        &op,
        ControlCommand::AgentDelete {
            name: "gone".into(),
        },
    )
    .await;
    assert!(!home.home.principal_dir(&pid("gone")).exists());
    let ControlResponse::Agents(names) = ok(&op, ControlCommand::AgentList).await else {
        panic!()
    };
    assert_eq!(names, ["default"]);
    // The whole chain is in the archive, ending with its deletion.
    let archive = home.home.principals_dir().join(".archive");
    let dirs: Vec<_> = std::fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1);
    assert!(dirs[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("gone-"));
    let archived = chain_at(&dirs[0].join("audit.log"));
    assert!(archived.iter().any(|e| e.action == "capsule.install"));
    assert_eq!(archived.last().unwrap().action, "principal.delete");
    let key: PublicKey = std::fs::read_to_string(home.home.keys_dir().join(RUNTIME_PUB_FILE))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    astrid_audit::verify(&dirs[0].join("audit.log"), &key, &pid("gone"))
        .expect("the archived chain still verifies");
    let op_chain = chain_at(&log_path(&home.home.principals_dir(), &pid("default")));
    assert!(op_chain
        .iter()
        .any(|e| e.action == "principal.delete" && e.resource == "principal:gone"));
    // The name is free again, with a clean slate.
    ok(
        &op,
        ControlCommand::AgentCreate {
            name: "gone".into(),
        },
    )
    .await;
    let ControlResponse::Agent(AgentInfo { capsules, .. }) = ok(
        &op,
        ControlCommand::AgentShow {
            name: "gone".into(),
        },
    )
    .await
    else {
        panic!()
    };
    assert!(capsules.is_empty());
}

//! Per-principal quotas, enforced on a real daemon: a KV write and a home write past the
//! storage quota fail whole with a typed `quota-exceeded` and an audit entry, KV and `~`
//! sharing one budget; memory per invocation follows the principal's quota; and one
//! principal flooding the bus is held to its concurrency while another is served.

mod common;

use astrid_audit::{AuditEntry as Entry, Decision};
use astrid_client::{Client, ClientError};
use astrid_types::wire::{ControlCommand, ControlResponse, QuotaInfo, QuotaSpec, RequestError};
use astrid_types::AstridHome;
use common::{
    ask, assert_echo_serves, chain, control, install, request, Capsule, Daemon, TestHome,
};
use serde_json::{json, Value};

/// A daemon, the operator, and `alice` created with `quota`, holding `capsules`.
async fn fixture(quota: QuotaSpec, capsules: &[Capsule]) -> (TestHome, Daemon, Client, Client) {
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
    let set = ControlCommand::QuotaSet {
        principal: "alice".into(),
        quota,
    };
    assert!(matches!(
        control(&op, set).await,
        Ok(ControlResponse::Quota(_))
    ));
    let alice = Client::connect(&home.home, "alice", "test").await.unwrap();
    for &c in capsules {
        install(&alice, c).await;
    }
    (home, daemon, op, alice)
}

async fn quota_of(op: &Client, p: &str) -> QuotaInfo {
    match control(
        op,
        ControlCommand::QuotaShow {
            principal: p.into(),
        },
    )
    .await
    {
        Ok(ControlResponse::Quota(q)) => q,
        other => panic!("expected Quota, got {other:?}"),
    }
}

async fn kv_set(c: &Client, key: &str, len: usize) -> Result<Vec<u8>, ClientError> {
    let body = json!({"key": key, "value": "k".repeat(len)});
    request(c, "counter.v1.set", body.to_string().as_bytes()).await
}

async fn fs(c: &Client, op: Value) -> Value {
    serde_json::from_str(&ask(c, "fsprobe.v1.op", op.to_string().as_bytes()).await).unwrap()
}

fn write(path: &str, len: usize) -> Value {
    json!({"op": "write", "path": path, "data": "h".repeat(len)})
}

fn storage(bytes: u64) -> QuotaSpec {
    QuotaSpec {
        storage_bytes: Some(bytes),
        ..QuotaSpec::default()
    }
}

fn quota_denials(home: &AstridHome, action: &str) -> Vec<Entry> {
    chain(home, "alice")
        .into_iter()
        .filter(|e| {
            e.action == action
                && e.decision == Decision::Denied
                && e.outcome.contains("quota-exceeded")
        })
        .collect()
}

#[tokio::test]
async fn a_kv_write_past_the_storage_quota_fails_whole() {
    let (home, _daemon, op, alice) = fixture(storage(50_000), &[Capsule::Counter]).await;
    kv_set(&alice, "first", 30_000).await.unwrap();
    let err = kv_set(&alice, "second", 30_000).await.unwrap_err();
    let ClientError::Request(RequestError::Failed(why)) = &err else {
        panic!("expected the handler to fail, got {err:?}");
    };
    assert!(why.contains("quota"), "{why}");
    // Nothing of it was written: the key does not exist, the first is intact.
    let keys = ask(&alice, "counter.v1.list", b"").await;
    assert!(keys.contains("first") && !keys.contains("second"), "{keys}");
    let used = quota_of(&op, "alice").await.storage_used;
    assert!((30_000..40_000).contains(&used), "{used}");
    // Recorded as a refusal in alice's chain.
    let denials = quota_denials(&home.home, "kv.set");
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0].resource, "second");
    // Shrinking is always allowed, so a principal over its quota can clean up.
    kv_set(&alice, "first", 10).await.unwrap();
    kv_set(&alice, "second", 30_000).await.unwrap();
}

#[tokio::test]
async fn a_home_write_past_the_storage_quota_fails_whole_and_kv_counts_too() {
    let (home, _daemon, op, alice) =
        fixture(storage(50_000), &[Capsule::FsProbe, Capsule::Counter]).await;
    let ok = json!({"ok": true});
    assert_eq!(fs(&alice, write("~/data/out/a.txt", 30_000)).await, ok);
    let refused = fs(&alice, write("~/data/out/b.txt", 30_000)).await;
    let err = refused["err"].as_str().unwrap_or_default();
    assert!(err.contains("quota"), "{refused}");
    let alice_home = home.home.principal_home(&"alice".parse().unwrap());
    assert!(!alice_home.join("data/out/b.txt").exists(), "half-written");
    assert_eq!(
        std::fs::metadata(alice_home.join("data/out/a.txt"))
            .unwrap()
            .len(),
        30_000
    );
    assert_eq!(quota_denials(&home.home, "fs.write").len(), 1);
    // Replacing a file counts only its growth.
    assert_eq!(fs(&alice, write("~/data/out/a.txt", 35_000)).await, ok);
    // `~` and the KV store share the budget: 35 kB of files leave no room for 30 kB of KV.
    let err = kv_set(&alice, "big", 30_000).await.unwrap_err();
    assert!(err.to_string().contains("quota"), "{err}");
    assert_eq!(quota_denials(&home.home, "kv.set").len(), 1);
    // Another principal's storage is its own.
    let d = Client::connect(&home.home, "default", "test")
        .await
        .unwrap();
    install(&d, Capsule::Counter).await;
    kv_set(&d, "big", 30_000).await.unwrap();
    assert!(quota_of(&op, "alice").await.storage_used < 50_000);
}

#[tokio::test]
async fn memory_per_invocation_follows_the_principals_quota() {
    let quota = QuotaSpec {
        memory_bytes: Some(16 << 20),
        ..QuotaSpec::default()
    };
    let (_home, _daemon, op, alice) = fixture(quota, &[Capsule::Misbehave]).await;
    let err = request(&alice, "misbehave.v1.alloc", b"")
        .await
        .unwrap_err();
    let ClientError::Request(RequestError::Crashed(why)) = &err else {
        panic!("expected a crash at the memory limit, got {err:?}");
    };
    assert!(why.contains(&(16u64 << 20).to_string()), "{why}");
    // The default principal runs under the daemon's default (64 MiB), not alice's.
    install(&op, Capsule::Misbehave).await;
    let err = request(&op, "misbehave.v1.alloc", b"").await.unwrap_err();
    assert!(
        err.to_string().contains(&(64u64 << 20).to_string()),
        "{err}"
    );
    let q = quota_of(&op, "alice").await;
    assert_eq!(
        (q.memory_bytes, q.set.memory_bytes),
        (16 << 20, Some(16 << 20))
    );
}

#[tokio::test]
async fn a_flood_from_one_principal_does_not_starve_another() {
    let quota = QuotaSpec {
        concurrency: Some(2),
        // Longer than the test: the waiters end when released, not at their deadline.
        time_ms: Some(600_000),
        ..QuotaSpec::default()
    };
    let (_home, daemon, op, alice) = fixture(quota, &[Capsule::Waiter]).await;
    install(&op, Capsule::Echo).await;
    let alice = std::sync::Arc::new(alice);
    // 2 running + 2 × 64 waiting are admitted; the rest are refused at once, typed.
    const FLOOD: usize = 140;
    let mut calls = Vec::new();
    for _ in 0..FLOOD {
        let a = alice.clone();
        calls.push(tokio::spawn(async move {
            a.request(
                "waiter.v1.receive",
                Vec::new(),
                std::time::Duration::from_secs(600),
            )
            .await
        }));
    }
    // Refusals come back while the admitted ones are still blocked.
    let mut refused = 0;
    let mut pending = Vec::new();
    for c in calls {
        if c.is_finished() {
            match c.await.unwrap() {
                Err(ClientError::Request(RequestError::QuotaExceeded(why))) => {
                    assert!(why.contains("concurrency"), "{why}");
                    refused += 1;
                }
                other => panic!("a flood call ended early: {other:?}"),
            }
        } else {
            pending.push(c);
        }
    }
    // Wait for every refusal (they do not depend on the waiters).
    let mut still = Vec::new();
    while refused < FLOOD - 130 {
        for c in pending.drain(..) {
            if c.is_finished() {
                match c.await.unwrap() {
                    Err(ClientError::Request(RequestError::QuotaExceeded(_))) => refused += 1,
                    other => panic!("a flood call ended early: {other:?}"),
                }
            } else {
                still.push(c);
            }
        }
        pending = std::mem::take(&mut still);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(refused, FLOOD - 130);
    // While alice's flood holds her two slots, the default principal is served...
    assert_echo_serves(&op).await;
    assert_eq!(quota_of(&op, "alice").await.running, 2);
    // ...and so is alice's own control plane.
    assert!(alice.control(ControlCommand::Status).await.is_ok());

    // Released one message at a time, every admitted call finishes: none was lost.
    let mut received = 0;
    while !pending.is_empty() {
        alice
            .publish("waiter.v1.never", b"go".to_vec())
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut left = Vec::new();
        for c in pending.drain(..) {
            if c.is_finished() {
                let reply = c
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("an admitted call failed: {e}\n{}", daemon.log()));
                assert_eq!(reply, b"received");
                received += 1;
            } else {
                left.push(c);
            }
        }
        pending = left;
    }
    assert_eq!(received, 130);
    // The last slot is handed back just after its reply is sent.
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while quota_of(&op, "alice").await.running != 0 {
        assert!(
            std::time::Instant::now() < guard,
            "alice's slots never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The daemon's thread count, from /proc.
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads: in /proc/<pid>/status")
}

#[tokio::test]
async fn a_capsule_republishing_in_a_loop_holds_only_its_own_slots() {
    // misbehave re-publishes every `misbehave.v1.loop` it handles, up to the hop limit: each
    // event from alice's clients starts a chain of 16 invocations. Those used to run outside
    // alice's slots, each on a thread of the blocking pool every principal shares, so a flood
    // of them could take the whole pool and leave everyone else's calls waiting.
    let quota = QuotaSpec {
        concurrency: Some(2),
        ..QuotaSpec::default()
    };
    let (home, daemon, op, _alice) = fixture(quota, &[Capsule::Misbehave]).await;
    install(&op, Capsule::Echo).await;
    assert_echo_serves(&op).await;
    let before = threads(daemon.pid());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flooders = Vec::new();
    for _ in 0..4 {
        let c = Client::connect(&home.home, "alice", "flood").await.unwrap();
        let stop = stop.clone();
        flooders.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.publish("misbehave.v1.loop", b"x".to_vec()).await.unwrap();
                sent += 1;
                if sent.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
            sent
        }));
    }
    // While the flood runs, the default principal is served, and the daemon's threads stay
    // what alice's two slots and everyone else's work need.
    let mut peak = before;
    for _ in 0..20 {
        assert_echo_serves(&op).await;
        peak = peak.max(threads(daemon.pid()));
        let running = quota_of(&op, "alice").await.running;
        assert!(running <= 2, "alice runs {running} invocations on 2 slots");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = 0;
    for f in flooders {
        sent += f.await.unwrap();
    }
    assert!(
        sent > 100,
        "the flood was too small to show anything: {sent} events"
    );
    assert!(
        peak <= before + 16,
        "the daemon went from {before} to {peak} threads under alice's flood of {sent} events"
    );
    assert_echo_serves(&op).await;
}

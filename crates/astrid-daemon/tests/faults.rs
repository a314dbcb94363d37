//! Faults underneath the daemon. Killed (SIGKILL) in the middle of installing, updating and
//! removing a capsule: after a restart the registry holds the old or the new state, never
//! half of one (listed but not serving, or the manifest of one version with the code of the
//! other), and the next operation works. One principal's store corrupted while the daemon was
//! down: that principal gets a clear error naming its store, and everyone else keeps working.

mod common;

use std::time::Duration;

use astrid_client::{Client, ClientError};
use astrid_types::wire::{ControlCommand, ControlResponse, LifecycleState, RequestError};
use common::*;

/// How long after sending the operation the daemon is killed: from before the request
/// arrives to after it was acknowledged. Where exactly a kill lands varies with the machine;
/// what is checked holds wherever it lands.
const KILL_AFTER_MS: [u64; 8] = [0, 1, 2, 5, 10, 25, 60, 250];

/// The echo capsule as a restarted daemon has it: not there (and nothing answers), or the
/// version that is listed, running, and answering as that version.
async fn echo_state(c: &Client) -> Option<String> {
    let listed = list(c).await;
    let echo = listed.iter().find(|i| i.name == "echo").cloned();
    let answer = c
        .request("echo.v1.request", b"x".to_vec(), Duration::from_secs(30))
        .await;
    match (echo, answer) {
        (None, Err(ClientError::Request(RequestError::NoSubscriber(_)))) => None,
        (Some(info), Ok(bytes)) => {
            let expected = match info.version.as_str() {
                "0.1.0" => "x",
                "0.2.0" => "0.2.0:x",
                v => panic!("a version nobody installed: {v}"),
            };
            assert_eq!(String::from_utf8_lossy(&bytes), expected, "{info:?}");
            assert_eq!(info.state, LifecycleState::Ready, "{info:?}");
            Some(info.version)
        }
        (listed, answer) => panic!("half a capsule: listed {listed:?}, answered {answer:?}"),
    }
}

/// For each kill delay: a fresh home prepared by `before`, `op` sent, the daemon killed,
/// restarted; returns what each restart found.
async fn kill_during(
    before: Option<Capsule>,
    op: impl Fn() -> ControlCommand,
) -> Vec<(u64, Option<String>)> {
    let mut found = Vec::new();
    for after in KILL_AFTER_MS {
        let home = TestHome::new();
        let mut daemon = home.start().await;
        let c = daemon.client().await;
        if let Some(capsule) = before {
            install(&c, capsule).await;
        }
        let command = op();
        let sent = tokio::spawn(async move { control(&c, command).await });
        tokio::time::sleep(Duration::from_millis(after)).await;
        daemon.kill();
        let _ = sent.await;

        let daemon = home.start().await;
        let c = daemon.client().await;
        let state = echo_state(&c).await;
        // Not wedged: the next operation on the capsule works from whatever state it found.
        match &state {
            None => {
                install(&c, Capsule::Echo).await;
                assert_eq!(echo_state(&c).await.as_deref(), Some("0.1.0"));
            }
            Some(_) => {
                control(
                    &c,
                    ControlCommand::Remove {
                        name: "echo".into(),
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("remove after a kill at {after} ms: {e}"));
                assert_eq!(echo_state(&c).await, None, "{}", daemon.log());
            }
        }
        found.push((after, state));
    }
    eprintln!("restarts found: {found:?}");
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_install_a_capsule_is_there_whole_or_not_at_all() {
    let found = kill_during(None, || ControlCommand::Install(upload(Capsule::Echo))).await;
    for (after, state) in found {
        assert!(
            matches!(state.as_deref(), None | Some("0.1.0")),
            "{after} ms: {state:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_update_a_capsule_is_the_old_version_or_the_new() {
    let found = kill_during(Some(Capsule::Echo), || {
        ControlCommand::Update(upload(Capsule::EchoV2))
    })
    .await;
    for (after, state) in found {
        assert!(
            matches!(state.as_deref(), Some("0.1.0" | "0.2.0")),
            "{after} ms: {state:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_remove_a_capsule_is_there_whole_or_gone() {
    let found = kill_during(Some(Capsule::Echo), || ControlCommand::Remove {
        name: "echo".into(),
    })
    .await;
    for (after, state) in found {
        assert!(
            matches!(state.as_deref(), None | Some("0.1.0")),
            "{after} ms: {state:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_store_of_one_principal_leaves_everyone_else_working() {
    let home = TestHome::new();
    let mut daemon = home.start().await;
    let op = daemon.client().await;
    let alice = new_agent(&home.home, &op, "alice").await;
    install(&op, Capsule::Counter).await;
    install(&alice, Capsule::Counter).await;
    assert_eq!(ask(&op, "counter.v1.incr", b"").await, "1");
    assert_eq!(ask(&alice, "counter.v1.incr", b"").await, "1");
    drop((op, alice));
    daemon.kill();

    // Alice's store is overwritten with bytes that are not a database.
    let store = home.home.principal_store(&"alice".parse().unwrap());
    std::fs::write(&store, vec![0x5a; 8192]).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", store.display()));
    }

    let daemon = home.start().await;
    let op = daemon.client().await;
    // The operator's own principal kept its state and keeps working.
    assert_eq!(ask(&op, "counter.v1.incr", b"").await, "2");
    // Alice's calls fail with an error that says which store is broken.
    let why = match Client::connect(&home.home, "alice", "test").await {
        Err(e) => e.to_string(),
        Ok(alice) => match alice
            .request("counter.v1.incr", Vec::new(), Duration::from_secs(30))
            .await
        {
            Err(e) => e.to_string(),
            Ok(v) => panic!(
                "alice's broken store served {:?}",
                String::from_utf8_lossy(&v)
            ),
        },
    };
    assert!(
        why.contains("alice") && why.contains(&store.display().to_string()),
        "the error does not name alice's store: {why}"
    );
    eprintln!("alice is told: {why}");
    // And the daemon is still up for everyone else.
    assert_eq!(ask(&op, "counter.v1.incr", b"").await, "3");
    install(&op, Capsule::Echo).await;
    assert_echo_serves(&op).await;
}

/// A client whose daemon is killed: a request in flight ends with "connection to the daemon
/// closed" instead of waiting out its timeout, so do its subscriptions and every later call;
/// a new client of the restarted daemon is served, with the capsules as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_daemon_are_told_and_new_ones_are_served() {
    let home = TestHome::new();
    let mut daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    install(&c, Capsule::Waiter).await;
    let mut sub = c.subscribe("echo.v1.*").await.unwrap();
    // Blocks inside the capsule far longer than the test runs.
    let in_flight = {
        let c = daemon.client().await;
        tokio::spawn(async move {
            c.request("waiter.v1.receive", Vec::new(), Duration::from_secs(600))
                .await
        })
    };
    // The request is inside the capsule once the principal's quota counts it as running.
    let running = || async {
        let show = ControlCommand::QuotaShow {
            principal: "default".into(),
        };
        match control(&c, show).await {
            Ok(ControlResponse::Quota(q)) => q.running,
            other => panic!("{other:?}"),
        }
    };
    let mut polls = 0;
    while running().await == 0 {
        polls += 1;
        assert!(polls < 3000, "the waiter never started:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.kill();

    let err = in_flight.await.unwrap().expect_err("the waiter answered");
    assert!(matches!(err, ClientError::Disconnected), "{err:?}");
    assert_eq!(err.to_string(), "connection to the daemon closed");
    assert!(
        sub.next().await.is_none(),
        "the subscription outlived its daemon"
    );
    let later = c
        .request("echo.v1.request", b"x".to_vec(), Duration::from_secs(30))
        .await
        .expect_err("a dead daemon answered");
    assert!(matches!(later, ClientError::Disconnected), "{later:?}");

    let daemon = home.start().await;
    let fresh = daemon.client().await;
    assert_echo_serves(&fresh).await;
}

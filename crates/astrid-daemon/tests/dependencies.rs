//! The capsule dependency graph on a running daemon: a missing provider and a cycle are refused
//! with messages naming the capsules involved, removing a needed provider is refused, and the
//! daemon keeps serving throughout.

mod common;

use astrid_client::Client;
use astrid_types::wire::{ControlCommand, ControlResponse, TreeNode};
use common::{
    ask, assert_echo_serves, control, install, list, try_install, Capsule, Daemon, TestHome,
};

async fn fixture() -> (TestHome, Daemon, Client) {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Echo).await;
    (home, daemon, c)
}

async fn tree(c: &Client) -> Vec<TreeNode> {
    match control(c, ControlCommand::Tree).await {
        Ok(ControlResponse::Tree(nodes)) => nodes,
        other => panic!("expected Tree, got {other:?}"),
    }
}

async fn names(c: &Client) -> Vec<String> {
    list(c).await.into_iter().map(|i| i.name).collect()
}

#[tokio::test]
async fn an_import_without_a_provider_is_refused() {
    let (_home, _daemon, c) = fixture().await;
    let err = try_install(&c, Capsule::DepA, false).await.unwrap_err();
    assert!(err.contains("dep-a"), "{err}");
    assert!(err.contains("acme:b"), "{err}");
    assert!(err.contains("no installed capsule exports"), "{err}");
    assert_eq!(names(&c).await, ["echo"]);
    assert_echo_serves(&c).await;
}

#[tokio::test]
async fn an_update_that_closes_a_cycle_is_refused() {
    let (_home, _daemon, c) = fixture().await;
    let base = install(&c, Capsule::DepBBase).await;
    assert_eq!(
        (base.name.as_str(), base.version.as_str()),
        ("dep-b", "0.0.1")
    );
    install(&c, Capsule::DepA).await;
    assert_eq!(ask(&c, "dep-a.v1.ping", b"").await, "pong");

    // dep-b 0.1.0 imports acme:a, which dep-a exports, while dep-a imports dep-b's acme:b.
    let err = try_install(&c, Capsule::DepB, true).await.unwrap_err();
    assert!(err.contains("dependency cycle"), "{err}");
    assert!(err.contains("dep-a") && err.contains("dep-b"), "{err}");

    // Nothing changed: dep-b is still 0.0.1 and answers as such.
    assert_echo_serves(&c).await;
    assert_eq!(ask(&c, "dep-b.v1.ping", b"").await, "pong 0.0.1");
    let dep_b = list(&c)
        .await
        .into_iter()
        .find(|i| i.name == "dep-b")
        .unwrap();
    assert_eq!(dep_b.version, "0.0.1");

    let nodes = tree(&c).await;
    let dep_a = nodes
        .iter()
        .find(|n| n.name == "dep-a")
        .expect("dep-a in tree");
    assert_eq!(
        dep_a.imports,
        [("acme:b".to_string(), "^1".to_string(), "dep-b".to_string())]
    );
    assert_eq!(dep_a.exports, [("acme:a".to_string(), "1.0.0".to_string())]);
    let dep_b = nodes
        .iter()
        .find(|n| n.name == "dep-b")
        .expect("dep-b in tree");
    assert!(dep_b.imports.is_empty(), "{dep_b:?}");
}

#[tokio::test]
async fn removing_a_needed_provider_is_refused() {
    let (_home, _daemon, c) = fixture().await;
    install(&c, Capsule::DepBBase).await;
    install(&c, Capsule::DepA).await;

    let err = control(
        &c,
        ControlCommand::Remove {
            name: "dep-b".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("dep-b"), "{err}");
    assert!(err.contains("still needed by dep-a"), "{err}");
    assert_eq!(names(&c).await, ["dep-a", "dep-b", "echo"]);
    assert_eq!(ask(&c, "dep-b.v1.ping", b"").await, "pong 0.0.1");
    assert_echo_serves(&c).await;

    // Once its dependent is gone, the provider can go.
    control(
        &c,
        ControlCommand::Remove {
            name: "dep-a".into(),
        },
    )
    .await
    .unwrap();
    control(
        &c,
        ControlCommand::Remove {
            name: "dep-b".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(names(&c).await, ["echo"]);
}

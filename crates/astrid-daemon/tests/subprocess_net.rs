//! A capsule's subprocess reaches the network only through `[capabilities] process_net`,
//! through a real daemon: `tool-shell` (its manifest given `process_net`) runs `curl` in
//! the sandbox. Each connection goes through the same gate as an `astrid:net` connect and is
//! audited as `process.connect`: refused without a token, consent or person; allowed by a
//! person asked at run time, or by the operator's local-egress consent, and the bytes arrive; a port not routed, and a routed
//! target outside the `net` ceiling, are not reached; a routed name that resolves to this
//! machine is refused by the airlock after the lookup even with a token. No refused
//! listener is ever touched.
#![allow(
    clippy::disallowed_methods,
    reason = "the test's listeners stand in for the hosts a subprocess may reach"
)]

mod common;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use astrid_audit::Decision;
use astrid_client::Client;
use astrid_types::wire::{ControlCommand, ControlResponse};
use common::{control, grant, Capsule, TestHome};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An HTTP server on `addr` answering every request with `body`; its port and how many
/// connections it accepted.
async fn web(addr: SocketAddr, body: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, accepted)
}

/// This machine's host name, which must resolve to a non-public IPv4 address (fails loudly).
fn own_name() -> (String, SocketAddr) {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("reading this machine's host name")
        .trim()
        .to_ascii_lowercase();
    let addr = (name.as_str(), 0)
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("this test needs the host name `{name}` to resolve: {e}"))
        .find(SocketAddr::is_ipv4)
        .unwrap_or_else(|| panic!("`{name}` has no IPv4 address"));
    assert!(
        astrid_egress::check_ip(addr.ip()).is_err(),
        "`{name}` resolves to the public {addr}; the test needs this machine's address"
    );
    (name, addr)
}

/// Runs `command` through `tool-shell` in `ws`; the tool's text.
async fn shell(c: &Client, ws: &str, command: &str) -> String {
    let body = json!({"args": {"command": command, "timeout_ms": 20000},
                      "context": {"session": "direct", "workspace": ws}});
    let reply = c
        .request(
            "tool.v1.execute.shell",
            body.to_string().into_bytes(),
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    v["output"].as_str().unwrap_or_default().to_string()
}

fn connects(home: &TestHome) -> Vec<(Decision, String, String)> {
    common::actions(&home.home, "default", "process.connect")
        .into_iter()
        .map(|e| (e.decision, e.resource, e.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subprocess_reaches_only_its_routed_targets_through_the_gate_and_the_airlock() {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (port, reached) = web(local, "from the routed host").await;
    let (other_port, other_reached) = web(local, "never").await;
    let (outside_port, outside_reached) = web(local, "never").await;
    let (name, name_addr) = own_name();
    let (name_port, name_reached) = web(name_addr, "never").await;

    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    // tool-shell, given a `net` ceiling and three routed targets (one outside the ceiling).
    let mut up = common::upload(Capsule::ToolShell);
    let mut manifest: toml::Table = up.manifest_toml.parse().unwrap();
    let caps = manifest["capabilities"].as_table_mut().unwrap();
    let list =
        |items: &[String]| toml::Value::Array(items.iter().cloned().map(Into::into).collect());
    let (routed, other_routed) = (format!("localhost:{port}"), format!("{name}:{name_port}"));
    caps.insert("net".into(), list(&[routed.clone(), other_routed.clone()]));
    caps.insert(
        "process_net".into(),
        list(&[routed, other_routed, format!("localhost:{outside_port}")]),
    );
    up.manifest_toml = toml::to_string(&manifest).unwrap();
    match control(&c, ControlCommand::Install(up)).await {
        Ok(ControlResponse::Installed(_)) => {}
        other => panic!("installing: {other:?}"),
    }
    let ws = tempfile::tempdir().unwrap();
    let ws = ws.path().canonicalize().unwrap();
    let ws_str = ws.to_str().unwrap();
    grant(&c, "default", "process:exec:sh").await;
    grant(&c, "default", &format!("fs:write:{ws_str}")).await;
    let curl = |p: u16, host: &str| format!("curl -sS -m 10 http://{host}:{p}/x; echo \" rc=$?\"");

    // No token, no consent, nobody to ask: refused by the gate, the listener untouched.
    let out = shell(&c, ws_str, &curl(port, "localhost")).await;
    assert!(!out.contains("from the routed host"), "{out}");
    assert_eq!(reached.load(Ordering::SeqCst), 0, "{out}");
    let entries = connects(&home);
    assert!(
        entries.iter().any(
            |(d, r, _)| *d == Decision::Denied && *r == format!("net:connect:localhost:{port}")
        ),
        "{entries:#?}"
    );

    // A person connected: asked at run time (the kernel's `net.local` question, naming the
    // command line), and allowed once: the bytes arrive.
    let person = daemon.client().await;
    let mut asks = person.register_approver().await.expect("an approver");
    let call = {
        let (c, ws, command) = (c.clone(), ws_str.to_string(), curl(port, "localhost"));
        tokio::spawn(async move { shell(&c, &ws, &command).await })
    };
    let req = common::next_request(&mut asks).await;
    assert_eq!(req.action, astrid_types::approval::LOCAL_EGRESS);
    assert_eq!(
        req.resource.pattern(),
        format!("net:connect:localhost:{port}")
    );
    assert!(
        req.detail.contains("for its subprocess `sh -c"),
        "{}",
        req.detail
    );
    person
        .answer_approval(req.id, astrid_types::wire::ApprovalDecision::AllowOnce)
        .await
        .unwrap();
    let out = call.await.unwrap();
    assert!(out.contains("from the routed host"), "{out}");
    assert_eq!(reached.load(Ordering::SeqCst), 1);
    drop(asks);
    drop(person);

    // The operator's local-egress consent for tool-shell: the bytes arrive, nobody asked.
    let allow = ControlCommand::EgressAllow {
        principal: "default".into(),
        capsule: "tool-shell".into(),
        target: format!("localhost:{port}"),
    };
    control(&c, allow).await.expect("egress consent");
    let out = shell(&c, ws_str, &curl(port, "localhost")).await;
    assert!(out.contains("from the routed host"), "{out}");
    assert_eq!(reached.load(Ordering::SeqCst), 2);
    let entries = connects(&home);
    assert!(
        entries.iter().any(|(d, r, o)| *d == Decision::Allowed
            && *r == format!("net:connect:localhost:{port}")
            && o.contains("local-egress consent")
            && o.contains("for its subprocess `sh -c")),
        "{entries:#?}"
    );

    // A port that is not routed: no listener inside, nothing reached, nothing to ask.
    let out = shell(&c, ws_str, &curl(other_port, "localhost")).await;
    assert!(!out.contains("rc=0"), "{out}");
    assert_eq!(other_reached.load(Ordering::SeqCst), 0, "{out}");
    // Routed, but outside the `net` ceiling: refused by the manifest even with a token.
    grant(
        &c,
        "default",
        &format!("net:connect:localhost:{outside_port}"),
    )
    .await;
    let out = shell(&c, ws_str, &curl(outside_port, "localhost")).await;
    assert!(!out.contains("rc=0"), "{out}");
    assert_eq!(outside_reached.load(Ordering::SeqCst), 0, "{out}");
    assert!(
        connects(&home)
            .iter()
            .any(|(d, r, _)| *d == Decision::Denied
                && *r == format!("net:connect:localhost:{outside_port}")),
        "{:#?}",
        connects(&home)
    );

    // Routed and covered by a token, but the name answers with this machine's address: the
    // airlock refuses after the lookup, and says so in the chain.
    grant(&c, "default", &format!("net:connect:{name}:{name_port}")).await;
    let out = shell(&c, ws_str, &curl(name_port, &name)).await;
    assert!(!out.contains("rc=0"), "{out}");
    assert_eq!(name_reached.load(Ordering::SeqCst), 0, "{out}");
    let entries = connects(&home);
    let resource = format!("net:connect:{name}:{name_port}");
    assert!(
        entries
            .iter()
            .any(|(d, r, _)| *d == Decision::Allowed && *r == resource),
        "the gate let it through: {entries:#?}"
    );
    assert!(
        entries.iter().any(|(d, r, o)| *d == Decision::Denied
            && *r == resource
            && o.starts_with("airlock: ")),
        "the airlock refused it: {entries:#?}"
    );
}

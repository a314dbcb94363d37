//! `astrid:net` through a real daemon: a capsule opens a TCP connection only to a target its
//! manifest names, allowed by a `net:connect` token, a person or the operator's local
//! consent; the airlock then refuses every loopback, link-local and `localhost` spelling
//! even with a token (SSRF), and a loopback listener is never touched. Every connect and
//! refusal is in the principal's audit chain.
#![allow(
    clippy::disallowed_methods,
    reason = "the test's echo servers listen on loopback"
)]

mod common;

use std::sync::atomic::Ordering;

use astrid_audit::Decision;
use astrid_client::Client;
use astrid_types::wire::ControlCommand;
use common::servers::echo_server;
use common::{ask, control, grant, install, Capsule, TestHome};

const TALK: &str = "net-probe.v1.talk";

async fn consent(c: &Client, target: &str, allow: bool) {
    let (principal, capsule, target) = ("default".into(), "net-probe".into(), target.into());
    let cmd = if allow {
        ControlCommand::EgressAllow {
            principal,
            capsule,
            target,
        }
    } else {
        ControlCommand::EgressRevoke {
            principal,
            capsule,
            target,
        }
    };
    control(c, cmd).await.expect("egress consent");
}

/// The `net.connect` entries of the default chain, as `(decision, resource, outcome)`.
fn connects(home: &TestHome) -> Vec<(Decision, String, String)> {
    common::actions(&home.home, "default", "net.connect")
        .into_iter()
        .map(|e| (e.decision, e.resource, e.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_loopback_spelling_is_refused_even_with_a_token_and_nothing_is_touched() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::NetProbe).await;
    let (port, touched) = echo_server("127.0.0.1:0").await;
    let (port6, touched6) = echo_server("[::1]:0").await;
    for pattern in [
        "net:connect:127.0.0.1:*",
        "net:connect:[::1]:*",
        "net:connect:localhost:*",
        "net:connect:169.254.169.254:80",
    ] {
        grant(&c, "default", pattern).await;
    }
    let tries = [
        format!("127.0.0.1 {port}"),
        format!("0x7f000001 {port}"),
        format!("2130706433 {port}"),
        format!("127.1 {port}"),
        format!("0177.0.0.1 {port}"),
        format!("[::1] {port6}"),
        format!("::1 {port6}"),
        format!("localhost {port}"),
        format!("LOCALHOST {port}"),
        "169.254.169.254 80".to_string(),
    ];
    for t in &tries {
        for mode in ["plain", "tls"] {
            let got = ask(&c, TALK, format!("{t} {mode} hi").as_bytes()).await;
            assert!(got.starts_with("error: denied: "), "{t} {mode}: {got}");
            assert!(
                ["127.0.0.0/8", "loopback", "localhost", "169.254.0.0/16"]
                    .iter()
                    .any(|w| got.contains(w)),
                "{t} {mode}: the refusal names the range: {got}"
            );
        }
    }
    assert_eq!(
        touched.load(Ordering::SeqCst),
        0,
        "a loopback listener was reached"
    );
    assert_eq!(
        touched6.load(Ordering::SeqCst),
        0,
        "a loopback listener was reached"
    );

    let entries = connects(&home);
    assert_eq!(entries.len(), tries.len() * 2, "{entries:#?}");
    for (d, resource, outcome) in &entries {
        assert_eq!(*d, Decision::Denied, "{resource}: {outcome}");
        assert!(resource.starts_with("net:connect:"), "{resource}");
        assert!(outcome.starts_with("airlock: "), "{outcome}");
    }
    // Spelled however the capsule liked, the chain names the address the airlock saw.
    assert!(entries
        .iter()
        .any(|(_, r, _)| *r == format!("net:connect:127.0.0.1:{port}")));
    assert!(!entries.iter().any(|(_, r, _)| r.contains("0x7f")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_needs_the_manifest_and_the_principals_leave() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::NetProbe).await;
    let (port, touched) = echo_server("127.0.0.1:0").await;

    // Outside the manifest: refused before tokens or consent are looked at.
    for t in ["example.com 80", "example.org 443", "example.net 22"] {
        let got = ask(&c, TALK, format!("{t} plain hi").as_bytes()).await;
        assert!(
            got.starts_with("error: denied: ") && got.contains("[capabilities] net"),
            "{t}: {got}"
        );
    }
    // In the manifest, but no token and nobody to ask: refused before any lookup (this
    // machine has no DNS, and the refusal is not a lookup failure).
    let got = ask(&c, TALK, b"example.com 443 tls hi").await;
    assert!(
        got.starts_with("error: denied: ")
            && got.contains("no capability token covers `net:connect:example.com:443`"),
        "{got}"
    );
    let token = grant(&c, "default", "net:connect:example.com:443").await;
    control(&c, ControlCommand::CapsRevoke { token_id: token })
        .await
        .unwrap();
    let got = ask(&c, TALK, b"example.com 443 tls hi").await;
    assert!(
        got.starts_with("error: denied: ") && got.contains("revoked"),
        "{got}"
    );

    // The operator's consent for exactly this local target: bytes both ways.
    consent(&c, &format!("127.0.0.1:{port}"), true).await;
    assert_eq!(
        ask(&c, TALK, format!("127.0.0.1 {port} plain hello").as_bytes()).await,
        "ok: echo: hello\n"
    );
    // Another port of the same host is not consented.
    let other = port.checked_add(1).unwrap_or(port - 1);
    let got = ask(&c, TALK, format!("127.0.0.1 {other} plain hi").as_bytes()).await;
    assert!(got.starts_with("error: denied: "), "{got}");
    // Consent withdrawn: refused again.
    consent(&c, &format!("127.0.0.1:{port}"), false).await;
    let got = ask(&c, TALK, format!("127.0.0.1 {port} plain hi").as_bytes()).await;
    assert!(
        got.starts_with("error: denied: ") && got.contains("127.0.0.0/8"),
        "{got}"
    );
    assert_eq!(
        touched.load(Ordering::SeqCst),
        1,
        "only the consented connect arrived"
    );

    let entries = connects(&home);
    let allowed: Vec<_> = entries
        .iter()
        .filter(|(d, _, _)| *d == Decision::Allowed)
        .collect();
    assert_eq!(allowed.len(), 1, "{entries:#?}");
    assert_eq!(allowed[0].1, format!("net:connect:127.0.0.1:{port}"));
    assert_eq!(
        allowed[0].2,
        format!("a connection to 127.0.0.1:{port} (local-egress consent for this capsule)")
    );
    // 3 outside the manifest, no token, revoked, the other port, withdrawn.
    let denied = entries
        .iter()
        .filter(|(d, _, _)| *d == Decision::Denied)
        .count();
    assert_eq!(denied, 7, "{entries:#?}");
}

/// A DNS name that resolves to loopback (this machine's own name, which `/etc/hosts` maps
/// to a local address on Debian and in containers) passes the manifest and the token, and
/// is refused after the lookup: the listener on the address it names is never reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_resolves_to_loopback_is_refused_after_the_lookup() {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("reading this machine's host name")
        .trim()
        .to_ascii_lowercase();
    let (port, touched) = echo_server("127.0.0.1:0").await;
    let resolved: Vec<_> = (name.as_str(), port)
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("this test needs the host name `{name}` to resolve: {e}"))
        .collect();
    assert!(
        resolved
            .iter()
            .all(|a| astrid_egress::check_ip(a.ip()).is_err()),
        "`{name}` resolves to a public address here ({resolved:?}); the test needs a local one"
    );

    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    // The probe's manifest, naming this machine's host name as a target.
    let mut up = common::upload(Capsule::NetProbe);
    let declared = up
        .manifest_toml
        .replace("net = [", &format!("net = [\"{name}:*\", "));
    assert_ne!(declared, up.manifest_toml);
    up.manifest_toml = declared;
    match control(&c, ControlCommand::Install(up)).await {
        Ok(astrid_types::wire::ControlResponse::Installed(_)) => {}
        other => panic!("installing: {other:?}"),
    }
    grant(&c, "default", &format!("net:connect:{name}:*")).await;

    for mode in ["plain", "tls"] {
        let got = ask(&c, TALK, format!("{name} {port} {mode} hi").as_bytes()).await;
        assert!(
            got.starts_with("error: denied: ")
                && got.contains(&format!("{name} resolves only to non-public addresses")),
            "{mode}: {got}"
        );
    }
    assert_eq!(
        touched.load(Ordering::SeqCst),
        0,
        "the loopback listener was reached"
    );
    // The host's gate let it through (the token), so it is in the chain as allowed by the
    // capability layer and then refused by the airlock.
    let entries = connects(&home);
    let target = format!("net:connect:{name}:{port}");
    let (allowed, denied): (Vec<_>, Vec<_>) = entries
        .iter()
        .filter(|(_, r, _)| *r == target)
        .partition(|(d, _, _)| *d == Decision::Allowed);
    assert_eq!((allowed.len(), denied.len()), (2, 2), "{entries:#?}");
    assert!(denied
        .iter()
        .all(|(_, _, o)| o.starts_with("airlock: ") && o.contains("non-public")));
}

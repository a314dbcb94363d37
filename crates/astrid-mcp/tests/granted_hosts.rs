//! `--allow-net` / `--allow-local-net` with a real server (`@modelcontextprotocol/
//! server-everything`, whose `gzip-file-as-resource` tool fetches a URL with node's own
//! `fetch`): the granted host and port are reached through the forwarder and the airlock;
//! another port of the same host, a literal address, an ungranted name and a granted name
//! that resolves to this machine without local consent are not, and their listeners are
//! never touched.
#![allow(
    clippy::disallowed_methods,
    reason = "the test's own listeners stand in for the hosts the server is granted"
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use astrid_mcp::{default_grant, CallOutcome, RemoteServer};
use astrid_types::mcp::{ConnectOutcome, NetGrant};
use common::{args, config, probe_config, program, world};
use serde_json::{json, Map, Value};

/// Answers one HTTP request with a small body; returns the request's head.
fn answer_once(listener: TcpListener) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut conn = conn;
        conn.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 14\r\n\
              connection: close\r\n\r\nfrom the grant",
        )
        .unwrap();
        head
    })
}

fn untouched(listener: &TcpListener, what: &str) {
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "{what}: the sandboxed server reached a listener it was not granted"
    );
}

async fn fetch(server: &RemoteServer, url: &str) -> Result<CallOutcome, String> {
    server
        .call(
            "gzip-file-as-resource",
            args(json!({"name": "x.gz", "data": url, "outputType": "resource"})),
        )
        .await
        .map_err(|e| e.to_string())
}

/// The fetch failed, as the tool's error result or as a JSON-RPC error.
fn failed(outcome: Result<CallOutcome, String>, url: &str) {
    match outcome {
        Ok(out) => assert!(out.is_error, "{url} was fetched: {out:?}"),
        Err(e) => assert!(!e.is_empty(), "{url}"),
    }
}

/// This machine's host name and an address it resolves to, which must be non-public (the
/// airlock's refusal is what is tested). Fails loudly rather than skipping.
fn own_name() -> (String, IpAddr) {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_ascii_lowercase();
    let addrs: Vec<SocketAddr> = (name.as_str(), 80).to_socket_addrs().unwrap().collect();
    let v4 = addrs
        .iter()
        .map(SocketAddr::ip)
        .find(IpAddr::is_ipv4)
        .unwrap_or_else(|| panic!("host name {name} has no IPv4 address: {addrs:?}"));
    assert!(
        astrid_egress::check_ip(v4).is_err(),
        "host name {name} resolves to the public {v4}; this test needs it to be this machine"
    );
    (name, v4)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_reaches_exactly_its_granted_hosts_through_the_airlock() {
    let mut w = world();
    w.policy.netfwd = Some(env!("CARGO_BIN_EXE_astrid-netfwd").into());
    let granted = TcpListener::bind("127.0.0.1:0").unwrap();
    let granted_port = granted.local_addr().unwrap().port();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    let (name, name_ip) = own_name();
    let named = TcpListener::bind((name_ip, 0)).unwrap();
    let named_port = named.local_addr().unwrap().port();

    let mut cfg = config("every", program("mcp-server-everything"), &[], vec![]);
    cfg.allow_net = vec![
        NetGrant::parse(&format!("localhost:{granted_port}"), true).unwrap(),
        // Granted by name but not as local: the airlock refuses its loopback answer.
        NetGrant::parse(&format!("{name}:{named_port}"), false).unwrap(),
    ];
    // Every connection through a route is reported (the bridge sends these to the daemon).
    let reports = Arc::new(Mutex::new(Vec::<(String, ConnectOutcome)>::new()));
    let sink = reports.clone();
    let report: astrid_mcp::ConnectReport = Arc::new(move |target: &str, outcome| {
        sink.lock().unwrap().push((target.to_string(), outcome));
    });
    let server = RemoteServer::start_reporting(&w.policy, &cfg, &default_grant(), Some(report))
        .await
        .unwrap();

    // The grant: node connects to `localhost:PORT` in the sandbox, the forwarder carries it
    // out, the airlock connects (consented local target) and the bytes come back.
    let answered = answer_once(granted);
    let url = format!("http://localhost:{granted_port}/x");
    let got = fetch(&server, &url).await.unwrap();
    assert!(!got.is_error, "{got:?}");
    let head = answered.join().unwrap();
    assert!(head.starts_with("GET /x HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: localhost:{granted_port}")),
        "the server's own Host header passes unchanged: {head}"
    );

    // Not granted: another port of the granted name, the address literal, a name never
    // granted (no DNS inside), all stopped in the sandbox.
    for url in [
        format!("http://localhost:{other_port}/x"),
        format!("http://127.0.0.1:{other_port}/x"),
        format!("http://{name}:{other_port}/x"),
        "http://example.com/x".to_string(),
    ] {
        failed(fetch(&server, &url).await, &url);
    }
    untouched(&other, "another port");

    // Granted, but the name answers with this machine's address: refused after the lookup.
    let url = format!("http://{name}:{named_port}/x");
    failed(fetch(&server, &url).await, &url);
    untouched(&named, "a granted name resolving to this machine");

    // Reported: the granted connection, carried to this machine's loopback, and the
    // refusal with the airlock's reason. Nothing stopped inside the sandbox reached a route.
    let reports = reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(reports[0].0, format!("localhost:{granted_port}"));
    assert!(
        matches!(&reports[0].1, ConnectOutcome::Connected { address }
            if address.ends_with(&format!(":{granted_port}"))),
        "{reports:?}"
    );
    assert_eq!(reports[1].0, format!("{name}:{named_port}"));
    assert!(
        matches!(&reports[1].1, ConnectOutcome::Refused { reason } if !reason.is_empty()),
        "{reports:?}"
    );

    // The server still works afterwards (a refused connection is not a crash).
    let echo = server
        .call("echo", args(json!({"message": "still here"})))
        .await
        .unwrap();
    assert!(echo.text.contains("still here"), "{echo:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_without_the_forwarder_is_refused_rather_than_run_unrouted() {
    let mut w = world();
    w.policy.netfwd = None;
    let mut cfg = config("every", program("mcp-server-everything"), &[], vec![]);
    cfg.allow_net = vec![NetGrant::parse("api.example.com:443", false).unwrap()];
    let err = match RemoteServer::start(&w.policy, &cfg, &default_grant()).await {
        Ok(_) => panic!("started without the forwarder"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("astrid-netfwd"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_program_behind_the_forwarder_holds_no_capability_and_still_its_grants() {
    let mut w = world();
    w.policy.netfwd = Some(env!("CARGO_BIN_EXE_astrid-netfwd").into());
    let desc = w.root.join("granted");
    std::fs::write(desc.join("description.txt"), "Probe.").unwrap();
    let mut cfg = probe_config(desc);
    // Port 443 inside needs the forwarder's capability to bind.
    cfg.allow_net = vec![NetGrant::parse("api.example.com:443", false).unwrap()];
    let server = RemoteServer::start(&w.policy, &cfg, &default_grant())
        .await
        .unwrap();
    let report = server.call("report", Map::new()).await.unwrap();
    let report: Value = serde_json::from_str(&report.text).unwrap();
    let status = report["status"].as_str().unwrap();
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{set}:")))
            .unwrap_or_else(|| panic!("no {set} in {status}"));
        assert!(
            line.ends_with("0000000000000000"),
            "the server holds a capability: {line}"
        );
    }
    let names: Vec<&String> = report["env"].as_object().unwrap().keys().collect();
    assert!(
        names
            .iter()
            .all(|n| ["PATH", "HOME", "LANG", "PWD"].contains(&n.as_str())),
        "the forwarder added to the environment: {names:?}"
    );
}

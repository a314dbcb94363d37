//! The host ABI's versions side by side, through a real daemon. A capsule built against the
//! first release (every package at `@1.0.0`, kept as built in `tests/data`) installs and runs
//! unchanged next to one built with today's SDK (`astrid:http@1.2.0`); each reports which
//! versions it imports. The request options (since `@1.1.0`) are tried as the guest sees them: an
//! integrity mismatch, https only, no redirects, a smaller body cap, a malformed digest; and
//! the operator's `[http]` settings bound what a request may ask.

mod common;

use std::path::Path;

use astrid_audit::Decision;
use astrid_client::Client;
use astrid_types::wire::{
    CapsuleInfo, ComponentUpload, ControlCommand, ControlResponse, PackageUpload,
};
use base64::Engine as _;
use common::servers::{Answer, HttpServer};
use common::{ask, chain, control, install, Capsule, TestHome};

/// The kept 1.0 package: built from `capsules/testdata/kept-v1-0` against
/// `astrid:capsule/capsule@1.0.0` and never rebuilt.
fn kept_upload() -> PackageUpload {
    kept_package("kept-v1-0.capsule")
}

/// A package kept as built in `tests/data`.
fn kept_package(file: &str) -> PackageUpload {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file);
    let p = astrid_build::load_package(&path)
        .unwrap_or_else(|e| panic!("the kept package {}: {e}", path.display()));
    PackageUpload {
        manifest_toml: p.manifest_text,
        components: vec![ComponentUpload {
            file: p.component_file,
            bytes: p.component,
        }],
    }
}

async fn install_kept(c: &Client) -> CapsuleInfo {
    match control(c, ControlCommand::Install(kept_upload())).await {
        Ok(ControlResponse::Installed(info)) => info,
        other => panic!("installing the kept 1.0 capsule: {other:?}"),
    }
}

async fn egress_allow(c: &Client, capsule: &str, server: &HttpServer) {
    let cmd = ControlCommand::EgressAllow {
        principal: "default".into(),
        capsule: capsule.into(),
        target: server.addr().to_string(),
    };
    control(c, cmd).await.expect("egress allow");
}

fn site() -> impl Fn(&common::servers::SeenRequest) -> Answer + Send + Sync + 'static {
    |req| {
        let body = |b: &str| Answer {
            status: 200,
            headers: vec![],
            body: b.as_bytes().to_vec(),
        };
        match req.path.as_str() {
            "/hello" => body("hello from loopback"),
            "/lib.js" => body("console.log('swapped')"),
            "/big" => body(&"x".repeat(5000)),
            "/600k" => body(&"y".repeat(600 * 1024)),
            "/moved" => Answer::redirect("/hello"),
            "/twice" => Answer::redirect("/moved"),
            _ => Answer {
                status: 404,
                headers: vec![],
                body: Vec::new(),
            },
        }
    }
}

fn sha256(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capsule_built_against_1_0_runs_unchanged_beside_one_built_with_todays_sdk() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;

    let kept = install_kept(&c).await;
    let probe = install(&c, Capsule::HttpProbe).await;
    // Each names the versions it was built against, read from the component itself.
    assert!(
        kept.host_abi
            .contains(&"astrid:http/http@1.0.0".to_string())
            && kept.host_abi.contains(&"astrid:kv/kv@1.0.0".to_string())
            && kept.host_abi.contains(&"astrid:sys/sys@1.0.0".to_string()),
        "{:?}",
        kept.host_abi
    );
    assert!(!kept.host_abi.iter().any(|i| i.ends_with("@1.1.0")));
    assert!(
        probe
            .host_abi
            .contains(&"astrid:http/http@1.2.0".to_string())
            && !probe
                .host_abi
                .contains(&"astrid:http/http@1.0.0".to_string()),
        "{:?}",
        probe.host_abi
    );

    // astrid:sys and astrid:kv at 1.0.
    assert_eq!(ask(&c, "kept.v1.whoami", b"").await, "default kept-v1-0");
    assert_eq!(ask(&c, "kept.v1.remember", b"note 1").await, "note 1");

    // astrid:http at 1.0, through the same gates as 1.1: refused (and audited) until the
    // operator consents to this local server, then served, following the host's redirects.
    let server = HttpServer::start(site()).await;
    let refused = common::refused(&c, "kept.v1.fetch", server.url("/hello").as_bytes()).await;
    let refused = format!("{refused:?}");
    assert!(refused.contains("Denied"), "{refused}");
    assert!(
        server.requests().is_empty(),
        "the refused request never arrived"
    );
    assert!(
        chain(&home.home, "default")
            .iter()
            .any(|e| e.capsule == "kept-v1-0"
                && e.action == "http.request"
                && e.decision == Decision::Denied),
        "the 1.0 refusal is audited"
    );
    egress_allow(&c, "kept-v1-0", &server).await;
    assert_eq!(
        ask(&c, "kept.v1.fetch", server.url("/hello").as_bytes()).await,
        "200 hello from loopback"
    );
    assert_eq!(
        ask(&c, "kept.v1.fetch", server.url("/twice").as_bytes()).await,
        "200 hello from loopback"
    );

    // And a capsule built with today's SDK beside it, in the same daemon.
    egress_allow(&c, "http-probe", &server).await;
    let probe_fetch = |payload: String| {
        let c = &c;
        async move { ask(c, "http-probe.v1.fetch", payload.as_bytes()).await }
    };
    assert_eq!(
        probe_fetch(server.url("/hello")).await,
        "ok: 200 - hello from loopback"
    );
}

/// `http-probe` as the SDK built it against `astrid:http@1.1.0` (commit 150d239, its name and
/// topic changed to `kept-http-v1-1` so it installs beside today's), kept as built in
/// `tests/data/kept-http-v1-1.capsule`: once `@1.2.0` became the SDK's version, no capsule
/// built from this tree imports 1.1.0 any more, and these bytes keep its adapter tested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capsule_built_against_1_1_keeps_its_options_unchanged() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    let kept = match control(
        &c,
        ControlCommand::Install(kept_package("kept-http-v1-1.capsule")),
    )
    .await
    {
        Ok(ControlResponse::Installed(info)) => info,
        other => panic!("installing the kept 1.1 capsule: {other:?}"),
    };
    assert!(
        kept.host_abi
            .contains(&"astrid:http/http@1.1.0".to_string())
            && !kept
                .host_abi
                .iter()
                .any(|i| i.starts_with("astrid:http/http@1.2")),
        "{:?}",
        kept.host_abi
    );
    let server = HttpServer::start(site()).await;
    let fetch = |path: &str, options: &[&str]| {
        let mut payload = server.url(path);
        for o in options {
            payload.push('\n');
            payload.push_str(o);
        }
        let c = &c;
        async move { ask(c, "kept-http.v1.fetch", payload.as_bytes()).await }
    };
    // The same gate: refused and audited until the operator consents.
    let refused = fetch("/hello", &[]).await;
    assert!(refused.starts_with("error: denied: "), "{refused}");
    assert!(server.requests().is_empty());
    assert!(chain(&home.home, "default")
        .iter()
        .any(|e| e.capsule == "kept-http-v1-1"
            && e.action == "http.request"
            && e.decision == Decision::Denied));
    egress_allow(&c, "kept-http-v1-1", &server).await;
    assert_eq!(fetch("/hello", &[]).await, "ok: 200 - hello from loopback");
    // 1.1's options, as its guest sees them.
    assert_eq!(
        fetch("/moved", &["redirects=none"]).await,
        "ok: 302 /hello "
    );
    let pin = format!("integrity={}", sha256(b"hello from loopback"));
    let swapped = fetch("/lib.js", &[&pin]).await;
    assert!(
        swapped.starts_with("error: integrity-mismatch: ") && !swapped.contains("console.log"),
        "{swapped}"
    );
    let big = fetch("/big", &["max_body=1000"]).await;
    assert!(big.starts_with("error: too-large: "), "{big}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_1_options_reach_the_guest_as_typed_errors_and_are_audited() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::HttpProbe).await;
    let server = HttpServer::start(site()).await;
    egress_allow(&c, "http-probe", &server).await;
    let fetch = |path: &str, options: &[&str]| {
        let mut payload = server.url(path);
        for o in options {
            payload.push('\n');
            payload.push_str(o);
        }
        let c = &c;
        async move { ask(c, "http-probe.v1.fetch", payload.as_bytes()).await }
    };

    // Subresource integrity: the pinned file arrives; a swapped one never reaches the guest.
    let real = sha256(b"hello from loopback");
    let pin = format!("integrity={real}");
    assert_eq!(
        fetch("/hello", &[&pin]).await,
        "ok: 200 - hello from loopback"
    );
    let swapped = fetch("/lib.js", &[&pin]).await;
    assert!(
        swapped.starts_with("error: integrity-mismatch: ")
            && swapped.contains(&sha256(b"console.log('swapped')")),
        "{swapped}"
    );
    assert!(
        !swapped.contains("console.log"),
        "no byte of the body: {swapped}"
    );
    let bad = fetch("/hello", &["integrity=md5-AAAA"]).await;
    assert!(
        bad.starts_with("error: invalid-argument: integrity"),
        "{bad}"
    );

    // https only: refused before any connection, though the operator consented to this
    // plain-http server.
    let before = server.requests().len();
    let https = fetch("/hello", &["https_only"]).await;
    assert!(
        https.starts_with("error: denied: ") && https.contains("https-only"),
        "{https}"
    );
    assert_eq!(server.requests().len(), before, "nothing was sent");

    // Redirects: none returns the 302 itself; a limit of one stops a chain of two.
    assert_eq!(
        fetch("/moved", &["redirects=none"]).await,
        "ok: 302 /hello "
    );
    let stopped = fetch("/twice", &["redirects=1"]).await;
    assert!(
        stopped.starts_with("error: connection: ") && stopped.contains("more than 1 times"),
        "{stopped}"
    );
    assert_eq!(
        fetch("/twice", &["redirects=2"]).await,
        "ok: 200 - hello from loopback"
    );

    // Past the manifest's `net` ceiling (127.0.0.1 only): refused before anyone is asked.
    let outside = ask(&c, "http-probe.v1.fetch", b"https://example.com/").await;
    assert!(outside.starts_with("error: denied: "), "{outside}");

    // A smaller body cap than the operator's.
    let big = fetch("/big", &["max_body=1000"]).await;
    assert!(big.starts_with("error: too-large: "), "{big}");

    // The audit chain has the integrity refusal and the https-only one, under the URLs asked.
    let entries = chain(&home.home, "default");
    let denied = |url: String, says: &str| {
        entries.iter().any(|e| {
            e.capsule == "http-probe"
                && e.action == "http.request"
                && e.decision == Decision::Denied
                && e.resource == url
                && e.outcome.contains(says)
        })
    };
    assert!(denied(server.url("/lib.js"), "integrity: "), "{entries:#?}");
    assert!(denied(server.url("/hello"), "https-only"), "{entries:#?}");
    assert!(
        entries.iter().any(|e| e.capsule == "http-probe"
            && e.decision == Decision::Denied
            && e.resource.contains("example.com")),
        "{entries:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_http_settings_are_shown_and_bound_every_request() {
    let home = TestHome::new();
    std::fs::write(
        home.home.config_file(),
        "[http]\nmax_redirects = 1\nmax_body_mb = 1\nmax_open_responses = 2\n",
    )
    .unwrap();
    let daemon = home.start().await;
    let c = daemon.client().await;
    let settings = match control(&c, ControlCommand::OperatorSettings).await {
        Ok(ControlResponse::Config(pairs)) => pairs,
        other => panic!("{other:?}"),
    };
    let value = |k: &str| {
        settings
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} missing from {settings:?}"))
    };
    assert_eq!(value("http.max_redirects"), "1");
    assert_eq!(value("http.max_body_mb"), "1");
    assert_eq!(value("http.max_open_responses"), "2");
    // Defaults are shown too.
    assert_eq!(value("http.connect_timeout_secs"), "10");
    assert_eq!(value("quota.timeout_ms"), "5000");

    install(&c, Capsule::HttpProbe).await;
    let server = HttpServer::start(site()).await;
    egress_allow(&c, "http-probe", &server).await;
    // The request asks for five redirects; the operator allows one.
    let payload = format!("{}\nredirects=5", server.url("/twice"));
    let got = ask(&c, "http-probe.v1.fetch", payload.as_bytes()).await;
    assert!(got.contains("more than 1 times"), "{got}");

    // Bodies held for an integrity check share the 1 MiB cap within an invocation: one
    // 600 KiB body fits, a second while the first is held does not.
    let pin = sha256(&[b'y'; 600 * 1024]);
    let one = format!("{}\nintegrity={pin}", server.url("/600k"));
    let got = ask(&c, "http-probe.v1.fetch", one.as_bytes()).await;
    assert!(
        got.starts_with("ok: 200 - yyy"),
        "{}",
        &got[..got.len().min(80)]
    );
    let two = format!("{one}\nhold=1");
    let got = ask(&c, "http-probe.v1.fetch", two.as_bytes()).await;
    assert!(got.starts_with("error: too-large: "), "{got}");
}

//! The reference MCP servers from npm (`@modelcontextprotocol/server-filesystem`,
//! `@modelcontextprotocol/server-everything`), run by [`RemoteServer`] under the OS sandbox:
//! what they are granted works, and what they are not granted is stopped by the sandbox even
//! where the server's own checks would allow it.
#![allow(
    clippy::disallowed_methods,
    reason = "the test proves its listener is reachable from outside the sandbox"
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use astrid_mcp::{default_grant, Launcher, McpError, RemoteServer, Supervised};
use common::{args, config, probe_config, program, world};
use serde_json::{json, Map, Value};

#[tokio::test(flavor = "multi_thread")]
async fn the_filesystem_server_sees_only_its_grant_whatever_its_own_arguments_allow() {
    let w = world();
    // The server is told `/` is its allowed directory: its own checks permit everything.
    let cfg = config(
        "files",
        program("mcp-server-filesystem"),
        &["/"],
        vec![w.root.join("granted"), w.root.join("home")],
    );
    let server = RemoteServer::start(&w.policy, &cfg, &default_grant())
        .await
        .unwrap();
    let (tools, left_out) = server.tools().await.unwrap();
    assert!(left_out.is_empty(), "{left_out:?}");
    assert!(
        tools.iter().any(|t| t.name == "read_text_file"),
        "{tools:?}"
    );

    let allowed = server
        .call("list_allowed_directories", Map::new())
        .await
        .unwrap();
    assert!(allowed.text.contains('/'), "{allowed:?}");

    let read = |path: PathBuf| {
        let server = &server;
        async move {
            server
                .call(
                    "read_text_file",
                    args(json!({"path": path.to_string_lossy()})),
                )
                .await
                .unwrap()
        }
    };
    let ok = read(w.root.join("granted/a.txt")).await;
    assert!(!ok.is_error, "{ok:?}");
    assert_eq!(ok.text, "hello from the grant");
    let notes = read(w.root.join("home/notes.txt")).await;
    assert_eq!(notes.text, "my notes", "{notes:?}");

    // Beside the grant: the file exists on the host, the server would allow `/`, and the
    // sandbox has nothing there.
    assert!(w.root.join("other/b.txt").exists());
    let outside = read(w.root.join("other/b.txt")).await;
    assert!(outside.is_error, "{outside:?}");
    assert!(outside.text.contains("ENOENT"), "{outside:?}");
    assert!(!outside.text.contains("not granted"));

    // Inside a granted home, the credential directory is masked (an empty tmpfs).
    let key = read(w.root.join("home/.ssh/id_rsa")).await;
    assert!(key.is_error, "{key:?}");
    assert!(key.text.contains("ENOENT"), "{key:?}");
    assert!(!key.text.contains("PRIVATE KEY"));

    // The host's own files outside the system directories are not there either.
    let etc = read(PathBuf::from("/etc/hostname")).await;
    assert!(etc.is_error, "{etc:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_land_only_in_the_writable_grant_and_symlinks_do_not_lead_out() {
    let w = world();
    let out = w.root.join("out");
    std::fs::create_dir(&out).unwrap();
    // Planted in the granted directory (by the server earlier, or by anyone): a link out.
    std::os::unix::fs::symlink(w.root.join("other/b.txt"), w.root.join("granted/link")).unwrap();
    let mut cfg = config(
        "files",
        program("mcp-server-filesystem"),
        &["/"],
        vec![w.root.join("granted")],
    );
    cfg.allow_write = vec![out.clone()];
    let server = RemoteServer::start(&w.policy, &cfg, &default_grant())
        .await
        .unwrap();
    let write = |path: PathBuf| {
        let server = &server;
        async move {
            server
                .call(
                    "write_file",
                    args(json!({"path": path.to_string_lossy(), "content": "written"})),
                )
                .await
                .unwrap()
        }
    };
    let ok = write(out.join("new.txt")).await;
    assert!(!ok.is_error, "{ok:?}");
    assert_eq!(
        std::fs::read_to_string(out.join("new.txt")).unwrap(),
        "written"
    );

    // The read-only grant and the rest of the host are not writable.
    let ro = write(w.root.join("granted/a.txt")).await;
    assert!(ro.is_error, "{ro:?}");
    assert_eq!(
        std::fs::read_to_string(w.root.join("granted/a.txt")).unwrap(),
        "hello from the grant"
    );
    let beside = write(w.root.join("other/c.txt")).await;
    assert!(beside.is_error, "{beside:?}");
    assert!(!w.root.join("other/c.txt").exists());

    // The link's target is not in the sandbox, so following it finds nothing.
    let linked = server
        .call(
            "read_text_file",
            args(json!({"path": w.root.join("granted/link").to_string_lossy()})),
        )
        .await
        .unwrap();
    assert!(linked.is_error, "{linked:?}");
    assert!(!linked.text.contains("not granted"), "{linked:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_everything_server_has_a_clean_environment_and_no_network() {
    let w = world();
    let cfg = config("every", program("mcp-server-everything"), &[], vec![]);
    // bwrap sets PWD for --chdir. This process's environment (cargo's variables, the test's own) must not reach it.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let server = RemoteServer::start(&w.policy, &cfg, &default_grant())
        .await
        .unwrap();

    let echo = server
        .call("echo", args(json!({"message": "hi there"})))
        .await
        .unwrap();
    assert!(!echo.is_error && echo.text.contains("hi there"), "{echo:?}");

    let env = server.call("get-env", Map::new()).await.unwrap();
    let vars: Value = serde_json::from_str(&env.text).unwrap_or_else(|e| panic!("{e}: {env:?}"));
    let names: Vec<&str> = vars
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(!env.text.contains("CARGO"), "{names:?}");
    for name in &names {
        assert!(
            ["PATH", "HOME", "LANG", "PWD"].contains(name),
            "unexpected variable {name} in {names:?}"
        );
    }

    // A listener on the host's loopback that this process can reach ...
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut probe = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    probe.write_all(b"x").unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    let mut byte = [0u8; 1];
    accepted.read_exact(&mut byte).unwrap();
    drop((probe, accepted));
    // ... is not reachable from the server, whose own domain allowlist is empty (allow all).
    let fetched = server
        .call(
            "gzip-file-as-resource",
            args(json!({
                "name": "x.gz",
                "data": format!("http://127.0.0.1:{port}/x"),
                "outputType": "resource",
            })),
        )
        .await;
    let failure = match fetched {
        Ok(out) => {
            assert!(out.is_error, "the fetch succeeded: {out:?}");
            out.text
        }
        // The server may report a thrown error as a JSON-RPC error instead.
        Err(e) => e.to_string(),
    };
    assert!(
        failure.contains("fetch failed") || failure.contains("ECONNREFUSED"),
        "{failure}"
    );
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the sandboxed server reached the host's loopback"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_on_credentials_or_the_root_are_refused_before_anything_runs() {
    let w = world();
    for read in [w.root.join("home/.ssh"), PathBuf::from("/")] {
        let cfg = config(
            "files",
            program("mcp-server-filesystem"),
            &["/"],
            vec![read],
        );
        let err = match RemoteServer::start(&w.policy, &cfg, &default_grant()).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("started with a grant of {}", cfg.allow_read[0].display()),
        };
        assert!(err.starts_with("sandbox: invalid argument"), "{err}");
    }
}

/// `tests/fixtures/probe-server.mjs` (on the official TypeScript SDK) with its description in
/// `desc`, granted what it needs to start: `desc` and the SDK's `node_modules`.

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_server_is_restarted_once_at_once_then_with_backoff() {
    let w = world();
    let desc = w.root.join("granted");
    std::fs::write(desc.join("description.txt"), "Probe.").unwrap();
    let sup = Supervised::new(
        w.policy.clone(),
        Launcher::Fixed(default_grant()),
        probe_config(desc),
    );

    let first = sup.call("steady", Map::new()).await.unwrap();
    assert!(first.text.starts_with("ok from pid"), "{first:?}");
    assert_eq!(sup.restarts().await, 0);

    // It dies without answering: the call fails as gone ...
    let crashed = sup.call("crash", Map::new()).await;
    assert!(matches!(crashed, Err(McpError::Gone(_))), "{crashed:?}");
    // ... and the next call starts it again at once.
    let again = sup.call("steady", Map::new()).await.unwrap();
    assert!(again.text.starts_with("ok from pid"), "{again:?}");
    assert_eq!(sup.restarts().await, 1);

    // A second death in a row: no restart until the backoff has passed.
    let crashed = sup.call("crash", Map::new()).await;
    assert!(matches!(crashed, Err(McpError::Gone(_))), "{crashed:?}");
    let waiting = sup.call("steady", Map::new()).await;
    match waiting {
        Err(McpError::Gone(why)) => {
            assert!(
                why.contains("failed 2 times in a row; restarting in"),
                "{why}"
            )
        }
        other => panic!("restarted during the backoff: {other:?}"),
    }
    assert_eq!(sup.restarts().await, 1);
}

/// The line of `/proc/self/limits` for `what`, e.g. "Max processes", as (soft, hard).
fn limit_line(limits: &str, what: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no {what} in {limits}"));
    let mut cols = line[what.len()..].split_whitespace();
    (
        cols.next().unwrap().to_string(),
        cols.next().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_runs_with_its_grants_limits_and_secrets_and_nothing_else() {
    let w = world();
    let desc = w.root.join("granted");
    std::fs::write(desc.join("description.txt"), "Probe.").unwrap();
    let mut grant = default_grant();
    grant.limits.max_processes = 61;
    grant.limits.max_open_files = 300;
    grant.env = vec![(
        "API_KEY".into(),
        astrid_types::mcp::SecretText("k-3141".into()),
    )];
    let server = RemoteServer::start(&w.policy, &probe_config(desc), &grant)
        .await
        .unwrap();
    let report = server.call("report", Map::new()).await.unwrap();
    let report: Value = serde_json::from_str(&report.text).unwrap();
    assert_eq!(report["env"]["API_KEY"], "k-3141", "{report}");
    let names: Vec<&String> = report["env"].as_object().unwrap().keys().collect();
    for name in &names {
        assert!(
            ["PATH", "HOME", "LANG", "PWD", "API_KEY"].contains(&name.as_str()),
            "unexpected variable {name} in {names:?}"
        );
    }
    let limits = report["limits"].as_str().unwrap();
    // Soft and hard alike, so the server cannot raise them.
    assert_eq!(
        limit_line(limits, "Max processes"),
        ("61".into(), "61".into()),
        "{limits}"
    );
    assert_eq!(
        limit_line(limits, "Max open files"),
        ("300".into(), "300".into()),
        "{limits}"
    );
}

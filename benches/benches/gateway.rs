//! The HTTP gateway in front of the real daemon and agent capsules, against the zero-latency
//! model fixture:
//! - `gateway/thread_list`: one authenticated `GET /v1/threads` (10 threads) over keep-alive;
//! - `gateway/tool_using_turn` beside `socket/tool_using_turn`: the same tool-using turn
//!   through `POST /v1/chat/completions` and straight over the socket as `astrid -p` runs it
//!   (open a session, subscribe to its events, request the turn), with p50/p99 of each;
//! - with `wrk` on the PATH (and not under `--test`), thread-list requests per second at 50
//!   concurrent connections for 10 s, wrk's own report printed as is.
//!
//! The gateway serves from this process on its own two-worker runtime.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

use std::time::Duration;

use astrid_benches::{
    daemon_exe, or_die, time_each, wait_ready, BenchError, Capsules, Daemon, Summary,
};
use astrid_client::Client;
use astrid_gateway::{Gateway, GatewayConfig, RateLimit};
use astrid_llm_fixture::{Fixture, FixtureConfig, Step};
use astrid_types::wire::{ControlCommand, ControlResponse, DeviceScope, LifecycleState};
use astrid_types::AstridHome;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

const FLEET: &[&str] = &["session", "registry", "provider-openai", "tool-fs", "agent"];
const START_TIMEOUT: Duration = Duration::from_secs(60);
const TURN_TIMEOUT: Duration = Duration::from_secs(60);
const SAMPLES: usize = 200;
const THREADS: usize = 10;

async fn control(client: &Client, command: ControlCommand) -> Result<ControlResponse, BenchError> {
    Ok(client.control(command).await?)
}

/// Installs the fleet and configures `default` against the fixture, as `astrid init` would;
/// returns a use-only device token for `default`.
async fn set_up(
    client: &Client,
    capsules: &Capsules,
    fixture: &Fixture,
    file: &str,
) -> Result<String, BenchError> {
    for name in FLEET {
        match control(client, ControlCommand::Install(capsules.upload(name))).await? {
            ControlResponse::Installed(info) if info.state == LifecycleState::Ready => {}
            other => return Err(BenchError::Daemon(format!("installing {name}: {other:?}"))),
        }
    }
    let p = || "default".to_string();
    for (capsule, key, value) in [
        ("provider-openai", "base_url", fixture.base_url()),
        ("provider-openai", "model", "gpt-4o-mini".into()),
        ("registry", "provider", "openai".into()),
        ("registry", "model", "gpt-4o-mini".into()),
    ] {
        let cmd = ControlCommand::ConfigSet {
            principal: p(),
            capsule: capsule.into(),
            key: key.into(),
            value: Some(value),
        };
        control(client, cmd).await?;
    }
    let consent = ControlCommand::EgressAllow {
        principal: p(),
        capsule: "provider-openai".into(),
        target: format!("127.0.0.1:{}", fixture.addr().port()),
    };
    control(client, consent).await?;
    let grant = ControlCommand::CapsEnsure {
        principal: p(),
        pattern: format!("fs:read:{file}"),
        ttl_ms: None,
    };
    control(client, grant).await?;
    let issue = ControlCommand::DeviceIssue {
        principal: p(),
        label: "bench".into(),
        scope: DeviceScope::UseOnly,
        ttl_ms: None,
    };
    match control(client, issue).await? {
        ControlResponse::DeviceIssued { token, .. } => Ok(token),
        other => Err(BenchError::Daemon(format!("pairing: {other:?}"))),
    }
}

fn check_answer(what: &str, answer: &Value) -> Result<(), BenchError> {
    if answer != "done" {
        return Err(BenchError::Reply {
            topic: what.into(),
            reply: answer.to_string(),
        });
    }
    Ok(())
}

/// The turn as `astrid -p` runs it over the socket.
async fn socket_turn(client: &Client) -> Result<(), BenchError> {
    let open = json!({"session": null, "workspace": null, "create": true}).to_string();
    let s: Value = serde_json::from_slice(
        &client
            .request("session.v1.open", open, TURN_TIMEOUT)
            .await?,
    )
    .map_err(|e| BenchError::Daemon(e.to_string()))?;
    let id = s["id"].as_str().unwrap_or_default().to_string();
    let _events = client.subscribe(&format!("agent.v1.event.{id}")).await?;
    let body = json!({"session": id, "input": "read the file", "workspace": null}).to_string();
    let reply = client.request("agent.v1.turn", body, TURN_TIMEOUT).await?;
    let v: Value = serde_json::from_slice(&reply).map_err(|e| BenchError::Daemon(e.to_string()))?;
    check_answer("agent.v1.turn", &v["answer"])
}

async fn gateway_turn(http: &reqwest::Client, base: &str, token: &str) -> Result<(), BenchError> {
    let body = json!({"messages": [{"role": "user", "content": "read the file"}]});
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| BenchError::Daemon(e.to_string()))?;
    let v: Value = r
        .json()
        .await
        .map_err(|e| BenchError::Daemon(e.to_string()))?;
    check_answer(
        "/v1/chat/completions",
        &v["choices"][0]["message"]["content"],
    )
}

async fn thread_list(http: &reqwest::Client, url: &str, token: &str) -> Result<(), BenchError> {
    let r = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| BenchError::Daemon(e.to_string()))?;
    if r.status() != 200 {
        return Err(BenchError::Daemon(format!("thread list: {}", r.status())));
    }
    r.bytes()
        .await
        .map_err(|e| BenchError::Daemon(e.to_string()))?;
    Ok(())
}

fn gateway(c: &mut Criterion) {
    let exe = or_die("astrid-daemon", daemon_exe());
    let capsules = or_die("build", Capsules::build(FLEET));
    let dir = tempfile::tempdir().expect("temporary ASTRID_HOME");
    let home = AstridHome::new(dir.path().join("home"));
    let file = dir.path().join("bench.txt");
    std::fs::write(&file, "hello from the bench").expect("file");
    let file = file.to_string_lossy().into_owned();

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let fixture = server_rt
        .block_on(Fixture::start_looping(
            FixtureConfig::default(),
            vec![
                Step::tool_call("fs_read", json!({ "path": file })),
                Step::text("done"),
            ],
        ))
        .expect("fixture");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let mut daemon = or_die("start", Daemon::spawn(&exe, &home));
    or_die("start", daemon.wait_for_token(START_TIMEOUT));
    let client = or_die(
        "connect",
        rt.block_on(wait_ready(&home, &[], START_TIMEOUT)),
    );
    let token = or_die(
        "set up",
        rt.block_on(set_up(&client, &capsules, &fixture, &file)),
    );

    let mut config = GatewayConfig::new(home.clone());
    config.listen = "127.0.0.1:0".parse().expect("address");
    // The benchmark measures serving, not refusing: one token, far more than its default rate.
    config.rate = RateLimit {
        per_second: 1e9,
        burst: 1_000_000,
    };
    let gw = server_rt
        .block_on(Gateway::bind(config))
        .expect("binding the gateway");
    let base = format!("http://{}", gw.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = server_rt.spawn(gw.run(async {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    for n in 0..THREADS {
        let open = json!({"session": format!("bench-{n}"), "workspace": null, "create": true});
        or_die(
            "threads",
            rt.block_on(client.request("session.v1.open", open.to_string(), TURN_TIMEOUT))
                .map(drop)
                .map_err(BenchError::from),
        );
    }
    let list_url = format!("{base}/v1/threads");
    or_die(
        "first list",
        rt.block_on(thread_list(&http, &list_url, &token)),
    );
    or_die(
        "first turn",
        rt.block_on(gateway_turn(&http, &base, &token)),
    );
    or_die("first socket turn", rt.block_on(socket_turn(&client)));

    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    let mut group = c.benchmark_group("gateway");
    group.bench_function("thread_list", |b| {
        b.iter(|| or_die("list", rt.block_on(thread_list(&http, &list_url, &token))))
    });
    // Before the turns below add a thread each, so the list stays at THREADS threads.
    if !quick {
        let lists = time_each(SAMPLES * 5, || {
            rt.block_on(thread_list(&http, &list_url, &token))
        });
        if let Some(l) = Summary::of(&or_die("lists", lists)) {
            println!(
                "gateway/thread_list ({THREADS} threads) over {} sequential requests: {l}",
                SAMPLES * 5
            );
        }
        load(&list_url, &token);
        load(&format!("{base}/healthz"), &token);
    }
    group.sample_size(20);
    group.bench_function("tool_using_turn", |b| {
        b.iter(|| or_die("turn", rt.block_on(gateway_turn(&http, &base, &token))))
    });
    group.bench_function("socket_tool_using_turn", |b| {
        b.iter(|| or_die("turn", rt.block_on(socket_turn(&client))))
    });
    group.finish();

    if !quick {
        let via_gw = time_each(SAMPLES, || rt.block_on(gateway_turn(&http, &base, &token)));
        let via_socket = time_each(SAMPLES, || rt.block_on(socket_turn(&client)));
        if let (Some(g), Some(s)) = (
            Summary::of(&or_die("turns", via_gw)),
            Summary::of(&or_die("turns", via_socket)),
        ) {
            println!("gateway/tool_using_turn over {SAMPLES} sequential turns: {g}");
            println!("socket/tool_using_turn over {SAMPLES} sequential turns: {s}");
        }
    }
    let _ = stop.send(());
    let _ = server_rt.block_on(served);
    drop(client);
    or_die("stop", daemon.stop());
    server_rt.block_on(fixture.shutdown());
}

/// 50 concurrent keep-alive connections for 10 s with wrk, if it is installed.
fn load(url: &str, token: &str) {
    let auth = format!("Authorization: Bearer {token}");
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c50", "-d10s", "--latency", "-H", &auth, url])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            println!("{url} under wrk -t2 -c50 -d10s --latency:");
            println!("{}", String::from_utf8_lossy(&o.stdout));
        }
        Ok(o) => println!(
            "gateway/thread_list load: wrk failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => println!("gateway/thread_list load: not run (wrk: {e})"),
    }
}

criterion_group!(benches, gateway);
criterion_main!(benches);

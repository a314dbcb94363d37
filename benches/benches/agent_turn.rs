//! One tool-using agent turn through the real daemon and capsules against a zero-latency
//! model: `astrid-llm-fixture` answers at once, alternating a `fs_read` tool call and a text
//! answer, so a turn is agent → session → registry → tool gather → provider (HTTP + SSE) →
//! tool → provider again → session append → reply. Everything measured is Astrid's own work
//! plus two loopback HTTP exchanges with a server that does nothing.

use std::time::Duration;

use astrid_benches::{
    daemon_exe, fmt_duration, home_and_workspace, or_die, set_up_agent_fleet as set_up, time_each,
    verdict, wait_ready, BenchError, Capsules, Daemon, Summary, AGENT_FLEET as FLEET,
};
use astrid_client::Client;
use astrid_llm_fixture::{Fixture, FixtureConfig, Step};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

const SAMPLES: usize = 200;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const TURN_TIMEOUT: Duration = Duration::from_secs(60);
/// Target from the issue: Astrid's overhead per tool-using turn at most 5 ms.
const TARGET: Duration = Duration::from_millis(5);

fn turn(rt: &tokio::runtime::Runtime, client: &Client, payload: &[u8]) -> Result<(), BenchError> {
    let reply = rt.block_on(client.request("agent.v1.turn", payload.to_vec(), TURN_TIMEOUT))?;
    let v: serde_json::Value = serde_json::from_slice(&reply).map_err(|e| BenchError::Reply {
        topic: "agent.v1.turn".into(),
        reply: e.to_string(),
    })?;
    if v["answer"] != "done" || v["steps"] != 2 {
        return Err(BenchError::Reply {
            topic: "agent.v1.turn".into(),
            reply: v.to_string(),
        });
    }
    Ok(())
}

fn agent_turn(c: &mut Criterion) {
    let exe = or_die("astrid-daemon", daemon_exe());
    let capsules = or_die("build", Capsules::build(FLEET));
    let dir = tempfile::tempdir().expect("temporary ASTRID_HOME");
    let (home, workspace) = home_and_workspace(dir.path());

    // The fixture runs on its own threads so the model answers while the client waits.
    let server_rt = tokio::runtime::Runtime::new().expect("server runtime");
    let fixture = server_rt
        .block_on(Fixture::start_looping(
            FixtureConfig::default(),
            vec![
                Step::tool_call("fs_read", json!({ "path": "bench.txt" })),
                Step::text("done"),
            ],
        ))
        .expect("fixture");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let mut daemon = or_die("start", Daemon::spawn(&exe, &home));
    or_die("start", daemon.wait_for_token(START_TIMEOUT));
    let client = or_die(
        "connect",
        rt.block_on(wait_ready(&home, &[], START_TIMEOUT)),
    );
    let port = fixture.addr().port();
    or_die(
        "set up",
        rt.block_on(set_up(
            &client,
            &capsules,
            &fixture.base_url(),
            port,
            &workspace,
        )),
    );
    // `session: null` opens a new session per turn, as `astrid -p` does by default, so the
    // history (and the request size) does not grow from sample to sample.
    let payload = json!({
        "session": null,
        "input": "read bench.txt",
        "workspace": workspace,
    })
    .to_string()
    .into_bytes();
    or_die("first turn", turn(&rt, &client, &payload));

    let mut group = c.benchmark_group("agent_turn");
    group.sample_size(20);
    group.bench_function("tool_using_turn", |b| {
        b.iter(|| or_die("turn", turn(&rt, &client, &payload)))
    });
    group.finish();

    let samples = or_die("turn", time_each(SAMPLES, || turn(&rt, &client, &payload)));
    if let Some(s) = Summary::of(&samples) {
        println!(
            "agent_turn/tool_using_turn over {SAMPLES} sequential turns: {s} \
             (target ≤ {} per turn: {})",
            fmt_duration(TARGET),
            verdict(s.p50 <= TARGET)
        );
    }
    breakdown(&rt, &client, &workspace);
    drop(client);
    or_die("stop", daemon.stop());
    server_rt.block_on(fixture.shutdown());
}

/// Where a turn's time goes: the same bus requests the agent makes, one kind at a time.
fn breakdown(rt: &tokio::runtime::Runtime, client: &Client, workspace: &str) {
    let parts: [(&str, &str, String); 5] = [
        (
            "session.v1.open (new)",
            "session.v1.open",
            json!({ "session": null, "create": true, "workspace": workspace }).to_string(),
        ),
        ("registry.v1.current", "registry.v1.current", "{}".into()),
        (
            "tool fs_read",
            "tool.v1.execute.fs_read",
            json!({ "args": { "path": "bench.txt" }, "context": { "session": "s", "workspace": workspace } })
                .to_string(),
        ),
        (
            "llm.v1.complete.openai (stream, tool call)",
            "llm.v1.complete.openai",
            json!({ "model": null, "system": "s", "messages": [{ "role": "user", "content": "hi" }],
                    "tools": [], "stream_topic": "agent.v1.event.bench" })
            .to_string(),
        ),
        (
            "llm.v1.complete.openai (no stream, text)",
            "llm.v1.complete.openai",
            json!({ "model": null, "system": "s", "messages": [{ "role": "user", "content": "hi" }],
                    "tools": [] })
            .to_string(),
        ),
    ];
    for (label, topic, payload) in parts {
        let samples = time_each(50, || {
            rt.block_on(client.request(topic, payload.clone().into_bytes(), TURN_TIMEOUT))
                .map(drop)
                .map_err(BenchError::from)
        });
        match samples.map(|s| Summary::of(&s)) {
            Ok(Some(s)) => println!("agent_turn/part {label}: {s}"),
            Ok(None) => {}
            Err(e) => println!("agent_turn/part {label}: failed: {e}"),
        }
    }
}

criterion_group!(benches, agent_turn);
criterion_main!(benches);

//! The Forge, as a capsule author uses it: `astrid capsule new greeter`, then `astrid capsule
//! build` and `astrid capsule install .` in the new directory, with cargo offline (the SDK
//! from this checkout, dependencies from the local cache), and the agent (scripted model on
//! `astrid-llm-fixture`) calling the new tool in a real turn.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use astrid_llm_fixture::{Fixture, FixtureConfig, Step};
use common::{astrid, build_distro, daemon_exe, ok, StopDaemon};
use serde_json::json;

/// The real `astrid`, with cargo told it has no network.
fn offline(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_astrid"))
        .arg("--home")
        .arg(home)
        .args(args)
        .current_dir(cwd)
        .env("ASTRID_DAEMON", daemon_exe())
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .expect("running astrid")
}

#[test]
fn a_new_capsule_builds_installs_and_its_tool_is_called_by_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let home = root.join("home");
    let capsule = root.join("greeter");

    let made = ok(
        offline(&home, &root, &["capsule", "new", "greeter"]),
        "capsule new",
    );
    for f in [
        "Capsule.toml",
        "Cargo.toml",
        "src/lib.rs",
        ".cargo/config.toml",
        "AUTHORING.md",
    ] {
        assert!(capsule.join(f).is_file(), "{f} missing: {made}");
    }
    // Asked again, it leaves the directory alone.
    let again = offline(&home, &root, &["capsule", "new", "greeter"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let built = ok(
        offline(&home, &capsule, &["capsule", "build"]),
        "capsule build (offline)",
    );
    assert!(
        capsule.join("dist/greeter-0.1.0.capsule").is_file(),
        "{built}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixture = rt.block_on(async {
        Fixture::start(
            FixtureConfig {
                api_key: Some("sk-forge".into()),
                ..FixtureConfig::default()
            },
            vec![
                Step::tool_call("greeter_greet", json!({"name": "Ada"})),
                Step::text("I greeted Ada."),
            ],
        )
        .await
        .unwrap()
    });
    let distro = build_distro(&root);
    let _stop = StopDaemon(home.clone());
    common::init_with_model(&home, &fixture.base_url(), "sk-forge", &distro, &[]);

    ok(
        offline(&home, &capsule, &["capsule", "install", "."]),
        "capsule install .",
    );
    let listed = ok(astrid(&home, &["capsule", "list", "--verbose"]), "list");
    assert!(listed.contains("greeter_greet"), "{listed}");

    let answer = ok(
        astrid(
            &home,
            &["-p", "Greet Ada.", "--workspace", root.to_str().unwrap()],
        ),
        "the agent's turn",
    );
    assert!(answer.contains("I greeted Ada."), "{answer}");
    let requests: Vec<_> = fixture
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .collect();
    let tools: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(tools.contains(&"greeter_greet"), "{tools:?}");
    let result = requests[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        result.contains("Hello, Ada!") && result.contains("\"count\":1"),
        "the tool's result as the model saw it: {result}"
    );
}

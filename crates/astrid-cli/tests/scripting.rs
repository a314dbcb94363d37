//! What scripts and shells rely on, against a real daemon: `--json` on the list and show
//! commands (parsed, with the documented field names), `--json` refused where there is no
//! JSON form, completion scripts, and the exit codes in `--help`.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;

use common::{astrid, ok, StopDaemon};
use serde_json::Value;

fn json(out: std::process::Output, what: &str) -> Value {
    let stdout = ok(out, what);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {stdout}"))
}

#[test]
fn list_and_show_commands_print_json_with_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let _stop = StopDaemon(home.clone());
    ok(astrid(&home, &["start"]), "start");
    ok(astrid(&home, &["agent", "create", "bob"]), "agent create");
    ok(
        astrid(&home, &["caps", "grant", "bob", "fs:read:/srv/data/**"]),
        "caps grant",
    );

    let status = json(astrid(&home, &["status", "--json"]), "status --json");
    assert_eq!(status["running"], true, "{status}");
    assert!(status["pid"].as_u64().is_some_and(|p| p > 0), "{status}");
    assert!(status["capsules"].is_array(), "{status}");

    let agents = json(astrid(&home, &["--json", "agent", "list"]), "agent list");
    let names: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"bob"), "{agents}");

    let bob = json(
        astrid(&home, &["agent", "show", "bob", "--json"]),
        "agent show",
    );
    assert_eq!(bob["name"], "bob");
    let tokens = bob["tokens"].as_array().unwrap();
    assert!(
        tokens
            .iter()
            .any(|t| t["pattern"] == "fs:read:/srv/data/**" && t["revoked"] == false),
        "{bob}"
    );
    let caps = json(
        astrid(&home, &["caps", "show", "bob", "--json"]),
        "caps show",
    );
    assert_eq!(
        caps, bob,
        "caps show is the principal's whole authority, as agent show"
    );

    let quota = json(
        astrid(&home, &["quota", "show", "-a", "bob", "--json"]),
        "quota show",
    );
    assert_eq!(quota["principal"], "bob");
    assert!(quota["memory_bytes"].as_u64().is_some(), "{quota}");
    assert!(quota["set"].is_object(), "{quota}");

    for (args, what) in [
        (&["ps", "--json"][..], "ps"),
        (&["capsule", "list", "--json"][..], "capsule list"),
        (&["capsule", "tree", "--json"][..], "capsule tree"),
        (
            &["pair-device", "list", "-a", "bob", "--json"][..],
            "pair-device list",
        ),
        (&["secret", "list", "--json"][..], "secret list"),
        (&["egress", "show", "--json"][..], "egress show"),
    ] {
        // A fresh daemon with no distro: every one of these is an empty list, as JSON.
        assert_eq!(
            json(astrid(&home, args), what),
            Value::Array(vec![]),
            "{what}"
        );
    }

    // `config show` with no capsule: the operator's settings the daemon runs with.
    let settings = json(astrid(&home, &["config", "show", "--json"]), "config show");
    let value = |k: &str| {
        settings
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == k)
            .map(|p| p["value"].clone())
            .unwrap_or_else(|| panic!("{k} missing: {settings}"))
    };
    assert_eq!(value("http.max_redirects"), "5");
    assert_eq!(value("quota.memory_mb"), "64");
    let text = ok(astrid(&home, &["config", "show"]), "config show");
    assert!(text.contains("http.max_body_mb = 32\n"), "{text}");

    // A principal's profile facts: set, shown as text and JSON, removed; a bad name is an
    // error naming the rule, and changes nothing.
    ok(
        astrid(
            &home,
            &["profile", "set", "-a", "bob", "display_name", "Bob Jones"],
        ),
        "profile set",
    );
    let facts = json(
        astrid(&home, &["profile", "show", "-a", "bob", "--json"]),
        "profile show",
    );
    assert_eq!(facts, serde_json::json!({"display_name": "Bob Jones"}));
    let text = ok(
        astrid(&home, &["profile", "show", "-a", "bob"]),
        "profile show",
    );
    assert_eq!(text, "profile of `bob`:\n  display_name  Bob Jones\n");
    let out = astrid(&home, &["profile", "set", "-a", "bob", "Display", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid profile fact name `Display`"),
        "{stderr}"
    );
    ok(
        astrid(&home, &["profile", "unset", "-a", "bob", "display_name"]),
        "profile unset",
    );
    let facts = json(
        astrid(&home, &["profile", "show", "-a", "bob", "--json"]),
        "profile show",
    );
    assert_eq!(facts, serde_json::json!({}));

    // A command with no JSON form says so instead of printing text a script would misparse.
    let out = astrid(&home, &["--json", "agent", "create", "carol"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--json is for list and show commands"),
        "{stderr}"
    );
    let agents = json(astrid(&home, &["agent", "list", "--json"]), "agent list");
    assert!(
        !agents.to_string().contains("carol"),
        "the refused command did nothing: {agents}"
    );

    ok(astrid(&home, &["stop"]), "stop");
    let out = astrid(&home, &["status", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a stopped daemon is a failed status"
    );
    let stopped: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stopped, serde_json::json!({ "running": false }));
}

#[test]
fn completion_scripts_and_exit_codes_need_no_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(astrid(&home, &["completions", shell]), shell);
        assert!(script.contains("pair-device"), "{shell}: {script}");
    }
    let out = astrid(&home, &["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );

    let help = ok(astrid(&home, &["--help"]), "--help");
    assert!(help.contains("Exit codes:"), "{help}");
    for code in ["130", "141"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(code)),
            "{help}"
        );
    }
    assert!(!home.exists(), "neither touched the astrid home");
}

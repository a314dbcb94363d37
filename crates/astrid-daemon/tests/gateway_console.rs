//! The gateway's web console in a real browser: headless Chromium driven by Playwright (PyPI;
//! scripts/test.sh installs both and sets ASTRID_TEST_PYTHON and ASTRID_TEST_CHROMIUM), against
//! a real daemon with the agent fleet and the model fixture. A person signs in (a wrong token is
//! refused), sends a message, answers the two approvals the tool call needs from the kernel's
//! own rendering, and reads the answer, which carries markup that must stay text; sees a turn
//! sent on the thread by another client end; then finds the thread by search; in the "Agent &
//! audit" view sees the capsules and tools, chooses another model and goes back, pages the
//! audit chain and verifies it; reloads, and signs out.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;
mod gateway_rig;

use std::process::Command;

use astrid_llm_fixture::Step;
use gateway_rig::GwRig;
use serde_json::{json, Value};

/// The answer of a turn sent on the same thread by another client while the page is open.
const ELSEWHERE: &str = "The kingfisher answered from another device.";

/// Markup in the model's answer: rendered as text it is harmless; parsed, it would run.
const ANSWER: &str = "The heron lands at dawn. <img src=x onerror=\"window.__pwned=1;alert(1)\">";

fn python() -> String {
    std::env::var("ASTRID_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_uses_the_console_in_a_real_browser() {
    let browser = gateway_rig::chromium();
    let gw = GwRig::start(vec![]).await;
    let (_, token) = gw.device("default").await;
    let file = gw.script_a_read_needing_approval(ANSWER);
    gw.rig.fixture.push(Step::text(ELSEWHERE));

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../astrid-gateway/tests/python/console_browser.py"
    );
    let (base, py, file_s) = (gw.base.clone(), python(), file.display().to_string());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&py)
            .arg(script)
            .env("BASE_URL", base)
            .env("TOKEN", token)
            .env("FILE", file_s)
            .env("ELSEWHERE", ELSEWHERE)
            .env("CHROMIUM", browser)
            .output()
            .unwrap_or_else(|e| panic!("running {py}: {e}"))
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the browser script failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");

    assert!(
        seen["bad_token_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{seen}"
    );
    assert_eq!(seen["app_hidden_after_bad_token"], true, "{seen}");
    assert_eq!(seen["who"], "signed in as default", "{seen}");

    // Each approval shows what the kernel rendered: the file, by its resolved path.
    let approvals = seen["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 2, "{seen}");
    for a in approvals {
        let a = a.as_str().unwrap();
        assert!(a.contains(&file.display().to_string()), "{a}");
        assert!(a.contains("tool-fs"), "{a}");
    }

    assert!(
        seen["status"].as_str().unwrap().starts_with("done"),
        "{seen}"
    );
    let answers: Vec<&str> = seen["assistant_texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // The markup arrived as text, and nothing of it ran.
    assert!(answers.contains(&ANSWER), "{seen}");
    assert_eq!(seen["img_elements_in_messages"], 0, "{seen}");
    assert_eq!(seen["injected_flag"], Value::Null, "{seen}");
    assert_eq!(seen["dialogs"], json!([]), "{seen}");
    // The console works under its own Content-Security-Policy: nothing of it was blocked.
    assert!(
        !seen["console_errors"]
            .to_string()
            .contains("Content Security Policy"),
        "{seen}"
    );
    let tools = seen["tool_lines"].to_string();
    assert!(tools.contains("fs_read"), "{seen}");

    assert!(
        seen["threads"].as_array().is_some_and(|t| !t.is_empty()),
        "{seen}"
    );
    assert!(seen["hits"].to_string().contains("heron"), "{seen}");
    // The turn sent elsewhere streamed to its own client, and the open tab noticed its end.
    let other = seen["elsewhere_stream"].as_str().unwrap();
    assert!(other.contains("event: end"), "{other}");
    assert!(other.contains("event: done"), "{other}");
    assert_eq!(
        seen["status_after_elsewhere"], "a turn elsewhere ended",
        "{seen}"
    );
    // The account view: capsules with tools, the model chosen and reset, the audit chain
    // holding the two approvals given with a click, and its verification.
    assert_eq!(seen["chat_hidden_in_account"], true, "{seen}");
    let capsules = seen["capsules"].to_string();
    assert!(
        capsules.contains("tool-fs") && capsules.contains("fs_read"),
        "{seen}"
    );
    assert!(
        seen["model_before"]
            .as_str()
            .unwrap()
            .contains("gpt-4o-mini"),
        "{seen}"
    );
    assert!(
        seen["model_after"]
            .as_str()
            .unwrap()
            .contains("claude-sonnet-4-5"),
        "{seen}"
    );
    assert_eq!(seen["model_api"]["source"], "selected", "{seen}");
    let rows: Vec<&str> = seen["audit_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let file_s = file.display().to_string();
    assert!(
        rows.iter()
            .any(|r| r.contains("fs.read") && r.contains(&file_s)),
        "{seen}"
    );
    assert!(
        rows.iter().any(|r| r.contains("control.audit-page")),
        "{seen}"
    );
    assert!(
        seen["audit_verdict"]
            .as_str()
            .unwrap()
            .starts_with("intact"),
        "{seen}"
    );
    assert_eq!(seen["signed_in_after_reload"], true, "{seen}");
    assert_eq!(seen["token_after_signout"], Value::Null, "{seen}");
}

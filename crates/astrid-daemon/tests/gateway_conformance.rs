//! The gateway against its own OpenAPI document, checked by Schemathesis (PyPI; scripts/test.sh
//! installs it into the test venv and sets ASTRID_TEST_PYTHON): generated valid and invalid
//! requests to every route, and every answer checked against what the document promises
//! (status codes, content types, response schemas), no server errors, invalid input refused,
//! and the stateful links between routes followed. A real daemon with the agent fleet and the
//! model fixture stands behind it, so thread and turn routes do their real work.
//!
//! Left out: `/v1/events`, a stream that never ends by design, and the check that every
//! schema-valid request is accepted, because some rules are not expressible in the schema (the
//! last chat message must be the user's; a thread name must be free) and are refused with a
//! 400 problem document that says why.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;
mod gateway_rig;

use std::process::Command;

use astrid_llm_fixture::Step;
use gateway_rig::GwRig;

fn python() -> String {
    std::env::var("ASTRID_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_the_document_does_not_promise() {
    let py = python();
    let probe = Command::new(&py)
        .args(["-c", "import schemathesis"])
        .output()
        .expect("running python");
    assert!(
        probe.status.success(),
        "`{py}` cannot import schemathesis; run scripts/test.sh or set ASTRID_TEST_PYTHON to a \
         python with `schemathesis` installed: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    // Every generated chat request and turn is answered by the model fixture.
    let answers = (0..3000)
        .map(|i| Step::text(format!("answer {i}")))
        .collect();
    let gw = GwRig::start(answers).await;
    let (_, token) = gw.device("default").await;
    let spec = gw.url("/openapi.json");
    // Schemathesis keeps a cache of what it found in `.schemathesis/` under its working
    // directory: a scratch one, not the checkout.
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&py)
            .current_dir(cwd)
            .args(["-m", "schemathesis.cli", "run", &spec])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", "all"])
            .args(["--exclude-checks", "positive_data_acceptance"])
            .args(["--exclude-path", "/v1/events"])
            .args(["--max-examples", "25", "--seed", "20261203"])
            .args(["--request-timeout", "60", "--no-color"])
            .output()
            .expect("running schemathesis")
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}"
    );
    // It really ran: every route but the excluded stream was exercised.
    assert!(report.contains("Tested: 22"), "{report}");
}

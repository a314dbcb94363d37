//! API keys in whole agent turns: the host adds provider-openai's stored key to requests for
//! the origin it is bound to (a turn succeeds against a fixture that demands it, and fails
//! with a clear 401 message when the stored key is wrong), and a hostile capsule declaring
//! the same secret cannot read any key, does not get provider-openai's, and its own key
//! goes only to the origin it is bound to (not even along a redirect). No key is ever in a reply, the audit export, the
//! daemon's files or its log.

mod common;

use std::path::Path;

use astrid_audit::Decision;
use astrid_llm_fixture::{Api, FixtureConfig, Step};
use common::agent::{Provider, Rig};
use common::servers::{Answer, HttpServer};
use common::{upload, Capsule};
use serde_json::json;

const KEY: &str = "sk-test-123";
const WRONG_KEY: &str = "sk-wrong-456";
const THIEF_KEY: &str = "sk-thief-own-777";

/// Every regular file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(path.display().to_string());
                }
            }
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_reach_only_their_origin_and_never_a_capsule() {
    let config = FixtureConfig {
        api_key: Some(KEY.into()),
        ..FixtureConfig::default()
    };
    let script = vec![Step::text("Authorized answer.")];
    let rig = Rig::start(Provider::OpenAi, config, script).await;
    let origin = rig.fixture.base_url();
    rig.secret_set("provider-openai", "api_key", KEY, &origin)
        .await;

    // The host adds the key: the fixture accepts the turn.
    let t = rig.turn(None, "Hello.").await;
    assert_eq!(t.ok()["answer"], "Authorized answer.");
    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    // A wrong stored key: the turn fails saying the provider rejected the key.
    rig.secret_set("provider-openai", "api_key", WRONG_KEY, &origin)
        .await;
    let t = rig.turn(None, "Hello again.").await;
    let message = t.failure();
    assert!(
        message.contains("openai") && message.contains("rejected the API key (401)"),
        "{message}"
    );
    assert!(
        message.contains("astrid init"),
        "says how to fix it: {message}"
    );
    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].header("authorization"),
        Some(format!("Bearer {WRONG_KEY}").as_str())
    );

    // The thief: its own key is bound to the model server; it may reach both servers.
    rig.install_upload(upload(Capsule::KeyThief)).await;
    let other = HttpServer::start(Answer::echo).await;
    rig.egress_allow("key-thief", &format!("127.0.0.1:{}", other.addr().port()))
        .await;
    rig.egress_allow(
        "key-thief",
        &format!("127.0.0.1:{}", rig.fixture.addr().port()),
    )
    .await;
    rig.secret_set("key-thief", "api_key", THIEF_KEY, &origin)
        .await;
    let models_url = format!("{origin}/v1/models");
    let loot = rig
        .ask_json(
            "thief.v1.steal",
            &json!({"urls": [other.url("/collect"), models_url]}),
        )
        .await;

    // No setting hands out a key.
    let api_key = loot["settings"]["api_key"].as_str().unwrap();
    assert!(
        api_key.starts_with("error: ") && api_key.contains("secrets never enter a capsule"),
        "{loot}"
    );
    for key in ["API_KEY", "OPENAI_API_KEY"] {
        let got = loot["settings"][key].as_str().unwrap();
        assert!(got.starts_with("error: "), "{key}: {got}");
    }
    // The other server got the request, without any credential.
    let to_other = other.requests();
    assert_eq!(to_other.len(), 1, "{to_other:?}");
    assert_eq!(to_other[0].header("authorization"), None, "{to_other:?}");
    assert_eq!(loot["requests"][0]["status"], 200, "{loot}");
    // The model server got the thief's own key, never provider-openai's.
    let thief_req = rig
        .fixture
        .requests()
        .into_iter()
        .find(|q| q.api == Api::Models)
        .expect("the thief's request reached the model server");
    assert_eq!(
        thief_req.header("authorization"),
        Some(format!("Bearer {THIEF_KEY}").as_str())
    );
    assert_eq!(loot["requests"][1]["status"], 401, "{loot}");

    // Bound to a server that redirects elsewhere, the thief's key goes to that server only:
    // the hop to another origin carries no credential.
    let to = other.url("/after-bounce");
    let bouncer = HttpServer::start(move |_| Answer::redirect(&to)).await;
    rig.egress_allow("key-thief", &format!("127.0.0.1:{}", bouncer.addr().port()))
        .await;
    let bound = format!("http://{}", bouncer.addr());
    rig.secret_set("key-thief", "api_key", THIEF_KEY, &bound)
        .await;
    let bounced = rig
        .ask_json("thief.v1.steal", &json!({"urls": [bouncer.url("/bounce")]}))
        .await;
    assert_eq!(bounced["requests"][0]["status"], 200, "{bounced}");
    let at_bouncer = bouncer.requests();
    assert_eq!(at_bouncer.len(), 1);
    assert_eq!(
        at_bouncer[0].header("authorization"),
        Some(format!("Bearer {THIEF_KEY}").as_str())
    );
    let after: Vec<_> = other
        .requests()
        .into_iter()
        .filter(|q| q.path == "/after-bounce")
        .collect();
    assert_eq!(after.len(), 1, "the redirect was not followed");
    assert_eq!(after[0].header("authorization"), None, "{after:?}");

    // No value anywhere the thief, a reader of the audit trail, or the disk could see.
    let loot_text = format!("{loot}{bounced}");
    let export = rig.audit_export();
    let log = rig.daemon.log();
    for secret in [KEY, WRONG_KEY, THIEF_KEY] {
        assert!(
            !loot_text.contains(secret),
            "the thief learned {secret}: {loot}"
        );
        assert!(!export.contains(secret), "{secret} is in the audit export");
        assert!(!log.contains(secret), "{secret} is in the daemon log");
        let hits = files_containing(rig.home.home.root(), secret.as_bytes());
        assert!(
            hits.is_empty(),
            "{secret} is stored in plain text: {hits:?}"
        );
    }
    // The attempt is on record.
    assert!(
        rig.audit().iter().any(|e| e.capsule == "key-thief"
            && e.action == "sys.config-get"
            && e.resource == "api_key"
            && e.decision == Decision::Denied),
        "the refused config-get of the secret is not audited"
    );
    // Secret storage is audited by name and origin only.
    let stored: Vec<_> = rig
        .audit()
        .into_iter()
        .filter(|e| e.action == "secret.set")
        .map(|e| (e.resource, e.outcome))
        .collect();
    assert_eq!(stored.len(), 4, "{stored:?}");
    assert_eq!(stored[3].0, "capsule:key-thief/api_key", "{stored:?}");
    assert!(stored[3].1.contains(&bound), "{stored:?}");
}

//! `http_fetch` in a whole agent turn, with a human who allows everything: the airlock still
//! refuses loopback, link-local (cloud metadata), IPv6 loopback, IPv4 hidden in odd spellings
//! or inside IPv6, and `localhost`; refuses a redirect from a consented local server to an
//! unconsented one; and the model server's consent (given to provider-openai) does not
//! extend to tool-http. Every refusal reaches the model as an error result; the refused
//! servers never see a connection.

mod common;

use astrid_audit::Decision;
use astrid_llm_fixture::{FixtureConfig, ScriptedCall, Step};
use astrid_types::wire::ApprovalDecision;
use common::agent::{openai_calls, openai_tool_result, Approver, Provider, Rig};
use common::servers::{Answer, HttpServer, SilentListener};
use common::Capsule;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_airlock_refuses_local_targets_whatever_the_human_says() {
    let loop4 = SilentListener::v4();
    let loop6 = SilentListener::v6();
    let (l4, l6) = (loop4.port(), loop6.port());
    let redirector = HttpServer::start(move |req| match req.path.as_str() {
        "/to-loopback" => Answer::redirect(&format!("http://127.0.0.1:{l4}/")),
        "/to-loopback-tls" => Answer::redirect(&format!("https://127.0.0.1:{l4}/")),
        _ => Answer::echo(req),
    })
    .await;
    let r = redirector.addr().port();

    // tool-http may only ask for ports 80 and 443; the operator widens its ceiling to the
    // redirecting server (the consent below is what actually lets it through).
    let rig = Rig::start_with(
        Provider::OpenAi,
        FixtureConfig::default(),
        vec![],
        |c, mut up| {
            if c == Capsule::ToolHttp {
                let line = r#"net = ["*:443", "*:80"]"#;
                assert!(up.manifest_toml.contains(line), "{}", up.manifest_toml);
                up.manifest_toml = up.manifest_toml.replace(
                    line,
                    &format!(r#"net = ["*:443", "*:80", "127.0.0.1:{r}"]"#),
                );
            }
            up
        },
    )
    .await;
    rig.egress_allow("tool-http", &format!("127.0.0.1:{r}"))
        .await;
    let approver = Approver::start(&rig.daemon, ApprovalDecision::AllowOnce).await;

    let fixture_url = format!("{}/v1/models", rig.fixture.base_url());
    let after = |to: &str| format!("after redirect to {to}");
    // (url, what the refusal must say)
    let cases: Vec<(String, Vec<String>)> = vec![
        (format!("http://127.0.0.1:{l4}/"), vec!["plain http".into()]),
        (
            format!("https://127.0.0.1:{l4}/"),
            vec!["127.0.0.0/8 (loopback)".into()],
        ),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            vec!["plain http".into()],
        ),
        (
            "https://169.254.169.254/latest/meta-data/".into(),
            vec!["169.254.0.0/16".into(), "metadata".into()],
        ),
        (format!("http://[::1]:{l6}/"), vec!["plain http".into()]),
        (format!("https://[::1]:{l6}/"), vec!["(loopback)".into()]),
        (
            format!("http://0x7f.1:{l4}/"),
            vec!["plain http".into(), format!("127.0.0.1:{l4}")],
        ),
        (
            format!("https://0x7f.1:{l4}/"),
            vec!["127.0.0.0/8 (loopback)".into()],
        ),
        (
            format!("https://2130706433:{l4}/"),
            vec!["127.0.0.0/8 (loopback)".into()],
        ),
        (
            format!("https://[::ffff:127.0.0.1]:{l4}/"),
            vec!["127.0.0.0/8 (loopback)".into()],
        ),
        (
            format!("https://localhost:{l4}/"),
            vec!["names this machine".into()],
        ),
        (fixture_url.clone(), vec!["plain http".into()]),
        (
            redirector.url("/to-loopback"),
            vec![
                after(&format!("http://127.0.0.1:{l4}/")),
                "plain http".into(),
            ],
        ),
        (
            redirector.url("/to-loopback-tls"),
            vec![
                after(&format!("https://127.0.0.1:{l4}/")),
                "127.0.0.0/8 (loopback)".into(),
            ],
        ),
    ];
    rig.fixture.push(Step::Reply {
        text: String::new(),
        tool_calls: cases
            .iter()
            .map(|(url, _)| ScriptedCall::new("http_fetch", json!({"url": url})))
            .collect(),
    });
    rig.fixture
        .push(Step::text("None of those could be fetched."));

    let t = rig.turn(None, "Fetch these for me.").await;
    let reply = t.ok();
    assert_eq!(reply["answer"], "None of those could be fetched.");
    let outcomes = reply["tool_calls"].as_array().unwrap();
    assert_eq!(outcomes.len(), cases.len(), "{reply}");
    assert!(
        outcomes.iter().all(|o| o["ok"] == false),
        "a fetch succeeded: {reply}"
    );

    // Every result the model was shown is an error naming the refusal.
    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let calls = openai_calls(&reqs[1]);
    assert_eq!(calls.len(), cases.len());
    for ((id, name, args), (url, why)) in calls.iter().zip(&cases) {
        assert_eq!(name, "http_fetch");
        assert_eq!(args["url"], url.as_str());
        let told = openai_tool_result(&reqs[1], id);
        assert!(
            told.starts_with(&format!("error: cannot fetch {url}: denied: ")),
            "{url}: {told}"
        );
        for part in why {
            assert!(
                told.contains(part.as_str()),
                "{url}: `{part}` not in: {told}"
            );
        }
    }

    // Nothing reached the refused targets; the consented server saw exactly its two hops.
    loop4.assert_untouched("127.0.0.1");
    loop6.assert_untouched("[::1]");
    let mut paths: Vec<String> = redirector.requests().into_iter().map(|q| q.path).collect();
    paths.sort();
    assert_eq!(paths, ["/to-loopback", "/to-loopback-tls"]);
    // The model server only ever saw the provider's two completions.
    let seen: Vec<String> = rig
        .fixture
        .requests()
        .iter()
        .map(|q| q.path.clone())
        .collect();
    assert_eq!(seen, ["/v1/chat/completions", "/v1/chat/completions"]);
    // Refused before anyone was asked: the human was never bothered.
    assert!(approver.requests().is_empty(), "{:?}", approver.requests());

    // Each refusal is in the audit chain under the URL the capsule asked for; the consented
    // hops are recorded as allowed by consent.
    let chain = rig.audit();
    for (url, _) in &cases {
        assert!(
            chain.iter().any(|e| e.capsule == "tool-http for agent"
                && e.action == "http.request"
                && e.decision == Decision::Denied
                && e.resource == *url
                && e.outcome.contains("airlock: ")),
            "no audited refusal of {url}"
        );
    }
    let consented: Vec<_> = chain
        .iter()
        .filter(|e| e.capsule == "tool-http for agent" && e.decision == Decision::Allowed)
        .collect();
    assert_eq!(consented.len(), 2, "{consented:?}");
    for e in consented {
        assert_eq!(e.resource, format!("net:connect:127.0.0.1:{r}"));
        assert!(e.outcome.contains("local-egress consent"), "{e:?}");
    }
}

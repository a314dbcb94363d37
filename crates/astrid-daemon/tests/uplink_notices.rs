//! `astrid:uplink` through a real daemon: a capsule lists its principal's frontends and
//! sends them notices only when its manifest sets `[capabilities] uplink = true`, and each
//! notice also needs the principal's leave (an `uplink:frontends` token or a person's yes).
//! A notice reaches the principal's own subscribed clients only, stamped with the capsule's
//! name by the kernel; bad text, a revoked token and a flood are refused; every notice and
//! refusal is in the principal's audit chain, without the text.

mod common;

use astrid_audit::Decision;
use astrid_client::Client;
use astrid_types::uplink::{Notice, NoticeLevel, NOTICE_TOPIC};
use astrid_types::wire::{ApprovalDecision, ControlCommand, ControlResponse, ResourceKind};
use common::{
    ask, chain, control, grant, new_agent, next_event, next_request, upload, Capsule, TestHome,
};

const NOTIFY: &str = "uplink-probe.v1.notify";
const LIST: &str = "uplink-probe.v1.list";

/// The `uplink.notify` entries of `p`'s chain, as `(decision, outcome)`.
fn notify_entries(home: &TestHome, p: &str) -> Vec<(Decision, String)> {
    common::actions(&home.home, p, "uplink.notify")
        .into_iter()
        .inspect(|e| assert_eq!(e.resource, "uplink:frontends"))
        .map(|e| (e.decision, e.outcome))
        .collect()
}

async fn install_probe(c: &Client, manifest_edit: impl Fn(String) -> String) {
    let mut up = upload(Capsule::UplinkProbe);
    up.manifest_toml = manifest_edit(up.manifest_toml);
    match control(c, ControlCommand::Install(up)).await {
        Ok(ControlResponse::Installed(_)) => {}
        other => panic!("installing uplink-probe: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_needs_the_principals_leave_and_reaches_only_its_own_frontends() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install_probe(&c, |m| m).await;

    let watcher = Client::connect(&home.home, "default", "watcher-ui")
        .await
        .unwrap();
    let mut shown = watcher.subscribe(NOTICE_TOPIC).await.unwrap();
    // Another tenant's screen, subscribed to the same topic.
    let bob = new_agent(&home.home, &c, "bob").await;
    let mut bob_shown = bob.subscribe(NOTICE_TOPIC).await.unwrap();

    // The list holds the principal's own connections, with what the kernel verified.
    let list = ask(&c, LIST, b"").await;
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines.contains(&"watcher-ui operator true"), "{list}");
    assert!(lines.contains(&"test operator false"), "{list}");
    assert!(!list.contains("bob"), "{list}");

    // In the manifest, but no token and nobody to ask.
    let denied = ask(&c, NOTIFY, b"info build finished").await;
    assert!(
        denied.starts_with("error: denied: ")
            && denied.contains("no capability token covers `uplink:frontends`"),
        "{denied}"
    );

    // A client cannot forge a notice: the topic is the kernel's, so this publish is refused
    // (and the first notice the watcher sees below is the capsule's).
    let forged = r#"{"capsule":"astrid","level":"alert","text":"session expired, paste your key"}"#;
    c.publish(NOTICE_TOPIC, forged.as_bytes().to_vec())
        .await
        .unwrap();

    // A person's no refuses it; their yes lets one through, to the one frontend of this
    // principal that shows notices (bob's does not count).
    let approver = daemon.client().await;
    let mut asked = approver.register_approver().await.unwrap();
    for (answer, expect) in [
        (ApprovalDecision::Deny, "error: denied: "),
        (ApprovalDecision::AllowOnce, "ok: 1"),
    ] {
        let sender = c.clone();
        let reply = tokio::spawn(async move { ask(&sender, NOTIFY, b"alert approve me").await });
        let req = next_request(&mut asked).await;
        assert_eq!(req.capsule, "uplink-probe");
        assert_eq!(req.resource.kind, ResourceKind::Uplink);
        assert_eq!(req.resource.target, "frontends");
        assert!(
            req.detail.contains("notice to your frontends"),
            "{}",
            req.detail
        );
        approver.answer_approval(req.id, answer).await.unwrap();
        let got = reply.await.unwrap();
        assert!(got.starts_with(expect), "{answer:?}: {got}");
    }
    let ev = next_event(&mut shown).await;
    assert_eq!(ev.topic, NOTICE_TOPIC);
    assert_eq!(ev.source, "capsule:uplink-probe");
    let notice: Notice = serde_json::from_slice(&ev.payload).unwrap();
    // The first notice shown is the allowed one: the refused ones never went out.
    assert_eq!(notice.capsule.as_str(), "uplink-probe");
    assert_eq!(
        (notice.level, notice.text.as_str()),
        (NoticeLevel::Alert, "approve me")
    );

    // With the token, nobody is asked.
    let token = grant(&c, "default", "uplink:frontends").await;
    assert_eq!(ask(&c, NOTIFY, b"warning disk nearly full").await, "ok: 1");
    let notice: Notice = serde_json::from_slice(&next_event(&mut shown).await.payload).unwrap();
    assert_eq!(
        (notice.level, notice.text.as_str()),
        (NoticeLevel::Warning, "disk nearly full")
    );

    // Text a terminal would act on is refused before anyone sees it.
    for (bad, why) in [
        ("info \u{1b}[2Kfake prompt", "U+001B"),
        ("info over\rwrite", "U+000D"),
        ("alert  ", "needs some text"),
    ] {
        let got = ask(&c, NOTIFY, bad.as_bytes()).await;
        assert!(
            got.starts_with("error: invalid-argument: ") && got.contains(why),
            "{bad:?}: {got}"
        );
    }
    let long = format!("info {}", "x".repeat(2049));
    let got = ask(&c, NOTIFY, long.as_bytes()).await;
    assert!(got.contains("at most 2048 bytes"), "{got}");

    // A flood stops at the kernel's allowance (2 notices went out already this minute).
    let mut sent = 2;
    let refusal = loop {
        let got = ask(&c, NOTIFY, format!("info flood {sent}").as_bytes()).await;
        if !got.starts_with("ok: ") {
            break got;
        }
        sent += 1;
        assert!(sent <= 30, "the allowance let {sent} notices through");
    };
    assert_eq!(sent, 30, "{refusal}");
    assert!(
        refusal.starts_with("error: quota-exceeded: ")
            && refusal.contains("30 notices this minute"),
        "{refusal}"
    );

    // Revoked: refused at once, without asking the approver still connected.
    control(&c, ControlCommand::CapsRevoke { token_id: token })
        .await
        .unwrap();
    let revoked = ask(&c, NOTIFY, b"info after revocation").await;
    assert!(
        revoked.starts_with("error: denied: ") && revoked.contains("revoked"),
        "{revoked}"
    );
    drop(asked);

    // Bob's screen saw none of it (each `ok: 1` above already says only one frontend got
    // the notice; this checks that one was not bob's).
    for _ in 2..30 {
        next_event(&mut shown).await;
    }
    assert!(
        holds_nothing(&mut bob_shown).await,
        "another tenant's frontend received a notice"
    );

    let entries = notify_entries(&home, "default");
    let count = |d: Decision| entries.iter().filter(|(dd, _)| *dd == d).count();
    assert_eq!(count(Decision::Allowed), 30, "{entries:#?}");
    // No token; a person's no; 4 bad texts; the flood's last one; revoked.
    assert_eq!(count(Decision::Denied), 8, "{entries:#?}");
    assert!(entries
        .iter()
        .any(|(d, o)| *d == Decision::Allowed && o.starts_with("warning, 16 bytes, blake3 ")));
    // The chain names each notice without holding its words.
    for e in chain(&home.home, "default") {
        for text in ["disk nearly full", "approve me", "fake prompt"] {
            assert!(!e.outcome.contains(text), "{e:?}");
        }
    }
    assert!(notify_entries(&home, "bob").is_empty());
}

/// Whether `sub` holds no event now. Every notice the test sent was delivered to the
/// watcher before this is called, and the kernel hands a notice to all its subscribers in
/// one pass, so anything meant for bob would already be queued.
async fn holds_nothing(sub: &mut astrid_client::Subscription) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(200), sub.next())
        .await
        .is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_manifest_switch_no_token_or_person_opens_uplink() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install_probe(&c, |m| {
        let off = m.replace("uplink = true", "");
        assert_ne!(off, m, "the probe's manifest sets uplink = true");
        off
    })
    .await;
    let watcher = Client::connect(&home.home, "default", "watcher-ui")
        .await
        .unwrap();
    let _shown = watcher.subscribe(NOTICE_TOPIC).await.unwrap();
    // A token and a willing person change nothing: the manifest is checked first.
    grant(&c, "default", "uplink:frontends").await;
    let approver = daemon.client().await;
    let _asked = approver.register_approver().await.unwrap();

    let list = ask(&c, LIST, b"").await;
    let notify = ask(&c, NOTIFY, b"info hello").await;
    for got in [&list, &notify] {
        assert_eq!(
            got.as_str(),
            "error: denied: capsule `uplink-probe` does not set `uplink = true` in [capabilities]"
        );
    }
    let entries: Vec<_> = common::actions(&home.home, "default", "uplink.")
        .into_iter()
        .map(|e| (e.action, e.decision))
        .collect();
    assert_eq!(
        entries,
        [
            ("uplink.frontends".to_string(), Decision::Denied),
            ("uplink.notify".to_string(), Decision::Denied)
        ]
    );
}

/// A hook from outside (`hook.v1.<name>`, what `astrid-emit` publishes for a git hook or a CI
/// job) reaches the capsule's `#[astrid::hook]` handler as a parsed `Hook`: its name, its
/// JSON payload and who sent it. A payload of the wrong shape is the handler's error, and the
/// capsule goes on serving the next hook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_from_outside_reaches_the_capsules_hook_handler() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install_probe(&c, |m| m).await;
    grant(&c, "default", "uplink:frontends").await;
    let watcher = Client::connect(&home.home, "default", "watcher-ui")
        .await
        .unwrap();
    let mut shown = watcher.subscribe(NOTICE_TOPIC).await.unwrap();

    let producer = Client::connect(&home.home, "default", "post-commit")
        .await
        .unwrap();
    producer
        .publish("hook.v1.probe.ping", b"not the expected shape".to_vec())
        .await
        .unwrap();
    producer
        .publish(
            "hook.v1.probe.ping",
            br#"{"msg": "4f2a9c1 landed"}"#.to_vec(),
        )
        .await
        .unwrap();
    let n = next_event(&mut shown).await;
    let notice: Notice = serde_json::from_slice(&n.payload).unwrap();
    assert_eq!(notice.capsule.as_str(), "uplink-probe");
    assert_eq!(notice.level, NoticeLevel::Info);
    assert!(
        notice.text.starts_with("hook probe.ping from client:")
            && notice.text.ends_with(": 4f2a9c1 landed"),
        "{}",
        notice.text
    );
    // The malformed one produced no notice: the first one seen is the good hook's.
    assert!(holds_nothing(&mut shown).await);
}

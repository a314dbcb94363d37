//! Local-network egress consent asked at run time, through a real daemon: a capsule's
//! connection to a target on this machine that the operator never consented to with
//! `astrid egress allow` is put to the principal's approvers as the kernel's own question
//! (`net.local`), only for a target within the manifest's `net`, never for link-local (the
//! cloud metadata address). No answer or a deny refuses it; allow-once lets one connection
//! through; allow-always remembers the consent for that capsule, so the next connection asks
//! nobody. Every question and answer is in the chain.
#![allow(
    clippy::disallowed_methods,
    reason = "the test's echo server listens on loopback"
)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use astrid_audit::Decision;
use astrid_types::approval::LOCAL_EGRESS;
use astrid_types::wire::{AlwaysOffer, ApprovalDecision, ControlCommand, ControlResponse};
use common::servers::echo_server;
use common::{ask, control, install, next_request, Capsule, TestHome};

const TALK: &str = "net-probe.v1.talk";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_target_is_asked_for_at_run_time_and_remembered_as_the_person_chooses() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::NetProbe).await;
    let (port, touched) = echo_server("127.0.0.1:0").await;
    let hello = format!("127.0.0.1 {port} plain hello");

    // Nobody to ask: refused as before, with the address reason.
    let got = ask(&c, TALK, hello.as_bytes()).await;
    assert!(
        got.starts_with("error: denied: ") && got.contains("127.0.0.0/8"),
        "{got}"
    );
    assert_eq!(touched.load(Ordering::SeqCst), 0);

    // The capsule's call runs on a task while the person is asked.
    let talk = || {
        let (c, hello) = (c.clone(), hello.clone());
        tokio::spawn(async move { ask(&c, TALK, hello.as_bytes()).await })
    };
    let person = daemon.client().await;
    let mut asks = person.register_approver().await.expect("an approver");
    let answer = |decision: ApprovalDecision| {
        let person = person.clone();
        move |id: u64| async move {
            person
                .answer_approval(id, decision)
                .await
                .expect("answering");
        }
    };

    // Asked, and denied: refused, untouched.
    let call = talk();
    let req = next_request(&mut asks).await;
    assert_eq!(req.action, LOCAL_EGRESS);
    assert_eq!(req.capsule, "net-probe");
    assert_eq!(
        req.resource.pattern(),
        format!("net:connect:127.0.0.1:{port}")
    );
    assert!(
        req.detail.contains("on this machine or your local network")
            && req.detail.contains("127.0.0.0/8"),
        "{}",
        req.detail
    );
    assert_eq!(
        req.always,
        AlwaysOffer::Consent {
            target: format!("127.0.0.1:{port}"),
            capsule: "net-probe".into()
        }
    );
    answer(ApprovalDecision::Deny)(req.id).await;
    let got = call.await.unwrap();
    assert!(got.starts_with("error: denied: "), "{got}");
    assert_eq!(touched.load(Ordering::SeqCst), 0);

    // Allowed once: this connection only.
    let call = talk();
    let req = next_request(&mut asks).await;
    answer(ApprovalDecision::AllowOnce)(req.id).await;
    assert_eq!(call.await.unwrap(), "ok: echo: hello\n");
    assert_eq!(touched.load(Ordering::SeqCst), 1);

    // Allowed always: the consent is remembered for net-probe, so the next connect asks
    // nobody (the approver would see a request otherwise).
    let call = talk();
    let req = next_request(&mut asks).await;
    answer(ApprovalDecision::AllowAlways)(req.id).await;
    assert_eq!(call.await.unwrap(), "ok: echo: hello\n");
    let shown = control(
        &c,
        ControlCommand::EgressShow {
            principal: "default".into(),
        },
    )
    .await;
    assert_eq!(
        shown,
        Ok(ControlResponse::Egress(vec![(
            "net-probe".into(),
            format!("127.0.0.1:{port}")
        )]))
    );
    assert_eq!(ask(&c, TALK, hello.as_bytes()).await, "ok: echo: hello\n");
    assert_eq!(touched.load(Ordering::SeqCst), 3);

    // Never asked: the metadata address (link-local), and a local target outside the
    // manifest. Both refused at once.
    for t in ["169.254.169.254 80", "10.1.2.3 80"] {
        let got = ask(&c, TALK, format!("{t} plain hi").as_bytes()).await;
        assert!(got.starts_with("error: denied: "), "{t}: {got}");
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), asks.next())
            .await
            .is_err(),
        "a question nobody should be asked was asked"
    );

    // The chain: three questions, each with its answer, and the consent remembered.
    let asked = common::actions(&home.home, "default", LOCAL_EGRESS);
    let outcomes: Vec<(Decision, &str)> = asked
        .iter()
        .filter(|e| e.decision != Decision::Recorded)
        .map(|e| (e.decision, e.outcome.as_str()))
        .collect();
    assert_eq!(outcomes.len(), 4, "{asked:#?}");
    assert!(
        outcomes[0].1.contains("no approver connected"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1].0, Decision::Rejected, "{outcomes:?}");
    assert!(outcomes[2].1.contains("allow-once"), "{outcomes:?}");
    assert!(
        outcomes[3].1.contains("allow-always")
            && outcomes[3]
                .1
                .contains("local-egress consent for net-probe remembered"),
        "{outcomes:?}"
    );
    let consents = common::actions(&home.home, "default", "egress.consent");
    assert_eq!(consents.len(), 1, "{consents:#?}");
}

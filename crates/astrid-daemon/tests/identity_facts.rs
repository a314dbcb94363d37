//! `astrid:identity` through a real daemon: a capsule reads a profile fact only when its
//! manifest names the fact and the principal allows it (an `identity:<fact>` token or a
//! person's yes). Each way through and each refusal is in the principal's audit chain; the
//! fact's value never is. Facts are set with `ProfileSet`, checked, and seen by the next
//! invocation.

mod common;

use astrid_audit::Decision;
use astrid_client::Client;
use astrid_types::wire::{ApprovalDecision, ControlCommand, ControlResponse, ResourceKind};
use astrid_types::FactName;
use common::{ask, chain, control, install, next_request, Capsule, TestHome};

const READ: &str = "identity-probe.v1.read";

async fn set_fact(c: &Client, fact: &str, value: Option<&str>) -> Result<ControlResponse, String> {
    let cmd = ControlCommand::ProfileSet {
        principal: "default".into(),
        fact: FactName::new(fact).unwrap(),
        value: value.map(str::to_string),
    };
    control(c, cmd).await
}

async fn grant(c: &Client, pattern: &str) -> String {
    common::grant(c, "default", pattern).await
}

/// The identity entries of the default chain, as `(decision, resource, outcome)`.
fn identity_entries(home: &TestHome) -> Vec<(Decision, String, String)> {
    common::actions(&home.home, "default", "identity.fact")
        .into_iter()
        .map(|e| (e.decision, e.resource, e.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fact_is_read_only_when_the_manifest_names_it_and_the_principal_allows_it() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::IdentityProbe).await;

    set_fact(&c, "display_name", Some("Ada Lovelace"))
        .await
        .unwrap();
    set_fact(&c, "email", Some("ada@example.org"))
        .await
        .unwrap();

    // Not in the manifest: refused before any token is looked at, even with one.
    grant(&c, "identity:email").await;
    let email = ask(&c, READ, b"email").await;
    assert!(
        email.starts_with("default error: denied: ")
            && email.contains("does not declare `email` in [capabilities] identity"),
        "{email}"
    );

    // In the manifest, but no token and nobody to ask.
    let name = ask(&c, READ, b"display_name").await;
    assert!(
        name.starts_with("default error: denied: ")
            && name.contains("no capability token covers `identity:display_name`"),
        "{name}"
    );
    let bad = ask(&c, READ, b"Display-Name").await;
    assert!(
        bad.starts_with("default error: invalid-argument: invalid profile fact name"),
        "{bad}"
    );

    // Allowed with a token; a fact in the manifest that is not set is `unset`, and even
    // learning that takes the principal's leave.
    let token = grant(&c, "identity:display_name").await;
    assert_eq!(
        ask(&c, READ, b"display_name").await,
        "default ok: Ada Lovelace"
    );
    let tz = ask(&c, READ, b"timezone").await;
    assert!(tz.starts_with("default error: denied: "), "{tz}");
    grant(&c, "identity:timezone").await;
    assert_eq!(ask(&c, READ, b"timezone").await, "default unset");
    // A change is seen by the next invocation.
    set_fact(&c, "timezone", Some("Europe/Oslo")).await.unwrap();
    assert_eq!(ask(&c, READ, b"timezone").await, "default ok: Europe/Oslo");

    // Revoked: refused again at once.
    control(&c, ControlCommand::CapsRevoke { token_id: token })
        .await
        .unwrap();
    let revoked = ask(&c, READ, b"display_name").await;
    assert!(revoked.starts_with("default error: denied: "), "{revoked}");

    let entries = identity_entries(&home);
    let count = |d: Decision, r: &str| {
        entries
            .iter()
            .filter(|(dd, rr, _)| *dd == d && rr == r)
            .count()
    };
    assert_eq!(count(Decision::Denied, "identity:email"), 1, "{entries:#?}");
    // No token, then revoked.
    assert_eq!(
        count(Decision::Denied, "identity:display_name"),
        2,
        "{entries:#?}"
    );
    assert_eq!(
        count(Decision::Allowed, "identity:display_name"),
        1,
        "{entries:#?}"
    );
    assert!(entries
        .iter()
        .any(|(d, r, o)| *d == Decision::Allowed && r == "identity:timezone" && o == "not set"));
    // The chain says what was read, never the value.
    for e in chain(&home.home, "default") {
        for secret in ["Ada Lovelace", "ada@example.org", "Europe/Oslo"] {
            assert!(
                !e.outcome.contains(secret) && !e.resource.contains(secret),
                "{e:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_allows_a_read_and_bad_values_are_refused_whole() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::IdentityProbe).await;
    set_fact(&c, "display_name", Some("Ada")).await.unwrap();

    let approver = daemon.client().await;
    let mut asked = approver.register_approver().await.unwrap();
    for (answer, expect) in [
        (ApprovalDecision::Deny, "default error: denied: "),
        (ApprovalDecision::AllowOnce, "default ok: Ada"),
    ] {
        let reader = c.clone();
        let reply = tokio::spawn(async move { ask(&reader, READ, b"display_name").await });
        let req = next_request(&mut asked).await;
        assert_eq!(req.capsule, "identity-probe");
        assert_eq!(req.resource.kind, ResourceKind::Identity);
        assert_eq!(req.resource.target, "display_name");
        assert!(req.detail.contains("from your profile"), "{}", req.detail);
        approver.answer_approval(req.id, answer).await.unwrap();
        let got = reply.await.unwrap();
        assert!(got.starts_with(expect), "{answer:?}: {got}");
    }

    // Values are checked; a refused one changes nothing.
    for bad in ["", "line\nbreak", "\u{1b}[2J", &"x".repeat(1025)] {
        let err = set_fact(&c, "display_name", Some(bad)).await.unwrap_err();
        assert!(err.contains("profile fact `display_name`"), "{err}");
    }
    match control(
        &c,
        ControlCommand::ProfileShow {
            principal: "default".into(),
        },
    )
    .await
    {
        Ok(ControlResponse::Facts(f)) => {
            assert_eq!(f.len(), 1);
            assert_eq!(f[&FactName::new("display_name").unwrap()], "Ada");
        }
        other => panic!("{other:?}"),
    }
    // Removing a fact: the next read finds it unset.
    set_fact(&c, "display_name", None).await.unwrap();
    grant(&c, "identity:display_name").await;
    assert_eq!(ask(&c, READ, b"display_name").await, "default unset");
}

//! The approval broker through a real daemon: a capsule's question reaches only its own
//! principal's approvers, the first answer of that principal wins, anything else (nobody to
//! ask, another principal's answer, silence) is a denial, and every decision is audited
//! before the capsule sees it.

mod common;

use std::time::{Duration, Instant};

use astrid_audit::{log_path, read_entries, AuditEntry, Decision};
use astrid_client::Client;
use astrid_types::wire::{
    ApprovalDecision, ApprovalResource, CapsuleWords, ControlCommand, ControlResponse, ResourceKind,
};
use astrid_types::{AstridHome, PrincipalId};
use common::{ask, control, install, next_request, Capsule, Daemon, TestHome};
use tokio::task::JoinHandle;

/// The asker capsule's own approval timeout.
const ASK_TIMEOUT: Duration = Duration::from_millis(2000);

fn entries(home: &AstridHome) -> Vec<AuditEntry> {
    read_entries(&log_path(
        &home.principals_dir(),
        &PrincipalId::default_local(),
    ))
    .expect("opening the chain")
    .map(|e| e.expect("reading an entry").entry)
    .collect()
}

async fn fixture() -> (TestHome, Daemon, Client) {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Asker).await;
    (home, daemon, c)
}

/// Starts the asker on `resource` in the background; its reply is the guest's view.
fn start_ask(c: &Client, resource: &str) -> JoinHandle<String> {
    let c = c.clone();
    let resource = resource.to_string();
    tokio::spawn(async move { ask(&c, "asker.v1.ask", resource.as_bytes()).await })
}

#[tokio::test]
async fn no_approver_is_an_immediate_deny() {
    let (home, _daemon, c) = fixture().await;
    let started = Instant::now();
    let pattern = "fs:read:/tmp/astrid-approval/x";
    assert_eq!(ask(&c, "asker.v1.ask", pattern.as_bytes()).await, "deny");
    assert!(started.elapsed() < ASK_TIMEOUT, "{:?}", started.elapsed());
    let rejected: Vec<_> = entries(&home.home)
        .into_iter()
        .filter(|e| e.decision == Decision::Rejected && e.resource == pattern)
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].outcome.contains("no approver"), "{rejected:?}");
}

#[tokio::test]
async fn allow_once_reaches_the_guest_and_is_audited() {
    let (home, daemon, c) = fixture().await;
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();
    let pattern = "fs:read:/tmp/astrid-approval/once";
    let reply = start_ask(&c, pattern);
    let req = next_request(&mut stream).await;
    assert_eq!(req.principal, "default");
    assert_eq!(req.capsule, "asker");
    // The kernel's words: what the effect is, from the parsed pattern...
    assert_eq!(req.action, "approval.request");
    assert_eq!(
        req.resource,
        ApprovalResource {
            kind: ResourceKind::FsRead,
            target: "/tmp/astrid-approval/once".into()
        }
    );
    // ...and the capsule's, apart.
    assert_eq!(
        req.capsule_says,
        Some(CapsuleWords {
            action: "fs.read".into(),
            reason: "test".into()
        })
    );
    approver
        .answer_approval(req.id, ApprovalDecision::AllowOnce)
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "allow-once");

    // The reply is back, so both the request and the decision are already durable.
    let mine: Vec<_> = entries(&home.home)
        .into_iter()
        .filter(|e| e.resource == pattern && e.action == "approval.request")
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(mine[0].decision, Decision::Recorded, "{mine:?}");
    assert_eq!(mine[1].decision, Decision::Approved, "{mine:?}");
    assert_eq!(mine[1].capsule, "asker");
    assert!(mine[1].outcome.contains("allow-once"), "{mine:?}");
    assert!(mine[1].outcome.contains("by a person"), "{mine:?}");

    // A second answer to the same id is for a request no longer waiting: nothing happens,
    // and the next question is asked afresh (allow-once is not remembered).
    approver
        .answer_approval(req.id, ApprovalDecision::AllowAlways)
        .await
        .unwrap();
    let again = start_ask(&c, pattern);
    let req2 = next_request(&mut stream).await;
    assert_ne!(req2.id, req.id);
    approver
        .answer_approval(req2.id, ApprovalDecision::Deny)
        .await
        .unwrap();
    assert_eq!(again.await.unwrap(), "deny");
}

#[tokio::test]
async fn another_principals_answer_is_ignored() {
    let home = TestHome::new();
    let alice: PrincipalId = "alice".parse().unwrap();
    std::fs::create_dir_all(home.home.principal_dir(&alice)).unwrap();
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Asker).await;
    let mine = daemon.client().await;
    let mut my_stream = mine.register_approver().await.unwrap();
    let other = Client::connect(&home.home, "alice", "test").await.unwrap();
    let mut other_stream = other.register_approver().await.unwrap();

    let started = Instant::now();
    let reply = start_ask(&c, "fs:read:/tmp/astrid-approval/theirs");
    let req = next_request(&mut my_stream).await;
    // Alice learns the id out of band and answers it: the daemon must not take it.
    other
        .answer_approval(req.id, ApprovalDecision::AllowAlways)
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "deny");
    assert!(started.elapsed() >= ASK_TIMEOUT, "{:?}", started.elapsed());
    // Alice's approver was never asked about default's capsule.
    let leaked = tokio::time::timeout(Duration::from_millis(100), other_stream.next()).await;
    assert!(leaked.is_err(), "{leaked:?}");
    // And nothing was minted for anyone.
    for p in ["default", "alice"] {
        let tokens = caps(&c, p).await;
        assert!(!tokens.iter().any(|t| t.contains("/theirs")), "{tokens:?}");
    }
}

async fn caps(c: &Client, principal: &str) -> Vec<String> {
    tokens(c, principal)
        .await
        .into_iter()
        .map(|t| t.pattern)
        .collect()
}

async fn tokens(c: &Client, principal: &str) -> Vec<astrid_types::wire::TokenInfo> {
    let shown = control(
        c,
        ControlCommand::CapsShow {
            principal: principal.into(),
        },
    )
    .await
    .unwrap();
    let ControlResponse::Tokens(tokens) = shown else {
        panic!("expected tokens, got {shown:?}");
    };
    tokens
}

#[tokio::test]
async fn allow_always_mints_a_token_for_exactly_that_pattern_bound_to_the_capsule() {
    let (home, daemon, c) = fixture().await;
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();
    let pattern = "fs:read:/tmp/astrid-approval/x/**";
    assert!(!caps(&c, "default").await.iter().any(|t| t == pattern));

    let reply = start_ask(&c, pattern);
    let req = next_request(&mut stream).await;
    approver
        .answer_approval(req.id, ApprovalDecision::AllowAlways)
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "allow-always");
    let minted: Vec<_> = tokens(&c, "default")
        .await
        .into_iter()
        .filter(|t| t.pattern == pattern)
        .collect();
    assert_eq!(minted.len(), 1, "{minted:?}");
    assert_eq!(minted[0].capsule.as_deref(), Some("asker"), "{minted:?}");
    assert!(entries(&home.home)
        .iter()
        .any(|e| e.action == "capability.mint"
            && e.resource == pattern
            && e.outcome.contains("bound to capsule asker")));
}

#[tokio::test]
async fn allow_session_is_remembered_for_that_resource() {
    let (_home, daemon, c) = fixture().await;
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();
    let reply = start_ask(&c, "fs:read:/tmp/astrid-approval/session");
    let req = next_request(&mut stream).await;
    approver
        .answer_approval(req.id, ApprovalDecision::AllowSession)
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "allow-session");
    // Asked again: answered from memory, the approver is not bothered.
    assert_eq!(
        ask(&c, "asker.v1.ask", b"fs:read:/tmp/astrid-approval/session").await,
        "allow-session"
    );
    let asked = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
    assert!(asked.is_err(), "{asked:?}");
}

#[tokio::test]
async fn silence_times_out_as_deny() {
    let (home, daemon, c) = fixture().await;
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();
    let started = Instant::now();
    let reply = start_ask(&c, "fs:read:/tmp/astrid-approval/silence");
    let req = next_request(&mut stream).await;
    assert_eq!(req.resource.target, "/tmp/astrid-approval/silence");
    assert_eq!(reply.await.unwrap(), "deny");
    assert!(started.elapsed() >= ASK_TIMEOUT, "{:?}", started.elapsed());
    let last = entries(&home.home)
        .into_iter()
        .rfind(|e| e.resource == "fs:read:/tmp/astrid-approval/silence")
        .expect("the decision is audited");
    assert_eq!(last.decision, Decision::Rejected);
    assert!(last.outcome.contains("no answer in time"), "{last:?}");
}

#[tokio::test]
async fn a_person_may_take_longer_than_the_capsules_deadline() {
    // 1 s per invocation; the person answers after 1.5 s, within the 2 s the asker gives
    // them. Their reading time is not the capsule's running time: the deadline waits.
    let home = TestHome::with_quota(1000, 32);
    let daemon = home.start().await;
    let c = daemon.client().await;
    install(&c, Capsule::Asker).await;
    let approver = daemon.client().await;
    let mut stream = approver.register_approver().await.unwrap();
    let reply = start_ask(&c, "fs:read:/tmp/astrid-approval/slow");
    let req = next_request(&mut stream).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    approver
        .answer_approval(req.id, ApprovalDecision::AllowOnce)
        .await
        .unwrap();
    assert_eq!(reply.await.unwrap(), "allow-once");
}

/// An approver that will not answer a request passes it; once every approver asked has
/// passed (or closed its connection) the request is denied at once, not after the wait. A
/// pass from another principal's connection counts for nothing.
#[tokio::test]
async fn when_every_approver_passes_or_leaves_the_request_is_denied_at_once() {
    let (home, daemon, c) = fixture().await;
    let first = daemon.client().await;
    let second = daemon.client().await;
    let mut first_stream = first.register_approver().await.unwrap();
    let mut second_stream = second.register_approver().await.unwrap();
    let pattern = "fs:read:/tmp/astrid-approval/passed";
    let reply = start_ask(&c, pattern);
    let req = next_request(&mut first_stream).await;
    assert_eq!(next_request(&mut second_stream).await.id, req.id);
    first.pass_approval(req.id).await.unwrap();
    // Still waiting: the second approver has not passed yet (a pass of bob's is ignored).
    let bob = common::new_agent(&home.home, &c, "bob").await;
    bob.pass_approval(req.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!reply.is_finished(), "denied before every approver passed");
    // The second leaves: that is its pass, and the last.
    drop(second_stream);
    drop(second);
    let got = tokio::time::timeout(Duration::from_secs(30), reply)
        .await
        .expect("the request still waits after every approver passed")
        .unwrap();
    assert_eq!(got, "deny");
    let rejected: Vec<_> = entries(&home.home)
        .into_iter()
        .filter(|e| e.decision == Decision::Rejected && e.resource == pattern)
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0]
            .outcome
            .contains("every approver asked passed or left"),
        "{rejected:?}"
    );
}

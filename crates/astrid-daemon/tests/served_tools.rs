//! Tools served by a client connection (what `astrid mcp bridge` does), against a real daemon:
//! a call reaches the serving connection only through the kernel's gate (a
//! `tool:<server>.<tool>` token, else a person), each decision and outcome is in the
//! principal's chain with a digest of the arguments, and the ways around it are refused: no
//! token and nobody to ask, a revoked token (not put to a person), another principal, a
//! device credential trying to serve, another connection's name or answer.

mod common;

use std::time::Duration;

use astrid_audit::Decision;
use astrid_client::{Client, ClientError, Invocation};
use astrid_types::wire::{ApprovalDecision, ControlCommand, RequestError};
use common::{chain, control, grant, new_agent, TestHome, REQUEST_TIMEOUT};
use tokio::sync::mpsc::UnboundedReceiver;

const CALL: &str = "tool.v1.execute.probe__ping";
/// Hang guard for an invocation that must arrive.
const ARRIVES: Duration = Duration::from_secs(30);

async fn serving(c: &Client) -> UnboundedReceiver<Invocation> {
    let calls = c.invocations().unwrap();
    c.serve_tools("probe", vec!["ping".into()]).await.unwrap();
    calls
}

/// The next call handed to the serving connection, which must arrive.
async fn handed(calls: &mut UnboundedReceiver<Invocation>) -> Invocation {
    tokio::time::timeout(ARRIVES, calls.recv())
        .await
        .expect("no call was handed over")
        .expect("the connection closed")
}

fn denied(r: Result<Vec<u8>, ClientError>) -> String {
    match r {
        Err(ClientError::Request(RequestError::Denied(why))) => why,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_tool_is_reached_only_through_the_gate_and_on_the_record() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let bridge = daemon.client().await;
    let mut calls = serving(&bridge).await;
    let caller = daemon.client().await;
    let args = br#"{"args":{"text":"hello"}}"#.to_vec();
    let digest = blake3::hash(&args).to_hex().to_string();

    // No token, nobody to ask: refused, and the bridge never sees it.
    let why = denied(caller.request(CALL, args.clone(), REQUEST_TIMEOUT).await);
    assert!(why.contains("tool:probe.ping"), "{why}");
    assert!(
        calls.try_recv().is_err(),
        "a refused call reached the bridge"
    );
    let entries = chain(&home.home, "default");
    let asked = entries
        .iter()
        .find(|e| e.resource == "tool:probe.ping" && e.outcome.contains("requested"))
        .expect("the question is on the record");
    assert!(asked.outcome.contains(&digest), "{}", asked.outcome);
    assert!(entries
        .iter()
        .any(|e| e.resource == "tool:probe.ping" && e.decision == Decision::Rejected));

    // A person may allow it once when no token covers it.
    let approver = daemon.client().await;
    let mut questions = approver.register_approver().await.unwrap();
    let answering = tokio::spawn(async move {
        let q = questions.next().await.expect("a question");
        assert_eq!(q.resource.pattern(), "tool:probe.ping");
        assert_eq!(q.capsule, "mcp-probe");
        assert!(q.detail.contains("blake3:"), "{}", q.detail);
        approver
            .answer_approval(q.id, ApprovalDecision::AllowOnce)
            .await
            .unwrap();
        (approver, questions)
    });
    let pending = caller
        .send_request(CALL, args.clone(), REQUEST_TIMEOUT)
        .await
        .unwrap();
    let call = handed(&mut calls).await;
    bridge.respond(call.id, Ok(b"once".to_vec())).await.unwrap();
    assert_eq!(pending.wait().await.unwrap(), b"once");
    let (_approver, _questions) = answering.await.unwrap();
    assert!(chain(&home.home, "default")
        .iter()
        .any(|e| e.resource == "tool:probe.ping" && e.decision == Decision::Approved));

    // With a token: the call arrives, the answer goes back, both are recorded.
    let token = grant(&caller, "default", "tool:probe.ping").await;
    let pending = caller
        .send_request(CALL, args.clone(), REQUEST_TIMEOUT)
        .await
        .unwrap();
    let call = handed(&mut calls).await;
    assert_eq!(call.topic, CALL);
    assert_eq!(call.payload, args);
    assert_eq!(call.source, format!("client:{}", caller.connection_id()));
    bridge.respond(call.id, Ok(b"pong".to_vec())).await.unwrap();
    assert_eq!(pending.wait().await.unwrap(), b"pong");
    let entries = chain(&home.home, "default");
    let allowed = entries
        .iter()
        .rfind(|e| e.action == "tool.call" && e.decision == Decision::Allowed)
        .expect("the allowed call is on the record");
    assert_eq!(allowed.resource, "tool:probe.ping");
    assert_eq!(allowed.capsule, "mcp-probe");
    assert!(
        allowed.outcome.contains("capability token"),
        "{}",
        allowed.outcome
    );
    assert!(allowed.outcome.contains(&digest), "{}", allowed.outcome);
    let result = entries.last().unwrap();
    assert_eq!(result.action, "tool.result");
    assert_eq!(result.outcome, "ok, 4 bytes");

    // The server's own failure reaches the caller as a failure, and the record says so.
    let pending = caller
        .send_request(CALL, args.clone(), REQUEST_TIMEOUT)
        .await
        .unwrap();
    let call = handed(&mut calls).await;
    bridge
        .respond(call.id, Err("no such file".into()))
        .await
        .unwrap();
    match pending.wait().await {
        Err(ClientError::Request(RequestError::Failed(m))) => assert_eq!(m, "no such file"),
        other => panic!("expected the tool's failure, got {other:?}"),
    }
    let last = chain(&home.home, "default").pop().unwrap();
    assert_eq!(last.outcome, "failed: no such file");

    // Another connection cannot answer this connection's call.
    let pending = caller
        .send_request(CALL, args.clone(), REQUEST_TIMEOUT)
        .await
        .unwrap();
    let call = handed(&mut calls).await;
    caller
        .respond(call.id, Ok(b"forged".to_vec()))
        .await
        .unwrap();
    bridge.respond(call.id, Ok(b"real".to_vec())).await.unwrap();
    assert_eq!(pending.wait().await.unwrap(), b"real");

    // A revoked token is refused without asking anyone, though an approver is connected.
    let asked_before = questions_asked(&home);
    control(&caller, ControlCommand::CapsRevoke { token_id: token })
        .await
        .unwrap();
    let why = denied(caller.request(CALL, args.clone(), REQUEST_TIMEOUT).await);
    assert!(why.contains("revoked"), "{why}");
    assert_eq!(questions_asked(&home), asked_before, "a person was asked");
    assert!(calls.try_recv().is_err());

    // The bridge goes away with a call waiting: the caller hears at once, not at its timeout.
    grant(&caller, "default", "tool:probe.ping").await;
    let pending = caller
        .send_request(CALL, args.clone(), Duration::from_secs(600))
        .await
        .unwrap();
    let _call = handed(&mut calls).await;
    drop(bridge);
    match tokio::time::timeout(ARRIVES, pending.wait()).await.unwrap() {
        Err(ClientError::Request(RequestError::Failed(m))) => {
            assert!(m.contains("closed"), "{m}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    // And its tools are gone.
    match caller.request(CALL, args, REQUEST_TIMEOUT).await {
        Err(ClientError::Request(RequestError::NoSubscriber(_))) => {}
        other => panic!("expected nobody to serve it, got {other:?}"),
    }
}

/// How many approval questions are on `default`'s record.
fn questions_asked(home: &TestHome) -> usize {
    chain(&home.home, "default")
        .iter()
        .filter(|e| e.resource == "tool:probe.ping" && e.outcome.contains("requested"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_tools_are_the_principals_own_and_only_the_operator_may_serve() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let op = daemon.client().await;
    let mut calls = serving(&op).await;
    let alice = new_agent(&home.home, &op, "alice").await;
    grant(&op, "alice", "tool:probe.ping").await;

    // Alice's calls never reach default's served tool.
    match alice.request(CALL, b"{}".to_vec(), REQUEST_TIMEOUT).await {
        Err(ClientError::Request(RequestError::NoSubscriber(_))) => {}
        other => panic!("expected nobody to serve it for alice, got {other:?}"),
    }
    assert!(calls.try_recv().is_err());

    // Describe: default's gather includes the serving connection; alice's does not.
    let pending = {
        let op2 = daemon.client().await;
        tokio::spawn(async move {
            op2.gather("tool.v1.describe", b"{}".to_vec(), REQUEST_TIMEOUT)
                .await
                .unwrap()
        })
    };
    let call = handed(&mut calls).await;
    assert_eq!(call.topic, "tool.v1.describe");
    op.respond(call.id, Ok(br#"[{"name":"probe__ping"}]"#.to_vec()))
        .await
        .unwrap();
    let replies = pending.await.unwrap();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].0, format!("client:{}", op.connection_id()));
    let theirs = alice
        .gather("tool.v1.describe", b"{}".to_vec(), REQUEST_TIMEOUT)
        .await
        .unwrap();
    assert!(theirs.is_empty(), "{theirs:?}");

    // A device token may not serve tools, and the attempt is recorded.
    let (_, phone) = common::device(&home.home, &op, "default", "phone").await;
    match phone.serve_tools("evil", vec!["ping".into()]).await {
        Err(ClientError::Request(RequestError::Denied(m))) => {
            assert!(m.contains("operator"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(chain(&home.home, "default")
        .iter()
        .any(|e| e.action == "tool.serve" && e.decision == Decision::Denied));

    // A name another connection serves, or a capsule's tool, cannot be taken over.
    let other = daemon.client().await;
    match other.serve_tools("probe", vec!["ping".into()]).await {
        Err(ClientError::Request(RequestError::InvalidArgument(m))) => {
            assert!(m.contains("already served"), "{m}")
        }
        r => panic!("expected a refusal, got {r:?}"),
    }
    // An empty list withdraws the server's tools.
    op.serve_tools("probe", vec![]).await.unwrap();
    match op.request(CALL, b"{}".to_vec(), REQUEST_TIMEOUT).await {
        Err(ClientError::Request(RequestError::NoSubscriber(_))) => {}
        r => panic!("expected nobody to serve it after the withdrawal, got {r:?}"),
    }
    // Bad names are refused before anything is registered.
    for (server, tool) in [("a.b", "x"), ("probe", "has space"), ("x__y", "z")] {
        match other.serve_tools(server, vec![tool.into()]).await {
            Err(ClientError::Request(RequestError::InvalidArgument(_))) => {}
            r => panic!("{server}/{tool}: expected a refusal, got {r:?}"),
        }
    }
}

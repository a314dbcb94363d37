//! Reply counting: who answers a request, and when the requester stops waiting.

use std::sync::{Arc, Mutex};

use astrid_types::wire::RequestError;

use super::ReplySlot;

type Heard = Arc<Mutex<Vec<Result<Vec<u8>, RequestError>>>>;
type Gathered = Arc<Mutex<Vec<Vec<(String, Vec<u8>)>>>>;

fn first(topic: &str) -> (Arc<ReplySlot>, Heard) {
    let heard: Heard = Arc::default();
    let h = heard.clone();
    let slot = ReplySlot::new(topic, Box::new(move |r| h.lock().unwrap().push(r)));
    (slot, heard)
}

/// The dispatcher's own hold is released with `finish("")`.
const DISPATCHER: &str = "";

#[test]
fn nobody_subscribed_is_said_at_once() {
    let (slot, heard) = first("t.v1.x");
    slot.finish(DISPATCHER, Ok(None));
    assert_eq!(
        *heard.lock().unwrap(),
        [Err(RequestError::NoSubscriber("t.v1.x".into()))]
    );
}

#[test]
fn the_first_reply_wins_and_is_heard_once() {
    let (slot, heard) = first("t");
    assert!(slot.wants_first());
    slot.add_pending();
    slot.add_pending();
    slot.finish(DISPATCHER, Ok(None));
    slot.finish("a", Ok(Some(b"one".to_vec())));
    slot.finish("b", Ok(Some(b"two".to_vec())));
    assert_eq!(*heard.lock().unwrap(), [Ok(b"one".to_vec())]);
}

#[test]
fn an_early_finisher_does_not_end_a_request_still_being_dispatched() {
    let (slot, heard) = first("t");
    slot.add_pending();
    slot.finish("a", Ok(None));
    assert!(heard.lock().unwrap().is_empty(), "ended while dispatching");
    slot.add_pending();
    slot.finish(DISPATCHER, Ok(None));
    assert!(heard.lock().unwrap().is_empty(), "b has not finished");
    slot.finish("b", Ok(Some(b"late".to_vec())));
    assert_eq!(*heard.lock().unwrap(), [Ok(b"late".to_vec())]);
}

#[test]
fn when_nobody_replies_the_last_error_is_heard() {
    let (slot, heard) = first("t");
    slot.add_pending();
    slot.add_pending();
    slot.finish(DISPATCHER, Ok(None));
    slot.finish("a", Err(RequestError::Failed("boom".into())));
    slot.finish("b", Ok(None));
    assert_eq!(
        *heard.lock().unwrap(),
        [Err(RequestError::Failed("boom".into()))]
    );

    let (slot, heard) = first("t.v1.quiet");
    slot.add_pending();
    slot.finish(DISPATCHER, Ok(None));
    slot.finish("a", Ok(None));
    assert_eq!(
        *heard.lock().unwrap(),
        [Err(RequestError::Failed(
            "no handler replied to `t.v1.quiet`".into()
        ))]
    );
}

#[test]
fn a_cancelled_request_hears_nothing() {
    let (slot, heard) = first("t");
    slot.add_pending();
    slot.finish(DISPATCHER, Ok(None));
    slot.cancel();
    slot.finish("a", Ok(Some(b"x".to_vec())));
    assert!(heard.lock().unwrap().is_empty());
}

#[test]
fn a_gather_hands_over_every_reply_once_all_are_done() {
    let got: Gathered = Arc::default();
    let g = got.clone();
    let slot = ReplySlot::gather("t", Box::new(move |r| g.lock().unwrap().push(r)));
    assert!(!slot.wants_first());
    for _ in 0..3 {
        slot.add_pending();
    }
    slot.finish(DISPATCHER, Ok(None));
    slot.finish("a", Ok(Some(b"1".to_vec())));
    slot.finish("b", Err(RequestError::Failed("no".into())));
    assert!(got.lock().unwrap().is_empty(), "c is still running");
    slot.finish("c", Ok(Some(b"3".to_vec())));
    assert_eq!(
        *got.lock().unwrap(),
        [vec![
            ("a".to_string(), b"1".to_vec()),
            ("c".to_string(), b"3".to_vec())
        ]]
    );
    // Handed over already: an expiry after that has nothing to give, so the client hears
    // exactly one answer.
    assert_eq!(slot.expire_gather(), None);
}

#[test]
fn an_expired_gather_keeps_what_arrived() {
    let got: Gathered = Arc::default();
    let g = got.clone();
    let slot = ReplySlot::gather("t", Box::new(move |r| g.lock().unwrap().push(r)));
    slot.add_pending();
    slot.add_pending();
    slot.finish(DISPATCHER, Ok(None));
    slot.finish("a", Ok(Some(b"1".to_vec())));
    assert_eq!(
        slot.expire_gather(),
        Some(vec![("a".to_string(), b"1".to_vec())])
    );
    slot.finish("b", Ok(Some(b"2".to_vec())));
    assert!(got.lock().unwrap().is_empty(), "the sink ran after expiry");
}

/// Hang guard only: a settled slot wakes its timer at once; this bounds a broken one.
const GUARD: std::time::Duration = std::time::Duration::from_secs(30);

#[tokio::test]
async fn an_answered_request_releases_its_timer() {
    let (slot, _heard) = first("t");
    slot.add_pending();
    slot.finish(DISPATCHER, Ok(None));
    // Answered before the timer even waits: the settlement is kept for it.
    slot.finish("a", Ok(Some(b"x".to_vec())));
    tokio::time::timeout(GUARD, slot.settled())
        .await
        .expect("the timer of an answered request kept waiting");
}

#[tokio::test]
async fn a_finished_gather_releases_its_timer() {
    let slot = ReplySlot::gather("t", Box::new(|_| {}));
    let waiting = tokio::spawn({
        let slot = slot.clone();
        async move { slot.settled().await }
    });
    slot.add_pending();
    slot.finish(DISPATCHER, Ok(None));
    slot.finish("a", Ok(Some(b"1".to_vec())));
    tokio::time::timeout(GUARD, waiting)
        .await
        .expect("the timer of a finished gather kept waiting")
        .unwrap();
}

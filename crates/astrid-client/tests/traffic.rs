//! Requests, control commands, subscriptions and disconnects over an established connection.

mod common;

use std::time::Duration;

use astrid_client::ClientError;
use astrid_types::wire::{
    ClientMessage, ControlCommand, ControlError, ControlResponse, RequestError, ServerMessage,
};
use common::*;

#[tokio::test]
async fn pipelined_requests_get_their_own_replies() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    let server = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 3 {
            match recv(&mut server).await.unwrap() {
                ClientMessage::Request {
                    id,
                    topic,
                    payload,
                    timeout_ms,
                } => {
                    assert_eq!(timeout_ms, 1500);
                    got.push((id, topic, payload));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // Answer in reverse order: the client must route by id, not by arrival.
        for (id, topic, payload) in got.into_iter().rev() {
            let mut reply = topic.into_bytes();
            reply.extend_from_slice(b":");
            reply.extend(payload);
            send(
                &mut server,
                &ServerMessage::Reply {
                    id,
                    result: Ok(reply),
                },
            )
            .await;
        }
        server
    });
    let t = Duration::from_millis(1500);
    let (a, b, c) = tokio::join!(
        client.request("t.a", "1", t),
        client.request("t.b", "2", t),
        client.request("t.c", "3", t),
    );
    assert_eq!(a.unwrap(), b"t.a:1");
    assert_eq!(b.unwrap(), b"t.b:2");
    assert_eq!(c.unwrap(), b"t.c:3");
    let _server = server.await.unwrap();
}

#[tokio::test]
async fn clones_share_the_connection_across_tasks() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    let echo = tokio::spawn(async move {
        while let Some(msg) = recv(&mut server).await {
            if let ClientMessage::Request { id, payload, .. } = msg {
                send(
                    &mut server,
                    &ServerMessage::Reply {
                        id,
                        result: Ok(payload),
                    },
                )
                .await;
            }
        }
    });
    let tasks: Vec<_> = (0..40u32)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                let body = i.to_string();
                let reply = c
                    .request("echo", body.clone(), Duration::from_secs(5))
                    .await
                    .unwrap();
                assert_eq!(reply, body.into_bytes());
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    drop(client);
    // Dropping the last clone closes the socket, which ends the server loop.
    tokio::time::timeout(Duration::from_secs(5), echo)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn daemon_request_errors_surface_as_request_errors() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    let server = tokio::spawn(async move {
        let Some(ClientMessage::Request { id, topic, .. }) = recv(&mut server).await else {
            panic!("expected a request")
        };
        let result = Err(RequestError::NoSubscriber(topic));
        send(&mut server, &ServerMessage::Reply { id, result }).await;
        server
    });
    let err = client
        .request("nobody.home", "x", Duration::from_secs(5))
        .await
        .unwrap_err();
    match &err {
        ClientError::Request(RequestError::NoSubscriber(t)) => assert_eq!(t, "nobody.home"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.to_string(), "nobody is subscribed to `nobody.home`");
    let _server = server.await.unwrap();
}

#[tokio::test]
async fn protocol_error_for_a_request_fails_that_request() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    let server = tokio::spawn(async move {
        let Some(ClientMessage::Request { id, .. }) = recv(&mut server).await else {
            panic!("expected a request")
        };
        let message = "invalid topic".to_string();
        send(
            &mut server,
            &ServerMessage::Error {
                id: Some(id),
                message,
            },
        )
        .await;
        server
    });
    let err = client
        .request("Bad Topic", "", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Protocol(m) if m == "invalid topic"),
        "{err:?}"
    );
    let _server = server.await.unwrap();
}

#[tokio::test]
async fn control_round_trip_and_daemon_side_error() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    let server = tokio::spawn(async move {
        let Some(ClientMessage::Control { id, command }) = recv(&mut server).await else {
            panic!("expected control")
        };
        assert_eq!(command, ControlCommand::Shutdown);
        send(
            &mut server,
            &ServerMessage::ControlReply {
                id,
                result: Ok(ControlResponse::ShuttingDown),
            },
        )
        .await;
        let Some(ClientMessage::Control { id, command }) = recv(&mut server).await else {
            panic!("expected control")
        };
        assert_eq!(
            command,
            ControlCommand::Remove {
                name: "ghost".into()
            }
        );
        let result = Err(ControlError::Failed(
            "capsule `ghost` is not installed".to_string(),
        ));
        send(&mut server, &ServerMessage::ControlReply { id, result }).await;
        server
    });
    assert_eq!(
        client.control(ControlCommand::Shutdown).await.unwrap(),
        ControlResponse::ShuttingDown
    );
    let err = client
        .control(ControlCommand::Remove {
            name: "ghost".into(),
        })
        .await
        .unwrap_err();
    // Operator-facing daemon errors are passed through verbatim.
    assert_eq!(err.to_string(), "capsule `ghost` is not installed");
    let _server = server.await.unwrap();
}

#[tokio::test]
async fn events_are_routed_per_subscription_and_drop_unsubscribes() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    let mut a = client.subscribe("news.*").await.unwrap();
    let mut b = client.subscribe("weather.*").await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        match recv(&mut server).await.unwrap() {
            ClientMessage::Subscribe { id, pattern } => ids.push((id, pattern)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ids[0].1, "news.*");
    assert_eq!(ids[1].1, "weather.*");
    assert_eq!((a.id(), b.id()), (ids[0].0, ids[1].0));
    let event = |subscription: u64, topic: &str, payload: &str| ServerMessage::Event {
        subscription,
        topic: topic.into(),
        payload: payload.into(),
        source: "capsule:feed".into(),
        principal: "alice".into(),
    };
    send(&mut server, &event(b.id(), "weather.today", "sun")).await;
    send(&mut server, &event(a.id(), "news.local", "hello")).await;
    send(&mut server, &event(9999, "stray.topic", "ignored")).await;
    send(&mut server, &event(a.id(), "news.world", "bye")).await;

    let e = a.next().await.unwrap();
    assert_eq!(
        (e.topic.as_str(), e.payload.as_slice()),
        ("news.local", &b"hello"[..])
    );
    assert_eq!(
        (e.source.as_str(), e.principal.as_str()),
        ("capsule:feed", "alice")
    );
    assert_eq!(a.next().await.unwrap().topic, "news.world");
    assert_eq!(b.next().await.unwrap().payload, b"sun");

    let a_id = a.id();
    drop(a);
    assert_eq!(
        recv(&mut server).await.unwrap(),
        ClientMessage::Unsubscribe { id: a_id }
    );
    // The other subscription still works after a sibling was dropped.
    send(&mut server, &event(b.id(), "weather.tomorrow", "rain")).await;
    assert_eq!(b.next().await.unwrap().payload, b"rain");
}

#[tokio::test]
async fn daemon_error_for_a_subscription_ends_it_with_a_reason() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    let mut sub = client.subscribe("bad..pattern").await.unwrap();
    let Some(ClientMessage::Subscribe { id, .. }) = recv(&mut server).await else {
        panic!("expected subscribe")
    };
    let message = "invalid pattern".to_string();
    send(
        &mut server,
        &ServerMessage::Error {
            id: Some(id),
            message,
        },
    )
    .await;
    assert!(sub.next().await.is_none());
    assert_eq!(sub.close_reason(), Some("invalid pattern"));
    assert!(client.is_connected());
}

#[tokio::test]
async fn publish_sends_the_event() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    client.publish("log.line", b"abc".as_slice()).await.unwrap();
    assert_eq!(
        recv(&mut server).await.unwrap(),
        ClientMessage::Publish {
            topic: "log.line".into(),
            payload: b"abc".to_vec()
        }
    );
}

#[tokio::test]
async fn disconnect_fails_pending_waiters_and_ends_subscriptions() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    let mut sub = client.subscribe("x.*").await.unwrap();
    let pending = {
        let c = client.clone();
        tokio::spawn(async move { c.request("slow", "", Duration::from_secs(30)).await })
    };
    let control = {
        let c = client.clone();
        tokio::spawn(async move { c.control(ControlCommand::Status).await })
    };
    // Wait until both messages reached the server, then hang up without answering.
    let mut seen = 0;
    while seen < 3 {
        recv(&mut server).await.unwrap();
        seen += 1;
    }
    drop(server);
    let r = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, Err(ClientError::Disconnected)), "{r:?}");
    let c = tokio::time::timeout(Duration::from_secs(5), control)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(c, Err(ClientError::Disconnected)), "{c:?}");
    assert!(sub.next().await.is_none());
    assert!(!client.is_connected());
    let later = client.request("after", "", Duration::from_secs(1)).await;
    assert!(matches!(later, Err(ClientError::Disconnected)), "{later:?}");
    assert!(matches!(
        client.subscribe("y").await,
        Err(ClientError::Disconnected)
    ));
}

#[tokio::test(start_paused = true)]
async fn silent_daemon_times_out_the_request_and_late_replies_are_discarded() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    let req = client.request("never", "", Duration::from_millis(100));
    let (r, msg) = tokio::join!(req, recv(&mut server));
    let Some(ClientMessage::Request {
        id: late_id,
        timeout_ms: 100,
        ..
    }) = msg
    else {
        panic!("expected the request with its timeout, got {msg:?}")
    };
    assert!(
        matches!(r, Err(ClientError::Timeout(d)) if d == Duration::from_millis(100)),
        "{r:?}"
    );
    // The reply shows up after the caller gave up; it must not reach the next request.
    let late = ServerMessage::Reply {
        id: late_id,
        result: Ok(b"late".to_vec()),
    };
    send(&mut server, &late).await;
    let next = client.request("next", "", Duration::from_secs(5));
    let answer = async {
        let Some(ClientMessage::Request { id, .. }) = recv(&mut server).await else {
            panic!("expected a request")
        };
        send(
            &mut server,
            &ServerMessage::Reply {
                id,
                result: Ok(b"fresh".to_vec()),
            },
        )
        .await;
    };
    let (r, ()) = tokio::join!(next, answer);
    assert_eq!(r.unwrap(), b"fresh");
}

#[tokio::test]
async fn send_request_keeps_wire_order_and_replies_are_awaited_later() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    let t = Duration::from_secs(5);
    let first = client.send_request("step.one", "1", t).await.unwrap();
    let second = client.send_request("step.two", "2", t).await.unwrap();
    let mut ids = Vec::new();
    for expected in ["step.one", "step.two"] {
        let Some(ClientMessage::Request { id, topic, .. }) = recv(&mut server).await else {
            panic!("expected a request")
        };
        assert_eq!(topic, expected);
        ids.push(id);
    }
    for id in ids.iter().rev() {
        let reply = ServerMessage::Reply {
            id: *id,
            result: Ok(id.to_string().into_bytes()),
        };
        send(&mut server, &reply).await;
    }
    assert_eq!(first.wait().await.unwrap(), ids[0].to_string().into_bytes());
    assert_eq!(
        second.wait().await.unwrap(),
        ids[1].to_string().into_bytes()
    );
}

#[tokio::test]
async fn flush_returns_once_earlier_frames_are_written() {
    let f = fixture();
    let (client, mut server) = connected(&f).await;
    for i in 0..20u8 {
        client.publish("burst", vec![i; 10_000]).await.unwrap();
    }
    // Read concurrently: 200 KB exceeds a socket buffer, so flush can only finish as the
    // server drains it.
    let reader = tokio::spawn(async move {
        for i in 0..20u8 {
            let msg = recv(&mut server).await.unwrap();
            assert_eq!(
                msg,
                ClientMessage::Publish {
                    topic: "burst".into(),
                    payload: vec![i; 10_000]
                }
            );
        }
        server
    });
    client.flush().await.unwrap();
    let server = reader.await.unwrap();
    drop(server);
    tokio::time::timeout(Duration::from_secs(5), async {
        while client.is_connected() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert!(matches!(
        client.flush().await,
        Err(ClientError::Disconnected)
    ));
}

//! `net-probe`: the payload is `<host> <port> <plain|tls> <line>`; the capsule connects
//! through `astrid:net`, sends the line, reads until the peer closes and replies
//! `ok: <what came back>` or `error: <error-code>: <message>`.
//!
//! `race`: the payload is `<port-a> <port-b> <http-port>` (all on 127.0.0.1); the capsule
//! opens two connections and one HTTP response and reads each as `astrid:io` says it became
//! readable, replying with what it saw in order (the test's servers decide the order).
#![forbid(unsafe_code)]

use std::time::Duration;

use astrid_sdk::prelude::*;

#[derive(Default)]
struct NetProbe;

fn talk(payload: &str) -> Result<String, NetError> {
    let mut parts = payload.splitn(4, ' ');
    let host = parts.next().unwrap_or_default();
    let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let tls = parts.next() == Some("tls");
    let line = parts.next().unwrap_or_default();
    let mut conn = if tls {
        net::TcpStream::connect_tls(host, port)?
    } else {
        net::TcpStream::connect(host, port)?
    };
    conn.send(format!("{line}\n").as_bytes())?;
    let mut got = Vec::new();
    loop {
        let chunk = conn.receive(1024)?;
        if chunk.is_empty() {
            return Ok(String::from_utf8_lossy(&got).into_owned());
        }
        got.extend(chunk);
    }
}

/// A handle no package opened.
struct Bogus;

impl io::AsStream for Bogus {
    fn stream_handle(&self) -> u64 {
        999_999
    }
}

fn race(payload: &str) -> Result<String, SysError> {
    let mut ports = payload
        .split_whitespace()
        .map(|p| p.parse::<u16>().unwrap_or(0));
    let (pa, pb, ph) = (
        ports.next().unwrap_or(0),
        ports.next().unwrap_or(0),
        ports.next().unwrap_or(0),
    );
    let mut seen = Vec::new();
    let unknown = io::ready(
        &[&Bogus as &dyn io::AsStream],
        Some(Duration::from_millis(10)),
    );
    seen.push(format!(
        "unknown={}",
        unknown.map_or_else(|e| e.kind().to_string(), |r| format!("{r:?}"))
    ));

    let mut a = net::TcpStream::connect("127.0.0.1", pa)?;
    let mut b = net::TcpStream::connect("127.0.0.1", pb)?;
    a.send(b"go\n")?;
    b.send(b"go\n")?;
    let body = http::Request::get(format!("http://127.0.0.1:{ph}/slow")).send()?;
    let written = io::write(&body, b"x");
    seen.push(format!(
        "write-body={}",
        written.map_or_else(|e| e.kind().to_string(), |()| "ok".into())
    ));
    // A answers only after B is closed: waiting on A alone runs out.
    let early = io::ready(&[&a as &dyn io::AsStream], Some(Duration::from_millis(200)))?;
    seen.push(format!("early={early:?}"));

    let mut open: Vec<(&str, Box<dyn io::AsStream>)> = vec![
        ("a", Box::new(a)),
        ("b", Box::new(b)),
        ("http", Box::new(body)),
    ];
    let mut order = Vec::new();
    while !open.is_empty() {
        let streams: Vec<&dyn io::AsStream> = open.iter().map(|(_, s)| s.as_ref()).collect();
        let ready = io::ready(&streams, Some(Duration::from_secs(30)))?;
        if ready.is_empty() {
            return Ok(format!("{} stalled={}", seen.join(" "), open.len()));
        }
        // Read what is ready, then close it (dropping it), last position first so the
        // others keep theirs.
        for &i in ready.iter().rev() {
            let (name, stream) = open.remove(i);
            let got = io::read(stream.as_ref(), 1024, None)?;
            order.push(format!("{name}:{}", String::from_utf8_lossy(&got).trim()));
        }
    }
    seen.push(format!("order={}", order.join(",")));
    Ok(seen.join(" "))
}

#[capsule]
impl NetProbe {
    #[astrid::handler]
    fn race(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let answer = match race(&String::from_utf8_lossy(&event.payload)) {
            Ok(text) => format!("ok: {text}"),
            Err(e) => format!("error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }

    #[astrid::handler]
    fn talk(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let answer = match talk(&String::from_utf8_lossy(&event.payload)) {
            Ok(text) => format!("ok: {text}"),
            Err(e) => format!("error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }
}

//! `net-probe`: the payload is `<host> <port> <plain|tls> <line>`; the capsule connects
//! through `astrid:net`, sends the line, reads until the peer closes and replies
//! `ok: <what came back>` or `error: <error-code>: <message>`.
#![forbid(unsafe_code)]

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

#[capsule]
impl NetProbe {
    #[astrid::handler]
    fn talk(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let answer = match talk(&String::from_utf8_lossy(&event.payload)) {
            Ok(text) => format!("ok: {text}"),
            Err(e) => format!("error: {e}"),
        };
        Ok(Some(answer.into_bytes()))
    }
}

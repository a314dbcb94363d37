//! Loopback servers the agent tests aim tools at: an HTTP server that records every request
//! head it receives and answers from a closure, and a bare listener that must never be
//! connected to, and a line echo server that counts its connections. Everything binds
//! 127.0.0.1 or [::1] on a free port.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A request head as it arrived; header names lowercased.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The raw head, request line and headers, as text.
    pub head: String,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server sends back.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn redirect(location: &str) -> Answer {
        Answer {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }

    /// 200 with the request's own head as the body, so a client learns what was sent.
    pub fn echo(req: &SeenRequest) -> Answer {
        Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: req.head.clone().into_bytes(),
        }
    }
}

type Respond = dyn Fn(&SeenRequest) -> Answer + Send + Sync;

/// A one-request-per-connection HTTP/1.1 server on 127.0.0.1.
pub struct HttpServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: JoinHandle<()>,
}

const MAX_HEAD: usize = 64 * 1024;

impl HttpServer {
    pub async fn start(
        respond: impl Fn(&SeenRequest) -> Answer + Send + Sync + 'static,
    ) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback HTTP server");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Respond> = Arc::new(respond);
        let record = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = record.clone();
                let respond = respond.clone();
                tokio::spawn(async move { serve(stream, &record, &*respond).await });
            }
        });
        HttpServer { addr, seen, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request head received so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    seen: &Mutex<Vec<SeenRequest>>,
    respond: &Respond,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let req = SeenRequest {
        method,
        path,
        headers,
        head,
    };
    seen.lock().unwrap().push(req.clone());
    let answer = respond(&req);
    let mut out = format!("HTTP/1.1 {} X\r\n", answer.status);
    for (k, v) in &answer.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&answer.body);
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
}

/// A listening socket nobody may reach: the kernel completes any handshake into its accept
/// queue, so a connection that got through is still there to be found afterwards.
pub struct SilentListener {
    listener: StdListener,
}

impl SilentListener {
    pub fn v4() -> SilentListener {
        Self::bind("127.0.0.1:0")
    }

    pub fn v6() -> SilentListener {
        Self::bind("[::1]:0")
    }

    fn bind(addr: &str) -> SilentListener {
        let listener = StdListener::bind(addr).unwrap_or_else(|e| panic!("binding {addr}: {e}"));
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        SilentListener { listener }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("its address").port()
    }

    /// Panics if anything connected.
    pub fn assert_untouched(&self, what: &str) {
        match self.listener.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!("{what}: {peer} connected to a listener nobody may reach"),
            Err(e) => panic!("{what}: accept failed: {e}"),
        }
    }
}

/// A server on `addr` answering each connection's first line with `echo: <line>`; its
/// port and how many connections it accepted.
pub async fn echo_server(addr: &str) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (rd, mut wr) = s.into_split();
                let mut line = String::new();
                if tokio::io::BufReader::new(rd)
                    .read_line(&mut line)
                    .await
                    .is_ok()
                {
                    let _ = wr.write_all(format!("echo: {line}").as_bytes()).await;
                }
            });
        }
    });
    (port, accepted)
}

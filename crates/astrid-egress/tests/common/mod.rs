//! Tiny HTTP/1.1 servers on 127.0.0.1 that record what they were sent, a counting resolver
//! and a recording authorizer.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use astrid_egress::{
    Airlock, AirlockConfig, Authorize, Consent, EgressRequest, LocalTarget, Resolve, ResolveFuture,
    Url,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub type Stream = Box<dyn Io>;

/// One request as a test server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

pub struct Server {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    pub fn target(&self) -> LocalTarget {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }
}

/// Serves every connection on 127.0.0.1:<random>: reads one request, records it, and hands
/// it with the stream to `handler`, which writes the response.
pub async fn serve<H, F>(tls: Option<TlsAcceptor>, handler: H) -> Server
where
    H: Fn(Seen, Stream) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (handler, record, tls) = (handler.clone(), record.clone(), tls.clone());
            tokio::spawn(async move {
                let mut stream: Stream = match tls {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(s) => Box::new(s),
                        Err(_) => return,
                    },
                    None => Box::new(tcp),
                };
                if let Ok(req) = read_request(&mut stream).await {
                    record.lock().unwrap().push(req.clone());
                    handler(req, stream).await;
                }
            });
        }
    });
    Server { port, seen }
}

/// A server answering with `respond(request)` as a complete response.
pub async fn simple<R>(respond: R) -> Server
where
    R: Fn(&Seen) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
{
    let respond = Arc::new(respond);
    serve(None, move |req, mut s| {
        let respond = respond.clone();
        async move {
            let (status, headers, body) = respond(&req);
            write_response(&mut s, status, &headers, &body).await;
        }
    })
    .await
}

pub fn redirect(status: u16, to: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    (status, vec![("location".into(), to.into())], Vec::new())
}

pub fn ok(body: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    (200, vec![], body.as_bytes().to_vec())
}

pub async fn write_response(
    s: &mut Stream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body).await;
    let _ = s.flush().await;
}

async fn read_request(s: &mut Stream) -> io::Result<Seen> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok(Seen {
        method,
        path,
        headers,
        body,
    })
}

/// Answers from a fixed table and records every lookup.
#[derive(Default)]
pub struct MapResolver {
    pub map: HashMap<String, Vec<SocketAddr>>,
    pub calls: Mutex<Vec<String>>,
}

impl MapResolver {
    pub fn new(entries: &[(&str, &[&str])]) -> Arc<Self> {
        let map = entries
            .iter()
            .map(|(name, addrs)| {
                let addrs = addrs.iter().map(|a| a.parse().unwrap()).collect();
                (name.to_string(), addrs)
            })
            .collect();
        Arc::new(MapResolver {
            map,
            calls: Mutex::new(Vec::new()),
        })
    }
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Resolve for MapResolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> ResolveFuture<'a> {
        self.calls.lock().unwrap().push(host.to_string());
        let found = self.map.get(host).cloned();
        Box::pin(async move { found.ok_or_else(|| io::Error::other("no such host")) })
    }
}

/// Records every URL it is asked about and refuses those containing `deny`.
#[derive(Default)]
pub struct Recorder {
    pub urls: Mutex<Vec<String>>,
    pub deny: Option<String>,
}

impl Recorder {
    pub fn denying(fragment: &str) -> Self {
        Recorder {
            urls: Mutex::new(Vec::new()),
            deny: Some(fragment.to_string()),
        }
    }
    pub fn urls(&self) -> Vec<String> {
        self.urls.lock().unwrap().clone()
    }
}

impl Authorize for Recorder {
    fn authorize(&self, url: &Url) -> Result<(), String> {
        self.urls.lock().unwrap().push(url.to_string());
        match &self.deny {
            Some(d) if url.as_str().contains(d.as_str()) => Err(format!("no grant for {url}")),
            _ => Ok(()),
        }
    }
}

pub fn allow_all(_: &Url) -> Result<(), String> {
    Ok(())
}

pub fn consent(targets: &[LocalTarget]) -> Consent {
    Consent {
        local: targets.to_vec(),
    }
}

pub fn airlock() -> Airlock {
    Airlock::new(AirlockConfig::default()).unwrap()
}

pub fn get(url: &str) -> EgressRequest {
    EgressRequest {
        method: "GET".into(),
        url: url.into(),
        timeout: Some(Duration::from_secs(10)),
        ..Default::default()
    }
}

/// `(URL host part, range the refusal must name)`.
pub const REFUSED: &[(&str, &str)] = &[
    ("127.0.0.1", "127.0.0.0/8"),
    ("0x7f.1", "127.0.0.0/8"),
    ("2130706433", "127.0.0.0/8"),
    ("0177.0.0.1", "127.0.0.0/8"),
    ("127.1", "127.0.0.0/8"),
    ("[::1]", "loopback"),
    ("[::ffff:127.0.0.1]", "127.0.0.0/8"),
    ("[::ffff:7f00:1]", "127.0.0.0/8"),
    ("[64:ff9b::7f00:1]", "127.0.0.0/8"),
    ("[2002:7f00:1::]", "127.0.0.0/8"),
    ("[::127.0.0.1]", "::/96"),
    ("169.254.169.254", "169.254.0.0/16"),
    ("10.0.0.1", "10.0.0.0/8"),
    ("100.64.0.1", "100.64.0.0/10"),
    ("192.168.1.1", "192.168.0.0/16"),
    ("172.16.0.1", "172.16.0.0/12"),
    ("[fe80::1]", "fe80::/10"),
    ("[fc00::1]", "fc00::/7"),
    ("[fd12:3456::1]", "fc00::/7"),
    ("0.0.0.0", "0.0.0.0/8"),
    ("[::]", "unspecified"),
    ("224.0.0.1", "224.0.0.0/4"),
    ("255.255.255.255", "255.255.255.255/32"),
    ("198.18.0.1", "198.18.0.0/15"),
    ("192.0.2.1", "192.0.2.0/24"),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "2001::/32"),
    ("[2001:db8::1]", "2001:db8::/32"),
    ("[ff02::1]", "ff00::/8"),
];

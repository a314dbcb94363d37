//! A static file server on loopback, as any registry or release host would be: GET of a file
//! under its root answers 200 with the bytes, anything else 404. It counts requests (and bytes
//! sent) so a test can show a download happened, or did not; a throttled one sends bodies
//! slowly, so a test can interrupt a download in the middle.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct StaticServer {
    pub url: String,
    hits: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
}

/// How a throttled server sends a body: `chunk` bytes, then a pause of `pause`.
#[derive(Clone, Copy)]
pub struct Throttle {
    pub chunk: usize,
    pub pause: Duration,
}

impl StaticServer {
    pub fn start(root: &Path) -> StaticServer {
        StaticServer::start_with(root, None)
    }

    pub fn start_throttled(root: &Path, throttle: Throttle) -> StaticServer {
        StaticServer::start_with(root, Some(throttle))
    }

    fn start_with(root: &Path, throttle: Option<Throttle>) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the static server");
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        let (root, counter, sent_counter) = (root.to_path_buf(), hits.clone(), sent.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let (root, sent) = (root.clone(), sent_counter.clone());
                std::thread::spawn(move || serve(stream, &root, throttle, &sent));
            }
        });
        StaticServer { url, hits, sent }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Body bytes written to clients so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

fn serve(
    mut stream: std::net::TcpStream,
    root: &Path,
    throttle: Option<Throttle>,
    sent: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // The rest of the head.
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => break,
            Ok(_) if h == "\r\n" || h == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let file: Option<PathBuf> = (line.starts_with("GET ") && !path.contains(".."))
        .then(|| root.join(path.trim_start_matches('/')))
        .filter(|p| p.is_file());
    let (status, body) = match file.and_then(|p| std::fs::read(p).ok()) {
        Some(bytes) => ("200 OK", bytes),
        None => ("404 Not Found", b"not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n",
        body.len()
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = throttle.map_or(body.len().max(1), |t| t.chunk.max(1));
    for part in body.chunks(chunk) {
        if stream.write_all(part).is_err() {
            return;
        }
        sent.fetch_add(part.len(), Ordering::SeqCst);
        if let Some(t) = throttle {
            std::thread::sleep(t.pause);
        }
    }
}

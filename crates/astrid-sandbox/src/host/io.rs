//! `astrid:io`: the streams `astrid:net` and `astrid:http` open, read, written and waited on
//! through one package. Handles come from one sequence per invocation (`next_handle`), so a
//! handle is a connection, a response body or a request body being written, never two.
//! Nothing here is gated or audited: opening the stream was the checked, recorded effect, and
//! this only moves its bytes (the same rule as `astrid:net`'s reads and writes).

use std::collections::HashSet;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt as _};
use futures_util::FutureExt as _;

use super::http::HttpFailure;
use super::HostState;
use crate::bindings::astrid::io::poll::Host as PollHost;
use crate::bindings::astrid::io::streams::{Host as StreamsHost, StreamError};
use crate::bindings::astrid::net::net::{ErrorCode as NetCode, Host as NetHost};
use astrid_egress::EgressError;

fn from_net(e: NetCode) -> StreamError {
    match e {
        NetCode::UnknownHandle => StreamError::UnknownHandle,
        NetCode::Timeout(m) => StreamError::Timeout(m),
        NetCode::Denied(m)
        | NetCode::InvalidArgument(m)
        | NetCode::Connection(m)
        | NetCode::Failed(m) => StreamError::Failed(m),
    }
}

fn from_http(e: HttpFailure) -> StreamError {
    match e {
        HttpFailure::UnknownHandle => StreamError::UnknownHandle,
        HttpFailure::Egress(EgressError::Timeout(m)) => StreamError::Timeout(m),
        HttpFailure::Egress(
            EgressError::Denied(m)
            | EgressError::InvalidArgument(m)
            | EgressError::Connection(m)
            | EgressError::TooLarge(m)
            | EgressError::Integrity(m),
        ) => StreamError::Failed(m),
    }
}

impl StreamsHost for HostState {
    fn read(
        &mut self,
        stream: u64,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> Result<Vec<u8>, StreamError> {
        if self.streams.contains_key(&stream) {
            return NetHost::receive(self, stream, max_bytes, timeout_ms).map_err(from_net);
        }
        if self.uploads.contains_key(&stream) {
            return Err(StreamError::Unsupported(
                "a request body is written, not read".into(),
            ));
        }
        let asked = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
        self.http_read_within(stream, max_bytes, asked)
            .map_err(from_http)
    }

    fn write(&mut self, stream: u64, data: Vec<u8>) -> Result<(), StreamError> {
        if self.streams.contains_key(&stream) {
            return NetHost::send(self, stream, data).map_err(from_net);
        }
        if self.uploads.contains_key(&stream) {
            return self.http_upload_write(stream, data).map_err(from_http);
        }
        if self.http.contains_key(&stream) {
            return Err(StreamError::Unsupported(
                "a response body is read, not written".into(),
            ));
        }
        Err(StreamError::UnknownHandle)
    }

    fn close(&mut self, stream: u64) {
        if self.streams.contains_key(&stream) {
            NetHost::close(self, stream);
        } else if self.uploads.remove(&stream).is_none() {
            // An unfinished body is abandoned: dropping it closes its connection.
            self.http_close(stream);
        }
    }
}

impl PollHost for HostState {
    fn ready(&mut self, handles: Vec<u64>, timeout_ms: u32) -> Result<Vec<u32>, StreamError> {
        // A handle listed twice is waited on once and reported at every position it holds.
        let mut wanted: HashSet<u64> = HashSet::new();
        for h in &handles {
            if self.uploads.contains_key(h) {
                return Err(StreamError::Unsupported(
                    "a request body is written, not waited on".into(),
                ));
            }
            if !self.streams.contains_key(h) && !self.http.contains_key(h) {
                return Err(StreamError::UnknownHandle);
            }
            wanted.insert(*h);
        }
        if handles.is_empty() {
            return Ok(Vec::new());
        }
        let Some(net) = self.ctx.net.clone() else {
            // Streams exist only where net access does.
            return Err(StreamError::UnknownHandle);
        };
        let asked = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
        let budget = self.budget(asked);
        let (streams, http) = (&mut self.streams, &mut self.http);
        let readable: Vec<u64> = net.rt.block_on(async {
            let mut waits = FuturesUnordered::new();
            for (_, s) in streams.iter_mut().filter(|(h, _)| wanted.contains(h)) {
                waits.push(async move { s.wait_readable().await }.boxed());
            }
            for (_, r) in http.iter_mut().filter(|(h, _)| wanted.contains(h)) {
                waits.push(async move { r.wait_readable().await }.boxed());
            }
            let _ = match budget {
                Some(b) => tokio::time::timeout(b, waits.next()).await.ok(),
                None => Some(waits.next().await),
            };
            drop(waits);
            // Whatever else is ready now, without waiting: one poll each.
            let mut ready = Vec::new();
            for (h, s) in streams.iter_mut().filter(|(h, _)| wanted.contains(h)) {
                let _ = s.wait_readable().now_or_never();
                if s.is_readable() {
                    ready.push(*h);
                }
            }
            for (h, r) in http.iter_mut().filter(|(h, _)| wanted.contains(h)) {
                let _ = r.wait_readable().now_or_never();
                if r.is_readable() {
                    ready.push(*h);
                }
            }
            ready
        });
        if readable.is_empty() && self.budget(None).is_some_and(|d| d.is_zero()) {
            self.deadline_hit = true;
            return Err(StreamError::Timeout(
                "the invocation's deadline passed while waiting".into(),
            ));
        }
        Ok(handles
            .iter()
            .enumerate()
            .filter(|(_, h)| readable.contains(h))
            .map(|(i, _)| i as u32)
            .collect())
    }
}

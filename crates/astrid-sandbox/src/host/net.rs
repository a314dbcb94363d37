//! `astrid:net`: TCP and TLS client connections through the airlock. The connect is one hop
//! through the same gate as an HTTP request (`HopGate`: the manifest's `net` ceiling, then
//! the operator's local-egress consent or a `net:connect` token or a person, audited as
//! `net.connect`), then the airlock's address policy; reads and writes on an open
//! connection are not gated again (the connection is the grant) and are bounded by the
//! invocation's deadline.

use std::sync::atomic::Ordering;
use std::time::Duration;

use astrid_egress::EgressError;

use super::http::HopGate;
use super::{within, HostState};
use crate::bindings::astrid::net::net::{ConnectOptions, ErrorCode, Host};

const OP: &str = "net.connect";
/// Connections one invocation may hold open.
const MAX_STREAMS: usize = 8;
/// The most one `receive` hands the guest.
const MAX_RECEIVE: usize = 1024 * 1024;

fn code(e: EgressError) -> ErrorCode {
    match e {
        EgressError::Denied(m) => ErrorCode::Denied(m),
        EgressError::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
        EgressError::Timeout(m) => ErrorCode::Timeout(m),
        EgressError::Connection(m) | EgressError::TooLarge(m) | EgressError::Integrity(m) => {
            ErrorCode::Connection(m)
        }
    }
}

impl HostState {
    /// How long an I/O call may wait: `asked` (0: as long as the invocation may), capped
    /// by the invocation's deadline; `None` for no limit (a background loop asking 0).
    fn io_budget(&self, asked_ms: u32) -> Option<Duration> {
        let asked = (asked_ms > 0).then(|| Duration::from_millis(u64::from(asked_ms)));
        self.budget(asked)
    }

    fn io_timed_out(&mut self, what: &str) -> ErrorCode {
        if self.budget(None).is_some_and(|d| d.is_zero()) {
            self.deadline_hit = true;
        }
        ErrorCode::Timeout(format!("{what} took longer than allowed"))
    }
}

impl Host for HostState {
    fn connect(
        &mut self,
        host: String,
        port: u16,
        options: ConnectOptions,
    ) -> Result<u64, ErrorCode> {
        let Some(net) = self.ctx.net.clone() else {
            let reason = format!(
                "capsule `{}` declares no [capabilities] net targets",
                self.ctx.capsule()
            );
            self.denied(OP, &format!("net:connect:{host}:{port}"), &reason);
            return Err(ErrorCode::Denied(reason));
        };
        if self.streams.len() >= MAX_STREAMS {
            return Err(ErrorCode::InvalidArgument(format!(
                "at most {MAX_STREAMS} open connections per invocation; close some first"
            )));
        }
        let tls = options.tls;
        let gate = HopGate::new(
            self,
            net.clone(),
            OP,
            "open",
            Box::new(move |url| {
                let kind = if tls {
                    "a TLS connection"
                } else {
                    "a connection"
                };
                let host = url.host_str().unwrap_or_default();
                let port = url.port_or_known_default().unwrap_or_default();
                format!("{kind} to {host}:{port}")
            }),
        );
        let budget = self.io_budget(options.timeout_ms);
        let result =
            net.rt.block_on(
                net.airlock
                    .connect(&host, port, tls, &net.consent, &gate, budget),
            );
        if gate.deadline_hit.load(Ordering::Relaxed) {
            self.deadline_hit = true;
        }
        let stream = result.map_err(|e| {
            let target = astrid_egress::stream_target(&host, port)
                .ok()
                .and_then(|u| super::http::host_port(&u))
                .map_or_else(|| format!("{host}:{port}"), |(h, p)| format!("{h}:{p}"));
            match &e {
                // The gate records its own refusals; this records the airlock's.
                EgressError::Denied(reason) if !gate.refused.load(Ordering::Relaxed) => {
                    self.denied(
                        OP,
                        &format!("net:connect:{target}"),
                        &format!("airlock: {reason}"),
                    );
                }
                EgressError::InvalidArgument(reason) => {
                    self.denied(OP, &format!("net:connect:{target}"), reason);
                }
                _ => {}
            }
            if matches!(e, EgressError::Timeout(_)) {
                return self.io_timed_out("connecting");
            }
            code(e)
        })?;
        let handle = self.next_handle;
        self.next_handle += 1;
        self.streams.insert(handle, stream);
        Ok(handle)
    }

    fn send(&mut self, handle: u64, data: Vec<u8>) -> Result<(), ErrorCode> {
        let Some(net) = self.ctx.net.clone() else {
            return Err(ErrorCode::UnknownHandle);
        };
        let budget = self.io_budget(0);
        let Some(stream) = self.streams.get_mut(&handle) else {
            return Err(ErrorCode::UnknownHandle);
        };
        match within(&net.rt, budget, stream.write_all(&data)) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => {
                self.streams.remove(&handle);
                Err(code(e))
            }
            // Part of the data may have gone: the stream cannot be used again.
            None => {
                self.streams.remove(&handle);
                Err(self.io_timed_out("sending"))
            }
        }
    }

    fn receive(
        &mut self,
        handle: u64,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> Result<Vec<u8>, ErrorCode> {
        let Some(net) = self.ctx.net.clone() else {
            return Err(ErrorCode::UnknownHandle);
        };
        let budget = self.io_budget(timeout_ms);
        let Some(stream) = self.streams.get_mut(&handle) else {
            return Err(ErrorCode::UnknownHandle);
        };
        let read = stream.read((max_bytes as usize).clamp(1, MAX_RECEIVE));
        match within(&net.rt, budget, read) {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(e)) => {
                self.streams.remove(&handle);
                Err(code(e))
            }
            // A quiet peer within the guest's own wait is not the end of the connection:
            // it stays open and the guest may ask again.
            None => Err(self.io_timed_out("receiving")),
        }
    }

    fn close(&mut self, handle: u64) {
        if let (Some(mut stream), Some(net)) = (self.streams.remove(&handle), self.ctx.net.clone())
        {
            net.rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
            });
        }
    }
}

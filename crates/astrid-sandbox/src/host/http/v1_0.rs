//! `astrid:http@1.0.0`, frozen: the first release's request record (a timeout and nothing
//! else) onto the core, with the operator's defaults for everything 1.1 lets a caller choose.

use super::{Head, HttpFailure, SendArgs};
use crate::bindings::astrid::http1_0_0::http::{ErrorCode, Header, Host, Request, ResponseHead};
use crate::host::HostState;
use astrid_egress::EgressError;

fn code(f: HttpFailure) -> ErrorCode {
    match f {
        HttpFailure::UnknownHandle => ErrorCode::UnknownHandle,
        HttpFailure::Egress(e) => match e {
            EgressError::Denied(m) => ErrorCode::Denied(m),
            EgressError::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
            EgressError::Timeout(m) => ErrorCode::Timeout(m),
            EgressError::TooLarge(m) => ErrorCode::TooLarge(m),
            EgressError::Connection(m) => ErrorCode::Connection(m),
            // 1.0 cannot ask for integrity, so this does not arise; were it to, the closest
            // 1.0 name is a failed exchange.
            EgressError::Integrity(m) => ErrorCode::Connection(m),
        },
    }
}

fn head(h: Head) -> ResponseHead {
    ResponseHead {
        status: h.status,
        headers: h
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        final_url: h.final_url,
    }
}

impl Host for HostState {
    fn send(&mut self, req: Request) -> Result<(u64, ResponseHead), ErrorCode> {
        let args = SendArgs {
            method: req.method,
            url: req.url,
            headers: req.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: req.body,
            timeout_ms: req.timeout_ms,
            redirects: None,
            max_body: None,
            https_only: false,
            integrity: None,
        };
        let (handle, h) = self.http_send(args).map_err(code)?;
        Ok((handle, head(h)))
    }

    fn read_body(&mut self, handle: u64, max_bytes: u32) -> Result<Vec<u8>, ErrorCode> {
        self.http_read(handle, max_bytes).map_err(code)
    }

    fn close(&mut self, handle: u64) {
        self.http_close(handle);
    }
}

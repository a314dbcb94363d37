//! `astrid:http@1.2.0`: `@1.1.0`'s request options, and requests whose body is written as it
//! goes (`start`, `finish`; the writes are `astrid:io`'s), onto the core.

use super::{Head, HttpFailure, SendArgs};
use crate::bindings::astrid::http1_2_0::http::{
    ErrorCode, Header, Host, RedirectPolicy, Request, ResponseHead,
};
use crate::host::HostState;
use astrid_egress::{EgressError, Redirects};

fn code(f: HttpFailure) -> ErrorCode {
    match f {
        HttpFailure::UnknownHandle => ErrorCode::UnknownHandle,
        HttpFailure::Egress(e) => match e {
            EgressError::Denied(m) => ErrorCode::Denied(m),
            EgressError::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
            EgressError::Timeout(m) => ErrorCode::Timeout(m),
            EgressError::TooLarge(m) => ErrorCode::TooLarge(m),
            EgressError::Connection(m) => ErrorCode::Connection(m),
            EgressError::Integrity(m) => ErrorCode::IntegrityMismatch(m),
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

fn args(req: Request) -> SendArgs {
    let o = req.options;
    SendArgs {
        method: req.method,
        url: req.url,
        headers: req.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body: req.body,
        timeout_ms: o.timeout_ms,
        redirects: match o.redirects {
            RedirectPolicy::HostDefault => None,
            RedirectPolicy::None => Some(Redirects::Manual),
            RedirectPolicy::Follow(n) => Some(Redirects::Follow(n)),
        },
        max_body: (o.max_body_bytes > 0).then_some(o.max_body_bytes),
        https_only: o.https_only,
        integrity: o.integrity,
    }
}

impl Host for HostState {
    fn send(&mut self, req: Request) -> Result<(u64, ResponseHead), ErrorCode> {
        let (handle, h) = self.http_send(args(req)).map_err(code)?;
        Ok((handle, head(h)))
    }

    fn start(&mut self, req: Request) -> Result<u64, ErrorCode> {
        self.http_start(args(req)).map_err(code)
    }

    fn finish(&mut self, body: u64) -> Result<(u64, ResponseHead), ErrorCode> {
        let (handle, h) = self.http_finish(body).map_err(code)?;
        Ok((handle, head(h)))
    }

    fn read_body(&mut self, handle: u64, max_bytes: u32) -> Result<Vec<u8>, ErrorCode> {
        self.http_read(handle, max_bytes).map_err(code)
    }

    fn close(&mut self, handle: u64) {
        self.http_close(handle);
    }
}

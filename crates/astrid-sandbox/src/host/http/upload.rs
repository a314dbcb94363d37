//! Requests whose body the capsule writes as it goes (`astrid:http@1.2.0` `start` and
//! `finish`, with `astrid:io` writes in between). The request is prepared, gated and audited
//! exactly as `send`'s first hop; only the body differs. The body's handle comes from the
//! same sequence as responses and connections, so `astrid:io` finds it.

use astrid_egress::{EgressError, Redirects};

use super::{Head, HttpFailure, SendArgs};
use crate::host::HostState;

impl HostState {
    pub(crate) fn http_start(&mut self, mut req: SendArgs) -> Result<u64, HttpFailure> {
        if matches!(req.redirects, Some(Redirects::Follow(n)) if n > 0) {
            return Err(EgressError::InvalidArgument(
                "a streamed body cannot be sent again, so redirects are not followed: ask \
                 for `none` (a 3xx is the answer)"
                    .into(),
            )
            .into());
        }
        req.redirects = Some(Redirects::Manual);
        let url = req.url.clone();
        let (net, request, gate) = self.prepare(req)?;
        let result = net
            .rt
            .block_on(net.airlock.start(request, &net.consent, &gate));
        let upload = self.settle(&url, &gate, result)?;
        let handle = self.next_handle;
        self.next_handle += 1;
        self.uploads.insert(handle, upload);
        Ok(handle)
    }

    /// Adds `data` to the body (under the request's deadline). A failed write abandons the
    /// request.
    pub(crate) fn http_upload_write(
        &mut self,
        handle: u64,
        data: Vec<u8>,
    ) -> Result<(), HttpFailure> {
        let Some(net) = self.ctx.net.clone() else {
            return Err(HttpFailure::UnknownHandle);
        };
        let Some(upload) = self.uploads.get_mut(&handle) else {
            return Err(HttpFailure::UnknownHandle);
        };
        let written = net.rt.block_on(upload.write(data));
        if written.is_err() {
            self.uploads.remove(&handle);
        }
        written.map_err(Into::into)
    }

    pub(crate) fn http_finish(&mut self, handle: u64) -> Result<(u64, Head), HttpFailure> {
        let Some(net) = self.ctx.net.clone() else {
            return Err(HttpFailure::UnknownHandle);
        };
        let Some(upload) = self.uploads.remove(&handle) else {
            return Err(HttpFailure::UnknownHandle);
        };
        let url = upload.url().to_string();
        let response = net.rt.block_on(upload.finish()).map_err(|e| {
            // The hop was allowed (and audited); a body other than the pinned one is
            // recorded too, as for `send`.
            if let EgressError::Integrity(reason) = &e {
                self.denied(super::OP, &url, &format!("integrity: {reason}"));
            }
            if matches!(e, EgressError::Timeout(_))
                && self.budget(None).is_some_and(|d| d.is_zero())
            {
                self.deadline_hit = true;
            }
            HttpFailure::from(e)
        })?;
        Ok(self.hold(response))
    }
}

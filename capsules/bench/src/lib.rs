//! `bench`: tight loops over host calls, timed inside the guest, for the runtime benchmarks.
#![forbid(unsafe_code)]

use std::hint::black_box;

use astrid_sdk::prelude::*;
use astrid_sdk::time::Instant;

#[derive(Default)]
struct Bench;

fn iterations(event: &Event) -> Result<u64, CapsuleError> {
    event
        .text()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| CapsuleError::invalid("payload must be a decimal iteration count"))
}

fn elapsed_reply(start: Instant) -> Option<Vec<u8>> {
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Some(ns.to_string().into_bytes())
}

#[capsule]
impl Bench {
    /// N calls of `monotonic-ns`; replies with the elapsed nanoseconds.
    #[astrid::handler]
    fn nop_loop(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let n = iterations(event)?;
        let start = Instant::now();
        for _ in 0..n {
            black_box(time::monotonic_ns());
        }
        Ok(elapsed_reply(start))
    }

    /// Sets `k` once, then N `kv::get`s; replies with the elapsed nanoseconds of the gets.
    #[astrid::handler]
    fn kv_loop(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let n = iterations(event)?;
        kv::set("k", b"v")?;
        let start = Instant::now();
        for _ in 0..n {
            black_box(kv::get("k")?);
        }
        Ok(elapsed_reply(start))
    }

    /// Payload `N URL`: N sequential `GET URL`s through the airlock, each body read whole;
    /// replies with the elapsed nanoseconds.
    #[astrid::handler]
    fn http_loop(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let text = event.text().unwrap_or_default();
        let (n, url) = text
            .trim()
            .split_once(' ')
            .and_then(|(n, url)| Some((n.parse::<u64>().ok()?, url)))
            .ok_or_else(|| CapsuleError::invalid("payload must be `N URL`"))?;
        let start = Instant::now();
        for _ in 0..n {
            let body = http::Request::get(url).send()?.body()?;
            black_box(body);
        }
        Ok(elapsed_reply(start))
    }

    /// Round-trip latency probe.
    #[astrid::handler]
    fn pong(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(event.payload.clone()))
    }
}

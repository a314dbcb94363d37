//! Guest→host call cost. The `bench` capsule calls a host function N times in a loop and
//! reports the elapsed nanoseconds it measured itself, so the per-call number excludes event
//! delivery and instantiation. Criterion's "time" is therefore nanoseconds per host call.
//!
//! - `nop`: `sys.monotonic-ns`, the cheapest import (no arguments, a u64 back).
//! - `kv_get`: `kv.get` of a 1-byte value: the manifest gate plus a SQLite read.
//! - `http_1k`: `GET` of a 1 KiB body from a loopback server through `astrid:http@1.1.0` and
//!   the airlock (manifest ceiling, the operator's consent, a durable signed audit entry,
//!   address policy, a fresh TCP connection, the body read whole).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use astrid_benches::{
    or_die, parse_ns, verdict, Capsules, InProcessKernel, HTTP_LOOP, KV_LOOP, NOP_LOOP,
};
use criterion::{criterion_group, criterion_main, Criterion};

/// Target from the product brief: a no-op host call costs at most 1 µs.
const NOP_TARGET_NS: f64 = 1_000.0;

fn host_calls(c: &mut Criterion) {
    let capsules = or_die("build", Capsules::build(&["bench"]));
    let kernel = or_die(
        "boot",
        InProcessKernel::boot(vec![capsules.upload("bench")]),
    );
    // The first invocation for a principal runs the capsule's install hook; keep it out of the
    // measurements.
    or_die("first call", kernel.guest_loop_ns(NOP_LOOP, 1));

    let cases = [
        ("nop", NOP_LOOP, 2_000_000u64),
        ("kv_get", KV_LOOP, 200_000),
    ];
    let mut group = c.benchmark_group("host_calls");
    for (name, topic, _) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                Duration::from_nanos(or_die(name, kernel.guest_loop_ns(topic, iters)))
            })
        });
    }
    group.finish();

    let url = serve_1k();
    let target = url.trim_start_matches("http://").trim_end_matches("/1k");
    or_die("egress allow", kernel.egress_allow("bench", target));
    let http = |n: u64| {
        let reply = kernel.request(HTTP_LOOP, format!("{n} {url}").into_bytes())?;
        parse_ns(HTTP_LOOP, &reply)
    };
    or_die("first http call", http(1));
    let mut group = c.benchmark_group("host_calls");
    group.sample_size(10);
    group.bench_function("http_1k", |b| {
        b.iter_custom(|iters| Duration::from_nanos(or_die("http_1k", http(iters))))
    });
    group.finish();

    // One long loop per case, best of three, as a plain number for docs/PERFORMANCE.md.
    for (name, topic, n) in cases {
        let best = (0..3)
            .map(|_| or_die(name, kernel.guest_loop_ns(topic, n)))
            .min()
            .expect("three runs");
        let per_call = best as f64 / n as f64;
        let target = if name == "nop" {
            format!(
                " (target ≤ {NOP_TARGET_NS:.0} ns: {})",
                verdict(per_call <= NOP_TARGET_NS)
            )
        } else {
            String::new()
        };
        println!(
            "host_calls/{name}: {per_call:.1} ns per call ({n} calls timed in the guest, \
             best of 3){target}"
        );
    }
    const HTTP_N: u64 = 300;
    let best = (0..3)
        .map(|_| or_die("http_1k", http(HTTP_N)))
        .min()
        .expect("three runs");
    println!(
        "host_calls/http_1k: {:.1} µs per request ({HTTP_N} sequential GETs of 1 KiB on \
         loopback through the airlock, timed in the guest, best of 3)",
        best as f64 / HTTP_N as f64 / 1000.0
    );
}

/// A loopback HTTP/1.1 server answering every request with 1 KiB, one connection each (the
/// airlock opens a fresh one per request). Its thread lives as long as the benchmark.
fn serve_1k() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the loopback server");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        let mut response =
            b"HTTP/1.1 200 OK\r\ncontent-length: 1024\r\nconnection: close\r\n\r\n".to_vec();
        response.extend_from_slice(&[b'x'; 1024]);
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(&response);
        }
    });
    format!("http://127.0.0.1:{port}/1k")
}

criterion_group!(benches, host_calls);
criterion_main!(benches);

//! Prometheus metrics in the text exposition format, kept by hand: a handful of counters and
//! one latency histogram do not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    /// (route, method, status) → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// route → latency until the response head.
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub rate_limited: AtomicU64,
    pub open_streams: AtomicI64,
    /// Streams ended because their reader fell too far behind.
    pub slow_readers: AtomicU64,
}

/// Counts an open stream for as long as it lives.
pub struct StreamGuard<'a>(&'a Metrics);

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn stream(&self) -> StreamGuard<'_> {
        self.open_streams.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self)
    }

    pub fn record(&self, route: &str, method: &str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        let mut lat = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = lat.entry(route.to_string()).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The exposition text; `gauges` are values owned elsewhere (name, help, value).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP astrid_gateway_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE astrid_gateway_requests_total counter\n");
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "astrid_gateway_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        out.push_str(
            "# HELP astrid_gateway_request_duration_seconds Time until the response head.\n",
        );
        out.push_str("# TYPE astrid_gateway_request_duration_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let r = escape(route);
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "astrid_gateway_request_duration_seconds_bucket{{route=\"{r}\",le=\"{le}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "astrid_gateway_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "astrid_gateway_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "astrid_gateway_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count
            );
        }
        let counters = [
            (
                "astrid_gateway_rate_limited_total",
                "Requests refused with 429.",
                self.rate_limited.load(Ordering::Relaxed) as f64,
            ),
            (
                "astrid_gateway_slow_readers_total",
                "Streams ended because the reader fell behind.",
                self.slow_readers.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        let open = self.open_streams.load(Ordering::Relaxed) as f64;
        let own = [(
            "astrid_gateway_open_streams",
            "Event streams being served.",
            open,
        )];
        for (name, help, v) in own.iter().chain(gauges) {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_latency_render_in_the_exposition_format() {
        let m = Metrics::default();
        m.record("/v1/threads", "GET", 200, Duration::from_millis(2));
        m.record("/v1/threads", "GET", 200, Duration::from_millis(200));
        let _s = m.stream();
        let text = m.render(&[("astrid_gateway_pooled_connections", "Pooled.", 3.0)]);
        assert!(text.contains(
            "astrid_gateway_requests_total{route=\"/v1/threads\",method=\"GET\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "astrid_gateway_request_duration_seconds_bucket{route=\"/v1/threads\",le=\"0.0025\"} 1\n"
        ));
        assert!(text.contains(
            "astrid_gateway_request_duration_seconds_bucket{route=\"/v1/threads\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("astrid_gateway_open_streams 1\n"));
        assert!(text.contains("astrid_gateway_pooled_connections 3\n"));
    }
}

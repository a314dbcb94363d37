//! Latency distributions for the custom passes that print percentiles beside criterion's mean.

use std::fmt;
use std::time::{Duration, Instant};

use crate::BenchError;

/// Order statistics of a set of latencies (nearest-rank percentiles).
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub mean: Duration,
    pub min: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    /// `None` for an empty set (criterion's `--list` or a filtered-out run records nothing).
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let rank = |p: f64| sorted[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        let total: Duration = sorted.iter().sum();
        Some(Summary {
            n,
            mean: total / n as u32,
            min: sorted[0],
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: sorted[n - 1],
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} p50 {} p90 {} p99 {} (mean {}, min {}, max {})",
            self.n,
            fmt_duration(self.p50),
            fmt_duration(self.p90),
            fmt_duration(self.p99),
            fmt_duration(self.mean),
            fmt_duration(self.min),
            fmt_duration(self.max),
        )
    }
}

/// Runs `f` `n` times back to back and returns each call's wall time.
pub fn time_each(
    n: usize,
    mut f: impl FnMut() -> Result<(), BenchError>,
) -> Result<Vec<Duration>, BenchError> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed());
    }
    Ok(samples)
}

/// The median (upper median for an even count); zero for an empty set.
pub fn median(samples: &[Duration]) -> Duration {
    Summary::of(samples).map_or(Duration::ZERO, |s| s.p50)
}

/// Three significant digits in a readable unit: `812 ns`, `81.2 µs`, `8.12 ms`, `123 ms`.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let decimals = match value {
        v if v < 10.0 && unit != "ns" => 2,
        v if v < 100.0 && unit != "ns" => 1,
        _ => 0,
    };
    format!("{value:.decimals$} {unit}")
}

pub fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "FAIL"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = Summary::of(&samples).unwrap();
        assert_eq!(s.n, 100);
        assert_eq!(s.min, Duration::from_micros(1));
        assert_eq!(s.p50, Duration::from_micros(50));
        assert_eq!(s.p90, Duration::from_micros(90));
        assert_eq!(s.p99, Duration::from_micros(99));
        assert_eq!(s.max, Duration::from_micros(100));
        assert_eq!(s.mean, Duration::from_nanos(50_500));
        assert!(Summary::of(&[]).is_none());
        assert_eq!(
            median(&[Duration::from_millis(3)]),
            Duration::from_millis(3)
        );
    }

    #[test]
    fn durations_print_in_a_readable_unit() {
        assert_eq!(fmt_duration(Duration::from_nanos(812)), "812 ns");
        assert_eq!(fmt_duration(Duration::from_nanos(81_240)), "81.2 µs");
        assert_eq!(fmt_duration(Duration::from_micros(8_123)), "8.12 ms");
        assert_eq!(fmt_duration(Duration::from_micros(150_000)), "150 ms");
        assert_eq!(fmt_duration(Duration::from_millis(1_234)), "1.23 s");
    }
}

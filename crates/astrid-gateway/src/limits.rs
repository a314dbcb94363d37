//! Per-token rate limiting: a token bucket per bearer string (keyed by its hash, checked
//! before the token is, so a flood of one bad token costs the daemon nothing either).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `per_second` requests on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 50.0,
            burst: 100,
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets for at most `MAX_KEYS` tokens; beyond that, full (idle) buckets are forgotten,
/// which only ever errs towards letting a request through.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<[u8; 32], Bucket>>,
}

const MAX_KEYS: usize = 100_000;

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket, or says how long until one is available.
    pub fn check(&self, key: [u8; 32], now: Instant) -> Result<(), Duration> {
        let RateLimit { per_second, burst } = self.limit;
        let burst = f64::from(burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(&key) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.last).as_secs_f64() * per_second < burst
            });
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_second).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / per_second.max(f64::MIN_POSITIVE);
            Err(Duration::from_secs_f64(wait.min(86_400.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_with_the_wait_then_refilled() {
        let rl = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        let k = [1; 32];
        for _ in 0..3 {
            rl.check(k, t0).unwrap();
        }
        let wait = rl.check(k, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another token has a bucket of its own.
        rl.check([2; 32], t0).unwrap();
        // Half a second later one request's worth has come back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        rl.check(k, t1).unwrap();
        assert!(rl.check(k, t1).is_err());
    }
}

//! Clocks. A capsule has no clock of its own: both come from `astrid:sys`.

use std::time::Duration;

use crate::bindings::astrid::sys::sys;

/// Milliseconds since the Unix epoch (wall clock; may jump).
pub fn now_ms() -> u64 {
    sys::wall_clock_ms()
}

/// Nanoseconds from a fixed, arbitrary origin; never goes backwards.
pub fn monotonic_ns() -> u64 {
    sys::monotonic_ns()
}

/// A point on the monotonic clock, like `std::time::Instant` (which does not work on
/// `wasm32-unknown-unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The current monotonic time.
    pub fn now() -> Self {
        Self(monotonic_ns())
    }

    /// Time passed since this instant.
    pub fn elapsed(&self) -> Duration {
        Self::now().duration_since(*self)
    }

    /// Time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Nanoseconds since the clock's origin.
    pub fn as_nanos(&self) -> u64 {
        self.0
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, d: Duration) -> Instant {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }
}

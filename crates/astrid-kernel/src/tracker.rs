//! Counting things in flight (invocations, connections) so shutdown can wait for them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default)]
pub(crate) struct Tracker {
    running: AtomicU64,
    idle: tokio::sync::Notify,
}

impl Tracker {
    pub fn begin(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    pub fn end(&self) {
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    pub fn running(&self) -> u64 {
        self.running.load(Ordering::Acquire)
    }

    /// Waits until nothing is running, or `limit` passes. Returns how many are still running.
    pub async fn wait_idle(&self, limit: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so an `end` between the check and the await
            // still wakes us.
            notified.as_mut().enable();
            if self.running() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.running();
            }
        }
    }
}

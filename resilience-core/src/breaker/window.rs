//! The sliding window of the ratio mode: attempts and failed attempts over the last
//! `sampling_window`, in ten buckets each stamped with the period it counts.
//!
//! Counting an attempt is one atomic add, with no lock, so a success in ratio mode costs
//! the call path little more than in consecutive mode. A bucket found holding an old
//! period is cleared by whoever finds it; under a race at a bucket's turnover a count made
//! just before the clearing can be lost, which moves the ratio by one attempt for that
//! instant.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

const BUCKETS: usize = 10;

#[derive(Debug, Default)]
struct Bucket {
    period: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
}

/// Attempts and failures over a sliding window.
#[derive(Debug)]
pub(super) struct SamplingWindow {
    origin: Instant,
    bucket_nanos: AtomicU64,
    buckets: [Bucket; BUCKETS],
}

impl SamplingWindow {
    pub(super) fn new(window: Duration) -> SamplingWindow {
        let w = SamplingWindow {
            origin: Instant::now(),
            bucket_nanos: AtomicU64::new(1),
            buckets: Default::default(),
        };
        w.set_length(window);
        w
    }

    /// Changes the window's length (a reload); counts on the old scale are dropped as
    /// their buckets come round again.
    pub(super) fn set_length(&self, window: Duration) {
        let nanos = (window / BUCKETS as u32)
            .max(Duration::from_millis(1))
            .as_nanos();
        self.bucket_nanos
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The current period (1-based, so a cleared bucket's 0 never matches) and its bucket.
    fn bucket(&self, now: Instant) -> (u64, &Bucket) {
        let nanos = self.bucket_nanos.load(Ordering::Relaxed);
        let elapsed = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX);
        let period = elapsed / nanos + 1;
        let bucket = &self.buckets[(period % BUCKETS as u64) as usize];
        let seen = bucket.period.load(Ordering::Acquire);
        if seen != period
            && bucket
                .period
                .compare_exchange(seen, period, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            bucket.calls.store(0, Ordering::Release);
            bucket.failures.store(0, Ordering::Release);
        }
        (period, bucket)
    }

    /// Counts one attempt at `now`.
    pub(super) fn record(&self, now: Instant, failed: bool) {
        let (_, bucket) = self.bucket(now);
        bucket.calls.fetch_add(1, Ordering::AcqRel);
        if failed {
            bucket.failures.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Failed attempts and attempts in the window ending at `now`.
    pub(super) fn totals(&self, now: Instant) -> (u32, u32) {
        let (period, _) = self.bucket(now);
        let oldest = period.saturating_sub(BUCKETS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| (oldest..=period).contains(&b.period.load(Ordering::Acquire)))
            .fold((0u32, 0u32), |(f, c), b| {
                (
                    f.saturating_add(b.failures.load(Ordering::Acquire)),
                    c.saturating_add(b.calls.load(Ordering::Acquire)),
                )
            })
    }

    /// Forgets every count (the breaker closed, or its mode changed).
    pub(super) fn clear(&self) {
        for b in &self.buckets {
            b.period.store(0, Ordering::Release);
            b.calls.store(0, Ordering::Release);
            b.failures.store(0, Ordering::Release);
        }
    }
}

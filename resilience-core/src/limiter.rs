//! Token-bucket rate limiting: protect a dependency from more requests than it can take.
//!
//! A bucket holds up to `burst` tokens and refills continuously at
//! `requests_per_minute / 60` tokens a second; every attempt takes one. Over any window of
//! `t` seconds at most `burst + rate × t` attempts go through.
//!
//! The bucket is kept as one atomic number, its *theoretical arrival time* (the GCRA form
//! of a token bucket): the instant at which the bucket would be full again. Taking a token
//! pushes it one emission interval (`1 / rate`) later, and a token is free while it stays
//! within `burst` intervals of now. So the common case costs one compare-and-swap and no
//! lock, and concurrent callers can never take the same token twice.
//!
//! Waiting callers queue in FIFO order (a fair async mutex admits one at a time to the
//! head of the queue), so no caller starves. A caller whose turn cannot come within its
//! `max_wait` (or its deadline) gives up at once with the time to retry after, instead of
//! waiting to fail; a waiting caller that is cancelled leaves the queue and gives its place
//! back.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::policy::{RateLimitPolicy, WhenLimited};

/// How a permit was obtained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// A token was free.
    Immediate,
    /// The caller waited this long for its token.
    Waited(Duration),
}

/// Why no permit was given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    /// How long until a token is expected to be free for this caller.
    pub retry_after: Duration,
}

/// One token bucket.
///
/// Its settings are atomics so that a policy reload can change them under running calls
/// ([`reconfigure`](Self::reconfigure)); a call racing a reload by nanoseconds may read
/// the old figures.
#[derive(Debug)]
pub struct TokenBucket {
    /// Nanoseconds between two tokens.
    interval: AtomicU64,
    /// How far ahead of now the arrival time may run: `burst × interval`.
    tolerance: AtomicU64,
    burst: AtomicU32,
    /// `when_limited = "reject"`.
    reject: AtomicBool,
    /// `max_wait` in nanoseconds.
    max_wait: AtomicU64,
    origin: Instant,
    /// Theoretical arrival time, in nanoseconds since `origin`.
    tat: AtomicU64,
    queue: tokio::sync::Mutex<()>,
    waiting: AtomicUsize,
}

/// Decrements the waiting count when a waiter leaves, however it leaves.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(policy: &RateLimitPolicy) -> Self {
        let bucket = TokenBucket {
            interval: AtomicU64::new(1),
            tolerance: AtomicU64::new(0),
            burst: AtomicU32::new(1),
            reject: AtomicBool::new(false),
            max_wait: AtomicU64::new(0),
            origin: Instant::now(),
            tat: AtomicU64::new(0),
            queue: tokio::sync::Mutex::new(()),
            waiting: AtomicUsize::new(0),
        };
        bucket.store(policy);
        bucket
    }

    fn store(&self, policy: &RateLimitPolicy) {
        let interval = interval_of(policy);
        let burst = policy.burst.get();
        self.interval.store(interval, Ordering::Relaxed);
        self.tolerance
            .store(interval.saturating_mul(u64::from(burst)), Ordering::Relaxed);
        self.burst.store(burst, Ordering::Relaxed);
        self.reject.store(
            policy.when_limited == WhenLimited::Reject,
            Ordering::Relaxed,
        );
        let max_wait = u64::try_from(policy.max_wait.as_nanos()).unwrap_or(u64::MAX);
        self.max_wait.store(max_wait, Ordering::Relaxed);
    }

    /// Applies a reloaded policy at `now` without handing out a burst: the bucket keeps
    /// its debt (the tokens taken and not yet refilled, now refilling at the new rate),
    /// and a larger `burst` makes room that fills at the new rate instead of at once. So
    /// in any window after the reload, no more calls go through than the new limit
    /// allows (`burst + rate × t`).
    pub fn reconfigure(&self, policy: &RateLimitPolicy, now: Instant) {
        let (old_interval, old_burst) = (
            self.interval.load(Ordering::Relaxed),
            self.burst.load(Ordering::Relaxed),
        );
        let (interval, burst) = (interval_of(policy), policy.burst.get());
        let now = self.nanos(now);
        let room = f64::from(burst.saturating_sub(old_burst));
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let debt = tat.saturating_sub(now) as f64 / old_interval as f64;
            let ahead = ((debt + room) * interval as f64).ceil();
            let next = now.saturating_add(ahead.min(u64::MAX as f64 / 2.0) as u64);
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => tat = actual,
            }
        }
        self.store(policy);
    }

    /// `now` in nanoseconds since the bucket's origin (0 before it).
    pub(crate) fn nanos(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_nanos() as u64
    }

    /// When the bucket started: the origin of [`nanos`](Self::nanos).
    pub(crate) fn origin(&self) -> Instant {
        self.origin
    }

    /// Takes a token if one is free at `now`; otherwise says how long until one is.
    fn try_take(&self, now: Instant) -> Result<(), Duration> {
        self.try_take_at(self.nanos(now))
    }

    /// [`try_take`](Self::try_take) at `now` in nanoseconds since the origin.
    #[inline]
    fn try_take_at(&self, now: u64) -> Result<(), Duration> {
        let interval = self.interval.load(Ordering::Relaxed);
        let tolerance = self.tolerance.load(Ordering::Relaxed);
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let next = tat.max(now).saturating_add(interval);
            if next - now > tolerance {
                return Err(Duration::from_nanos(next - now - tolerance));
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }

    /// Lends no token before `until`, then one, refilling at the policy's rate from there:
    /// the dependency said when it takes the next call, so no caller on this bucket calls
    /// sooner, and they come back one interval apart instead of all at once. A hold that
    /// ends earlier than the bucket's own schedule changes nothing.
    pub fn hold_until(&self, until: Instant) {
        let interval = self.interval.load(Ordering::Relaxed);
        let tolerance = self.tolerance.load(Ordering::Relaxed);
        // A token is free at `t` while `max(tat, t) + interval - t <= tolerance`: at
        // `until` exactly, not before.
        let tat = self
            .nanos(until)
            .saturating_add(tolerance)
            .saturating_sub(interval);
        self.tat.fetch_max(tat, Ordering::AcqRel);
    }

    /// Tokens free at `now` (for health and tests).
    pub fn available(&self, now: Instant) -> f64 {
        let now = self.nanos(now);
        let ahead = self.tat.load(Ordering::Acquire).saturating_sub(now);
        let interval = self.interval.load(Ordering::Relaxed);
        self.tolerance.load(Ordering::Relaxed).saturating_sub(ahead) as f64 / interval as f64
    }

    /// Callers waiting for a token.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Takes a token if one is free at `now` and nobody is queued for one: the fast path,
    /// with no waiting and no `async`.
    pub fn try_acquire(&self, now: Instant) -> bool {
        self.try_acquire_at(self.nanos(now))
    }

    /// [`try_acquire`](Self::try_acquire) at `nanos` since the [`origin`](Self::origin).
    #[inline]
    pub(crate) fn try_acquire_at(&self, nanos: u64) -> bool {
        self.waiting.load(Ordering::Acquire) == 0 && self.try_take_at(nanos).is_ok()
    }

    /// Takes a token at `now`, waiting for one when the policy says `wait`, but never past
    /// `deadline` or `max_wait`. `on_wait` is told the expected wait when the caller starts
    /// waiting.
    pub async fn acquire(
        &self,
        now: Instant,
        deadline: Option<Instant>,
        on_wait: impl FnOnce(Duration),
    ) -> Result<Admission, Limited> {
        let reject = self.reject.load(Ordering::Relaxed);
        let interval = self.interval.load(Ordering::Relaxed);
        let ahead = self.waiting.load(Ordering::Acquire);
        if ahead == 0 {
            match self.try_take(now) {
                Ok(()) => return Ok(Admission::Immediate),
                Err(retry_after) if reject => {
                    return Err(Limited { retry_after });
                }
                Err(_) => {}
            }
        } else if reject {
            let wait = interval.saturating_mul(ahead as u64 + 1);
            return Err(Limited {
                retry_after: Duration::from_nanos(wait),
            });
        }

        let mut limit = now + Duration::from_nanos(self.max_wait.load(Ordering::Relaxed));
        if let Some(deadline) = deadline {
            limit = limit.min(deadline);
        }
        let ahead = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        // The earliest this caller's token can come: the tokens missing now, plus one per
        // caller ahead in the queue. While the bucket is held (`hold_until`) its arrival
        // time runs past the tolerance, so that is counted whole, not clamped.
        let tolerance = self.tolerance.load(Ordering::Relaxed);
        let ahead_of_now = self
            .tat
            .load(Ordering::Acquire)
            .saturating_sub(self.nanos(now));
        let expected = Duration::from_nanos(
            interval
                .saturating_mul(ahead as u64 + 1)
                .saturating_add(ahead_of_now)
                .saturating_sub(tolerance),
        );
        if now + expected > limit {
            return Err(Limited {
                retry_after: expected,
            });
        }

        on_wait(expected);
        let wait_turn = async {
            let _turn = self.queue.lock().await;
            loop {
                match self.try_take(Instant::now()) {
                    Ok(()) => return,
                    Err(wait) => tokio::time::sleep(wait).await,
                }
            }
        };
        match tokio::time::timeout_at(limit, wait_turn).await {
            Ok(()) => Ok(Admission::Waited(Instant::now() - now)),
            Err(_) => Err(Limited {
                retry_after: Duration::from_nanos(self.interval.load(Ordering::Relaxed)),
            }),
        }
    }
}

/// Nanoseconds between two tokens at the policy's rate (at least 1).
fn interval_of(policy: &RateLimitPolicy) -> u64 {
    let per_second = f64::from(policy.requests_per_minute.get()) / 60.0;
    ((1e9 / per_second).round() as u64).max(1)
}

//! Token-bucket rate limiting: protect a dependency from more requests than it can take.
//!
//! A bucket holds up to `burst` tokens and refills continuously at
//! `requests_per_minute / 60` tokens a second; every attempt takes one. Over any window of
//! `t` seconds at most `burst + rate × t` attempts go through.
//!
//! Waiting callers queue in FIFO order (a fair async mutex admits one at a time to the
//! head of the queue), so no caller starves and concurrent callers cannot take the same
//! token twice. A caller whose turn cannot come within its `max_wait` (or its deadline)
//! gives up at once with the time to retry after, instead of waiting to fail; a waiting
//! caller that is cancelled leaves the queue and gives its place back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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

#[derive(Debug)]
struct Tokens {
    available: f64,
    refilled_at: Instant,
}

/// One token bucket.
#[derive(Debug)]
pub struct TokenBucket {
    per_second: f64,
    capacity: f64,
    when_limited: WhenLimited,
    max_wait: Duration,
    tokens: Mutex<Tokens>,
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
        let capacity = policy.burst.get() as f64;
        TokenBucket {
            per_second: policy.requests_per_minute.get() as f64 / 60.0,
            capacity,
            when_limited: policy.when_limited,
            max_wait: policy.max_wait,
            tokens: Mutex::new(Tokens {
                available: capacity,
                refilled_at: Instant::now(),
            }),
            queue: tokio::sync::Mutex::new(()),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Takes a token if one is free now; otherwise says how long until one is.
    fn try_take(&self, now: Instant) -> Result<(), Duration> {
        let mut t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(t.refilled_at).as_secs_f64();
        t.available = (t.available + elapsed * self.per_second).min(self.capacity);
        t.refilled_at = now;
        if t.available >= 1.0 {
            t.available -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - t.available) / self.per_second,
            ))
        }
    }

    /// Tokens free at `now` (for health and tests).
    pub fn available(&self, now: Instant) -> f64 {
        let t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(t.refilled_at).as_secs_f64();
        (t.available + elapsed * self.per_second).min(self.capacity)
    }

    /// Callers waiting for a token.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Takes a token, waiting for one when the policy says `wait`, but never past
    /// `deadline` or `max_wait`.
    /// `on_wait` is told the expected wait when the caller starts waiting.
    pub async fn acquire(
        &self,
        deadline: Option<Instant>,
        on_wait: impl FnOnce(Duration),
    ) -> Result<Admission, Limited> {
        let start = Instant::now();
        if self.waiting.load(Ordering::Acquire) == 0 {
            match self.try_take(start) {
                Ok(()) => return Ok(Admission::Immediate),
                Err(retry_after) if self.when_limited == WhenLimited::Reject => {
                    return Err(Limited { retry_after });
                }
                Err(_) => {}
            }
        } else if self.when_limited == WhenLimited::Reject {
            let ahead = self.waiting.load(Ordering::Acquire) as f64;
            return Err(Limited {
                retry_after: Duration::from_secs_f64((ahead + 1.0) / self.per_second),
            });
        }

        let mut limit = start + self.max_wait;
        if let Some(deadline) = deadline {
            limit = limit.min(deadline);
        }
        let ahead = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        // The earliest this caller's token can come: the tokens missing now, plus one per
        // caller ahead in the queue.
        let missing = (1.0 + ahead as f64 - self.available(start)).max(0.0);
        let expected = Duration::from_secs_f64(missing / self.per_second);
        if start + expected > limit {
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
            Ok(()) => Ok(Admission::Waited(Instant::now() - start)),
            Err(_) => Err(Limited {
                retry_after: Duration::from_secs_f64(1.0 / self.per_second),
            }),
        }
    }
}

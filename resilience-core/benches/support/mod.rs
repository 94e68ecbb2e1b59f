//! What every contender in the overhead benchmark shares: the operation being wrapped,
//! its error type, and the [`Contender`] interface the measuring code drives.
//!
//! Every contender wraps the same `async fn` ([`work`]) and is configured alike where the
//! libraries allow it: at most 3 attempts, retry only transient errors with an
//! exponential backoff from 1 s, a breaker that opens after 5 consecutive failures, a
//! limiter that never throttles, and a 30 s per-attempt timeout. On the happy path none
//! of the retry, breaker or limiter logic changes the result, so what is measured is the
//! cost of asking each of them for permission and recording the outcome.

pub mod alloc;
pub mod cputime;
pub mod instructions;
pub mod ours;
pub mod parts;
pub mod peers;
pub mod rounds;

use std::fmt;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use resilience_core::{ErrorClass, Failure, ResilientError};

/// Attempts per call, the first included (the `db` preset's figure).
pub const MAX_ATTEMPTS: u32 = 3;
/// The first backoff delay.
pub const INITIAL_DELAY: Duration = Duration::from_secs(1);
/// The backoff cap.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// The per-attempt timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Consecutive failures that open a breaker.
pub const FAILURE_THRESHOLD: u32 = 5;
/// How long a breaker stays open.
pub const OPEN_FOR: Duration = Duration::from_secs(30);

/// The wrapped operation's error. Never produced on the happy path, but every contender
/// has to be able to classify it, so it is a real type.
#[derive(Debug)]
pub enum BenchError {
    /// A retryable failure.
    Transient,
    /// The attempt ran out of time.
    Timeout,
    /// A breaker refused the call.
    Open,
    /// Our engine's verdict.
    Stopped(Box<Failure<BenchError>>),
    /// A peer library's verdict, as text.
    Peer(String),
}

impl BenchError {
    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, BenchError::Transient | BenchError::Timeout)
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Transient => f.write_str("transient failure"),
            BenchError::Timeout => f.write_str("attempt timed out"),
            BenchError::Open => f.write_str("circuit open"),
            BenchError::Stopped(failure) => failure.fmt(f),
            BenchError::Peer(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for BenchError {}

impl ResilientError for BenchError {
    fn class(&self) -> ErrorClass {
        match self {
            BenchError::Transient => ErrorClass::Transient,
            BenchError::Timeout => ErrorClass::Timeout,
            BenchError::Open | BenchError::Peer(_) => ErrorClass::Unknown,
            BenchError::Stopped(failure) => failure.class(),
        }
    }

    fn from_failure(failure: Failure<Self>) -> Self {
        BenchError::Stopped(Box::new(failure))
    }
}

static FAIL_NEXT: AtomicBool = AtomicBool::new(false);

/// Makes the next call of [`work`] (in any thread) fail with a transient error, to check
/// that a contender really retries.
pub fn fail_next() {
    FAIL_NEXT.store(true, Ordering::Relaxed);
}

/// The operation every contender wraps: ready at once, with a result the optimizer
/// cannot fold away. The failure switch costs one relaxed load of a flag that is never
/// written while timing, the same for every contender and the baseline.
pub async fn work(x: u64) -> Result<u64, BenchError> {
    if FAIL_NEXT.load(Ordering::Relaxed) && FAIL_NEXT.swap(false, Ordering::Relaxed) {
        return Err(BenchError::Transient);
    }
    Ok(black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One way of calling [`work`]. Each task drives its own clone; clones share the
/// contender's state (breaker, limiter, counters) the way clones of a connector would.
pub trait Contender: Clone + Send + 'static {
    /// The name in reports.
    const NAME: &'static str;

    /// One call of [`work`] with the contender's policies around it.
    fn call(&mut self, x: u64) -> impl Future<Output = Result<u64, BenchError>> + Send + '_;
}

/// The baseline: [`work`] with nothing around it.
#[derive(Clone)]
pub struct Bare;

impl Contender for Bare {
    const NAME: &'static str = "bare call";

    async fn call(&mut self, x: u64) -> Result<u64, BenchError> {
        work(x).await
    }
}

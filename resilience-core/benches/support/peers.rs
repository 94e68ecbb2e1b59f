//! The peer libraries as contenders, each configured as close to our `bench` policy as
//! it allows (see the parent module for the shared figures).
//!
//! - tower: `Retry` (3 attempts, exponential delay, transient errors and timeouts only)
//!   over `Timeout` over `ConcurrencyLimit` (1024, never reached), around `service_fn`.
//! - backon + governor + recloser: backon's exponential retry with jitter around, per
//!   attempt, governor's direct limiter (`until_ready`, never throttling), a 30 s tokio
//!   timeout and recloser's breaker (opens at a 100% failure rate over the last 5 calls,
//!   i.e. 5 consecutive failures).
//! - backoff + failsafe: backoff's exponential retry (with its default randomization),
//!   stopped after 3 attempts, around a 30 s tokio timeout and failsafe's breaker
//!   (5 consecutive failures). Neither library has a rate limiter, so this stack has none.

use std::num::NonZeroU32;
use std::sync::Arc;

use backon::{ExponentialBuilder, Retryable};
use failsafe::backoff::Constant;
use failsafe::failure_policy::ConsecutiveFailures;
use failsafe::futures::CircuitBreaker as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use recloser::{AsyncRecloser, Recloser};
use tower::retry::Policy;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

use super::{
    ATTEMPT_TIMEOUT, BenchError, Contender, FAILURE_THRESHOLD, INITIAL_DELAY, MAX_ATTEMPTS,
    MAX_DELAY, OPEN_FOR, work,
};

fn peer_error(error: BoxError) -> BenchError {
    match error.downcast::<BenchError>() {
        Ok(error) => *error,
        Err(other) => BenchError::Peer(other.to_string()),
    }
}

/// tower's retry policy: transient errors and timeouts, up to [`MAX_ATTEMPTS`] attempts,
/// with a doubling delay. Cloned per request by `Retry`, so `retries` is per call.
#[derive(Clone, Default)]
pub struct RetryTransient {
    retries: u32,
}

impl Policy<u64, u64, BoxError> for RetryTransient {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _: &mut u64, result: &mut Result<u64, BoxError>) -> Option<Self::Future> {
        let error = result.as_ref().err()?;
        let retryable = error
            .downcast_ref::<BenchError>()
            .is_some_and(BenchError::is_retryable)
            || error.is::<tower::timeout::error::Elapsed>();
        if !retryable || self.retries + 1 >= MAX_ATTEMPTS {
            return None;
        }
        let delay = (INITIAL_DELAY * 2u32.pow(self.retries)).min(MAX_DELAY);
        self.retries += 1;
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, request: &u64) -> Option<u64> {
        Some(*request)
    }
}

/// A tower service stack; each task calls its own clone.
#[derive(Clone)]
pub struct Tower<S> {
    service: S,
}

/// `Retry` + `Timeout` + `ConcurrencyLimit` around `service_fn(work)`.
pub fn tower()
-> Tower<impl Service<u64, Response = u64, Error = BoxError, Future: Send> + Clone + Send + 'static>
{
    let service = ServiceBuilder::new()
        .retry(RetryTransient::default())
        .timeout(ATTEMPT_TIMEOUT)
        .concurrency_limit(1024)
        .service_fn(work);
    Tower { service }
}

impl<S> Contender for Tower<S>
where
    S: Service<u64, Response = u64, Error = BoxError, Future: Send> + Clone + Send + 'static,
{
    const NAME: &'static str = "tower Retry+Timeout+ConcurrencyLimit";

    async fn call(&mut self, x: u64) -> Result<u64, BenchError> {
        let service = self.service.ready().await.map_err(peer_error)?;
        service.call(x).await.map_err(peer_error)
    }
}

/// backon's retry around governor's limiter, a tokio timeout and recloser's breaker.
#[derive(Clone)]
pub struct BackonGovernorRecloser {
    limiter: Arc<DefaultDirectRateLimiter>,
    breaker: AsyncRecloser,
    schedule: ExponentialBuilder,
}

impl BackonGovernorRecloser {
    /// The stack with a limiter as generous as ours (4e9 a minute, burst 4e9).
    pub fn new() -> Self {
        let lots = NonZeroU32::new(4_000_000_000).expect("non-zero");
        let breaker = Recloser::custom()
            .error_rate(1.0)
            .closed_len(FAILURE_THRESHOLD as usize)
            .half_open_len(2)
            .open_wait(OPEN_FOR)
            .build();
        BackonGovernorRecloser {
            limiter: Arc::new(RateLimiter::direct(
                Quota::per_minute(lots).allow_burst(lots),
            )),
            breaker: AsyncRecloser::from(breaker),
            schedule: ExponentialBuilder::default()
                .with_min_delay(INITIAL_DELAY)
                .with_factor(2.0)
                .with_max_delay(MAX_DELAY)
                .with_max_times(MAX_ATTEMPTS as usize - 1)
                .with_jitter(),
        }
    }
}

impl Contender for BackonGovernorRecloser {
    const NAME: &'static str = "backon+governor+recloser";

    async fn call(&mut self, x: u64) -> Result<u64, BenchError> {
        let (limiter, breaker) = (&*self.limiter, &self.breaker);
        let attempt = move || async move {
            limiter.until_ready().await;
            match tokio::time::timeout(ATTEMPT_TIMEOUT, breaker.call(work(x))).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(recloser::Error::Inner(error))) => Err(error),
                Ok(Err(recloser::Error::Rejected)) => Err(BenchError::Open),
                Err(_) => Err(BenchError::Timeout),
            }
        };
        attempt
            .retry(self.schedule)
            .when(BenchError::is_retryable)
            .await
    }
}

type Failsafe = failsafe::StateMachine<ConsecutiveFailures<Constant>, ()>;

/// The `backoff` crate's retry around a tokio timeout and failsafe's breaker.
#[derive(Clone)]
pub struct BackoffFailsafe {
    breaker: Failsafe,
}

impl BackoffFailsafe {
    /// The stack with a breaker that opens after 5 consecutive failures for 30 s.
    pub fn new() -> Self {
        let policy = failsafe::failure_policy::consecutive_failures(
            FAILURE_THRESHOLD,
            failsafe::backoff::constant(OPEN_FOR),
        );
        BackoffFailsafe {
            breaker: failsafe::Config::new().failure_policy(policy).build(),
        }
    }
}

impl Contender for BackoffFailsafe {
    const NAME: &'static str = "backoff+failsafe";

    async fn call(&mut self, x: u64) -> Result<u64, BenchError> {
        let schedule = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(INITIAL_DELAY)
            .with_multiplier(2.0)
            .with_max_interval(MAX_DELAY)
            .with_max_elapsed_time(None)
            .build();
        let breaker = &self.breaker;
        let mut attempts = 0;
        let attempt = move || {
            attempts += 1;
            let last = attempts >= MAX_ATTEMPTS;
            async move {
                let error = match tokio::time::timeout(ATTEMPT_TIMEOUT, breaker.call(work(x))).await
                {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(failsafe::Error::Inner(error))) => error,
                    Ok(Err(failsafe::Error::Rejected)) => BenchError::Open,
                    Err(_) => BenchError::Timeout,
                };
                Err(if error.is_retryable() && !last {
                    backoff::Error::transient(error)
                } else {
                    backoff::Error::permanent(error)
                })
            }
        };
        backoff::future::retry(schedule, attempt).await
    }
}

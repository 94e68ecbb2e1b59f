//! The resolved policy: every value present and valid.
//!
//! These types are what the engine runs on. They are built by the loader
//! ([`PolicySet`](super::PolicySet)) from the policy files, after profiles are merged,
//! `extends` is resolved and every range is checked, so the engine never meets an invalid
//! value. `Policy::default()` is the `db` preset (DB_RESILIENCE_CONFIG).

use std::num::NonZeroU32;
use std::time::Duration;

use serde::Serialize;

use crate::class::{ClassSet, ErrorClass};

/// One named policy: how an operation retries, breaks, is limited, recovers and times out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Retry schedule and budget.
    pub retry: RetryPolicy,
    /// Circuit breaker.
    pub circuit_breaker: BreakerPolicy,
    /// Token-bucket rate limiting.
    pub rate_limit: RateLimitPolicy,
    /// Connection recovery.
    pub recovery: RecoveryPolicy,
    /// Per-attempt and total deadlines.
    pub timeout: TimeoutPolicy,
}

/// How jitter spreads a backoff delay `d` (the capped exponential value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Exactly `d`.
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// Uniform in `[d/2, d]`.
    Equal,
    /// Uniform in `[initial_delay, 3 × previous delay]`, capped at `max_delay`.
    Decorrelated,
}

impl Jitter {
    /// The name used in policy files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

/// Retry: attempts, exponential backoff with a cap, jitter, which classes are retried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first call included (at least 1).
    pub max_attempts: NonZeroU32,
    /// The delay before the first retry.
    #[serde(with = "humantime_serde")]
    pub initial_delay: Duration,
    /// Growth factor per retry (at least 1.0).
    pub multiplier: f64,
    /// The cap on any delay (not below `initial_delay`).
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// How delays are randomised.
    pub jitter: Jitter,
    /// Classes that are retried.
    pub retry_on: ClassSet,
    /// The retry budget shared by all calls of this policy and key.
    pub budget: BudgetPolicy,
}

/// Retry budget: retries allowed only while they stay under `ratio` of recent calls, plus
/// `min_per_second`, over a sliding window of `ttl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetPolicy {
    /// Whether the budget applies.
    pub enabled: bool,
    /// Retries allowed per call made in the window (0.0 to 1000.0).
    pub ratio: f64,
    /// Retries always allowed per second, whatever the traffic.
    pub min_per_second: u32,
    /// The window over which calls and retries are counted.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

/// What opens a closed breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerMode {
    /// `failure_threshold` consecutive failed attempts. Simple and quick to trip; with
    /// many calls in flight, one brief fault can fail that many at once.
    Consecutive,
    /// A share of `failure_ratio` failed attempts among at least `minimum_calls` in the
    /// last `sampling_window`. Steady under concurrency: a brief fault that fails a few
    /// of many calls does not open it; a dependency that fails most calls does.
    Ratio,
}

impl BreakerMode {
    /// The name used in policy files.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerMode::Consecutive => "consecutive",
            BreakerMode::Ratio => "ratio",
        }
    }
}

/// Circuit breaker: CLOSED, OPEN, HALF_OPEN.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerPolicy {
    /// Whether the breaker applies.
    pub enabled: bool,
    /// What opens the breaker: consecutive failures, or a failure ratio.
    pub mode: BreakerMode,
    /// Consecutive failed attempts that open the breaker (`mode = "consecutive"`).
    pub failure_threshold: NonZeroU32,
    /// The share of failed attempts that opens the breaker (`mode = "ratio"`): above 0,
    /// at most 1.
    pub failure_ratio: f64,
    /// The sliding window over which attempts are counted (`mode = "ratio"`).
    #[serde(with = "humantime_serde")]
    pub sampling_window: Duration,
    /// Attempts the window must hold before the ratio can open the breaker
    /// (`mode = "ratio"`).
    pub minimum_calls: NonZeroU32,
    /// How long the breaker stays open before admitting probes.
    #[serde(with = "humantime_serde")]
    pub recovery_timeout: Duration,
    /// Successful probes in HALF_OPEN that close the breaker; also the most probes
    /// admitted at once.
    pub success_threshold: NonZeroU32,
    /// Classes that neither count as failures nor reset the count.
    pub ignore: ClassSet,
}

/// What a caller does when no token is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenLimited {
    /// Wait its turn, up to `max_wait`.
    Wait,
    /// Fail at once with the time to retry after.
    Reject,
}

impl WhenLimited {
    /// The name used in policy files.
    pub const fn as_str(self) -> &'static str {
        match self {
            WhenLimited::Wait => "wait",
            WhenLimited::Reject => "reject",
        }
    }
}

/// Token bucket: continuous refill at `requests_per_minute`, capacity `burst`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimitPolicy {
    /// Whether the limiter applies.
    pub enabled: bool,
    /// Sustained rate.
    pub requests_per_minute: NonZeroU32,
    /// Bucket capacity: how many calls may go at once after a quiet period.
    pub burst: NonZeroU32,
    /// Wait or reject when no token is free.
    pub when_limited: WhenLimited,
    /// The longest a caller waits for a token.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// One bucket per rate-limit key (host) instead of one per policy.
    pub per_host: bool,
}

/// Connection recovery: the connector's hook, run after connection-class failures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryPolicy {
    /// Whether recovery runs.
    pub enabled: bool,
    /// Recoveries allowed per `check_interval` window.
    pub max_attempts: NonZeroU32,
    /// The window for `max_attempts`, and the probe interval while the breaker is open.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// Whether recovery re-reads credentials (after an authentication failure too).
    pub credential_refresh: bool,
}

/// Deadlines: per attempt and for the whole call, retries and waits included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeoutPolicy {
    /// The longest one attempt may take.
    #[serde(with = "humantime_serde")]
    pub attempt: Duration,
    /// The longest the whole call may take (not below `attempt`).
    #[serde(with = "humantime_serde")]
    pub total: Duration,
}

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("zero"),
    }
}

impl Default for Policy {
    /// The `db` preset (DB_RESILIENCE_CONFIG).
    fn default() -> Self {
        Policy {
            retry: RetryPolicy::default(),
            circuit_breaker: BreakerPolicy::default(),
            rate_limit: RateLimitPolicy::default(),
            recovery: RecoveryPolicy::default(),
            timeout: TimeoutPolicy::default(),
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: nz(3),
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: Jitter::Full,
            retry_on: ClassSet::of(&[
                ErrorClass::Connection,
                ErrorClass::Timeout,
                ErrorClass::Transient,
                ErrorClass::Throttled,
            ]),
            budget: BudgetPolicy::default(),
        }
    }
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        BudgetPolicy {
            enabled: true,
            ratio: 0.2,
            min_per_second: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            enabled: true,
            mode: BreakerMode::Consecutive,
            failure_threshold: nz(5),
            failure_ratio: 0.5,
            sampling_window: Duration::from_secs(30),
            minimum_calls: nz(20),
            recovery_timeout: Duration::from_secs(30),
            success_threshold: nz(2),
            ignore: ClassSet::of(&[
                ErrorClass::Auth,
                ErrorClass::Config,
                ErrorClass::InvalidInput,
            ]),
        }
    }
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        RateLimitPolicy {
            enabled: true,
            requests_per_minute: nz(300),
            burst: nz(50),
            when_limited: WhenLimited::Wait,
            max_wait: Duration::from_secs(10),
            per_host: true,
        }
    }
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        RecoveryPolicy {
            enabled: true,
            max_attempts: nz(3),
            check_interval: Duration::from_secs(30),
            credential_refresh: false,
        }
    }
}

impl Default for TimeoutPolicy {
    fn default() -> Self {
        TimeoutPolicy {
            attempt: Duration::from_secs(30),
            total: Duration::from_secs(120),
        }
    }
}

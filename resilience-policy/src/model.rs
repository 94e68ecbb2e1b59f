//! The resolved policy: every value present and valid, and the one declaration of every
//! policy key.
//!
//! These types are what the engine runs on. They are built by the loader
//! ([`PolicySet`](super::PolicySet)) from the policy files, after profiles are merged,
//! `extends` is resolved and every range is checked, so the engine never meets an invalid
//! value. `Policy::default()` is the `db` preset (DB_RESILIENCE_CONFIG).
//!
//! Each table is declared with `policy_table!` (see `table.rs`): one line per key gives
//! its field, type, default (the `db` preset) and the kind of value a policy file may
//! write for it; the loader's schema and conversions are generated from these lines. To
//! add a key, add its line here and document it in `policies/reference.toml`.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::Serialize;

use crate::class::{ClassSet, ErrorClass};
use crate::schema::Kind;
use crate::table::policy_table;

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("zero"),
    }
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

policy_table! {
    /// One named policy: how an operation retries, breaks, is limited, recovers and times
    /// out. Its default is the `db` preset (DB_RESILIENCE_CONFIG).
    pub struct Policy at "" {
        /// Whether the policy's rate limit and breaker hold across processes through the
        /// profile's `[store]`; `false` keeps them local to each process. Without a
        /// store, every policy is local whatever this says.
        shared: bool = true => Kind::Bool,
    } tables {
        /// Retry schedule and budget.
        retry: RetryPolicy,
        /// Circuit breaker.
        circuit_breaker: BreakerPolicy,
        /// Token-bucket rate limiting.
        rate_limit: RateLimitPolicy,
        /// Connection recovery.
        recovery: RecoveryPolicy,
        /// Per-attempt and total deadlines.
        timeout: TimeoutPolicy,
    }
}

policy_table! {
    /// Retry: attempts, exponential backoff with a cap, jitter, which classes are retried.
    pub struct RetryPolicy at "retry." {
        /// Attempts in all, the first call included (at least 1).
        max_attempts: NonZeroU32 = nz(3) => Kind::Count,
        /// The delay before the first retry.
        initial_delay: Duration = secs(1) => Kind::Duration { zero: true },
        /// Growth factor per retry (at least 1.0).
        multiplier: f64 = 2.0 => Kind::Multiplier,
        /// The cap on any delay (not below `initial_delay`).
        max_delay: Duration = secs(30) => Kind::Duration { zero: true },
        /// How delays are randomised.
        jitter: Jitter = Jitter::Full => Kind::Jitter,
        /// Classes that are retried.
        retry_on: ClassSet = ClassSet::of(&[
            ErrorClass::Connection,
            ErrorClass::Timeout,
            ErrorClass::Transient,
            ErrorClass::Throttled,
        ]) => Kind::Classes,
    } tables {
        /// The retry budget shared by all calls of this policy and key.
        budget: BudgetPolicy,
    }
}

policy_table! {
    /// Retry budget: retries allowed only while they stay under `ratio` of recent calls,
    /// plus `min_per_second`, over a sliding window of `ttl`.
    pub struct BudgetPolicy at "retry.budget." {
        /// Whether the budget applies.
        enabled: bool = true => Kind::Bool,
        /// Retries allowed per call made in the window (0.0 to 1000.0).
        ratio: f64 = 0.2 => Kind::Ratio,
        /// Retries always allowed per second, whatever the traffic.
        min_per_second: u32 = 10 => Kind::Uint,
        /// The window over which calls and retries are counted.
        ttl: Duration = secs(10) => Kind::Duration { zero: false },
    }
}

policy_table! {
    /// Circuit breaker: CLOSED, OPEN, HALF_OPEN.
    pub struct BreakerPolicy at "circuit_breaker." {
        /// Whether the breaker applies.
        enabled: bool = true => Kind::Bool,
        /// What opens the breaker: consecutive failures, or a failure ratio.
        mode: BreakerMode = BreakerMode::Consecutive => Kind::BreakerMode,
        /// Consecutive failed attempts that open the breaker (`mode = "consecutive"`).
        failure_threshold: NonZeroU32 = nz(5) => Kind::Count,
        /// The share of failed attempts that opens the breaker (`mode = "ratio"`): above
        /// 0, at most 1.
        failure_ratio: f64 = 0.5 => Kind::Fraction,
        /// The sliding window over which attempts are counted (`mode = "ratio"`).
        sampling_window: Duration = secs(30) => Kind::Duration { zero: false },
        /// Attempts the window must hold before the ratio can open the breaker
        /// (`mode = "ratio"`).
        minimum_calls: NonZeroU32 = nz(20) => Kind::Count,
        /// How long the breaker stays open before admitting probes.
        recovery_timeout: Duration = secs(30) => Kind::Duration { zero: false },
        /// Successful probes in HALF_OPEN that close the breaker; also the most probes
        /// admitted at once.
        success_threshold: NonZeroU32 = nz(2) => Kind::Count,
        /// Classes that neither count as failures nor reset the count.
        ignore: ClassSet = ClassSet::of(&[
            ErrorClass::Auth,
            ErrorClass::Config,
            ErrorClass::InvalidInput,
        ]) => Kind::Classes,
    }
}

policy_table! {
    /// Token bucket: continuous refill at `requests_per_minute`, capacity `burst`.
    pub struct RateLimitPolicy at "rate_limit." {
        /// Whether the limiter applies.
        enabled: bool = true => Kind::Bool,
        /// Sustained rate.
        requests_per_minute: NonZeroU32 = nz(300) => Kind::Count,
        /// Bucket capacity: how many calls may go at once after a quiet period.
        burst: NonZeroU32 = nz(50) => Kind::Count,
        /// Wait or reject when no token is free.
        when_limited: WhenLimited = WhenLimited::Wait => Kind::WhenLimited,
        /// The longest a caller waits for a token.
        max_wait: Duration = secs(10) => Kind::Duration { zero: true },
        /// One bucket per rate-limit key (host) instead of one per policy.
        per_host: bool = true => Kind::Bool,
    }
}

policy_table! {
    /// Connection recovery: the connector's hook, run after connection-class failures.
    pub struct RecoveryPolicy at "recovery." {
        /// Whether recovery runs.
        enabled: bool = true => Kind::Bool,
        /// Recoveries allowed per `check_interval` window.
        max_attempts: NonZeroU32 = nz(3) => Kind::Count,
        /// The window for `max_attempts`, and the probe interval while the breaker is
        /// open.
        check_interval: Duration = secs(30) => Kind::Duration { zero: false },
        /// Whether recovery re-reads credentials (after an authentication failure too).
        credential_refresh: bool = false => Kind::Bool,
    }
}

policy_table! {
    /// Deadlines: per attempt and for the whole call, retries and waits included.
    pub struct TimeoutPolicy at "timeout." {
        /// The longest one attempt may take.
        attempt: Duration = secs(30) => Kind::Duration { zero: false },
        /// The longest the whole call may take (not below `attempt`).
        total: Duration = secs(120) => Kind::Duration { zero: false },
    }
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

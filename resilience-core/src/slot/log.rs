//! Engine events as log lines for people.
//!
//! Each line carries the event's name as the `kind` field, with the policy, key and
//! operation; programs consume the typed [`Event`](crate::events::Event) instead, so the
//! wording here may change freely. Refusals (an open breaker, a full limiter) are frequent
//! while they last and are logged at `debug` per call; state changes stand out.

use crate::breaker::BreakerState;
use crate::events::{EventKind, Verdict};
use crate::failure::{Stop, fmt_secs};
use crate::policy::Policy;

/// Logs `kind` for `policy`, `key` and `operation`.
pub(super) fn event(
    policy: &str,
    key: &str,
    operation: Option<&'static str>,
    kind: &EventKind<'_>,
    settings: &Policy,
) {
    let name = kind.name();
    let op = operation.unwrap_or("");
    match *kind {
        EventKind::RetryScheduled {
            attempt,
            max_attempts,
            delay,
            class,
            error,
        } => tracing::warn!(
            kind = name,
            policy,
            key,
            operation = op,
            attempt,
            max_attempts,
            class = class.as_str(),
            delay_secs = delay.as_secs_f64(),
            "Retry attempt {attempt}/{max_attempts} for operation {op} after error: {error}. Next retry in {}",
            fmt_secs(delay)
        ),
        EventKind::GaveUp {
            verdict,
            attempts,
            error,
            ..
        } => {
            let routine = matches!(
                verdict,
                Verdict::Stopped(Stop::CircuitOpen { .. } | Stop::RateLimited { .. })
            );
            let last = error
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default();
            if routine {
                tracing::debug!(
                    kind = name,
                    policy,
                    key,
                    operation = op,
                    attempts,
                    verdict = verdict.name(),
                    "operation {op} gave up: {verdict}{last}"
                );
            } else {
                tracing::warn!(
                    kind = name,
                    policy,
                    key,
                    operation = op,
                    attempts,
                    verdict = verdict.name(),
                    "operation {op} gave up: {verdict}{last}"
                );
            }
        }
        EventKind::CircuitOpenRejection { retry_in } => tracing::debug!(
            kind = name,
            policy,
            key,
            operation = op,
            retry_in_secs = retry_in.as_secs_f64(),
            "circuit open, failing fast"
        ),
        EventKind::BreakerTransition { from, to, cause } => {
            let timeout = settings.circuit_breaker.recovery_timeout;
            match to {
                BreakerState::Open => tracing::error!(
                    kind = name,
                    policy,
                    key,
                    from = from.as_str(),
                    cause = ?cause,
                    recovery_timeout_secs = timeout.as_secs_f64(),
                    "Circuit breaker OPEN ({cause:?}); calls fail fast for {}",
                    fmt_secs(timeout)
                ),
                BreakerState::HalfOpen => tracing::warn!(
                    kind = name,
                    policy,
                    key,
                    cause = ?cause,
                    "Circuit breaker HALF_OPEN ({cause:?}): probing the dependency"
                ),
                BreakerState::Closed => tracing::info!(
                    kind = name,
                    policy,
                    key,
                    from = from.as_str(),
                    cause = ?cause,
                    "Circuit breaker CLOSED ({cause:?})"
                ),
            }
        }
        EventKind::RateLimitWait { wait } => tracing::info!(
            kind = name,
            policy,
            key,
            operation = op,
            wait_secs = wait.as_secs_f64(),
            "rate limit: waiting {} for a token",
            fmt_secs(wait)
        ),
        EventKind::RateLimitRejected { retry_after } => tracing::warn!(
            kind = name,
            policy,
            key,
            operation = op,
            retry_after_secs = retry_after.as_secs_f64(),
            "rate limit: call refused, retry after {}",
            fmt_secs(retry_after)
        ),
        EventKind::BudgetExhausted { attempts } => tracing::warn!(
            kind = name,
            policy,
            key,
            operation = op,
            attempts,
            "retry budget exhausted: not retrying"
        ),
        EventKind::RecoveryStarted {
            class,
            refresh_credentials,
        } => tracing::debug!(
            kind = name,
            policy,
            key,
            operation = op,
            class = class.as_str(),
            refresh_credentials,
            "recovering the connection after a {class} failure"
        ),
        EventKind::RecoverySucceeded {
            refresh_credentials,
        } => tracing::info!(
            kind = name,
            policy,
            key,
            operation = op,
            refresh_credentials,
            "connection recovered"
        ),
        EventKind::RecoveryNotNeeded { reason } => tracing::debug!(
            kind = name,
            policy,
            key,
            operation = op,
            "connection recovery not needed: {reason}"
        ),
        EventKind::RecoveryFailed { error } => tracing::warn!(
            kind = name,
            policy,
            key,
            operation = op,
            error,
            "connection recovery failed: {error}"
        ),
        EventKind::CredentialsRefreshed => tracing::info!(
            kind = name,
            policy,
            key,
            operation = op,
            "credentials re-read"
        ),
        EventKind::Probed { reachable } => {
            tracing::debug!(kind = name, policy, key, reachable, "recovery probe")
        }
    }
}

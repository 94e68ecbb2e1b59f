//! The engine's verdict on a call that did not succeed.
//!
//! A [`Failure`] keeps the last error the dependency gave (unchanged: no rewritten
//! message, no stacked prefixes) and says which policy stopped the call. It reaches the
//! caller inside the connector's own error type through
//! [`ResilientError::from_failure`](crate::ResilientError::from_failure).

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use resilience_policy::ErrorClass;

/// Which policy stopped a call, and the numbers that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stop {
    /// Every allowed attempt failed with a retryable error.
    RetriesExhausted {
        /// Attempts made, the first call included.
        attempts: u32,
    },
    /// The retry budget refused a retry: too many retries across recent calls.
    BudgetExhausted {
        /// Attempts made before the budget refused the next one.
        attempts: u32,
    },
    /// The circuit breaker is open: the call was refused without calling.
    CircuitOpen {
        /// How long until the breaker admits a probe.
        retry_in: Duration,
    },
    /// The rate limiter refused the call (`when_limited = "reject"`, or a wait that
    /// would exceed `max_wait`).
    RateLimited {
        /// How long until a token is free.
        retry_after: Duration,
    },
    /// The last attempt ran past the per-attempt timeout.
    AttemptTimedOut {
        /// The per-attempt timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// The total deadline of the call passed.
    DeadlineExceeded {
        /// The total timeout.
        timeout: Duration,
        /// Attempts made (started) before the deadline.
        attempts: u32,
    },
    /// The dependency asked the caller to wait longer before the next attempt than what
    /// is left of the total deadline (see
    /// [`ResilientError::not_before`](crate::ResilientError::not_before)): the call gave
    /// up at once instead of waiting to fail.
    WaitBeyondDeadline {
        /// How long the dependency asked to wait.
        wait: Duration,
        /// What was left of the total deadline.
        left: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// The operation names a policy that is not loaded.
    UnknownPolicy {
        /// The names that are loaded.
        known: Vec<String>,
    },
    /// The shared store (a profile's `[store]`) did not answer and the store says
    /// `on_unavailable = "fail_closed"`: the call was refused without calling.
    StoreUnavailable {
        /// Why, without any credential.
        reason: String,
    },
}

impl Stop {
    /// A short stable name: `retries_exhausted`, `budget_exhausted`, `circuit_open`,
    /// `rate_limited`, `attempt_timed_out`, `deadline_exceeded`, `wait_beyond_deadline`,
    /// `unknown_policy` or `store_unavailable`.
    pub fn name(&self) -> &'static str {
        match self {
            Stop::RetriesExhausted { .. } => "retries_exhausted",
            Stop::BudgetExhausted { .. } => "budget_exhausted",
            Stop::CircuitOpen { .. } => "circuit_open",
            Stop::RateLimited { .. } => "rate_limited",
            Stop::AttemptTimedOut { .. } => "attempt_timed_out",
            Stop::DeadlineExceeded { .. } => "deadline_exceeded",
            Stop::WaitBeyondDeadline { .. } => "wait_beyond_deadline",
            Stop::UnknownPolicy { .. } => "unknown_policy",
            Stop::StoreUnavailable { .. } => "store_unavailable",
        }
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::RetriesExhausted { attempts } => {
                write!(f, "retries exhausted after {attempts} attempts")
            }
            Stop::BudgetExhausted { attempts } => write!(
                f,
                "retry budget exhausted after {attempts} attempts (too many retries across recent calls)"
            ),
            Stop::CircuitOpen { retry_in } => write!(
                f,
                "circuit open, failing fast (next probe in {})",
                fmt_secs(*retry_in)
            ),
            Stop::RateLimited { retry_after } => {
                write!(f, "rate limited, retry after {}", fmt_secs(*retry_after))
            }
            Stop::AttemptTimedOut { timeout, attempts } => write!(
                f,
                "attempt {attempts} timed out after {}",
                fmt_secs(*timeout)
            ),
            Stop::DeadlineExceeded { timeout, attempts } => write!(
                f,
                "total deadline of {} exceeded after {attempts} attempts",
                fmt_secs(*timeout)
            ),
            Stop::WaitBeyondDeadline {
                wait,
                left,
                attempts,
            } => write!(
                f,
                "the dependency asked to wait {} before the next attempt, more than the {} \
                 left of the total deadline; gave up after {attempts} attempts",
                fmt_secs(*wait),
                fmt_secs(*left)
            ),
            Stop::UnknownPolicy { known } => {
                write!(f, "unknown policy, expected one of: {}", known.join(", "))
            }
            Stop::StoreUnavailable { reason } => write!(
                f,
                "shared store unavailable and on_unavailable = \"fail_closed\": {reason}"
            ),
        }
    }
}

/// Formats a duration in seconds with up to three decimals (`1.5s`, `30s`).
pub(crate) fn fmt_secs(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let text = format!("{secs:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}s")
}

/// A call the engine gave up on: the verdict, where it happened, and the last error.
#[derive(Debug)]
pub struct Failure<E> {
    /// Which policy stopped the call.
    pub stop: Stop,
    /// The policy's name.
    pub policy: Arc<str>,
    /// The operation's name.
    pub operation: &'static str,
    /// The rate-limit key the call ran under.
    pub key: Arc<str>,
    /// The last error the dependency gave, unchanged; `None` when the call never ran
    /// (circuit open, rate limited) or its last attempt timed out.
    pub last_error: Option<E>,
}

impl<E: crate::ResilientError> Failure<E> {
    /// The class of this failure: the last error's, or the class the verdict implies
    /// (timeouts are `Timeout`, limiter refusals `Throttled`, an unknown policy `Config`).
    /// An open circuit is `Unknown` whatever the last error was: the breaker has already
    /// decided, so an outer operation must not retry it (and must not rebuild its own
    /// connections because of it); the last error stays available in `last_error`.
    pub fn class(&self) -> ErrorClass {
        match (&self.stop, &self.last_error) {
            (Stop::AttemptTimedOut { .. } | Stop::DeadlineExceeded { .. }, _) => {
                ErrorClass::Timeout
            }
            (Stop::CircuitOpen { .. }, _) => ErrorClass::Unknown,
            (_, Some(e)) => e.class(),
            (Stop::RateLimited { .. }, None) => ErrorClass::Throttled,
            (Stop::UnknownPolicy { .. }, None) => ErrorClass::Config,
            (_, None) => ErrorClass::Unknown,
        }
    }
}

impl<E> Failure<E> {
    /// Whether the breaker refused the call.
    pub fn is_circuit_open(&self) -> bool {
        matches!(self.stop, Stop::CircuitOpen { .. })
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} stopped by policy `{}` for {}: {}",
            self.operation, self.policy, self.key, self.stop
        )?;
        if let Some(e) = &self.last_error {
            write!(f, "; last error: {e}")?;
        }
        Ok(())
    }
}

impl<E: Error + 'static> Error for Failure<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.last_error
            .as_ref()
            .map(|e| e as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_short() {
        assert_eq!(fmt_secs(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_secs(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_secs(Duration::from_millis(1)), "0.001s");
    }
}

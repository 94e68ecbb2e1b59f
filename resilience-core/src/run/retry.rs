//! The retry decision: after a failed attempt, give up with the verdict, or recover, wait
//! out the backoff delay (or until the moment the dependency named, when its error names
//! one) and take the permits for the next attempt.
//!
//! Kept apart from the common path (and boxed by it) so that a call that succeeds
//! carries none of this in its future.
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::Run;
use super::admit::admit;
use super::settle::Failed;
use crate::backoff::Backoff;
use crate::breaker::{BreakerState, Outcome};
use crate::error::ResilientError;
use crate::events::{ErrorText, EventKind, Verdict};
use crate::failure::{Stop, fmt_secs};
use resilience_policy::ErrorClass;

impl Run<'_> {
    /// Decides what follows a failed attempt: give up, or recover, wait and retry.
    pub(super) async fn after_failure<T, E: ResilientError>(
        &mut self,
        failed: Failed<E>,
    ) -> Option<Result<T, E>> {
        let Failed {
            class,
            error,
            total_ran_out,
            permit,
            now,
        } = failed;
        let slot = self.slot?;
        let policy = slot.policy();
        slot.stats.error(class);
        if let Some(permit) = permit {
            let seen = if policy.circuit_breaker.ignore.contains(class) {
                Outcome::Ignored
            } else {
                Outcome::Failure
            };
            if let Some(t) = slot.breaker.record(permit, seen, now) {
                self.transition(slot, t);
            }
            crate::shared::record(slot, seen);
        }
        if self.enclosing.is_some() {
            // One attempt only: the outer run decides whether to retry.
            if let Some(error) = error {
                self.finish(slot, false, Some(now));
                return Some(Err(error));
            }
            let stop = Stop::AttemptTimedOut {
                timeout: policy.timeout.attempt,
                attempts: self.attempt,
            };
            return self.give_up(slot, stop, None);
        }
        let total_timeout = policy.timeout.total;
        if total_ran_out {
            let stop = Stop::DeadlineExceeded {
                timeout: total_timeout,
                attempts: self.attempt,
            };
            return self.give_up(slot, stop, None);
        }

        if class == ErrorClass::Auth
            && !self.credentials_refreshed
            && policy.recovery.enabled
            && policy.recovery.credential_refresh
            && let Some(hook) = self.recovery
        {
            self.credentials_refreshed = true;
            if self.recover(slot, hook, class, true).await {
                // One more attempt, at once, with the credentials just re-read.
                self.bonus_attempts += 1;
                let max_attempts = policy.retry.max_attempts.get();
                let kind = EventKind::RetryScheduled {
                    attempt: self.attempt + 1,
                    max_attempts: max_attempts.saturating_add(self.bonus_attempts),
                    delay: Duration::ZERO,
                    class,
                    error: ErrorText(&Reason(error.as_ref(), policy.timeout.attempt)),
                };
                self.emit(slot, kind);
                return None;
            }
        }

        if !policy.retry.retry_on.contains(class) {
            self.finish(slot, false, Some(now));
            if let Some(e) = &error {
                self.report_gave_up(slot, Verdict::NotRetried, Some(e));
            }
            return Some(Err(match error {
                Some(e) => e,
                None => self.fail(
                    Stop::AttemptTimedOut {
                        timeout: policy.timeout.attempt,
                        attempts: self.attempt,
                    },
                    None,
                ),
            }));
        }
        let max_attempts = policy
            .retry
            .max_attempts
            .get()
            .saturating_add(self.bonus_attempts);
        if self.attempt >= max_attempts {
            let stop = match error {
                Some(_) => Stop::RetriesExhausted {
                    attempts: self.attempt,
                },
                None => Stop::AttemptTimedOut {
                    timeout: policy.timeout.attempt,
                    attempts: self.attempt,
                },
            };
            return self.give_up(slot, stop, error);
        }
        if slot.breaker.state_now() == BreakerState::Open {
            let retry_in = policy.circuit_breaker.recovery_timeout;
            return self.give_up(slot, Stop::CircuitOpen { retry_in }, error);
        }
        if !slot.budget.try_withdraw(now) {
            let attempts = self.attempt;
            self.emit(slot, EventKind::BudgetExhausted { attempts });
            return self.give_up(
                slot,
                Stop::BudgetExhausted {
                    attempts: self.attempt,
                },
                error,
            );
        }

        if class == ErrorClass::Connection
            && policy.recovery.enabled
            && let Some(hook) = self.recovery
            && slot.gate.try_enter(now)
        {
            self.recover(slot, hook, class, false).await;
        }

        let retry = self.attempt;
        let deadline = self.deadline().unwrap_or_else(|| now + total_timeout);
        let before_wait = Instant::now();
        // The dependency's own word on when to come back beats the backoff schedule.
        let hint = error
            .as_ref()
            .and_then(ResilientError::not_before)
            .filter(|at| *at > before_wait);
        if let Some(at) = hint {
            if slot.hot.rate_limited() {
                // Nobody else on this key calls before then either.
                slot.bucket.hold_until(at);
            }
            if at >= deadline {
                let stop = Stop::WaitBeyondDeadline {
                    wait: at - before_wait,
                    left: deadline.saturating_duration_since(before_wait),
                    attempts: self.attempt,
                };
                return self.give_up(slot, stop, error);
            }
        }
        let delay = match hint {
            Some(at) => at - before_wait,
            None => {
                let backoff = self
                    .backoff
                    .get_or_insert_with(|| Backoff::new(&policy.retry));
                self.engine.with_rng(|rng| backoff.delay(retry, rng))
            }
        };
        if before_wait + delay >= deadline {
            let stop = Stop::DeadlineExceeded {
                timeout: total_timeout,
                attempts: self.attempt,
            };
            return self.give_up(slot, stop, error);
        }
        let kind = EventKind::RetryScheduled {
            attempt: retry + 1,
            max_attempts,
            delay,
            class,
            error: ErrorText(&Reason(error.as_ref(), policy.timeout.attempt)),
        };
        self.emit(slot, kind);
        tokio::time::sleep_until(before_wait + delay).await;
        let deadline = self.deadline();
        match admit(
            slot,
            &mut self.permit,
            Instant::now(),
            deadline,
            self.operation,
            self.recovery,
        )
        .await
        {
            Ok(at) => {
                self.admitted_next = Some(at);
                None
            }
            Err(stop) => self.give_up(slot, stop, error),
        }
    }
}

/// What a retry follows: the error, or the attempt timeout when the attempt ran out of
/// time.
struct Reason<'a, E>(Option<&'a E>, Duration);

impl<E: fmt::Display> fmt::Display for Reason<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(e) => e.fmt(f),
            None => write!(f, "attempt timed out after {}", fmt_secs(self.1)),
        }
    }
}

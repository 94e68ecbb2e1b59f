//! The retry decision: after a failed attempt, give up with the verdict, or recover, wait
//! out the backoff delay and take the permits for the next attempt.
//!
//! Kept apart from the common path (and boxed by it) so that a call that succeeds
//! carries none of this in its future.
use tokio::time::Instant;

use super::Run;
use super::admit::admit;
use crate::backoff::Backoff;
use crate::breaker::{BreakerState, Outcome, Permit};
use crate::failure::{Stop, fmt_secs};
use crate::health::Stats;
use crate::slot::Slot;
use crate::{ErrorClass, ResilientError};

impl Run<'_> {
    /// Decides what follows a failed attempt: give up, or recover, wait and retry.
    pub(super) async fn after_failure<T, E: ResilientError>(
        &mut self,
        class: ErrorClass,
        error: Option<E>,
        total_ran_out: bool,
        permit: Option<Permit>,
        now: Instant,
    ) -> Option<Result<T, E>> {
        let slot = self.slot.as_deref()?;
        let policy = &*slot.policy;
        slot.stats.error(class);
        if let Some(permit) = permit {
            let seen = if policy.circuit_breaker.ignore.contains(class) {
                Outcome::Ignored
            } else {
                Outcome::Failure
            };
            if let Some(t) = slot.breaker.record(permit, seen, now) {
                slot.on_transition(t, self.recovery);
            }
        }
        if self.enclosing.is_some() {
            // One attempt only: the outer run decides whether to retry.
            if let Some(error) = error {
                self.finish(slot, false, now);
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
                count_retry(slot, now);
                return None;
            }
        }

        if !policy.retry.retry_on.contains(class) {
            tracing::debug!(
                policy = &*slot.policy_name,
                key = &*slot.key,
                operation = self.operation,
                class = class.as_str(),
                "not retried: the policy does not retry {class} errors"
            );
            self.finish(slot, false, now);
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
            tracing::warn!(
                policy = &*slot.policy_name,
                key = &*slot.key,
                operation = self.operation,
                "retry budget exhausted: not retrying"
            );
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
        let backoff = self
            .backoff
            .get_or_insert_with(|| Backoff::new(&policy.retry));
        let delay = self.engine.with_rng(|rng| backoff.delay(retry, rng));
        let deadline = self.deadline.unwrap_or_else(|| now + total_timeout);
        if Instant::now() + delay >= deadline {
            let stop = Stop::DeadlineExceeded {
                timeout: total_timeout,
                attempts: self.attempt,
            };
            return self.give_up(slot, stop, error);
        }
        let reason = match &error {
            Some(e) => e.to_string(),
            None => format!(
                "attempt timed out after {}",
                fmt_secs(policy.timeout.attempt)
            ),
        };
        tracing::warn!(
            policy = &*slot.policy_name,
            key = &*slot.key,
            operation = self.operation,
            attempt = retry + 1,
            max_attempts,
            class = class.as_str(),
            delay_secs = delay.as_secs_f64(),
            "Retry attempt {}/{} for operation {} after error: {}. Next retry in {}",
            retry + 1,
            max_attempts,
            self.operation,
            reason,
            fmt_secs(delay),
        );
        count_retry(slot, now);
        tokio::time::sleep(delay).await;
        match admit(
            slot,
            &mut self.permit,
            Instant::now(),
            self.deadline,
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

/// Counts a retry in health (total and last hour) and metrics.
fn count_retry(slot: &Slot, now: Instant) {
    Stats::bump(&slot.stats.retries);
    slot.stats.retries_hour.add(now);
    slot.meters.retries.increment(1);
}

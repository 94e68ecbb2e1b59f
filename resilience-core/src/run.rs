//! One call through the fixed pipeline:
//!
//! ```text
//! total deadline
//!   └ retry loop (attempts, backoff schedule, retry budget)
//!       └ per attempt: breaker permit → rate-limit permit (key) → attempt deadline → call
//! ```
//!
//! [`Run`] is a small state machine driven by a loop of three steps, `before_attempt`,
//! `attempt` and `after_attempt`. The loop is written out by the caller (by
//! [`Engine::run`](crate::Engine::run), or inline by `#[resilient_operation]`) so that the
//! attempt's future is an ordinary `async` block of the caller's body: it may borrow
//! `self` and arguments, use `?` and `return`, and stays `Send` whenever the body is.
//!
//! A run started inside another run's attempt is *nested*: it calls its body once, with
//! no policy of its own, so nested operations never multiply attempts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::attempt::{self, AttemptInfo};
use crate::backoff::Backoff;
use crate::breaker::{BreakerState, Outcome, Permit};
use crate::engine::{Call, Engine};
use crate::failure::{Failure, Stop, fmt_secs};
use crate::health::Stats;
use crate::limiter::{Admission, Limited};
use crate::recovery::{Recovery, RecoveryCause};
use crate::slot::Slot;
use crate::{ErrorClass, ResilientError};

/// A result type of any name (`Result<T, E>`, `io::Result<T>`), split into its parts.
pub trait ResultLike {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
    /// The plain `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T, E> ResultLike for Result<T, E> {
    type Ok = T;
    type Err = E;
    fn into_result(self) -> Self {
        self
    }
}

/// How one attempt ended.
#[derive(Debug)]
pub enum Attempted<T, E> {
    /// The body finished.
    Done(Result<T, E>),
    /// The attempt ran out of time; `total` when the call's total deadline was the limit.
    TimedOut {
        /// Whether the total deadline (not the per-attempt timeout) ran out.
        total: bool,
    },
}

/// The slot a run works on: borrowed from a [`Resilience`](crate::Resilience) that
/// resolved it once, or looked up for this call.
enum SlotRef<'a> {
    Borrowed(&'a Arc<Slot>),
    Owned(Arc<Slot>),
}

impl std::ops::Deref for SlotRef<'_> {
    type Target = Arc<Slot>;

    fn deref(&self) -> &Arc<Slot> {
        match self {
            SlotRef::Borrowed(slot) => slot,
            SlotRef::Owned(slot) => slot,
        }
    }
}

/// The state of one call. See the module docs.
pub struct Run<'a> {
    engine: &'a Engine,
    policy_name: &'a str,
    slot: Option<SlotRef<'a>>,
    operation: &'static str,
    recovery: Option<&'a Arc<dyn Recovery>>,
    nested: bool,
    attempt: u32,
    bonus_attempts: u32,
    started: Option<Instant>,
    deadline: Option<Instant>,
    /// When the current attempt was admitted (read once, after the permits).
    admitted: Option<Instant>,
    permit: Option<Permit>,
    backoff: Option<Backoff>,
    credentials_refreshed: bool,
}

impl<'a> Run<'a> {
    /// A run of `call` on `engine`.
    pub fn new(engine: &'a Engine, call: Call<'a>) -> Self {
        let key = call.key.unwrap_or(call.policy);
        let slot = engine.slot(call.policy, key).map(SlotRef::Owned);
        Run::with_slot(engine, call, slot)
    }

    /// A run on a slot already resolved for the call's policy and key.
    pub(crate) fn resolved(engine: &'a Engine, call: Call<'a>, slot: &'a Arc<Slot>) -> Self {
        Run::with_slot(engine, call, Some(SlotRef::Borrowed(slot)))
    }

    fn with_slot(engine: &'a Engine, call: Call<'a>, slot: Option<SlotRef<'a>>) -> Self {
        Run {
            engine,
            policy_name: call.policy,
            slot,
            operation: call.operation,
            recovery: call.recovery,
            nested: attempt::current().is_some(),
            attempt: 0,
            bonus_attempts: 0,
            started: None,
            deadline: None,
            admitted: None,
            permit: None,
            backoff: None,
            credentials_refreshed: false,
        }
    }

    fn fail<E: ResilientError>(&self, stop: Stop, last_error: Option<E>) -> E {
        let (policy, key) = match &self.slot {
            Some(slot) => (Arc::clone(&slot.policy_name), Arc::clone(&slot.key)),
            None => (Arc::from(self.policy_name), Arc::from(self.policy_name)),
        };
        E::from_failure(Failure {
            stop,
            policy,
            operation: self.operation,
            key,
            last_error,
        })
    }

    /// Ends the call as a failure: counts it and builds the caller's error.
    fn give_up<T, E: ResilientError>(
        &self,
        slot: &Slot,
        stop: Stop,
        error: Option<E>,
    ) -> Option<Result<T, E>> {
        self.finish(slot, false, Instant::now());
        Some(Err(self.fail(stop, error)))
    }

    fn finish(&self, slot: &Slot, ok: bool, now: Instant) {
        slot.stats.finish(self.operation, ok);
        if !ok {
            slot.meters.failures.increment(1);
        }
        if let Some(started) = self.started {
            let seconds = now.saturating_duration_since(started).as_secs_f64();
            slot.meters.call_seconds.record(seconds);
        }
    }

    /// Takes the breaker's and the rate limiter's permits for the next attempt. `Some`
    /// ends the call (unknown policy, circuit open, rate limited).
    pub async fn before_attempt<T, E: ResilientError>(&mut self) -> Option<Result<T, E>> {
        if self.nested {
            self.attempt += 1;
            return None;
        }
        let Some(slot) = self.slot.as_deref() else {
            let known = self.engine.policies().names().map(str::to_owned).collect();
            return Some(Err(self.fail(Stop::UnknownPolicy { known }, None)));
        };
        let mut now = Instant::now();
        if self.started.is_none() {
            self.started = Some(now);
            self.deadline = Some(now + slot.policy.timeout.total);
            Stats::bump(&slot.stats.calls);
            slot.meters.calls.increment(1);
            slot.budget.deposit(now);
        }

        let (permit, transition) = slot.breaker.acquire(now);
        if let Some(t) = transition {
            slot.on_transition(t, self.recovery);
        }
        match permit {
            Ok(permit) => self.permit = Some(permit),
            Err(retry_in) => {
                Stats::bump(&slot.stats.breaker_rejections);
                slot.meters.circuit_rejections.increment(1);
                tracing::debug!(
                    policy = &*slot.policy_name,
                    key = &*slot.key,
                    operation = self.operation,
                    "circuit open, failing fast"
                );
                return self.give_up(slot, Stop::CircuitOpen { retry_in }, None);
            }
        }

        if slot.policy.rate_limit.enabled && !slot.bucket.try_acquire(now) {
            // The slow path is boxed so that the common case's future stays small.
            match Box::pin(wait_for_token(slot, now, self.deadline, self.operation)).await {
                Ok(waited) => now += waited,
                Err(limited) => {
                    if let Some(permit) = self.permit.take() {
                        slot.breaker.release(permit);
                    }
                    let stop = Stop::RateLimited {
                        retry_after: limited.retry_after,
                    };
                    return self.give_up(slot, stop, None);
                }
            }
        }

        self.admitted = Some(now);
        self.attempt += 1;
        slot.meters.attempts.increment(1);
        None
    }

    /// Runs one attempt's future under the attempt deadline.
    pub async fn attempt<R, F>(&mut self, fut: F) -> Attempted<R::Ok, R::Err>
    where
        R: ResultLike,
        F: Future<Output = R>,
    {
        let (Some(slot), Some(now)) =
            (self.slot.as_deref().filter(|_| !self.nested), self.admitted)
        else {
            return Attempted::Done(fut.await.into_result());
        };
        let attempt_deadline = now + slot.policy.timeout.attempt;
        let (deadline, total) = match self.deadline {
            Some(total) if total <= attempt_deadline => (total, true),
            _ => (attempt_deadline, false),
        };
        let info = AttemptInfo {
            number: self.attempt,
            max_attempts: slot.policy.retry.max_attempts.get() + self.bonus_attempts,
            operation: self.operation,
            deadline: Some(deadline),
        };
        match tokio::time::timeout_at(deadline, attempt::scope(info, fut)).await {
            Ok(result) => Attempted::Done(result.into_result()),
            Err(_) => Attempted::TimedOut { total },
        }
    }

    /// Records how the attempt ended and decides: `Some` ends the call with its result;
    /// `None` means retry (after recovery and the backoff delay, already waited).
    pub async fn after_attempt<T, E: ResilientError>(
        &mut self,
        outcome: Attempted<T, E>,
    ) -> Option<Result<T, E>> {
        let slot = match (self.slot.as_deref(), self.nested) {
            (Some(slot), false) => slot,
            _ => {
                return Some(match outcome {
                    Attempted::Done(result) => result,
                    Attempted::TimedOut { .. } => Err(self.fail(
                        Stop::AttemptTimedOut {
                            timeout: Duration::ZERO,
                            attempts: self.attempt,
                        },
                        None,
                    )),
                });
            }
        };
        let permit = self.permit.take();
        let now = Instant::now();
        let (class, error, total_ran_out) = match outcome {
            Attempted::Done(Ok(value)) => {
                if let Some(permit) = permit
                    && let Some(t) = slot.breaker.record(permit, Outcome::Success, now)
                {
                    slot.on_transition(t, self.recovery);
                }
                self.finish(slot, true, now);
                return Some(Ok(value));
            }
            Attempted::Done(Err(e)) => (e.class(), Some(e), false),
            Attempted::TimedOut { total } => {
                Stats::bump(&slot.stats.timeouts);
                (ErrorClass::Timeout, None, total)
            }
        };
        // The failure path is boxed so that the common case's future stays small.
        Box::pin(self.after_failure(class, error, total_ran_out, permit, now)).await
    }

    /// Decides what follows a failed attempt: give up, or recover, wait and retry.
    async fn after_failure<T, E: ResilientError>(
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
        let max_attempts = policy.retry.max_attempts.get() + self.bonus_attempts;
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
        None
    }

    /// Runs the recovery hook within the call's deadline; `true` when it succeeded.
    async fn recover(
        &self,
        slot: &Slot,
        hook: &Arc<dyn Recovery>,
        class: ErrorClass,
        refresh: bool,
    ) -> bool {
        let cause = RecoveryCause {
            class,
            refresh_credentials: refresh || slot.policy.recovery.credential_refresh,
            operation: self.operation,
        };
        let deadline = self
            .deadline
            .unwrap_or_else(|| Instant::now() + slot.policy.timeout.total);
        let result = match tokio::time::timeout_at(deadline, hook.recover(cause)).await {
            Ok(result) => result,
            Err(_) => Err("recovery ran past the call's deadline".to_owned()),
        };
        match result {
            Ok(()) => {
                Stats::bump(&slot.stats.recoveries);
                slot.meters.recoveries.increment(1);
                tracing::info!(
                    policy = &*slot.policy_name,
                    key = &*slot.key,
                    operation = self.operation,
                    refresh_credentials = cause.refresh_credentials,
                    "connection recovered"
                );
                true
            }
            Err(error) => {
                Stats::bump(&slot.stats.recovery_failures);
                tracing::warn!(policy = &*slot.policy_name, key = &*slot.key, operation = self.operation, %error, "connection recovery failed");
                false
            }
        }
    }
}

/// Counts a retry in health (total and last hour) and metrics.
fn count_retry(slot: &Slot, now: Instant) {
    Stats::bump(&slot.stats.retries);
    slot.stats.retries_hour.add(now);
    slot.meters.retries.increment(1);
}

/// Waits for a rate-limit token (the limiter's slow path), logging and counting the wait
/// or the refusal.
async fn wait_for_token(
    slot: &Slot,
    now: Instant,
    deadline: Option<Instant>,
    operation: &'static str,
) -> Result<Duration, Limited> {
    let admission = slot.bucket.acquire(now, deadline, |wait| {
        tracing::info!(
            policy = &*slot.policy_name,
            key = &*slot.key,
            operation,
            wait_secs = wait.as_secs_f64(),
            "Rate limit applied for {}. Waiting {} seconds",
            slot.key,
            fmt_secs(wait).trim_end_matches('s'),
        );
    });
    match admission.await {
        Ok(Admission::Immediate) => Ok(Duration::ZERO),
        Ok(Admission::Waited(waited)) => {
            Stats::bump(&slot.stats.rate_limit_waits);
            slot.meters.rate_limit_waits.increment(1);
            Ok(waited)
        }
        Err(limited) => {
            Stats::bump(&slot.stats.rate_limit_rejections);
            slot.meters.rate_limit_rejections.increment(1);
            tracing::warn!(
                policy = &*slot.policy_name,
                key = &*slot.key,
                operation,
                retry_after_secs = limited.retry_after.as_secs_f64(),
                "rate limit: call refused, retry after {}",
                fmt_secs(limited.retry_after)
            );
            Err(limited)
        }
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        // A call cancelled between taking the breaker's permit and finishing its attempt
        // gives the permit back, so a cancelled probe does not hold HALF_OPEN hostage.
        if let (Some(permit), Some(slot)) = (self.permit.take(), &self.slot) {
            slot.breaker.release(permit);
        }
    }
}

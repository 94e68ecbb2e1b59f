//! Admission of one attempt: the breaker's permit, then a rate-limit token.
//!
//! [`Run::begin`] admits a call's attempt without waiting when it can (the common case);
//! [`Run::wait_admission`] waits for a token when the bucket has none free.
//!
//! Shared by the first attempt and by retries. A retry takes its permits at the end of the
//! retry path, after the backoff delay, where the last error is still at hand: if the
//! breaker or the limiter refuses the retry, the caller's error keeps that last error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Run, Spans};
use crate::breaker::Permit;
use crate::error::ResilientError;
use crate::events::EventKind;
use crate::failure::Stop;
use crate::limiter::{Admission, Limited};
use crate::recovery::Recovery;
use crate::slot::{Slot, Ticks};

/// Takes the breaker's permit (into `permit`) and a rate-limit token at `now`. Returns
/// when the attempt was admitted (later than `now` when it waited for a token), or the
/// verdict when it was refused, with no permit left held.
pub(super) async fn admit(
    slot: &Arc<Slot>,
    permit: &mut Option<Permit>,
    now: Instant,
    deadline: Option<Instant>,
    operation: &'static str,
    recovery: Option<&Arc<dyn Recovery>>,
) -> Result<Instant, Stop> {
    if try_admit(slot, permit, now, None, operation, recovery)? {
        return Ok(now);
    }
    wait(slot, permit, now, deadline, operation).await
}

/// The synchronous part of [`admit`]: `Ok(true)` when admitted at `now`, `Ok(false)` when
/// the permit is taken but the attempt must wait for a token ([`wait`]). `ticks` is `now`
/// on the slot's clocks, when the caller has it.
#[inline]
pub(super) fn try_admit(
    slot: &Arc<Slot>,
    permit: &mut Option<Permit>,
    now: Instant,
    ticks: Option<Ticks>,
    operation: &'static str,
    recovery: Option<&Arc<dyn Recovery>>,
) -> Result<bool, Stop> {
    *permit = Some(match slot.breaker.closed_permit() {
        Some(taken) => taken,
        None => acquire_locked(slot, now, operation, recovery)?,
    });
    // A shared policy always takes the slow path: the store decides.
    let token = || match ticks {
        Some(ticks) => slot.bucket.try_acquire_at(ticks.bucket),
        None => slot.bucket.try_acquire(now),
    };
    Ok(slot.shared.is_none() && (!slot.hot.rate_limited() || token()))
}

/// The breaker's permit when it is not CLOSED: taken under its lock, reporting the
/// transition it makes (OPEN to HALF_OPEN) and the rejection.
#[cold]
#[inline(never)]
fn acquire_locked(
    slot: &Arc<Slot>,
    now: Instant,
    operation: &'static str,
    recovery: Option<&Arc<dyn Recovery>>,
) -> Result<Permit, Stop> {
    let (taken, transition) = slot.breaker.acquire(now);
    if let Some(t) = transition {
        slot.on_transition(t, Some(operation), recovery);
    }
    taken.map_err(|retry_in| rejected(slot, operation, retry_in))
}

#[cold]
#[inline(never)]
fn rejected(slot: &Slot, operation: &'static str, retry_in: Duration) -> Stop {
    slot.emit(
        Some(operation),
        EventKind::CircuitOpenRejection { retry_in },
    );
    Stop::CircuitOpen { retry_in }
}

/// The slow path of [`admit`]: asks the shared store when the policy is shared, waits for
/// a rate-limit token, and gives the breaker's permit back when either refuses. Boxed,
/// and built out of line, so that the common case carries none of it in its future.
#[cold]
#[inline(never)]
pub(super) fn wait<'a>(
    slot: &'a Slot,
    permit: &'a mut Option<Permit>,
    now: Instant,
    deadline: Option<Instant>,
    operation: &'static str,
) -> Pin<Box<impl Future<Output = Result<Instant, Stop>> + 'a>> {
    Box::pin(async move {
        if let Some(store) = &slot.shared {
            if let Err(stop) = crate::shared::gate(slot, &**store, operation).await {
                if let Some(taken) = permit.take() {
                    slot.breaker.release(taken);
                }
                return Err(stop);
            }
            if !slot.hot.rate_limited() {
                return Ok(now);
            }
        }
        match wait_for_token(slot, now, deadline, operation).await {
            Ok(waited) => Ok(now + waited),
            Err(stop) => {
                if let Some(taken) = permit.take() {
                    slot.breaker.release(taken);
                }
                Err(stop)
            }
        }
    })
}

/// Waits for a rate-limit token (the limiter's slow path, or the shared store's),
/// reporting the wait or the refusal.
async fn wait_for_token(
    slot: &Slot,
    now: Instant,
    deadline: Option<Instant>,
    operation: &'static str,
) -> Result<Duration, Stop> {
    if let Some(store) = &slot.shared {
        return crate::shared::admit(slot, &**store, now, deadline, operation).await;
    }
    let admission = slot.bucket.acquire(now, deadline, |wait| {
        slot.emit(Some(operation), EventKind::RateLimitWait { wait });
    });
    match admission.await {
        Ok(Admission::Immediate) => Ok(Duration::ZERO),
        Ok(Admission::Waited(waited)) => Ok(waited),
        Err(Limited { retry_after }) => {
            slot.emit(
                Some(operation),
                EventKind::RateLimitRejected { retry_after },
            );
            Err(Stop::RateLimited { retry_after })
        }
    }
}

impl Run<'_> {
    /// Admission, up to a wait: takes the breaker's permit and a rate-limit token for the
    /// next attempt (unless the retry path took them already), or ends the call (unknown
    /// policy, circuit open).
    #[inline(always)]
    pub(super) fn begin<T, E: ResilientError>(&mut self) -> Begin<T, E> {
        if self.joined {
            return Begin::Go;
        }
        let slot = match self.slot {
            Some(slot) if !slot.hot.retired() => slot,
            _ => return Begin::End(Err(self.unknown_policy())),
        };
        let now = Instant::now();
        let first = self.started.is_none();
        // An outermost call's first attempt makes a deposit in the retry budget; the
        // bucket's clock comes from the same subtraction.
        let deposit = first && self.enclosing.is_none();
        let ticks = (deposit || slot.hot.rate_limited()).then(|| slot.ticks(now));
        if first {
            // Written only when there are spans (the first attempt has none yet), so that
            // a call without them does not drop the empty value it replaces.
            let deposit_at = ticks.filter(|_| deposit).map(|ticks| ticks.budget);
            if let Some(spans) = start(slot, deposit_at, self.operation) {
                self.spans.get_or_insert(spans);
            }
            self.started = Some(now);
            self.total = slot.hot.total();
        }

        let admitted = match self.admitted_next.take() {
            Some(at) => at,
            None => {
                let (permit, operation, recovery) =
                    (&mut self.permit, self.operation, self.recovery);
                match try_admit(slot, permit, now, ticks, operation, recovery) {
                    Ok(true) => now,
                    Ok(false) => return Begin::Wait(now),
                    Err(stop) => return Begin::End(self.stopped(slot, stop)),
                }
            }
        };
        self.admitted = Some(admitted);
        self.attempt += 1;
        slot.meters.attempts.increment(1);
        Begin::Go
    }

    /// The call's policy is not (or no longer) loaded.
    #[cold]
    #[inline(never)]
    fn unknown_policy<E: ResilientError>(&self) -> E {
        let known = self.engine.policies().names().map(str::to_owned).collect();
        self.fail(Stop::UnknownPolicy { known }, None)
    }

    /// Admission refused before the attempt: the call ends with `stop`.
    #[cold]
    #[inline(never)]
    fn stopped<T, E: ResilientError>(&self, slot: &Slot, stop: Stop) -> Result<T, E> {
        match self.give_up(slot, stop, None) {
            Some(done) => done,
            None => unreachable!("giving up ends the call"),
        }
    }

    /// Admission's slow part: waits for a rate-limit token (or the shared store's word),
    /// the breaker's permit already taken at `now`; `Some` ends the call (rate limited).
    #[cold]
    #[inline(never)]
    pub(super) async fn wait_admission<T, E: ResilientError>(
        &mut self,
        now: Instant,
    ) -> Option<Result<T, E>> {
        let slot = self.slot?;
        let deadline = self.deadline();
        let waited = wait(slot, &mut self.permit, now, deadline, self.operation);
        match waited.await {
            Ok(at) => {
                self.admitted = Some(at);
                self.attempt += 1;
                slot.meters.attempts.increment(1);
                None
            }
            Err(stop) => self.give_up(slot, stop, None),
        }
    }
}

/// The synchronous part of admission, decided.
pub(super) enum Begin<T, E> {
    /// Admitted (or part of an enclosing attempt): the attempt may start.
    Go,
    /// The breaker's permit is taken at this moment; a rate-limit token is still to wait
    /// for.
    Wait(Instant),
    /// The call ends here.
    End(Result<T, E>),
}

/// Starts a call: counts it, makes its deposit in the retry budget at `deposit_at` (its
/// clock, for an outermost call only) and returns its spans, when a subscriber wants them.
#[inline(always)]
fn start(slot: &Slot, deposit_at: Option<u64>, operation: &'static str) -> Option<Box<Spans>> {
    slot.meters.calls.increment(1);
    if let Some(nanos) = deposit_at {
        slot.budget.deposit_at(nanos);
    }
    // Checked first, so that a call makes no span at all (not even a disabled one to
    // drop) unless some subscriber wants `debug`.
    if tracing::Level::DEBUG <= tracing::level_filters::STATIC_MAX_LEVEL
        && tracing::Level::DEBUG <= tracing::level_filters::LevelFilter::current()
    {
        Spans::new(slot, operation)
    } else {
        None
    }
}

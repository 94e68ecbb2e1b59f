//! Admission of one attempt: the breaker's permit, then a rate-limit token.
//!
//! Shared by the first attempt and by retries. A retry takes its permits at the end of the
//! retry path, after the backoff delay, where the last error is still at hand: if the
//! breaker or the limiter refuses the retry, the caller's error keeps that last error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::{Permit, Transition};
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
    let (taken, transition) = slot.breaker.acquire(now);
    if let Some(t) = transition {
        transition_cold(slot, t, operation, recovery);
    }
    match taken {
        Ok(taken) => *permit = Some(taken),
        Err(retry_in) => return Err(rejected(slot, operation, retry_in)),
    }
    // A shared policy always takes the slow path: the store decides.
    let token = || match ticks {
        Some(ticks) => slot.bucket.try_acquire_at(ticks.bucket),
        None => slot.bucket.try_acquire(now),
    };
    Ok(slot.shared.is_none() && (!slot.hot.rate_limited() || token()))
}

#[cold]
#[inline(never)]
fn transition_cold(
    slot: &Arc<Slot>,
    transition: Transition,
    operation: &'static str,
    recovery: Option<&Arc<dyn Recovery>>,
) {
    slot.on_transition(transition, Some(operation), recovery);
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

//! Admission of one attempt: the breaker's permit, then a rate-limit token.
//!
//! Shared by the first attempt and by retries. A retry takes its permits at the end of the
//! retry path, after the backoff delay, where the last error is still at hand: if the
//! breaker or the limiter refuses the retry, the caller's error keeps that last error.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::Permit;
use crate::events::EventKind;
use crate::failure::Stop;
use crate::limiter::{Admission, Limited};
use crate::recovery::Recovery;
use crate::slot::Slot;

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
    let (taken, transition) = slot.breaker.acquire(now);
    if let Some(t) = transition {
        slot.on_transition(t, Some(operation), recovery);
    }
    match taken {
        Ok(taken) => *permit = Some(taken),
        Err(retry_in) => {
            slot.emit(
                Some(operation),
                EventKind::CircuitOpenRejection { retry_in },
            );
            return Err(Stop::CircuitOpen { retry_in });
        }
    }
    if let Some(store) = &slot.shared
        && let Err(stop) = Box::pin(crate::shared::gate(slot, &**store, operation)).await
    {
        if let Some(taken) = permit.take() {
            slot.breaker.release(taken);
        }
        return Err(stop);
    }
    if !slot.hot.rate_limited() || (slot.shared.is_none() && slot.bucket.try_acquire(now)) {
        return Ok(now);
    }
    // The slow path is boxed so that the common case's future stays small.
    match Box::pin(wait_for_token(slot, now, deadline, operation)).await {
        Ok(waited) => Ok(now + waited),
        Err(stop) => {
            if let Some(taken) = permit.take() {
                slot.breaker.release(taken);
            }
            Err(stop)
        }
    }
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

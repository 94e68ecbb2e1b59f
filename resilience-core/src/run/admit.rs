//! Admission of one attempt: the breaker's permit, then a rate-limit token.
//!
//! Shared by the first attempt and by retries. A retry takes its permits at the end of the
//! retry path, after the backoff delay, where the last error is still at hand: if the
//! breaker or the limiter refuses the retry, the caller's error keeps that last error.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::Permit;
use crate::failure::{Stop, fmt_secs};
use crate::health::Stats;
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
        slot.on_transition(t, recovery);
    }
    match taken {
        Ok(taken) => *permit = Some(taken),
        Err(retry_in) => {
            Stats::bump(&slot.stats.breaker_rejections);
            slot.meters.circuit_rejections.increment(1);
            tracing::debug!(
                policy = &*slot.policy_name,
                key = &*slot.key,
                operation,
                "circuit open, failing fast"
            );
            return Err(Stop::CircuitOpen { retry_in });
        }
    }
    if !slot.policy.rate_limit.enabled || slot.bucket.try_acquire(now) {
        return Ok(now);
    }
    // The slow path is boxed so that the common case's future stays small.
    match Box::pin(wait_for_token(slot, now, deadline, operation)).await {
        Ok(waited) => Ok(now + waited),
        Err(limited) => {
            if let Some(taken) = permit.take() {
                slot.breaker.release(taken);
            }
            Err(Stop::RateLimited {
                retry_after: limited.retry_after,
            })
        }
    }
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

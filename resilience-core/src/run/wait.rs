//! The rate limiter's slow path: waiting for a token, or being refused one.

use std::time::Duration;

use tokio::time::Instant;

use crate::failure::fmt_secs;
use crate::health::Stats;
use crate::limiter::{Admission, Limited};
use crate::slot::Slot;

/// Waits for a rate-limit token (the limiter's slow path), logging and counting the wait
/// or the refusal.
pub(super) async fn wait_for_token(
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

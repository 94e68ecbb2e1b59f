//! The seam for a shared store: rate limits (and breaker state) held for a fleet of
//! processes instead of one.
//!
//! The engine keeps its local limiter and breaker exactly as they are. A store
//! implementation (the `resilience-redis` crate) plugs in through [`SharedStore`], given
//! to [`Engine::with_store`](crate::Engine::with_store); a policy the policy set marks as
//! shared ([`PolicySet::is_shared`](crate::PolicySet::is_shared)) then takes its
//! rate-limit tokens from the store. The local fast path is untouched: a slot without a
//! store never reaches this module, and one with a store skips the local bucket with one
//! pointer test.
//!
//! A reservation answers at once how long the caller must wait for its token, so one
//! round trip to the store admits a call whether it goes now or later: the engine sleeps
//! the wait itself (reporting it as a [`RateLimitWait`](crate::events::EventKind)), and
//! refuses when the wait would pass `max_wait` or the call's deadline. What happens when
//! the store does not answer (a local fair share, or a refusal) is the store's business;
//! it says so through [`Reservation::Unavailable`] only when calls must be refused.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use crate::events::EventKind;
use crate::failure::Stop;
use crate::policy::{RateLimitPolicy, WhenLimited};
use crate::slot::Slot;

/// A boxed, sendable future (what [`SharedStore`] methods return).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The answer to a request for one rate-limit token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// A token is reserved for this caller: it may call after `wait` (zero: at once).
    Go {
        /// How long to wait before calling.
        wait: Duration,
    },
    /// No token within the wait the caller allowed; one is expected after `retry_after`.
    Limited {
        /// How long until a token is expected to be free.
        retry_after: Duration,
    },
    /// The store does not answer and its policy is to refuse calls meanwhile.
    Unavailable {
        /// Why, for the caller's error (never a credential).
        reason: String,
    },
}

/// One shared bucket: the policy and key it belongs to, and the limit in force.
#[derive(Debug, Clone, Copy)]
pub struct BucketRef<'a> {
    /// The policy's name.
    pub policy: &'a str,
    /// The rate-limit key.
    pub key: &'a str,
    /// The limit (rate and burst) of the policy now.
    pub limit: &'a RateLimitPolicy,
}

/// A store that holds rate limits for every process that names it.
pub trait SharedStore: Send + Sync + 'static {
    /// Reserves one token of `bucket`, if one is free within `max_wait` (zero for
    /// `when_limited = "reject"`). The answer must come well within an attempt timeout,
    /// whatever the store's state: an implementation bounds every request it makes.
    fn reserve<'a>(
        &'a self,
        bucket: BucketRef<'a>,
        max_wait: Duration,
    ) -> StoreFuture<'a, Reservation>;
}

/// Takes a rate-limit token for `slot` from its shared store at `now`: waits the reserved
/// time (within `deadline` and `max_wait`), or says why not, reporting both as events.
pub(crate) async fn admit(
    slot: &Slot,
    store: &dyn SharedStore,
    now: Instant,
    deadline: Option<Instant>,
    operation: &'static str,
) -> Result<Duration, Stop> {
    let policy = slot.policy();
    let limit = &policy.rate_limit;
    let mut max_wait = match limit.when_limited {
        WhenLimited::Wait => limit.max_wait,
        WhenLimited::Reject => Duration::ZERO,
    };
    if let Some(deadline) = deadline {
        max_wait = max_wait.min(deadline.saturating_duration_since(now));
    }
    // As locally: one bucket per key with `per_host`, else one for the policy.
    let bucket = BucketRef {
        policy: &slot.policy_name,
        key: if limit.per_host { &slot.key } else { "*" },
        limit,
    };
    match store.reserve(bucket, max_wait).await {
        Reservation::Go { wait } => {
            // The time spent asking the store counts against the reserved wait.
            let asked = Instant::now().saturating_duration_since(now);
            let wait = wait.saturating_sub(asked);
            if !wait.is_zero() {
                slot.emit(Some(operation), EventKind::RateLimitWait { wait });
                tokio::time::sleep(wait).await;
            }
            Ok(Instant::now().saturating_duration_since(now))
        }
        Reservation::Limited { retry_after } => {
            slot.emit(
                Some(operation),
                EventKind::RateLimitRejected { retry_after },
            );
            Err(Stop::RateLimited { retry_after })
        }
        Reservation::Unavailable { reason } => Err(Stop::StoreUnavailable { reason }),
    }
}

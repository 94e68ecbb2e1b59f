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
//! The breaker is shared the same way, with a local fast path: the store keeps a view of
//! the fleet's breaker state (refreshed in the background), and [`SharedStore::gate`]
//! reads it without a request. A CLOSED view costs nothing more; an OPEN one fails the
//! call fast; once the open period has passed, the caller needs a probe *lease*
//! ([`SharedStore::lease`]), so the whole fleet admits at most `success_threshold` probes
//! at a time. Each attempt's outcome goes to [`SharedStore::record`], which must not
//! block (a store sends it in the background).
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

use crate::breaker::Outcome;
use crate::events::EventKind;
use crate::failure::Stop;
use crate::policy::{BreakerPolicy, RateLimitPolicy, WhenLimited};
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

/// One shared breaker: the policy and key it belongs to, and its settings now.
#[derive(Debug, Clone, Copy)]
pub struct BreakerRef<'a> {
    /// The policy's name.
    pub policy: &'a str,
    /// The key.
    pub key: &'a str,
    /// The breaker's settings.
    pub settings: &'a BreakerPolicy,
}

/// The fleet's breaker as this process last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Calls go through (no request made).
    Closed,
    /// Calls fail fast until the open period ends.
    Open {
        /// How long until probes are admitted.
        retry_in: Duration,
    },
    /// The open period has ended: a call needs a probe lease first.
    Probe,
}

/// The answer to a request for a probe lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// This call may go (as a probe, or because the breaker closed meanwhile).
    Granted,
    /// The fleet's probes are all in flight, or the breaker opened again.
    Refused {
        /// How long until the caller may ask again.
        retry_in: Duration,
    },
}

/// A store that holds rate limits (and breaker state) for every process that names it.
pub trait SharedStore: Send + Sync + 'static {
    /// Reserves one token of `bucket`, if one is free within `max_wait` (zero for
    /// `when_limited = "reject"`). The answer must come well within an attempt timeout,
    /// whatever the store's state: an implementation bounds every request it makes.
    fn reserve<'a>(
        &'a self,
        bucket: BucketRef<'a>,
        max_wait: Duration,
    ) -> StoreFuture<'a, Reservation>;

    /// The fleet's breaker state as last seen, without a request (the local fast path).
    /// A store that does not share breakers answers [`Gate::Closed`].
    fn gate(&self, breaker: BreakerRef<'_>) -> Gate {
        let _ = breaker;
        Gate::Closed
    }

    /// Asks for one of the fleet's probe leases (after [`Gate::Probe`]).
    fn lease<'a>(&'a self, breaker: BreakerRef<'a>) -> StoreFuture<'a, Lease> {
        let _ = breaker;
        Box::pin(async { Lease::Granted })
    }

    /// Reports an attempt's outcome to the fleet's breaker. Must not block.
    fn record(&self, breaker: BreakerRef<'_>, outcome: Outcome) {
        let _ = (breaker, outcome);
    }
}

/// Checks the fleet's breaker for `slot` before an attempt: `Err` fails the call fast.
pub(crate) async fn gate(
    slot: &Slot,
    store: &dyn SharedStore,
    operation: &'static str,
) -> Result<(), Stop> {
    let policy = slot.policy();
    if !policy.circuit_breaker.enabled {
        return Ok(());
    }
    let breaker = BreakerRef {
        policy: &slot.policy_name,
        key: &slot.key,
        settings: &policy.circuit_breaker,
    };
    let retry_in = match store.gate(breaker) {
        Gate::Closed => return Ok(()),
        Gate::Open { retry_in } => retry_in,
        Gate::Probe => match store.lease(breaker).await {
            Lease::Granted => return Ok(()),
            Lease::Refused { retry_in } => retry_in,
        },
    };
    slot.emit(
        Some(operation),
        EventKind::CircuitOpenRejection { retry_in },
    );
    Err(Stop::CircuitOpen { retry_in })
}

/// Reports an attempt's outcome to the fleet's breaker of `slot`, if it has one.
pub(crate) fn record(slot: &Slot, outcome: Outcome) {
    let Some(store) = &slot.shared else {
        return;
    };
    let policy = slot.policy();
    if policy.circuit_breaker.enabled {
        store.record(
            BreakerRef {
                policy: &slot.policy_name,
                key: &slot.key,
                settings: &policy.circuit_breaker,
            },
            outcome,
        );
    }
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
            // The slot is `wait` after the store read its clock, which it did after the
            // request left and before the answer came back. Waiting `wait` from the
            // answer is late by the answer's way back, never early: the dependency never
            // sees calls closer together than the limit allows. (A late call does not
            // push anyone else's slot back: the store hands the slots out.)
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

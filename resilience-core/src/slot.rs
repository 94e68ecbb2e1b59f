//! The runtime state of one policy and rate-limit key: its breaker, budget, recovery
//! gate, token bucket, counters and metric handles, and the policy they run under.
//!
//! A slot is created on the first call for its policy and key and lives as long as the
//! engine. A policy reload changes the slot in place ([`Slot::reconfigure`]): its breaker,
//! bucket and counters carry on under the new settings, so a call holding the slot (or a
//! `Resilience` that resolved it once) sees the reload at its next attempt. The few
//! settings every call reads are kept in atomics ([`Hot`]); the rest is read, once per
//! failed attempt, from the policy behind a lock.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::{BreakerState, CircuitBreaker, Transition};
use crate::budget::RetryBudget;
use crate::events::{Event, EventKind, Hub};
use crate::health::{KeyHealth, Stats};
use crate::limiter::TokenBucket;
use crate::policy::Policy;
use crate::recovery::{Recovery, RecoveryGate};
use crate::shared::SharedStore;

mod log;
mod meters;
mod probe;

pub(crate) use meters::Meters;

/// The settings every call reads, kept in atomics so the call path takes no lock. A reload
/// stores them one by one: a call racing it may mix old and new values, each valid.
pub(crate) struct Hot {
    attempt: AtomicDuration,
    total: AtomicDuration,
    max_attempts: AtomicU32,
    rate_limit: AtomicBool,
    /// The policy is no longer loaded (a reload removed it): calls fail as unknown.
    retired: AtomicBool,
}

impl Hot {
    fn new(policy: &Policy) -> Hot {
        let hot = Hot {
            attempt: AtomicDuration::default(),
            total: AtomicDuration::default(),
            max_attempts: AtomicU32::new(1),
            rate_limit: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        };
        hot.store(policy);
        hot
    }

    fn store(&self, policy: &Policy) {
        self.attempt.store(policy.timeout.attempt);
        self.total.store(policy.timeout.total);
        self.max_attempts
            .store(policy.retry.max_attempts.get(), Ordering::Relaxed);
        self.rate_limit
            .store(policy.rate_limit.enabled, Ordering::Relaxed);
    }

    /// The per-attempt timeout.
    #[inline]
    pub(crate) fn attempt(&self) -> Duration {
        self.attempt.load()
    }

    /// The total deadline of a call.
    #[inline]
    pub(crate) fn total(&self) -> Duration {
        self.total.load()
    }

    /// Attempts a call may make.
    #[inline]
    pub(crate) fn max_attempts(&self) -> u32 {
        self.max_attempts.load(Ordering::Relaxed)
    }

    /// Whether the rate limiter applies.
    #[inline]
    pub(crate) fn rate_limited(&self) -> bool {
        self.rate_limit.load(Ordering::Relaxed)
    }

    /// Whether a reload removed the policy.
    #[inline]
    pub(crate) fn retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }
}

/// A duration in two atomics, read back without a division.
#[derive(Default)]
struct AtomicDuration {
    secs: AtomicU64,
    nanos: AtomicU32,
}

impl AtomicDuration {
    fn store(&self, d: Duration) {
        self.secs.store(d.as_secs(), Ordering::Relaxed);
        self.nanos.store(d.subsec_nanos(), Ordering::Relaxed);
    }

    #[inline]
    fn load(&self) -> Duration {
        let nanos = self.nanos.load(Ordering::Relaxed);
        // Always below a second as stored; the `min` keeps `Duration::new` from carrying.
        Duration::new(self.secs.load(Ordering::Relaxed), nanos.min(999_999_999))
    }
}

/// One instant on the clocks of a slot's retry budget and rate-limit bucket, in
/// nanoseconds since each one's origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticks {
    pub(crate) budget: u64,
    pub(crate) bucket: u64,
}

/// State for one policy and key.
pub(crate) struct Slot {
    pub(crate) policy_name: Arc<str>,
    pub(crate) key: Arc<str>,
    /// A number no other slot of this process has (never 0): its identity in an attempt's
    /// chain of enclosing policies and keys.
    pub(crate) serial: u32,
    /// Its place in its engine's [`SlotArena`](crate::arena::SlotArena).
    pub(crate) number: usize,
    policy: RwLock<Arc<Policy>>,
    pub(crate) hot: Hot,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) budget: RetryBudget,
    pub(crate) gate: RecoveryGate,
    pub(crate) bucket: Arc<TokenBucket>,
    /// How long after the bucket's origin the budget's is, in nanoseconds (the bucket
    /// may be older, shared with other policies); `None` if the bucket's is the later one
    /// (another runtime's paused clock). See [`ticks`](Self::ticks).
    bucket_lead: Option<u64>,
    /// The shared store this slot takes its rate-limit tokens from, when its policy is
    /// shared (see [`shared`](crate::shared)); `None` keeps everything local.
    pub(crate) shared: Option<Arc<dyn SharedStore>>,
    pub(crate) stats: Stats,
    pub(crate) meters: Meters,
    hub: Arc<Hub>,
    probing: AtomicBool,
}

impl Slot {
    pub(crate) fn new(
        number: usize,
        policy_name: Arc<str>,
        key: Arc<str>,
        policy: Arc<Policy>,
        bucket: Arc<TokenBucket>,
        hub: Arc<Hub>,
    ) -> Self {
        static SERIAL: AtomicU32 = AtomicU32::new(1);
        let budget = RetryBudget::new(&policy.retry.budget);
        let bucket_lead =
            (bucket.origin() <= budget.origin()).then(|| bucket.nanos(budget.origin()));
        Slot {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed).max(1),
            number,
            breaker: CircuitBreaker::new(&policy.circuit_breaker),
            budget,
            bucket_lead,
            gate: RecoveryGate::new(&policy.recovery),
            hot: Hot::new(&policy),
            stats: Stats::new(),
            meters: Meters::new(&policy_name, &key),
            hub,
            probing: AtomicBool::new(false),
            policy_name,
            key,
            policy: RwLock::new(policy),
            bucket,
            shared: None,
        }
    }

    /// `now` on the clocks of the retry budget and the rate-limit bucket, from one
    /// `Instant` subtraction instead of one each (std's checked arithmetic is a good part
    /// of a call's cost). The bucket's is the budget's plus the lead between their
    /// origins, exact once `now` is past both; otherwise (instants of another runtime's
    /// paused clock) each is computed on its own.
    #[inline]
    pub(crate) fn ticks(&self, now: Instant) -> Ticks {
        match self.bucket_lead {
            Some(lead) if now >= self.budget.origin() => {
                let budget = self.budget.since_origin(now);
                Ticks {
                    budget,
                    bucket: budget.saturating_add(lead),
                }
            }
            _ => Ticks {
                budget: self.budget.since_origin(now),
                bucket: self.bucket.nanos(now),
            },
        }
    }

    /// The policy this slot runs under now.
    pub(crate) fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Applies a reloaded policy (`None`: the reload removed it). The breaker keeps its
    /// state, the budget and recovery gate their windows, and the counters their counts;
    /// the shared bucket is reconfigured by the registry. Returns whether anything changed.
    pub(crate) fn reconfigure(&self, policy: Option<&Arc<Policy>>) -> bool {
        let Some(policy) = policy else {
            return !self.hot.retired.swap(true, Ordering::Relaxed);
        };
        let was_retired = self.hot.retired.swap(false, Ordering::Relaxed);
        let mut current = self.policy.write().unwrap_or_else(|p| p.into_inner());
        if **current == **policy {
            return was_retired;
        }
        self.breaker.reconfigure(&policy.circuit_breaker);
        self.budget.reconfigure(&policy.retry.budget);
        self.gate.reconfigure(&policy.recovery);
        self.hot.store(policy);
        *current = Arc::clone(policy);
        true
    }

    /// Reports a breaker transition and reacts to it: an opened breaker starts
    /// background probing through the recovery hook, when there is one.
    pub(crate) fn on_transition(
        self: &Arc<Self>,
        transition: Transition,
        operation: Option<&'static str>,
        hook: Option<&Arc<dyn Recovery>>,
    ) {
        let Transition { from, to, cause } = transition;
        self.emit(operation, EventKind::BreakerTransition { from, to, cause });
        if to == BreakerState::Open
            && let Some(hook) = hook
        {
            self.start_probing(hook);
        }
    }

    /// Reports what the engine did for this policy and key: counts it in health and
    /// metrics, logs it for people, and hands it to the engine's observers.
    pub(crate) fn emit(&self, operation: Option<&'static str>, kind: EventKind<'_>) {
        self.count(&kind);
        log::event(
            &self.policy_name,
            &self.key,
            operation,
            &kind,
            &self.policy(),
        );
        self.hub.publish(&Event {
            policy: &self.policy_name,
            key: &self.key,
            operation,
            kind,
        });
    }

    /// The health counters and metric handles an event moves.
    fn count(&self, kind: &EventKind<'_>) {
        let (stats, meters) = (&self.stats, &self.meters);
        match kind {
            EventKind::RetryScheduled { .. } => {
                Stats::bump(&stats.retries);
                stats.retries_hour.add(Instant::now());
                meters.retries.increment(1);
            }
            EventKind::GaveUp { .. } => {
                Stats::bump(&stats.gave_up);
                meters.gave_up.increment(1);
            }
            EventKind::CircuitOpenRejection { .. } => {
                Stats::bump(&stats.breaker_rejections);
                meters.circuit_rejections.increment(1);
            }
            EventKind::BreakerTransition { to, .. } => meters.breaker_state.set(match to {
                BreakerState::Closed => 0.0,
                BreakerState::Open => 1.0,
                BreakerState::HalfOpen => 2.0,
            }),
            EventKind::RateLimitWait { .. } => {
                Stats::bump(&stats.rate_limit_waits);
                meters.rate_limit_waits.increment(1);
            }
            EventKind::RateLimitRejected { .. } => {
                Stats::bump(&stats.rate_limit_rejections);
                meters.rate_limit_rejections.increment(1);
            }
            EventKind::BudgetExhausted { .. } => Stats::bump(&stats.budget_exhausted),
            EventKind::RecoverySucceeded { .. } => {
                Stats::bump(&stats.recoveries);
                meters.recoveries.increment(1);
            }
            EventKind::RecoveryFailed { .. } => Stats::bump(&stats.recovery_failures),
            _ => {}
        }
    }

    pub(crate) fn health(&self, now: Instant) -> KeyHealth {
        let state = self.breaker.state_now();
        self.stats
            .snapshot(&self.policy_name, &self.key, state, now)
    }
}

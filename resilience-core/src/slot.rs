//! The runtime state of one policy and rate-limit key: its breaker, budget, recovery
//! gate, token bucket, counters and metric handles.
//!
//! A slot is created on the first call for its policy and key and lives as long as the
//! engine. Metric handles are registered once here, so the call path only bumps them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use tokio::time::Instant;

use crate::breaker::{BreakerState, CircuitBreaker, Transition};
use crate::budget::RetryBudget;
use crate::events::{Event, EventKind, Hub};
use crate::health::{KeyHealth, Stats};
use crate::limiter::TokenBucket;
use crate::policy::Policy;
use crate::recovery::{Recovery, RecoveryGate};

mod log;

/// Metric handles of one slot.
pub(crate) struct Meters {
    pub(crate) calls: Counter,
    pub(crate) failures: Counter,
    pub(crate) attempts: Counter,
    pub(crate) retries: Counter,
    pub(crate) circuit_rejections: Counter,
    pub(crate) rate_limit_waits: Counter,
    pub(crate) rate_limit_rejections: Counter,
    pub(crate) recoveries: Counter,
    pub(crate) gave_up: Counter,
    pub(crate) call_seconds: Histogram,
    pub(crate) breaker_state: Gauge,
}

impl Meters {
    fn new(policy: &str, key: &str) -> Self {
        let labels = [("policy", policy.to_owned()), ("key", key.to_owned())];
        Meters {
            calls: metrics::counter!("resilience_calls_total", &labels),
            failures: metrics::counter!("resilience_call_failures_total", &labels),
            attempts: metrics::counter!("resilience_attempts_total", &labels),
            retries: metrics::counter!("resilience_retries_total", &labels),
            circuit_rejections: metrics::counter!(
                "resilience_circuit_open_rejections_total",
                &labels
            ),
            rate_limit_waits: metrics::counter!("resilience_rate_limit_waits_total", &labels),
            rate_limit_rejections: metrics::counter!(
                "resilience_rate_limit_rejections_total",
                &labels
            ),
            recoveries: metrics::counter!("resilience_connection_recoveries_total", &labels),
            gave_up: metrics::counter!("resilience_calls_gave_up_total", &labels),
            call_seconds: metrics::histogram!("resilience_call_duration_seconds", &labels),
            breaker_state: metrics::gauge!("resilience_circuit_breaker_state", &labels),
        }
    }
}

/// State for one policy and key.
pub(crate) struct Slot {
    pub(crate) policy_name: Arc<str>,
    pub(crate) key: Arc<str>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) budget: RetryBudget,
    pub(crate) gate: RecoveryGate,
    pub(crate) bucket: Arc<TokenBucket>,
    pub(crate) stats: Stats,
    pub(crate) meters: Meters,
    hub: Arc<Hub>,
    probing: AtomicBool,
}

impl Slot {
    pub(crate) fn new(
        policy_name: Arc<str>,
        key: Arc<str>,
        policy: Arc<Policy>,
        bucket: Arc<TokenBucket>,
        hub: Arc<Hub>,
    ) -> Self {
        Slot {
            breaker: CircuitBreaker::new(&policy.circuit_breaker),
            budget: RetryBudget::new(&policy.retry.budget),
            gate: RecoveryGate::new(
                policy.recovery.max_attempts.get(),
                policy.recovery.check_interval,
            ),
            stats: Stats::new(),
            meters: Meters::new(&policy_name, &key),
            hub,
            probing: AtomicBool::new(false),
            policy_name,
            key,
            policy,
            bucket,
        }
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
        log::event(&self.policy_name, &self.key, operation, &kind, &self.policy);
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

    fn start_probing(self: &Arc<Self>, hook: &Arc<dyn Recovery>) {
        if !self.policy.recovery.enabled || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let interval = self.policy.recovery.check_interval;
        tokio::spawn(probe_loop(
            Arc::downgrade(self),
            Arc::downgrade(hook),
            interval,
        ));
    }

    /// Ends probing once the breaker is closed. A breaker that reopened just as probing
    /// ended (its transition saw the flag still set and started no loop) keeps this loop:
    /// returns `false` then.
    fn stop_probing(&self) -> bool {
        self.probing.store(false, Ordering::Release);
        self.breaker.state_now() == BreakerState::Closed
            || self.probing.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn health(&self, now: Instant) -> KeyHealth {
        let state = self.breaker.state_now();
        self.stats
            .snapshot(&self.policy_name, &self.key, state, now)
    }
}

/// Probes the dependency every `interval` while the breaker is not closed. Holds only weak
/// references, so it ends when the connector or the engine goes away.
async fn probe_loop(slot: Weak<Slot>, hook: Weak<dyn Recovery>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(slot) = slot.upgrade() else {
            return;
        };
        let Some(hook) = hook.upgrade() else {
            // The connector is gone; a later one on the same engine may probe again.
            slot.probing.store(false, Ordering::Release);
            return;
        };
        if slot.breaker.state_now() != BreakerState::Closed {
            let reachable = tokio::time::timeout(interval, hook.probe())
                .await
                .unwrap_or(false);
            slot.emit(None, EventKind::Probed { reachable });
            for transition in slot.breaker.record_probe(reachable, Instant::now()) {
                slot.on_transition(transition, None, None);
            }
        }
        if slot.breaker.state_now() == BreakerState::Closed && slot.stop_probing() {
            return;
        }
    }
}

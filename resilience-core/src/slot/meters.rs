//! The metric handles of one policy and key, registered once so the call path only bumps
//! them.

use metrics::{Counter, Gauge, Histogram};

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
    pub(super) fn new(policy: &str, key: &str) -> Self {
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

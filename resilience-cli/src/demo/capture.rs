//! Captures the engine's retry events, so the demo can show each attempt and its backoff.
//!
//! The capture is an observer of the demo's engine: it keeps every retry the engine
//! schedules, with the key, attempt, error class, delay and error as typed data. Log output
//! of the demo's own calls goes to stderr only when `RUST_LOG` asks for it, since the demo
//! narrates them on stdout.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use resilience_core::events::{Event, EventKind, Observer};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::redact::RedactingWriter;

/// One retry the engine decided on.
#[derive(Debug, Clone, Default)]
pub(crate) struct RetryEvent {
    /// The rate-limit and breaker key (`host:port`).
    pub key: String,
    /// The operation retried.
    pub operation: String,
    /// The number of the attempt about to start (2 for the first retry).
    pub next_attempt: u32,
    /// Attempts allowed in all.
    pub max_attempts: u32,
    /// The class of the error that caused the retry.
    pub class: String,
    /// The backoff delay before the next attempt.
    pub delay: Duration,
    /// The error that caused the retry.
    pub error: String,
}

impl RetryEvent {
    /// The failed attempt, its error and the backoff before the next one, on one line.
    pub(crate) fn describe(&self) -> String {
        format!(
            "attempt {}/{} of {} failed ({}): {}; backoff {:.2}s",
            self.next_attempt.saturating_sub(1),
            self.max_attempts,
            self.operation,
            self.class,
            crate::redact::redact_secrets(&self.error),
            self.delay.as_secs_f64()
        )
    }
}

/// The recorder; clones share the recorded events.
#[derive(Clone, Default)]
pub(crate) struct Capture {
    retries: Arc<Mutex<Vec<RetryEvent>>>,
}

impl Capture {
    /// A subscriber that prints what `RUST_LOG` selects (nothing by default) to stderr.
    pub(crate) fn dispatch(&self) -> Dispatch {
        let log_filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off"));
        let log = tracing_subscriber::fmt::layer()
            .with_writer(|| RedactingWriter(std::io::stderr()))
            .with_filter(log_filter);
        Dispatch::new(tracing_subscriber::registry().with(log))
    }

    /// The retries recorded for `key` so far, oldest first; they are removed.
    pub(crate) fn take_retries(&self, key: &str) -> Vec<RetryEvent> {
        let mut all = self.retries.lock().unwrap_or_else(PoisonError::into_inner);
        let (mine, rest) = all.drain(..).partition(|e| e.key == key);
        *all = rest;
        mine
    }
}

impl Observer for Capture {
    fn on_event(&self, event: &Event<'_>) {
        if let EventKind::RetryScheduled {
            attempt,
            max_attempts,
            delay,
            class,
            error,
        } = event.kind
        {
            self.retries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(RetryEvent {
                    key: event.key.to_owned(),
                    operation: event.operation.unwrap_or_default().to_owned(),
                    next_attempt: attempt,
                    max_attempts,
                    class: class.as_str().to_owned(),
                    delay,
                    error: error.to_string(),
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resilience_core::ErrorClass;
    use resilience_core::events::{BreakerCause, ErrorText};

    #[test]
    fn records_retry_events_by_key() {
        let capture = Capture::default();
        let event = |key, kind| Event {
            policy: "db",
            key,
            operation: Some("test_connection"),
            kind,
        };
        capture.on_event(&event(
            "127.0.0.1:1",
            EventKind::RetryScheduled {
                attempt: 2,
                max_attempts: 3,
                delay: Duration::from_millis(250),
                class: ErrorClass::Connection,
                error: ErrorText(&"reset"),
            },
        ));
        capture.on_event(&event(
            "127.0.0.1:1",
            EventKind::BreakerTransition {
                from: resilience_core::breaker::BreakerState::Closed,
                to: resilience_core::breaker::BreakerState::Open,
                cause: BreakerCause::Operator,
            },
        ));
        capture.on_event(&event(
            "127.0.0.1:2",
            EventKind::RetryScheduled {
                attempt: 2,
                max_attempts: 3,
                delay: Duration::ZERO,
                class: ErrorClass::Timeout,
                error: ErrorText(&"slow"),
            },
        ));
        let events = capture.take_retries("127.0.0.1:1");
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!((e.next_attempt, e.max_attempts), (2, 3));
        assert_eq!(
            (e.class.as_str(), e.operation.as_str()),
            ("connection", "test_connection")
        );
        assert_eq!(e.delay, Duration::from_millis(250));
        assert_eq!(
            e.describe(),
            "attempt 1/3 of test_connection failed (connection): reset; backoff 0.25s"
        );
        assert!(capture.take_retries("127.0.0.1:1").is_empty());
        assert_eq!(capture.take_retries("127.0.0.1:2").len(), 1);
    }
}

//! Captures the engine's retry events, so the demo can show each attempt and its backoff.
//!
//! The engine reports a retry only as a tracing event ("Retry attempt 2/3 for operation
//! ... Next retry in 0.08s") carrying the key, attempt, error class and delay as fields.
//! The demo runs under a subscriber of its own that records those events by key; other
//! log output of the demo's own calls goes to stderr only when `RUST_LOG` asks for it,
//! since the demo narrates them on stdout (background tasks, such as the breaker's
//! recovery probe, still log through the process-wide subscriber).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{EnvFilter, Layer, filter};

use crate::redact::RedactingWriter;

/// One retry the engine decided on.
#[derive(Debug, Clone, Default)]
pub(crate) struct RetryEvent {
    /// The rate-limit and breaker key (`host:port`).
    pub key: String,
    /// The operation retried.
    pub operation: String,
    /// The number of the attempt about to start (2 for the first retry).
    pub next_attempt: u64,
    /// Attempts allowed in all.
    pub max_attempts: u64,
    /// The class of the error that caused the retry.
    pub class: String,
    /// The backoff delay before the next attempt.
    pub delay: Duration,
    /// The engine's message, with the error.
    pub message: String,
}

impl RetryEvent {
    /// The failed attempt, its error and the backoff before the next one, on one line.
    pub(crate) fn describe(&self) -> String {
        let error = self
            .message
            .split_once("after error: ")
            .map_or(self.message.as_str(), |(_, rest)| rest);
        let error = error
            .rsplit_once(". Next retry in")
            .map_or(error, |(e, _)| e);
        format!(
            "attempt {}/{} failed ({}): {error}; backoff {:.2}s",
            self.next_attempt.saturating_sub(1),
            self.max_attempts,
            self.class,
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
    /// A subscriber that records retry events into this capture, and prints what
    /// `RUST_LOG` selects (nothing by default) to stderr.
    pub(crate) fn dispatch(&self) -> Dispatch {
        let log_filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off"));
        let log = tracing_subscriber::fmt::layer()
            .with_writer(|| RedactingWriter(std::io::stderr()))
            .with_filter(log_filter);
        let record = self.clone().with_filter(filter::filter_fn(|meta| {
            meta.target().starts_with("resilience_core")
        }));
        Dispatch::new(tracing_subscriber::registry().with(log).with(record))
    }

    /// The retries recorded for `key` so far, oldest first; they are removed.
    pub(crate) fn take_retries(&self, key: &str) -> Vec<RetryEvent> {
        let mut all = self.retries.lock().unwrap_or_else(PoisonError::into_inner);
        let (mine, rest) = all.drain(..).partition(|e| e.key == key);
        *all = rest;
        mine
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visit = Fields::default();
        event.record(&mut visit);
        if visit.event.message.starts_with("Retry attempt") {
            self.retries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(visit.event);
        }
    }
}

#[derive(Default)]
struct Fields {
    event: RetryEvent,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "key" => self.event.key = value.to_owned(),
            "operation" => self.event.operation = value.to_owned(),
            "class" => self.event.class = value.to_owned(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "attempt" => self.event.next_attempt = value,
            "max_attempts" => self.event.max_attempts = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "delay_secs" {
            self.event.delay = Duration::try_from_secs_f64(value).unwrap_or_default();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.event.message = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_retry_events_by_key() {
        let capture = Capture::default();
        tracing::dispatcher::with_default(&capture.dispatch(), || {
            tracing::warn!(
                target: "resilience_core::run",
                policy = "db",
                key = "127.0.0.1:1",
                operation = "test_connection",
                attempt = 2u32,
                max_attempts = 3u32,
                class = "connection",
                delay_secs = 0.25,
                "Retry attempt 2/3 for operation test_connection after error: reset. Next retry in 0.25s"
            );
            tracing::warn!(target: "resilience_core::run", key = "127.0.0.1:1", "something else");
            tracing::warn!(target: "elsewhere", key = "127.0.0.1:1", "Retry attempt 1/1");
        });
        let events = capture.take_retries("127.0.0.1:1");
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!((e.next_attempt, e.max_attempts), (2, 3));
        assert_eq!(
            (e.class.as_str(), e.operation.as_str()),
            ("connection", "test_connection")
        );
        assert_eq!(e.delay, Duration::from_millis(250));
        assert!(e.message.contains("after error: reset"), "{}", e.message);
        assert_eq!(
            e.describe(),
            "attempt 1/3 failed (connection): reset; backoff 0.25s"
        );
        assert!(capture.take_retries("127.0.0.1:1").is_empty());
    }
}

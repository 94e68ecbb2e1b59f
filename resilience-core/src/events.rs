//! What the engine did, as data: typed events handed to observers.
//!
//! The journal, `metrics`, `health`, the demo's checks and the Prometheus counters all need
//! to know that a call was retried, that a breaker opened or that a recovery worked. They
//! used to find out by matching the English text of log lines, so rewording a message
//! silently broke them. Now the engine describes each thing it does once, as an [`Event`],
//! and everything else consumes that: the health counters and metric handles of the
//! policy and key are updated from it, a `tracing` event is logged for people (with the
//! event's [`name`](EventKind::name) as the `kind` field), and every [`Observer`]
//! subscribed to the engine is called with it.
//!
//! Events borrow what they describe (the error, the verdict), so publishing one allocates
//! nothing; nothing at all is published on the happy path (a call that succeeds at its
//! first attempt), and with no observer subscribed publishing is one atomic load.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use resilience_core::events::{Event, EventKind, Observer};
//! use resilience_core::{Call, Engine, ErrorClass};
//! # use resilience_core::{Failure, ResilientError};
//! # #[derive(Debug)]
//! # enum DbError { Reset, Stopped(Box<Failure<DbError>>) }
//! # impl std::fmt::Display for DbError {
//! #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//! #         match self { DbError::Reset => f.write_str("reset"), DbError::Stopped(s) => s.fmt(f) }
//! #     }
//! # }
//! # impl ResilientError for DbError {
//! #     fn class(&self) -> ErrorClass {
//! #         match self { DbError::Reset => ErrorClass::Connection, DbError::Stopped(s) => s.class() }
//! #     }
//! #     fn from_failure(failure: Failure<Self>) -> Self { DbError::Stopped(Box::new(failure)) }
//! # }
//!
//! /// Keeps the name and delay of every retry.
//! #[derive(Default)]
//! struct Retries(Mutex<Vec<(&'static str, std::time::Duration)>>);
//!
//! impl Observer for Retries {
//!     fn on_event(&self, event: &Event<'_>) {
//!         if let EventKind::RetryScheduled { delay, .. } = event.kind {
//!             self.0.lock().unwrap().push((event.kind.name(), delay));
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let engine = Engine::builtin();
//! let retries = Arc::new(Retries::default());
//! engine.subscribe(retries.clone());
//! let mut first = true;
//! let call = Call::new("db", "count_rows").key("127.0.0.1:5432");
//! let rows = engine
//!     .run(call, || {
//!         let reset = std::mem::replace(&mut first, false);
//!         async move { if reset { Err(DbError::Reset) } else { Ok(42) } }
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(rows, 42);
//! let seen = retries.0.lock().unwrap();
//! assert_eq!(seen.len(), 1);
//! assert_eq!(seen[0].0, "retry");
//! # }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::breaker::BreakerState;
use crate::failure::Stop;
use resilience_policy::ErrorClass;

/// One thing the engine did, for one policy and key.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The policy's name.
    pub policy: &'a str,
    /// The rate-limit and breaker key (usually `host:port`).
    pub key: &'a str,
    /// The operation, when the event belongs to one call (a background probe has none).
    pub operation: Option<&'static str>,
    /// What happened.
    pub kind: EventKind<'a>,
}

/// What happened.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum EventKind<'a> {
    /// A failed attempt will be retried after `delay`.
    RetryScheduled {
        /// The attempt about to start (2 for the first retry).
        attempt: u32,
        /// Attempts the policy allows.
        max_attempts: u32,
        /// The backoff delay before it.
        delay: Duration,
        /// The class of the failure being retried.
        class: ErrorClass,
        /// The failure, as the dependency gave it (or the attempt timeout).
        error: ErrorText<'a>,
    },
    /// The engine gave up on a call: its verdict, and the last error when there was one.
    GaveUp {
        /// Why the call stopped.
        verdict: Verdict<'a>,
        /// Attempts made.
        attempts: u32,
        /// The class of the last error, when the dependency gave one.
        class: Option<ErrorClass>,
        /// The last error the dependency gave.
        error: Option<ErrorText<'a>>,
    },
    /// A call was refused by an open (or fully probed half-open) breaker.
    CircuitOpenRejection {
        /// How long until the breaker admits a probe.
        retry_in: Duration,
    },
    /// The breaker changed state.
    BreakerTransition {
        /// The state it left.
        from: BreakerState,
        /// The state it entered.
        to: BreakerState,
        /// Why.
        cause: BreakerCause,
    },
    /// A call waits for a rate-limit token.
    RateLimitWait {
        /// The wait expected when it started waiting.
        wait: Duration,
    },
    /// The rate limiter refused a call (`when_limited = "reject"`, or a wait longer than
    /// `max_wait` or the call's deadline).
    RateLimitRejected {
        /// How long until a token is expected to be free.
        retry_after: Duration,
    },
    /// The retry budget refused a retry.
    BudgetExhausted {
        /// Attempts made before the refusal.
        attempts: u32,
    },
    /// The connector's recovery hook is run.
    RecoveryStarted {
        /// The class of the failure that triggered it.
        class: ErrorClass,
        /// Whether credentials are re-read.
        refresh_credentials: bool,
    },
    /// The recovery mended the connection (the connector checked that it works).
    RecoverySucceeded {
        /// Whether credentials were re-read.
        refresh_credentials: bool,
    },
    /// The recovery found nothing to mend (the failed path does not use what it mends,
    /// or it was mended a moment ago).
    RecoveryNotNeeded {
        /// Why, in words.
        reason: &'a str,
    },
    /// The recovery failed; the next attempt still runs.
    RecoveryFailed {
        /// Why.
        error: &'a str,
    },
    /// Credentials were re-read by a successful recovery.
    CredentialsRefreshed,
    /// A background probe (while the breaker is not closed) reached the dependency, or not.
    Probed {
        /// Whether the dependency answered.
        reachable: bool,
    },
}

/// An error's text, formatted only when read, so an event costs nothing until then.
#[derive(Clone, Copy)]
pub struct ErrorText<'a>(pub &'a dyn fmt::Display);

impl fmt::Display for ErrorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ErrorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0.to_string(), f)
    }
}

/// Why a call was given up on.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'a> {
    /// A policy stopped it (retries exhausted, circuit open, deadline, ...).
    Stopped(&'a Stop),
    /// Its error is of a class the policy does not retry; it reaches the caller unchanged.
    NotRetried,
}

impl Verdict<'_> {
    /// A short stable name: `retries_exhausted`, `budget_exhausted`, `circuit_open`,
    /// `rate_limited`, `attempt_timed_out`, `deadline_exceeded`, `wait_beyond_deadline`,
    /// `unknown_policy`, `not_retried`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::NotRetried => "not_retried",
            Verdict::Stopped(stop) => stop.name(),
        }
    }
}

impl fmt::Display for Verdict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Stopped(stop) => stop.fmt(f),
            Verdict::NotRetried => f.write_str("not retried: the policy does not retry this class"),
        }
    }
}

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerCause {
    /// This many consecutive failed attempts (`mode = "consecutive"`).
    ConsecutiveFailures {
        /// Failures counted.
        failures: u32,
    },
    /// Failed attempts reached `failure_ratio` of at least `minimum_calls` attempts in
    /// the sampling window (`mode = "ratio"`).
    FailureRatio {
        /// Failed attempts in the window.
        failures: u32,
        /// Attempts in the window.
        calls: u32,
    },
    /// A probe admitted while HALF_OPEN failed.
    ProbeFailed,
    /// The open period (`recovery_timeout`) is over.
    OpenPeriodOver,
    /// The background probe reached the dependency before the open period was over.
    DependencyAnswered,
    /// `success_threshold` probes succeeded.
    ProbesSucceeded,
    /// An operator opened or reset it.
    Operator,
}

impl EventKind<'_> {
    /// A short stable name, used as the journal's `kind` and the log's `kind` field:
    /// `retry`, `gave_up`, `circuit_open_rejection`, `breaker_opened`,
    /// `breaker_half_open`, `breaker_closed`, `rate_limit_wait`, `rate_limit_rejected`,
    /// `budget_exhausted`, `recovery_started`, `recovery`, `recovery_not_needed`,
    /// `recovery_failed`, `credentials_refreshed`, `probe`.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::RetryScheduled { .. } => "retry",
            EventKind::GaveUp { .. } => "gave_up",
            EventKind::CircuitOpenRejection { .. } => "circuit_open_rejection",
            EventKind::BreakerTransition { to, .. } => match to {
                BreakerState::Open => "breaker_opened",
                BreakerState::HalfOpen => "breaker_half_open",
                BreakerState::Closed => "breaker_closed",
            },
            EventKind::RateLimitWait { .. } => "rate_limit_wait",
            EventKind::RateLimitRejected { .. } => "rate_limit_rejected",
            EventKind::BudgetExhausted { .. } => "budget_exhausted",
            EventKind::RecoveryStarted { .. } => "recovery_started",
            EventKind::RecoverySucceeded { .. } => "recovery",
            EventKind::RecoveryNotNeeded { .. } => "recovery_not_needed",
            EventKind::RecoveryFailed { .. } => "recovery_failed",
            EventKind::CredentialsRefreshed => "credentials_refreshed",
            EventKind::Probed { .. } => "probe",
        }
    }
}

/// Receives the engine's events. Called synchronously, on the task that caused the event,
/// so an observer should be quick (append to a buffer, send on a channel) and must not
/// block. Events borrow their data: keep what you need by copying it out.
pub trait Observer: Send + Sync + 'static {
    /// One event.
    fn on_event(&self, event: &Event<'_>);
}

/// The observers of one engine.
pub(crate) struct Hub {
    any: AtomicBool,
    observers: RwLock<Arc<[Arc<dyn Observer>]>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            any: AtomicBool::new(false),
            observers: RwLock::new(Arc::from(Vec::new())),
        }
    }
}

impl Hub {
    /// Calls every observer with `event`; one atomic load when there is none.
    pub(crate) fn publish(&self, event: &Event<'_>) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        // The list is cloned (one reference count) so an observer may subscribe another.
        let observers = Arc::clone(&self.observers.read().unwrap_or_else(|p| p.into_inner()));
        for observer in observers.iter() {
            observer.on_event(event);
        }
    }

    pub(crate) fn subscribe(&self, observer: Arc<dyn Observer>) {
        let mut list = self.observers.write().unwrap_or_else(|p| p.into_inner());
        let mut next: Vec<_> = list.iter().cloned().collect();
        next.push(observer);
        *list = Arc::from(next);
        self.any.store(true, Ordering::Release);
    }

    /// Removes `observer` (the same `Arc`); `false` when it was not subscribed.
    pub(crate) fn unsubscribe(&self, observer: &Arc<dyn Observer>) -> bool {
        let mut list = self.observers.write().unwrap_or_else(|p| p.into_inner());
        let before = list.len();
        let next: Vec<_> = list
            .iter()
            .filter(|o| !same(o, observer))
            .cloned()
            .collect();
        let removed = next.len() < before;
        self.any.store(!next.is_empty(), Ordering::Release);
        *list = Arc::from(next);
        removed
    }
}

/// Whether two observers are the same object (by address, whatever the vtable).
fn same(a: &Arc<dyn Observer>, b: &Arc<dyn Observer>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

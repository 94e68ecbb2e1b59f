//! Shared test fixtures: a classified error type and engines with one test policy.
#![allow(dead_code)]

use std::fmt;

use resilience_core::backoff::JitterRng;
use resilience_core::policy::{Jitter, Policy};
use resilience_core::{Call, Engine, ErrorClass, Failure, PolicySet, ResilientError, Stop};

/// An error of a given class, or the engine's verdict.
#[derive(Debug)]
pub enum TestError {
    Fail(ErrorClass),
    Stopped(Box<Failure<TestError>>),
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestError::Fail(class) => write!(f, "{class} failure"),
            TestError::Stopped(failure) => failure.fmt(f),
        }
    }
}

impl ResilientError for TestError {
    fn class(&self) -> ErrorClass {
        match self {
            TestError::Fail(class) => *class,
            TestError::Stopped(failure) => failure.class(),
        }
    }

    fn from_failure(failure: Failure<Self>) -> Self {
        TestError::Stopped(Box::new(failure))
    }
}

impl TestError {
    /// The engine's verdict, when there is one.
    pub fn stop(&self) -> Option<&Stop> {
        match self {
            TestError::Stopped(f) => Some(&f.stop),
            TestError::Fail(_) => None,
        }
    }

    /// The verdict's last error class, when there is one.
    pub fn last_class(&self) -> Option<ErrorClass> {
        match self {
            TestError::Stopped(f) => f.last_error.as_ref().map(ResilientError::class),
            TestError::Fail(c) => Some(*c),
        }
    }
}

/// Always the same sample.
pub struct FixedRng(pub f64);

impl JitterRng for FixedRng {
    fn next_unit(&mut self) -> f64 {
        self.0
    }
}

/// An engine with one policy `t`: the db preset without jitter, edited by `edit`.
pub fn engine(edit: impl FnOnce(&mut Policy)) -> Engine {
    let mut policy = Policy::default();
    policy.retry.jitter = Jitter::None;
    edit(&mut policy);
    let engine = Engine::new(PolicySet::from_policies([("t", policy)]).unwrap());
    engine.set_jitter_rng(Box::new(FixedRng(0.5)));
    engine
}

/// Runs `call` with a body that fails with `class` on every attempt; returns how many
/// times the body ran and the error the caller got.
pub async fn fail_always(engine: &Engine, call: Call<'_>, class: ErrorClass) -> (u32, TestError) {
    let calls = std::sync::atomic::AtomicU32::new(0);
    let err = engine
        .run(call, || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err::<(), _>(TestError::Fail(class))
        })
        .await
        .unwrap_err();
    (calls.into_inner(), err)
}

/// One event, copied out of the engine's borrowed [`Event`](resilience_core::events::Event).
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub name: &'static str,
    pub key: String,
    pub operation: Option<&'static str>,
    /// The fields that matter to the tests, as text (`attempt=2 class=connection ...`).
    pub detail: String,
}

/// An observer keeping every event it is handed.
#[derive(Default)]
pub struct EventLog(std::sync::Mutex<Vec<Seen>>);

impl resilience_core::events::Observer for EventLog {
    fn on_event(&self, event: &resilience_core::events::Event<'_>) {
        use resilience_core::events::EventKind as K;
        let detail = match event.kind {
            K::RetryScheduled {
                attempt,
                max_attempts,
                delay,
                class,
                error,
            } => format!(
                "attempt={attempt}/{max_attempts} delay={delay:?} class={class} error={error}"
            ),
            K::GaveUp {
                verdict,
                attempts,
                class,
                error,
            } => format!(
                "verdict={} attempts={attempts} class={} error={}",
                verdict.name(),
                class.map_or("-", |c| c.as_str()),
                error.map_or("-".to_owned(), |e| e.to_string())
            ),
            K::BreakerTransition { from, to, cause } => {
                format!("{}->{} {cause:?}", from.as_str(), to.as_str())
            }
            K::RateLimitWait { wait } => format!("wait={wait:?}"),
            K::RateLimitRejected { retry_after } => format!("retry_after={retry_after:?}"),
            K::RecoveryStarted {
                class,
                refresh_credentials,
            } => format!("class={class} refresh={refresh_credentials}"),
            K::RecoveryNotNeeded { reason } => format!("reason={reason}"),
            K::RecoveryFailed { error } => format!("error={error}"),
            K::Probed { reachable } => format!("reachable={reachable}"),
            _ => String::new(),
        };
        self.0.lock().unwrap().push(Seen {
            name: event.kind.name(),
            key: event.key.to_owned(),
            operation: event.operation,
            detail,
        });
    }
}

impl EventLog {
    /// Subscribes a new log to `engine`.
    pub fn on(engine: &Engine) -> std::sync::Arc<EventLog> {
        let log = std::sync::Arc::new(EventLog::default());
        engine.subscribe(log.clone());
        log
    }

    /// The events seen so far, removed from the log.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// The names of the events seen so far, removed from the log.
    pub fn names(&self) -> Vec<&'static str> {
        self.take().into_iter().map(|e| e.name).collect()
    }
}

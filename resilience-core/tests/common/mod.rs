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

//! `ResilienceLayer` around real tower services, in virtual time: transient failures
//! retried, the breaker opening and refusing without calling, attempts (and a service
//! stuck in `poll_ready`) timing out, and a key function keeping breakers apart.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{TestError, engine};
use resilience_core::breaker::BreakerState;
use resilience_core::{ErrorClass, ResilienceLayer, ResilientError, Stop};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// A service that fails with `class` on its first `failures` calls, then answers with
/// the request doubled; counts its calls.
fn flaky(
    calls: &Arc<AtomicU32>,
    failures: u32,
    class: ErrorClass,
) -> impl Service<u32, Response = u32, Error = TestError, Future: Send> + Clone + Send + 'static {
    let calls = Arc::clone(calls);
    service_fn(move |request: u32| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if n <= failures {
                Err(TestError::Fail(class))
            } else {
                Ok(request * 2)
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_until_the_service_answers() {
    let layer = ResilienceLayer::new(engine(|_| {}), "t").unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service(flaky(&calls, 2, ErrorClass::Transient));
    let started = Instant::now();
    let answer = service.oneshot(21).await.unwrap();
    assert_eq!(answer, 42);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two failures, then the answer"
    );
    // No jitter: 1 s, then 2 s of backoff.
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_service_that_keeps_failing_gives_the_engines_verdict() {
    let layer = ResilienceLayer::new(engine(|_| {}), "t").unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let service = layer.layer(flaky(&calls, u32::MAX, ErrorClass::Transient));
    let error = service.oneshot(1).await.unwrap_err();
    assert!(
        matches!(error.stop(), Some(Stop::RetriesExhausted { attempts: 3 })),
        "{error}"
    );
    assert_eq!(error.last_class(), Some(ErrorClass::Transient));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_and_refuses_without_calling() {
    let engine = engine(|p| p.retry.max_attempts = 1.try_into().unwrap());
    let layer = ResilienceLayer::new(engine.clone(), "t").unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let mut service = layer.layer(flaky(&calls, u32::MAX, ErrorClass::Connection));
    for _ in 0..5 {
        let error = service.ready().await.unwrap().call(1).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Connection, "{error}");
    }
    assert_eq!(
        engine.breaker("t", "t").unwrap().state(),
        BreakerState::Open
    );
    let error = service.ready().await.unwrap().call(1).await.unwrap_err();
    assert!(
        matches!(error.stop(), Some(Stop::CircuitOpen { .. })),
        "{error}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "the open breaker did not call"
    );
}

#[tokio::test(start_paused = true)]
async fn attempts_that_run_past_the_attempt_timeout_are_cut_and_retried() {
    let layer = ResilienceLayer::new(engine(|_| {}), "t").unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let slow = service_fn(move |request: u32| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, TestError>(request)
        }
    });
    let started = Instant::now();
    let error = layer.layer(slow).oneshot(1).await.unwrap_err();
    assert!(
        matches!(
            error.stop(),
            Some(Stop::AttemptTimedOut {
                timeout,
                attempts: 3
            }) if timeout.as_secs() == 30
        ),
        "{error}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Three 30 s attempts and 1 s + 2 s of backoff.
    assert_eq!(started.elapsed(), Duration::from_secs(93));
}

/// A service that never becomes ready (a pool with no free connection).
#[derive(Clone)]
struct NeverReady(Arc<AtomicU32>);

impl Service<u32> for NeverReady {
    type Response = u32;
    type Error = TestError;
    type Future = std::future::Ready<Result<u32, TestError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TestError>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Poll::Pending
    }

    fn call(&mut self, request: u32) -> Self::Future {
        std::future::ready(Ok(request))
    }
}

#[tokio::test(start_paused = true)]
async fn a_service_stuck_in_poll_ready_times_out_like_a_slow_answer() {
    let layer = ResilienceLayer::new(
        engine(|p| p.retry.max_attempts = 1.try_into().unwrap()),
        "t",
    )
    .unwrap();
    let polls = Arc::new(AtomicU32::new(0));
    let error = layer
        .layer(NeverReady(Arc::clone(&polls)))
        .oneshot(1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error.stop(),
            Some(Stop::AttemptTimedOut { attempts: 1, .. })
        ),
        "{error}"
    );
    // Polled when the attempt started, and once more when its deadline woke the task
    // (the attempt is polled before its timer, as with `tokio::time::timeout`).
    assert_eq!(polls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_key_function_keeps_the_breakers_of_two_hosts_apart() {
    let engine = engine(|p| p.retry.max_attempts = 1.try_into().unwrap());
    let layer = ResilienceLayer::new(engine.clone(), "t")
        .unwrap()
        .key(|request: &(&'static str, u32)| request.0);
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let mut service = layer.layer(service_fn(move |(host, n): (&'static str, u32)| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if host == "down" {
                Err(TestError::Fail(ErrorClass::Connection))
            } else {
                Ok(n)
            }
        }
    }));
    for _ in 0..5 {
        let down = service.ready().await.unwrap().call(("down", 1)).await;
        assert!(down.is_err());
    }
    assert_eq!(
        engine.breaker("t", "down").unwrap().state(),
        BreakerState::Open
    );
    let up = service
        .ready()
        .await
        .unwrap()
        .call(("up", 7))
        .await
        .unwrap();
    assert_eq!(up, 7, "the other key's breaker is closed");
    assert_eq!(
        engine.breaker("t", "up").unwrap().state(),
        BreakerState::Closed
    );
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}

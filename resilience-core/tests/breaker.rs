//! The circuit breaker through the engine, in virtual time.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{TestError, engine};
use resilience_core::breaker::BreakerState;
use resilience_core::{Call, Engine, ErrorClass, Stop};

fn single_attempt() -> Engine {
    engine(|p| p.retry.max_attempts = 1.try_into().unwrap())
}

async fn call(
    engine: &Engine,
    calls: &AtomicU32,
    result: Result<(), ErrorClass>,
) -> Result<(), TestError> {
    engine
        .run(Call::new("t", "op").key("k"), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            result.map_err(TestError::Fail)
        })
        .await
}

async fn open(engine: &Engine) {
    let calls = AtomicU32::new(0);
    for _ in 0..5 {
        call(engine, &calls, Err(ErrorClass::Connection))
            .await
            .unwrap_err();
    }
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Open
    );
}

#[tokio::test(start_paused = true)]
async fn opens_on_the_fifth_consecutive_failure_then_rejects_without_calling() {
    let engine = single_attempt();
    let calls = AtomicU32::new(0);
    for n in 1..=4 {
        call(&engine, &calls, Err(ErrorClass::Connection))
            .await
            .unwrap_err();
        assert_eq!(
            engine.breaker("t", "k").unwrap().state(),
            BreakerState::Closed,
            "after {n}"
        );
    }
    call(&engine, &calls, Err(ErrorClass::Connection))
        .await
        .unwrap_err();
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Open
    );
    assert_eq!(calls.load(Ordering::SeqCst), 5);

    let err = call(&engine, &calls, Ok(())).await.unwrap_err();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "an open breaker does not call"
    );
    assert!(
        matches!(err.stop(), Some(Stop::CircuitOpen { retry_in }) if *retry_in == Duration::from_secs(30))
    );
    assert_eq!(
        engine
            .health()
            .get("t", "k")
            .unwrap()
            .circuit_open_rejections,
        1
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stop_when_their_own_failures_open_the_breaker() {
    let engine = engine(|p| {
        p.retry.max_attempts = 10.try_into().unwrap();
        p.retry.initial_delay = Duration::from_millis(1);
        p.retry.budget.enabled = false;
    });
    let calls = AtomicU32::new(0);
    let err = call(&engine, &calls, Err(ErrorClass::Connection))
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert!(
        matches!(err.stop(), Some(Stop::CircuitOpen { .. })),
        "{err}"
    );
    assert_eq!(
        err.last_class(),
        Some(ErrorClass::Connection),
        "the last error is kept"
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_after_the_recovery_timeout_and_two_successes_close() {
    let engine = single_attempt();
    open(&engine).await;
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Open
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::HalfOpen
    );

    let calls = AtomicU32::new(0);
    call(&engine, &calls, Ok(())).await.unwrap();
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::HalfOpen
    );
    call(&engine, &calls, Ok(())).await.unwrap();
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens() {
    let engine = single_attempt();
    open(&engine).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    let calls = AtomicU32::new(0);
    call(&engine, &calls, Ok(())).await.unwrap();
    call(&engine, &calls, Err(ErrorClass::Timeout))
        .await
        .unwrap_err();
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Open
    );
    let err = call(&engine, &calls, Ok(())).await.unwrap_err();
    assert!(matches!(err.stop(), Some(Stop::CircuitOpen { .. })));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn steady_rejected_traffic_does_not_keep_it_open() {
    let engine = single_attempt();
    open(&engine).await;
    let calls = AtomicU32::new(0);
    for _ in 0..29 {
        tokio::time::advance(Duration::from_secs(1)).await;
        call(&engine, &calls, Ok(())).await.unwrap_err();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    tokio::time::advance(Duration::from_secs(1)).await;
    call(&engine, &calls, Ok(())).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the probe went through at 30 s"
    );
}

#[tokio::test(start_paused = true)]
async fn ignored_classes_neither_trip_nor_reset_the_count() {
    let engine = single_attempt();
    let calls = AtomicU32::new(0);
    for _ in 0..10 {
        call(&engine, &calls, Err(ErrorClass::Auth))
            .await
            .unwrap_err();
    }
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Closed
    );
    for _ in 0..4 {
        call(&engine, &calls, Err(ErrorClass::Connection))
            .await
            .unwrap_err();
    }
    call(&engine, &calls, Err(ErrorClass::InvalidInput))
        .await
        .unwrap_err();
    call(&engine, &calls, Err(ErrorClass::Connection))
        .await
        .unwrap_err();
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Open,
        "4 failures, an ignored error, 1 failure: five in a row"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_probes_are_bounded_by_the_success_threshold() {
    let engine = single_attempt();
    open(&engine).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    let entered = Arc::new(AtomicU32::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (engine, entered, release) = (engine.clone(), entered.clone(), release.clone());
        tasks.push(tokio::spawn(async move {
            engine
                .run(Call::new("t", "op").key("k"), || async {
                    entered.fetch_add(1, Ordering::SeqCst);
                    release.notified().await;
                    Ok::<_, TestError>(())
                })
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        entered.load(Ordering::SeqCst),
        2,
        "two probes in flight at most"
    );
    release.notify_waiters();
    let results: Vec<_> = futures_join(tasks).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e.stop(), Some(Stop::CircuitOpen { .. })))
    );
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_gives_its_place_back() {
    let engine = single_attempt();
    open(&engine).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    for _ in 0..3 {
        let hung = engine.run(Call::new("t", "op").key("k"), || async {
            std::future::pending::<()>().await;
            Ok::<_, TestError>(())
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(1), hung)
                .await
                .is_err()
        );
    }
    let calls = AtomicU32::new(0);
    call(&engine, &calls, Ok(())).await.unwrap();
    call(&engine, &calls, Ok(())).await.unwrap();
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn force_open_and_reset() {
    let engine = single_attempt();
    let calls = AtomicU32::new(0);
    call(&engine, &calls, Ok(())).await.unwrap();
    let breaker = engine.breaker("t", "k").unwrap();
    breaker.force_open();
    assert!(matches!(
        call(&engine, &calls, Ok(())).await.unwrap_err().stop(),
        Some(Stop::CircuitOpen { .. })
    ));
    breaker.reset();
    call(&engine, &calls, Ok(())).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

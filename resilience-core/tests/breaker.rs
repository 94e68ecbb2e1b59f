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

// ---- Ratio mode -------------------------------------------------------------------

fn ratio_engine(edit: impl FnOnce(&mut resilience_core::Policy)) -> Engine {
    engine(|p| {
        p.retry.max_attempts = 1.try_into().unwrap();
        p.circuit_breaker.mode = resilience_core::policy::BreakerMode::Ratio;
        p.circuit_breaker.failure_ratio = 0.5;
        p.circuit_breaker.minimum_calls = 10.try_into().unwrap();
        p.circuit_breaker.sampling_window = Duration::from_secs(10);
        edit(p);
    })
}

#[tokio::test(start_paused = true)]
async fn ratio_mode_opens_on_the_share_of_failures_not_on_a_run_of_them() {
    let engine = ratio_engine(|_| {});
    let calls = AtomicU32::new(0);
    for _ in 0..20 {
        call(&engine, &calls, Ok(())).await.unwrap();
    }
    // Five failures in a row would open a consecutive breaker; 5 of 25 is 20%.
    for _ in 0..5 {
        call(&engine, &calls, Err(ErrorClass::Connection))
            .await
            .unwrap_err();
    }
    let breaker = engine.breaker("t", "k").unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
    // 20 failures of 40 attempts reach the ratio of 0.5.
    for n in 6..=20 {
        call(&engine, &calls, Err(ErrorClass::Connection))
            .await
            .unwrap_err();
        let expected = if n == 20 {
            BreakerState::Open
        } else {
            BreakerState::Closed
        };
        assert_eq!(breaker.state(), expected, "after {n} failures");
    }
}

#[tokio::test(start_paused = true)]
async fn ratio_mode_needs_minimum_calls_and_forgets_what_left_the_window() {
    let engine = ratio_engine(|_| {});
    let calls = AtomicU32::new(0);
    for _ in 0..9 {
        call(&engine, &calls, Err(ErrorClass::Connection))
            .await
            .unwrap_err();
    }
    let breaker = engine.breaker("t", "k").unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed, "9 < minimum_calls");
    // The window is 10 s: those failures leave it.
    tokio::time::advance(Duration::from_secs(11)).await;
    for _ in 0..9 {
        call(&engine, &calls, Ok(())).await.unwrap();
    }
    call(&engine, &calls, Err(ErrorClass::Connection))
        .await
        .unwrap_err();
    assert_eq!(breaker.state(), BreakerState::Closed, "1 of 10");
}

/// Eight calls in flight at once; a brief fault fails the first five attempts to finish,
/// the other three succeed, and every retry succeeds. Returns the calls that succeeded.
async fn brief_fault_under_concurrency(engine: &Engine) -> usize {
    use std::sync::atomic::AtomicUsize;
    let failed = AtomicUsize::new(0);
    let arrived = tokio::sync::Barrier::new(8);
    let runs = (0..8).map(|i| {
        let (failed, arrived) = (&failed, &arrived);
        engine.run(Call::new("t", "op").key("k"), move || async move {
            if failed.load(Ordering::SeqCst) >= 5 {
                return Ok(());
            }
            // First attempts: all eight are in flight; the five slowest to be released
            // fail together.
            arrived.wait().await;
            tokio::time::sleep(Duration::from_millis(i)).await;
            if failed.fetch_add(1, Ordering::SeqCst) < 5 {
                Err(TestError::Fail(ErrorClass::Connection))
            } else {
                Ok(())
            }
        })
    });
    let results = futures_util::future::join_all(runs).await;
    results.iter().filter(|r| r.is_ok()).count()
}

#[tokio::test(start_paused = true)]
async fn concurrency_fools_a_consecutive_breaker_but_not_a_ratio_breaker() {
    let with = |ratio: bool| {
        let engine = engine(|p| {
            if ratio {
                p.circuit_breaker.mode = resilience_core::policy::BreakerMode::Ratio;
                p.circuit_breaker.minimum_calls = 20.try_into().unwrap();
            }
        });
        async move {
            // Recent history: 30 calls went through.
            for _ in 0..30 {
                engine
                    .run(Call::new("t", "op").key("k"), || async {
                        Ok::<_, TestError>(())
                    })
                    .await
                    .unwrap();
            }
            let ok = brief_fault_under_concurrency(&engine).await;
            (ok, engine.breaker("t", "k").unwrap().state())
        }
    };
    let (ok, state) = with(false).await;
    assert_eq!(state, BreakerState::Open, "5 failures at once open it");
    assert_eq!(ok, 3, "the five failed calls could not retry");
    let (ok, state) = with(true).await;
    assert_eq!(state, BreakerState::Closed, "5 of 38 attempts is no outage");
    assert_eq!(ok, 8, "every retry succeeded");
}

#[tokio::test(start_paused = true)]
async fn a_ratio_breaker_counts_again_from_zero_once_closed() {
    let engine = ratio_engine(|p| p.circuit_breaker.success_threshold = 1.try_into().unwrap());
    let calls = AtomicU32::new(0);
    for _ in 0..10 {
        call(&engine, &calls, Err(ErrorClass::Connection))
            .await
            .unwrap_err();
    }
    let breaker = engine.breaker("t", "k").unwrap();
    assert_eq!(breaker.state(), BreakerState::Open);
    tokio::time::advance(Duration::from_secs(30)).await;
    call(&engine, &calls, Ok(())).await.unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
    // The window was cleared: one failure after closing is 1 of 1, below minimum_calls.
    call(&engine, &calls, Err(ErrorClass::Connection))
        .await
        .unwrap_err();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn engines_called_in_turn_on_one_thread_keep_their_own_breakers() {
    // Same policy and key names in both: a thread remembers the last slot it used, and
    // must not hand one engine's breaker to the other.
    let (a, b) = (single_attempt(), single_attempt());
    let calls = AtomicU32::new(0);
    call(&b, &calls, Ok(())).await.unwrap();
    open(&a).await;
    call(&b, &calls, Ok(())).await.unwrap();
    assert_eq!(b.breaker("t", "k").unwrap().state(), BreakerState::Closed);
    let refused = call(&a, &calls, Ok(())).await.unwrap_err();
    assert!(matches!(refused.stop(), Some(Stop::CircuitOpen { .. })));
    // A new engine made after one is dropped starts closed too.
    drop(a);
    let c = single_attempt();
    call(&c, &calls, Ok(())).await.unwrap();
    assert_eq!(c.breaker("t", "k").unwrap().state(), BreakerState::Closed);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "b, b and c called; a refused"
    );
}

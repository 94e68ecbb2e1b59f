//! The retry loop, deadlines, budget and nesting, in virtual time.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{TestError, engine, fail_always};
use resilience_core::{Call, ErrorClass, ResilientError, Stop, attempt};
use tokio::time::Instant;

fn call() -> Call<'static> {
    Call::new("t", "op").key("k")
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_up_to_max_attempts() {
    let engine = engine(|_| {});
    let start = Instant::now();
    let (calls, err) = fail_always(&engine, call(), ErrorClass::Transient).await;
    assert_eq!(calls, 3);
    assert_eq!(err.stop(), Some(&Stop::RetriesExhausted { attempts: 3 }));
    assert_eq!(err.last_class(), Some(ErrorClass::Transient));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(3),
        "1 s then 2 s of backoff"
    );
    let message = err.to_string();
    assert!(
        message.contains("retries exhausted after 3 attempts"),
        "{message}"
    );
    assert!(
        message.ends_with("last error: transient failure"),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn success_on_the_third_attempt_returns_the_value() {
    let engine = engine(|_| {});
    let calls = AtomicU32::new(0);
    let value = engine
        .run(call(), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(TestError::Fail(ErrorClass::Connection)),
                _ => Ok("rows"),
            }
        })
        .await
        .unwrap();
    assert_eq!(value, "rows");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let health = engine.health();
    let key = health.get("t", "k").unwrap();
    assert_eq!((key.calls, key.successes, key.failures), (1, 1, 0));
    assert_eq!(
        (key.attempts, key.retries, key.retry_attempts_last_hour),
        (3, 2, 2)
    );
    assert_eq!(key.last_error_class, Some(ErrorClass::Connection));
}

#[tokio::test(start_paused = true)]
async fn auth_and_config_errors_are_called_exactly_once() {
    for class in [
        ErrorClass::Auth,
        ErrorClass::Config,
        ErrorClass::InvalidInput,
    ] {
        let engine = engine(|_| {});
        let calls = AtomicU32::new(0);
        let err = engine
            .run(call(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(TestError::Fail(class))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{class}");
        assert!(
            matches!(err, TestError::Fail(c) if c == class),
            "the original error comes back unwrapped: {err}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_hangs_times_out_and_is_retried() {
    let engine = engine(|p| {
        p.timeout.attempt = Duration::from_secs(5);
        p.timeout.total = Duration::from_secs(60);
    });
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let value = engine
        .run(call(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await;
            }
            Ok::<_, TestError>(7)
        })
        .await
        .unwrap();
    assert_eq!(value, 7);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(6),
        "5 s timeout + 1 s backoff"
    );
    assert_eq!(engine.health().get("t", "k").unwrap().timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn the_total_deadline_cuts_an_attempt_short() {
    let engine = engine(|p| {
        p.timeout.attempt = Duration::from_secs(30);
        p.timeout.total = Duration::from_secs(40);
    });
    let start = Instant::now();
    let err = engine
        .run(call(), || async {
            std::future::pending::<()>().await;
            Ok::<(), TestError>(())
        })
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(40));
    assert!(
        matches!(err.stop(), Some(Stop::DeadlineExceeded { attempts: 2, .. })),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Timeout);
}

#[tokio::test(start_paused = true)]
async fn backoff_never_sleeps_past_the_total_deadline() {
    let engine = engine(|p| {
        p.retry.max_attempts = 10.try_into().unwrap();
        p.retry.initial_delay = Duration::from_secs(4);
        p.timeout.attempt = Duration::from_secs(5);
        p.timeout.total = Duration::from_secs(10);
    });
    let start = Instant::now();
    let (calls, err) = fail_always(&engine, call(), ErrorClass::Timeout).await;
    // Attempts at 0 s and 4 s; the next delay (8 s) would end past 10 s, so the call
    // gives up at 4 s with the last error rather than sleeping to fail.
    assert_eq!(calls, 2);
    assert_eq!(start.elapsed(), Duration::from_secs(4));
    assert!(matches!(err.stop(), Some(Stop::DeadlineExceeded { .. })));
    assert_eq!(err.last_class(), Some(ErrorClass::Timeout));
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_stops_retries() {
    let engine = engine(|p| {
        p.retry.initial_delay = Duration::ZERO;
        p.retry.budget.ratio = 0.0;
        p.retry.budget.min_per_second = 2;
        p.retry.budget.ttl = Duration::from_secs(1);
    });
    let calls = AtomicU32::new(0);
    let failing = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(TestError::Fail(ErrorClass::Transient))
    };
    // The floor allows two retries in the window: the first call takes both...
    let first = engine.run(call(), failing).await.unwrap_err();
    assert_eq!(calls.swap(0, Ordering::SeqCst), 3, "{first:?}");
    assert_eq!(first.stop(), Some(&Stop::RetriesExhausted { attempts: 3 }));
    // ...so the second call, in the same window, is refused a retry.
    let second = engine.run(call(), failing).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(second.stop(), Some(&Stop::BudgetExhausted { attempts: 1 }));
    assert_eq!(second.last_class(), Some(ErrorClass::Transient));
}

#[tokio::test(start_paused = true)]
async fn a_nested_operation_does_not_multiply_attempts() {
    let engine = engine(|_| {});
    let inner_calls = AtomicU32::new(0);
    let outer_calls = AtomicU32::new(0);
    let err = engine
        .run(Call::new("t", "outer").key("k"), || async {
            outer_calls.fetch_add(1, Ordering::SeqCst);
            engine
                .run(Call::new("t", "inner").key("k"), || async {
                    inner_calls.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(TestError::Fail(ErrorClass::Transient))
                })
                .await
        })
        .await
        .unwrap_err();
    assert_eq!(outer_calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        inner_calls.load(Ordering::SeqCst),
        3,
        "3 outer attempts × 1 inner call"
    );
    assert_eq!(err.stop(), Some(&Stop::RetriesExhausted { attempts: 3 }));
    assert_eq!(
        err.to_string().matches("stopped by policy").count(),
        1,
        "no stacked verdicts: {err}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_knows_its_number_and_deadline() {
    let engine = engine(|p| p.timeout.attempt = Duration::from_secs(3));
    let seen = std::sync::Mutex::new(Vec::new());
    let start = Instant::now();
    engine
        .run(call(), || async {
            let info = attempt::current().expect("inside an attempt");
            seen.lock()
                .unwrap()
                .push((info.number, info.max_attempts, info.remaining()));
            if info.number < 2 {
                Err(TestError::Fail(ErrorClass::Connection))
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(
        seen,
        [
            (1, 3, Some(Duration::from_secs(3))),
            (2, 3, Some(Duration::from_secs(3)))
        ]
    );
    assert!(attempt::current().is_none());
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn an_unknown_policy_fails_with_the_known_names() {
    let engine = engine(|_| {});
    let err = engine
        .run(Call::new("nope", "op"), || async { Ok::<_, TestError>(()) })
        .await
        .unwrap_err();
    assert_eq!(
        err.stop(),
        Some(&Stop::UnknownPolicy {
            known: vec!["t".into()]
        })
    );
    assert_eq!(err.class(), ErrorClass::Config);
}

#[tokio::test(start_paused = true)]
async fn a_nested_operation_is_still_guarded_by_its_own_policy() {
    use resilience_core::PolicySet;
    use resilience_core::policy::{Policy, WhenLimited};
    let mut tight = Policy::default();
    tight.rate_limit.requests_per_minute = 1.try_into().unwrap();
    tight.rate_limit.burst = 1.try_into().unwrap();
    tight.rate_limit.when_limited = WhenLimited::Reject;
    let engine = resilience_core::Engine::new(
        PolicySet::from_policies([("db", Policy::default()), ("tight", tight)]).unwrap(),
    );
    let inner_calls = AtomicU32::new(0);
    let inner = || {
        engine.run(Call::new("tight", "inner").key("api.local"), || async {
            inner_calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(())
        })
    };
    let (results, unknown) = engine
        .run(Call::new("db", "outer").key("db.local"), || async {
            let mut results = Vec::new();
            for _ in 0..3 {
                results.push(inner().await.map_err(|e| e.stop().cloned()));
            }
            let unknown = engine
                .run(Call::new("no_such_policy", "inner"), || async {
                    Ok::<_, TestError>(())
                })
                .await
                .map_err(|e| e.stop().cloned());
            Ok::<_, TestError>((results, unknown))
        })
        .await
        .unwrap();
    assert_eq!(
        inner_calls.load(Ordering::SeqCst),
        1,
        "the inner limiter held back two calls"
    );
    assert!(results[0].is_ok());
    for refused in &results[1..] {
        assert!(
            matches!(refused, Err(Some(Stop::RateLimited { .. }))),
            "{refused:?}"
        );
    }
    assert!(
        matches!(unknown, Err(Some(Stop::UnknownPolicy { .. }))),
        "{unknown:?}"
    );
    let health = engine.health();
    assert_eq!(
        health
            .get("tight", "api.local")
            .unwrap()
            .rate_limit_rejections,
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_refused_by_the_limiter_keeps_the_last_error() {
    let engine = engine(|p| {
        p.retry.initial_delay = std::time::Duration::from_millis(100);
        p.rate_limit.requests_per_minute = 60.try_into().unwrap();
        p.rate_limit.burst = 1.try_into().unwrap();
        p.rate_limit.when_limited = resilience_core::policy::WhenLimited::Reject;
    });
    let (calls, err) = fail_always(&engine, call(), ErrorClass::Transient).await;
    assert_eq!(calls, 1, "the retry found no token");
    assert!(
        matches!(err.stop(), Some(Stop::RateLimited { .. })),
        "{err}"
    );
    assert_eq!(err.last_class(), Some(ErrorClass::Transient), "{err}");
}

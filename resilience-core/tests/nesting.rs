//! Nested resilient operations: under the same policy and key a nested operation is part
//! of its caller's attempt (counted once); under a different policy or key it makes one
//! attempt of its own and never retries.

mod common;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{TestError, engine};
use resilience_core::breaker::BreakerState;
use resilience_core::policy::{Policy, WhenLimited};
use resilience_core::{
    Call, Engine, ErrorClass, PolicySet, Resilience, Resilient, Stop, resilient_operation,
};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// Runs `levels` nested `Engine::run`s under `t` and key `k`; the innermost body fails
/// with `Timeout` on every attempt. Returns how often the innermost body ran and the
/// error the caller got.
async fn nested_failing(engine: &Engine, levels: u32, bodies: &AtomicU32) -> TestError {
    fn level<'a>(
        engine: &'a Engine,
        left: u32,
        bodies: &'a AtomicU32,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), TestError>> + 'a>> {
        Box::pin(async move {
            engine
                .run(Call::new("t", "level").key("k"), || async {
                    if left == 1 {
                        bodies.fetch_add(1, Ordering::SeqCst);
                        Err(TestError::Fail(ErrorClass::Timeout))
                    } else {
                        level(engine, left - 1, bodies).await
                    }
                })
                .await
        })
    }
    level(engine, levels, bodies).await.unwrap_err()
}

#[tokio::test(start_paused = true)]
async fn three_levels_under_one_policy_and_key_count_each_real_attempt_once() {
    let engine = engine(|_| {});
    let bodies = AtomicU32::new(0);
    let err = nested_failing(&engine, 3, &bodies).await;
    assert_eq!(bodies.load(Ordering::SeqCst), 3, "3 attempts, not 2");
    assert_eq!(err.stop(), Some(&Stop::RetriesExhausted { attempts: 3 }));
    assert_eq!(err.last_class(), Some(ErrorClass::Timeout));
    let health = engine.health();
    let k = health.get("t", "k").unwrap();
    assert_eq!(
        k.circuit_breaker_state,
        BreakerState::Closed,
        "3 failures < 5"
    );
    assert_eq!((k.calls, k.failures, k.attempts, k.retries), (1, 1, 3, 2));
    assert_eq!(k.operations["level"].calls, 1);

    // Two more real failures reach the threshold of 5: the breaker counts real attempts.
    let bodies = AtomicU32::new(0);
    let err = nested_failing(&engine, 3, &bodies).await;
    assert_eq!(bodies.load(Ordering::SeqCst), 2);
    assert!(
        matches!(err.stop(), Some(Stop::CircuitOpen { .. })),
        "{err}"
    );
    let state = engine.breaker("t", "k").unwrap().state();
    assert_eq!(state, BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn two_levels_under_one_policy_and_key_count_each_real_attempt_once() {
    let engine = engine(|_| {});
    let bodies = AtomicU32::new(0);
    let err = nested_failing(&engine, 2, &bodies).await;
    assert_eq!(bodies.load(Ordering::SeqCst), 3);
    assert_eq!(err.stop(), Some(&Stop::RetriesExhausted { attempts: 3 }));
    let health = engine.health();
    let k = health.get("t", "k").unwrap();
    assert_eq!((k.calls, k.failures, k.attempts, k.retries), (1, 1, 3, 2));
    assert_eq!(k.circuit_breaker_state, BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_nested_call_under_the_same_policy_and_key_takes_no_token_of_its_own() {
    // Three tokens and no refill to speak of: three calls of three levels each fit, a
    // fourth is refused. If every level took a token, the second call would be refused.
    let engine = engine(|p| {
        p.rate_limit.requests_per_minute = nz(1);
        p.rate_limit.burst = nz(3);
        p.rate_limit.when_limited = WhenLimited::Reject;
    });
    let call = || Call::new("t", "level").key("k");
    let three_levels = || {
        engine.run(call(), || async {
            engine
                .run(call(), || async {
                    engine.run(call(), || async { Ok::<_, TestError>(7) }).await
                })
                .await
        })
    };
    for _ in 0..3 {
        assert_eq!(three_levels().await.unwrap(), 7);
    }
    let refused = three_levels().await.unwrap_err();
    assert!(
        matches!(refused.stop(), Some(Stop::RateLimited { .. })),
        "{refused}"
    );
    let health = engine.health();
    let k = health.get("t", "k").unwrap();
    assert_eq!((k.calls, k.successes, k.rate_limit_rejections), (4, 3, 1));
}

#[tokio::test(start_paused = true)]
async fn a_nested_call_under_another_key_makes_one_attempt_of_its_own() {
    let engine = engine(|_| {});
    let (outer, inner) = (AtomicU32::new(0), AtomicU32::new(0));
    let err = engine
        .run(Call::new("t", "outer").key("k1"), || async {
            outer.fetch_add(1, Ordering::SeqCst);
            engine
                .run(Call::new("t", "inner").key("k2"), || async {
                    inner.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(TestError::Fail(ErrorClass::Transient))
                })
                .await
        })
        .await
        .unwrap_err();
    assert_eq!(err.stop(), Some(&Stop::RetriesExhausted { attempts: 3 }));
    assert_eq!(
        (outer.into_inner(), inner.into_inner()),
        (3, 3),
        "only the outermost retries"
    );
    let health = engine.health();
    let k1 = health.get("t", "k1").unwrap();
    let k2 = health.get("t", "k2").unwrap();
    assert_eq!((k1.calls, k1.attempts, k1.retries), (1, 3, 2));
    assert_eq!(
        (k2.calls, k2.failures, k2.attempts, k2.retries),
        (3, 3, 3, 0),
        "its own breaker, limiter and counts; one attempt per outer attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn a_nested_call_under_another_policy_keeps_its_own_breaker() {
    let mut fragile = Policy::default();
    fragile.circuit_breaker.failure_threshold = nz(2);
    let engine = Engine::new(
        PolicySet::from_policies([("db", Policy::default()), ("api", fragile)]).unwrap(),
    );
    let err = engine
        .run(Call::new("db", "outer").key("h"), || async {
            engine
                .run(Call::new("api", "inner").key("h"), || async {
                    Err::<(), _>(TestError::Fail(ErrorClass::Connection))
                })
                .await
        })
        .await
        .unwrap_err();
    // The `api` breaker opened after 2 of its own failures; the outer `db` call's third
    // attempt then got an open circuit, which it does not retry.
    assert!(
        matches!(err.stop(), Some(Stop::CircuitOpen { .. })),
        "{err}"
    );
    let health = engine.health();
    assert_eq!(
        health.get("api", "h").unwrap().circuit_breaker_state,
        BreakerState::Open
    );
    assert_eq!(
        health.get("db", "h").unwrap().circuit_breaker_state,
        BreakerState::Closed
    );
    assert_eq!(health.get("api", "h").unwrap().circuit_open_rejections, 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_nested_under_another_key_inside_the_same_key_joins_the_outermost_attempt() {
    // db/k → db/other → db/k: the innermost is part of the outermost attempt.
    let engine = engine(|_| {});
    let innermost = AtomicU32::new(0);
    engine
        .run(Call::new("t", "a").key("k"), || async {
            engine
                .run(Call::new("t", "b").key("other"), || async {
                    engine
                        .run(Call::new("t", "c").key("k"), || async {
                            innermost.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, TestError>(())
                        })
                        .await
                })
                .await
        })
        .await
        .unwrap();
    assert_eq!(innermost.into_inner(), 1);
    let health = engine.health();
    let k = health.get("t", "k").unwrap();
    assert_eq!((k.calls, k.attempts), (1, 1));
    assert!(!k.operations.contains_key("c"), "{:?}", k.operations);
    assert_eq!(health.get("t", "other").unwrap().calls, 1);
}

struct Source {
    resilience: Resilience,
    bodies: AtomicU32,
}

impl Resilient for Source {
    fn resilience(&self) -> &Resilience {
        &self.resilience
    }
}

impl Source {
    #[resilient_operation]
    async fn read(&self) -> Result<u32, TestError> {
        self.page().await
    }

    #[resilient_operation]
    async fn page(&self) -> Result<u32, TestError> {
        self.fetch().await
    }

    #[resilient_operation(name = "fetch")]
    async fn fetch(&self) -> Result<u32, TestError> {
        let n = self.bodies.fetch_add(1, Ordering::SeqCst) + 1;
        if n < 3 {
            Err(TestError::Fail(ErrorClass::Connection))
        } else {
            Ok(n)
        }
    }

    #[resilient_operation(key = "elsewhere")]
    async fn mirror(&self) -> Result<u32, TestError> {
        self.fetch().await
    }
}

#[tokio::test(start_paused = true)]
async fn annotated_methods_calling_each_other_count_each_real_attempt_once() {
    let engine = engine(|p| p.circuit_breaker.failure_threshold = nz(3));
    let source = Source {
        resilience: Resilience::new(engine.clone(), "t")
            .unwrap()
            .with_key("h:1"),
        bodies: AtomicU32::new(0),
    };
    assert_eq!(source.read().await.unwrap(), 3);
    let health = engine.health();
    let key = health.get("t", "h:1").unwrap();
    assert_eq!(
        (key.calls, key.attempts, key.retries, key.failures),
        (1, 3, 2, 0)
    );
    assert_eq!(key.circuit_breaker_state, BreakerState::Closed, "2 < 3");
    assert_eq!(key.operations.keys().collect::<Vec<_>>(), ["read"]);

    // Under another key the inner method is a call of its own.
    source.bodies.store(0, Ordering::SeqCst);
    assert_eq!(source.mirror().await.unwrap(), 3);
    let health = engine.health();
    assert_eq!(health.get("t", "elsewhere").unwrap().attempts, 3);
    assert_eq!(health.get("t", "h:1").unwrap().operations["fetch"].calls, 3);
}

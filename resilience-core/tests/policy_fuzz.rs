//! No policy can make the engine panic: arbitrary policies (NaN and negative multipliers,
//! zero and year-long durations, `initial_delay` above `max_delay`, any rate) go through
//! the one validation, and every policy it accepts runs calls that succeed, fail with any
//! class, time out, wait for tokens and recover, in virtual time.

mod common;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use common::TestError;
use proptest::prelude::*;
use resilience_core::policy::{Jitter, Policy, WhenLimited};
use resilience_core::{
    BoxFuture, Call, ClassSet, Engine, ErrorClass, PolicySet, Recovered, Recovery, RecoveryCause,
};

/// Mostly plausible durations, with the edges (zero, one nanosecond, more than a year,
/// `Duration::MAX`) often enough to be tried in every field.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        1 => Just(Duration::ZERO),
        1 => Just(Duration::MAX),
        1 => Just(Duration::from_nanos(1)),
        1 => (0u64..=400 * 86_400).prop_map(Duration::from_secs),
        28 => (1u64..5_000).prop_map(Duration::from_millis),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-1.0),
        1 => any::<f64>(),
        20 => 1.0f64..4.0,
    ]
}

fn count() -> impl Strategy<Value = NonZeroU32> {
    prop_oneof![1u32..=6, Just(u32::MAX)].prop_map(|n| NonZeroU32::new(n).unwrap())
}

fn classes() -> impl Strategy<Value = ClassSet> {
    proptest::collection::vec(proptest::sample::select(ErrorClass::ALL.to_vec()), 0..5)
        .prop_map(|list| ClassSet::of(&list))
}

prop_compose! {
    fn policy()(
        d in proptest::collection::vec(duration(), 8),
        f in proptest::collection::vec(float(), 2),
        attempts in 1u32..=5,
        c in proptest::collection::vec(count(), 5),
        flags in proptest::collection::vec(any::<bool>(), 7),
        in_order in proptest::sample::select(vec![true, true, true, false]),
        jitter in proptest::sample::select(vec![Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated]),
        retry_on in classes(),
        ignore in classes(),
        min_per_second in prop_oneof![Just(0u32), 1u32..100, Just(u32::MAX)],
    ) -> Policy {
        let mut d = d;
        if in_order {
            // Mostly keep the rules between two keys, so most policies reach the engine.
            for (low, high) in [(0, 1), (6, 7)] {
                if d[low] > d[high] {
                    d.swap(low, high);
                }
            }
        }
        let mut p = Policy::default();
        // Attempts stay small so that a zero backoff cannot make a case run for long.
        p.retry.max_attempts = NonZeroU32::new(attempts).unwrap();
        p.retry.initial_delay = d[0];
        p.retry.max_delay = d[1];
        p.retry.multiplier = f[0];
        p.retry.jitter = jitter;
        p.retry.retry_on = retry_on;
        p.retry.budget.enabled = flags[0];
        p.retry.budget.ratio = f[1];
        p.retry.budget.min_per_second = min_per_second;
        p.retry.budget.ttl = d[2];
        p.circuit_breaker.enabled = flags[1];
        p.circuit_breaker.failure_threshold = c[0];
        p.circuit_breaker.recovery_timeout = d[3];
        p.circuit_breaker.success_threshold = c[1];
        p.circuit_breaker.ignore = ignore;
        p.rate_limit.enabled = flags[2];
        p.rate_limit.requests_per_minute = c[2];
        p.rate_limit.burst = c[3];
        p.rate_limit.when_limited = if flags[3] { WhenLimited::Wait } else { WhenLimited::Reject };
        p.rate_limit.max_wait = d[4];
        p.rate_limit.per_host = flags[4];
        p.recovery.enabled = flags[5];
        p.recovery.max_attempts = c[4];
        p.recovery.check_interval = d[5];
        p.recovery.credential_refresh = flags[6];
        p.timeout.attempt = d[6];
        p.timeout.total = d[7];
        p
    }
}

struct Hook;

impl Recovery for Hook {
    fn recover(&self, _: RecoveryCause) -> BoxFuture<'_, Result<Recovered, String>> {
        Box::pin(async { Ok(Recovered::Mended) })
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
}

/// Calls of every kind under policy `p` of `engine`.
async fn exercise(engine: &Engine, hook: &Arc<dyn Recovery>) {
    let call = |op| Call::new("p", op).key("h").recovery(hook);
    let _ = engine
        .run(call("ok"), || async { Ok::<_, TestError>(()) })
        .await;
    for class in ErrorClass::ALL {
        let _ = engine
            .run(call("fail"), || async {
                Err::<(), _>(TestError::Fail(class))
            })
            .await;
    }
    let _ = engine
        .run(call("hang"), || async {
            std::future::pending::<Result<(), TestError>>().await
        })
        .await;
    let burst = (0..8).map(|_| engine.run(call("burst"), || async { Ok::<_, TestError>(()) }));
    futures_join(burst).await;
    let _ = engine
        .run(call("outer"), || async {
            engine
                .run(Call::new("p", "inner").key("other"), || async {
                    Err::<(), _>(TestError::Fail(ErrorClass::Connection))
                })
                .await
        })
        .await;
    if let Some(breaker) = engine.breaker("p", "h") {
        breaker.force_open();
        let _ = engine
            .run(call("open"), || async { Ok::<_, TestError>(()) })
            .await;
        breaker.reset();
    }
    let _ = engine.health();
}

/// Awaits every future (the crate has no join helper as a dependency).
async fn futures_join<F: Future>(futures: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    for f in set {
        f.await;
    }
}

#[test]
fn no_policy_makes_the_engine_panic() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let accepted = std::cell::Cell::new(0);
    runner
        .run(&policy(), |p| {
            let Ok(set) = PolicySet::from_policies([("p", p)]) else {
                // Refused with an error: nothing reaches the engine.
                return Ok(());
            };
            accepted.set(accepted.get() + 1);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            runtime.block_on(async {
                let engine = Engine::new(set);
                let hook: Arc<dyn Recovery> = Arc::new(Hook);
                exercise(&engine, &hook).await;
            });
            Ok(())
        })
        .unwrap();
    assert!(
        accepted.get() >= 32,
        "only {} of 256 policies were valid: the engine was hardly exercised",
        accepted.get()
    );
}

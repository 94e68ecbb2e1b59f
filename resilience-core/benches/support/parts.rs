//! Where the engine's per-call time goes: each building block of the happy path, timed
//! alone under the same `bench` policy (uncontended, current-thread runtime).
//!
//! Each figure includes the clock read the engine makes next to it, where it makes one.
//! These are not contenders; they explain the `resilience_core` figure. A happy-path
//! call reads the clock several times, takes the breaker's permit and records its
//! outcome, takes a token, counts the call in the retry budget, sets the attempt's
//! task-local and arms a timeout.

use std::future::ready;
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use resilience_core::breaker::{CircuitBreaker, Outcome};
use resilience_core::budget::RetryBudget;
use resilience_core::limiter::TokenBucket;
use tokio::runtime::Runtime;
use tokio::time::Instant;

use super::cputime;
use super::ours::{POLICY, policies};

/// Runs `f` `iters` times and returns the CPU time the calling thread spent.
fn on_cpu<O>(iters: u64, mut f: impl FnMut() -> O) -> Duration {
    let start = cputime::thread();
    for _ in 0..iters {
        black_box(f());
    }
    cputime::thread() - start
}

/// Times each building block (CPU time per operation, like the contenders).
pub fn bench(c: &mut Criterion, rt: &Runtime) {
    let policies = policies();
    let policy = policies.get(POLICY).expect("the bench policy exists");
    let mut group = c.benchmark_group("engine_parts");

    group.bench_function("clock_read", |b| b.iter_custom(|n| on_cpu(n, Instant::now)));

    let breaker = CircuitBreaker::new(&policy.circuit_breaker);
    group.bench_function("breaker_acquire_record", |b| {
        b.iter_custom(|n| {
            on_cpu(n, || {
                let now = Instant::now();
                let (permit, _) = breaker.acquire(now);
                let permit = permit.expect("the breaker is closed");
                breaker.record(permit, Outcome::Success, now)
            })
        })
    });

    let budget = RetryBudget::new(&policy.retry.budget);
    group.bench_function("budget_deposit", |b| {
        b.iter_custom(|n| on_cpu(n, || budget.deposit(Instant::now())))
    });

    group.bench_function("attempt_current", |b| {
        b.iter_custom(|n| on_cpu(n, resilience_core::attempt::current))
    });

    let bucket = TokenBucket::new(&policy.rate_limit);
    group.bench_function("limiter_acquire", |b| {
        b.to_async(rt).iter_custom(|n| {
            let bucket = &bucket;
            async move {
                let start = cputime::thread();
                for _ in 0..n {
                    let admitted = bucket.acquire(Instant::now(), None, |_| {}).await;
                    assert!(
                        black_box(admitted).is_ok(),
                        "the limiter never throttles here"
                    );
                }
                cputime::thread() - start
            }
        })
    });

    group.bench_function("timeout_ready_future", |b| {
        b.to_async(rt).iter_custom(|n| async move {
            let start = cputime::thread();
            for i in 0..n {
                let deadline = Instant::now() + Duration::from_secs(30);
                black_box(tokio::time::timeout_at(deadline, ready(i)).await).ok();
            }
            cputime::thread() - start
        })
    });
    group.finish();
}

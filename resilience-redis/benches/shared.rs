//! Per-call cost of a shared (Redis) rate limit against the local one, and the calls per
//! second one Redis sustains through the shared limiter.
//!
//! Run: `cargo bench -p resilience-redis --bench shared` (Redis at 127.0.0.1:6379, or
//! `REDIS_URL`). The limit is set far above what is reached, so every call takes a token
//! and none waits: the figures are the cost of taking a token, not of waiting for one.
//! Sequential calls give the per-call latency; concurrent tasks (over one multiplexed
//! connection per process) give the throughput. The store is `fail_closed` with a 1 s
//! timeout, so every shared call really went to Redis (a fallback would panic here).
//! `breaker only` runs with the rate limit off: the shared breaker's fast path (CLOSED,
//! no failures counted) makes no request.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resilience_core::policy::{OnUnavailable, StorePolicy};
use resilience_core::{Call, Engine, Failure, Policy, PolicySet, ResilientError};
use resilience_redis::RedisStore;

#[derive(Debug, ResilientError)]
enum BenchError {
    #[resilient(class = "connection")]
    #[allow(dead_code)]
    Down,
    #[resilient(failure)]
    Stopped(Box<Failure<BenchError>>),
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Down => f.write_str("down"),
            BenchError::Stopped(failure) => failure.fmt(f),
        }
    }
}

fn policy(limited: bool) -> Policy {
    let mut policy = Policy::default();
    policy.rate_limit.enabled = limited;
    policy.rate_limit.requests_per_minute = NonZeroU32::MAX;
    policy.rate_limit.burst = NonZeroU32::new(1_000_000).unwrap();
    policy
}

fn engine(shared: bool, limited: bool) -> Engine {
    let set = PolicySet::from_policies([("bench", policy(limited))]).unwrap();
    if !shared {
        return Engine::new(set);
    }
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut store = StorePolicy::redis(url);
    store.prefix = format!("bench-{}-{limited}", std::process::id());
    store.on_unavailable = OnUnavailable::FailClosed;
    store.timeout = Duration::from_secs(1);
    let set = set.with_store(store, Vec::<String>::new());
    let store = RedisStore::new(set.store().unwrap()).unwrap();
    Engine::with_store(set, Arc::new(store))
}

async fn call(engine: &Engine) {
    engine
        .run(Call::new("bench", "op").key("k"), || async {
            Ok::<_, BenchError>(())
        })
        .await
        .unwrap();
}

/// Mean time per call over `n` sequential calls.
async fn per_call(engine: &Engine, n: u32) -> Duration {
    for _ in 0..n / 10 {
        call(engine).await;
    }
    let started = Instant::now();
    for _ in 0..n {
        call(engine).await;
    }
    started.elapsed() / n
}

/// Calls per second with `tasks` concurrent callers for `run`.
async fn throughput(engine: &Engine, tasks: usize, run: Duration) -> f64 {
    let until = Instant::now() + run;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    call(&engine).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let local = engine(false, true);
        let shared = engine(true, true);
        let local_breaker = engine(false, false);
        let shared_breaker = engine(true, false);
        let local_call = per_call(&local, 200_000).await;
        let shared_call = per_call(&shared, 5_000).await;
        let local_b = per_call(&local_breaker, 200_000).await;
        let shared_b = per_call(&shared_breaker, 200_000).await;
        println!("per call, sequential (mean), limiter and breaker:");
        println!("  local                {local_call:>10.2?}");
        println!(
            "  shared (Redis)       {:>10.2?}  ({:.0}x the local)",
            shared_call,
            shared_call.as_secs_f64() / local_call.as_secs_f64()
        );
        println!("per call, breaker only (rate limit off):");
        println!("  local                {local_b:>10.2?}");
        println!(
            "  shared, CLOSED       {:>10.2?}  ({:.1}x the local)",
            shared_b,
            shared_b.as_secs_f64() / local_b.as_secs_f64()
        );
        println!("calls/s through the shared limiter, one process, one Redis:");
        for tasks in [1, 4, 16, 64] {
            let rate = throughput(&shared, tasks, Duration::from_secs(3)).await;
            let local_rate = throughput(&local, tasks, Duration::from_secs(1)).await;
            println!("  {tasks:>3} tasks  shared {rate:>9.0}/s   local {local_rate:>11.0}/s");
        }
    });
}

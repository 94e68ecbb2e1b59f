//! The breaker shared through Redis: process A sees the dependency fail and opens it;
//! process B, which made no failing call, fails fast within one poll period (measured);
//! a probe from B closes it for everyone; half-open probes are leased fleet-wide.

mod common;

use std::num::NonZeroU32;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestError, redis_url, unique_prefix, wall_micros};
use resilience_core::breaker::BreakerState;
use resilience_core::policy::{OnUnavailable, StorePolicy};
use resilience_core::shared::{BreakerRef, Gate, Lease, SharedStore};
use resilience_core::{Call, Engine, Policy, PolicySet, Stop};
use resilience_redis::RedisStore;

fn breaker_policy() -> Policy {
    let mut policy = Policy::default();
    policy.rate_limit.enabled = false;
    policy.retry.max_attempts = NonZeroU32::MIN;
    policy.circuit_breaker.failure_threshold = NonZeroU32::new(3).unwrap();
    policy.circuit_breaker.recovery_timeout = Duration::from_secs(1);
    policy.circuit_breaker.success_threshold = NonZeroU32::MIN;
    policy
}

fn set(prefix: &str) -> PolicySet {
    let mut store = StorePolicy::redis(redis_url());
    store.prefix = prefix.to_owned();
    store.on_unavailable = OnUnavailable::Local;
    PolicySet::from_policies([("dep", breaker_policy())])
        .unwrap()
        .with_store(store, Vec::<String>::new())
}

fn engine(prefix: &str) -> (Engine, Arc<RedisStore>) {
    let set = set(prefix);
    let store = Arc::new(RedisStore::new(set.store().unwrap()).unwrap());
    (Engine::with_store(set, Arc::clone(&store) as _), store)
}

async fn call(engine: &Engine, fail: bool) -> Result<(), TestError> {
    engine
        .run(Call::new("dep", "query").key("db-1"), || async move {
            if fail { Err(TestError::Down) } else { Ok(()) }
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opened_by_another_process_fails_this_one_fast_and_a_probe_closes_it() {
    if std::env::var_os("SHARED_BREAKER_PREFIX").is_some() {
        return;
    }
    let prefix = unique_prefix("breaker");
    let (b, b_store) = engine(&prefix);
    call(&b, false).await.expect("the dependency answers B");
    assert_eq!(
        b_store.breaker_view("dep", "db-1"),
        Some((BreakerState::Closed, 0))
    );

    let exe = std::env::current_exe().unwrap();
    let a = Command::new(exe)
        .env("REDIS_URL", redis_url())
        .args(["--exact", "process_a", "--nocapture", "--test-threads=1"])
        .env("SHARED_BREAKER_PREFIX", &prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // B calls a healthy dependency until the fleet's breaker stops it.
    let until = Instant::now() + Duration::from_secs(20);
    let rejected_at = loop {
        assert!(Instant::now() < until, "B never saw the breaker A opened");
        match call(&b, false).await {
            Ok(()) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(TestError::Stopped(failure)) => {
                assert!(
                    matches!(failure.stop, Stop::CircuitOpen { .. }),
                    "{failure}"
                );
                break wall_micros();
            }
            Err(e) => panic!("{e}"),
        }
    };
    let out = a.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let opened_at: u64 = text
        .lines()
        .find_map(|l| l.split("OPENED ").nth(1))
        .unwrap_or_else(|| panic!("A opened the breaker: {text}"))
        .parse()
        .unwrap();
    let staleness = Duration::from_micros(rejected_at.saturating_sub(opened_at));
    println!("B failed fast {staleness:?} after A's third failure opened the breaker");
    // The figure is printed (BENCHMARKS.md quotes it); the bound only catches a breaker
    // that B never saw, and stays loose so a loaded machine does not fail it.
    assert!(
        staleness < Duration::from_secs(2),
        "B saw the open breaker only after {staleness:?}"
    );

    // After recovery_timeout, B's next call is the fleet's probe; it succeeds and
    // closes the breaker for every process.
    let (c, c_store) = engine(&prefix);
    let _ = call(&c, false).await;
    let until = Instant::now() + Duration::from_secs(10);
    while call(&b, false).await.is_err() {
        assert!(Instant::now() < until, "no probe closed the breaker");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while c_store.breaker_view("dep", "db-1") != Some((BreakerState::Closed, 0)) {
        assert!(Instant::now() < until, "C never saw the breaker close");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    call(&c, false).await.expect("closed for C too");
}

/// Process A: its dependency fails; it opens the fleet's breaker and says when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_a() {
    let Some(prefix) = std::env::var_os("SHARED_BREAKER_PREFIX") else {
        return;
    };
    let (a, store) = engine(prefix.to_str().unwrap());
    for _ in 0..3 {
        assert!(call(&a, true).await.is_err());
    }
    println!("OPENED {}", wall_micros());
    let until = Instant::now() + Duration::from_secs(10);
    while store.breaker_view("dep", "db-1").map(|v| v.0) != Some(BreakerState::Open) {
        assert!(
            Instant::now() < until,
            "A's failures never opened the breaker"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_probes_are_leased_across_the_fleet() {
    let prefix = unique_prefix("lease");
    let set = set(&prefix);
    let stores: Vec<RedisStore> = (0..3)
        .map(|_| RedisStore::new(set.store().unwrap()).unwrap())
        .collect();
    let mut settings = breaker_policy().circuit_breaker;
    settings.success_threshold = NonZeroU32::new(2).unwrap();
    settings.recovery_timeout = Duration::from_millis(200);
    let breaker = BreakerRef {
        policy: "dep",
        key: "db-1",
        settings: &settings,
    };
    for _ in 0..3 {
        stores[0].record(breaker, resilience_core::breaker::Outcome::Failure);
    }
    let until = Instant::now() + Duration::from_secs(10);
    while !matches!(stores[1].gate(breaker), Gate::Open { .. }) {
        assert!(Instant::now() < until, "the breaker never opened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while stores[1].gate(breaker) != Gate::Probe {
        assert!(Instant::now() < until, "the open period never ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut granted = 0;
    for store in stores.iter().chain(&stores) {
        if store.lease(breaker).await == Lease::Granted {
            granted += 1;
        }
    }
    assert_eq!(granted, 2, "success_threshold leases in the whole fleet");
}

//! The breaker shared through Redis: process A sees the dependency fail and opens it;
//! process B, which made no failing call, fails fast at its next poll (counted, and the
//! time measured);
//! a probe from B closes it for everyone; half-open probes are leased fleet-wide.

mod common;

use std::io::{BufRead, BufReader};
use std::num::NonZeroU32;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
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
    let mut a = Command::new(exe)
        .env("REDIS_URL", redis_url())
        .args(["--exact", "process_a", "--nocapture", "--test-threads=1"])
        .env("SHARED_BREAKER_PREFIX", &prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // A reader notes how many polls B had made when A said Redis holds the open
    // breaker: B's staleness is then counted in its own polls, which a loaded machine
    // slows down together with everything else, not in wall-clock time.
    let polls_when_opened = Arc::new(OnceLock::new());
    let reader = {
        let stdout = a.stdout.take().unwrap();
        let (b_store, polls_when_opened) = (Arc::clone(&b_store), Arc::clone(&polls_when_opened));
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                if line.contains("OPENED ") {
                    let _ = polls_when_opened.set(b_store.breaker_polls());
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        })
    };

    // B calls a healthy dependency until the fleet's breaker stops it.
    let until = Instant::now() + Duration::from_secs(20);
    let (rejected_at, polls_when_rejected) = loop {
        assert!(Instant::now() < until, "B never saw the breaker A opened");
        match call(&b, false).await {
            Ok(()) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(TestError::Stopped(failure)) => {
                assert!(
                    matches!(failure.stop, Stop::CircuitOpen { .. }),
                    "{failure}"
                );
                break (wall_micros(), b_store.breaker_polls());
            }
            Err(e) => panic!("{e}"),
        }
    };
    let status = a.wait().unwrap();
    let text = reader.join().unwrap();
    assert!(status.success(), "{text}");
    let opened_at: u64 = text
        .lines()
        .find_map(|l| l.split("OPENED ").nth(1))
        .unwrap_or_else(|| panic!("A opened the breaker: {text}"))
        .parse()
        .unwrap();
    let staleness = Duration::from_micros(rejected_at.saturating_sub(opened_at));
    // The poll in flight when the breaker opened may have read the old state; the next
    // one reads the open breaker; one more is slack for B's call loop.
    let polls_when_opened = *polls_when_opened.get().expect("A said OPENED");
    let polls = polls_when_rejected.saturating_sub(polls_when_opened);
    println!(
        "B failed fast {staleness:?} after A's third failure opened the breaker, \
         {polls} of its polls after Redis held it"
    );
    assert!(
        polls <= 3,
        "B failed fast only {polls} polls after the breaker opened ({staleness:?})"
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
    let failed_at = wall_micros();
    let until = Instant::now() + Duration::from_secs(10);
    while store.breaker_view("dep", "db-1").map(|v| v.0) != Some(BreakerState::Open) {
        assert!(
            Instant::now() < until,
            "A's failures never opened the breaker"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A's view shows OPEN once Redis has answered A's third record: from here on every
    // poll of B's reads the open breaker. The time is A's third failure's.
    println!("OPENED {failed_at}");
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

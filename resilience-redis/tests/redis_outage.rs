//! Redis killed in the middle of a run and started again (empty): with
//! `on_unavailable = "local"` calls go on at this worker's fair share of the limit, none
//! waits longer than the store's timeout for Redis, and the shared bucket is used again
//! once Redis answers; with `"fail_closed"` calls are refused at once with a clear error.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{TestError, Throwaway, limited, shared_set, unique_prefix};
use resilience_core::policy::OnUnavailable;
use resilience_core::{Call, Engine, Stop};
use resilience_redis::RedisStore;

/// Every log line of this test binary (all tests share the global subscriber; each test
/// filters by its own server's URL).
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        struct Sink(&'static Mutex<Vec<u8>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Sink(logs))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    })
}

/// Log lines that mention `url` and `what`.
fn logged(url: &str, what: &str) -> usize {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains(url) && l.contains(what))
        .count()
}

/// Calls `engine` back to back for `run`, returning how many were admitted and the
/// longest any call took.
async fn saturate(engine: &Engine, run: Duration) -> (u32, Duration) {
    let until = Instant::now() + run;
    let (mut admitted, mut longest) = (0, Duration::ZERO);
    while Instant::now() < until {
        let started = Instant::now();
        let result = engine
            .run(Call::new("shared", "tick").key("k"), || async {
                Ok::<_, TestError>(())
            })
            .await;
        longest = longest.max(started.elapsed());
        result.expect("the fallback admits every call within max_wait");
        admitted += 1;
    }
    (admitted, longest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_means_the_fair_share_locally_and_a_restarted_one_is_used_again() {
    logs();
    let mut server = Throwaway::start();
    let prefix = unique_prefix("outage");
    // 1200/min = 20/s shared by two workers: 10/s each while Redis is away.
    let policy = limited(1200, 4, Duration::from_secs(5));
    let set = shared_set(policy, &server.url(), &prefix, OnUnavailable::Local);
    let store = Arc::new(RedisStore::new(set.store().unwrap()).unwrap());
    let other = RedisStore::new(set.store().unwrap()).unwrap();
    // Reported now rather than by the heartbeat's first tick, which may not have run yet.
    assert!(store.report().await.is_some());
    assert_eq!(other.report().await, Some(2));
    assert_eq!(store.report().await, Some(2));
    assert_eq!(store.live_workers(), 2);
    // The other worker's report counts for 10 s; it makes no request after this.
    drop(other);
    let engine = Engine::with_store(set, Arc::clone(&store) as _);
    let key = store.bucket_key("shared", "k");

    let (shared, _) = saturate(&engine, Duration::from_millis(500)).await;
    assert!(shared >= 4, "{shared}");
    assert!(server.get(&key).is_some(), "the bucket lives in Redis");
    assert!(!store.is_unavailable());

    server.kill();
    let run = Duration::from_secs(2);
    let (local, longest) = saturate(&engine, run).await;
    assert!(store.is_unavailable());
    // Fair share: 10/s, starting empty at the switch (no burst).
    let share = 10.0 * run.as_secs_f64();
    assert!(
        f64::from(local) <= share + 1.0,
        "{local} calls in {run:?} on the fallback, more than the fair share ({share})"
    );
    assert!(
        f64::from(local) >= 0.8 * share,
        "{local} calls in {run:?}: the fallback should use its share ({share})"
    );
    assert!(
        longest < Duration::from_millis(500),
        "a call took {longest:?} while Redis was down"
    );
    assert_eq!(
        logged(&server.url(), "shared store unavailable"),
        1,
        "the switch is logged once"
    );

    server.restart();
    let until = Instant::now() + Duration::from_secs(10);
    while store.is_unavailable() || server.get(&key).is_none() {
        assert!(Instant::now() < until, "the store never returned to Redis");
        saturate(&engine, Duration::from_millis(50)).await;
    }
    let (back, _) = saturate(&engine, Duration::from_millis(500)).await;
    assert!(back > 0);
    assert_eq!(
        logged(&server.url(), "shared store answers again"),
        1,
        "the return is logged once"
    );
    assert!(
        server.get(&key).is_some(),
        "the bucket lives in Redis again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_calls_at_once_while_redis_is_away() {
    let mut server = Throwaway::start();
    let prefix = unique_prefix("closed");
    let policy = limited(600, 10, Duration::from_secs(5));
    let set = shared_set(policy, &server.url(), &prefix, OnUnavailable::FailClosed);
    let store = RedisStore::new(set.store().unwrap()).unwrap();
    let engine = Engine::with_store(set, Arc::new(store));
    let call = || {
        engine.run(Call::new("shared", "tick").key("k"), || async {
            Ok::<_, TestError>(())
        })
    };
    call().await.expect("Redis is up");
    server.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let Err(TestError::Stopped(failure)) = call().await else {
            panic!("a call went through without the store");
        };
        assert!(started.elapsed() < Duration::from_millis(500));
        let Stop::StoreUnavailable { reason } = &failure.stop else {
            panic!("{failure}");
        };
        assert!(reason.contains(&server.url()), "{reason}");
        assert!(failure.to_string().contains("fail_closed"), "{failure}");
    }
    server.restart();
    let until = Instant::now() + Duration::from_secs(10);
    while call().await.is_err() {
        assert!(Instant::now() < until, "calls never resumed");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_leaves_no_breaker_stuck_open() {
    use resilience_core::breaker::Outcome;
    use resilience_core::shared::{BreakerRef, SharedStore};

    let mut server = Throwaway::start();
    let prefix = unique_prefix("restart-breaker");
    let mut policy = limited(600, 10, Duration::from_secs(1));
    policy.rate_limit.enabled = false;
    policy.circuit_breaker.enabled = true;
    policy.circuit_breaker.failure_threshold = std::num::NonZeroU32::new(2).unwrap();
    policy.circuit_breaker.recovery_timeout = Duration::from_secs(300);
    let settings = policy.circuit_breaker.clone();
    let set = shared_set(policy, &server.url(), &prefix, OnUnavailable::Local);
    let store = Arc::new(RedisStore::new(set.store().unwrap()).unwrap());
    let other = RedisStore::new(set.store().unwrap()).unwrap();
    let engine = Engine::with_store(set, Arc::clone(&store) as _);
    let call = || {
        engine.run(Call::new("shared", "tick").key("k"), || async {
            Ok::<_, TestError>(())
        })
    };
    call().await.expect("closed");
    // Another worker sees two failures: the fleet's breaker opens for 5 minutes.
    let breaker = BreakerRef {
        policy: "shared",
        key: "k",
        settings: &settings,
    };
    other.record(breaker, Outcome::Failure);
    other.record(breaker, Outcome::Failure);
    let until = Instant::now() + Duration::from_secs(10);
    while call().await.is_ok() {
        assert!(Instant::now() < until, "the shared breaker never opened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Redis restarts empty: the state is rebuilt as CLOSED, nothing stays open.
    server.kill();
    server.restart();
    let until = Instant::now() + Duration::from_secs(10);
    while store.is_unavailable() || call().await.is_err() {
        assert!(
            Instant::now() < until,
            "the breaker stayed open after the restart"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    call().await.expect("closed after the restart");
}

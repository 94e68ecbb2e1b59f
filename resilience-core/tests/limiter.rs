//! The token bucket, in virtual time.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{TestError, engine};
use resilience_core::limiter::{Admission, TokenBucket};
use resilience_core::policy::{RateLimitPolicy, WhenLimited};
use resilience_core::{Call, Stop};
use tokio::time::Instant;

fn bucket(rpm: u32, burst: u32, when_limited: WhenLimited, max_wait: Duration) -> TokenBucket {
    TokenBucket::new(&RateLimitPolicy {
        requests_per_minute: rpm.try_into().unwrap(),
        burst: burst.try_into().unwrap(),
        when_limited,
        max_wait,
        ..RateLimitPolicy::default()
    })
}

/// The most admissions inside any window of `window` over the sorted times.
fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[tokio::test(start_paused = true)]
async fn any_sixty_seconds_admit_at_most_rate_plus_burst_and_saturation_keeps_the_rate() {
    let b = bucket(300, 50, WhenLimited::Wait, Duration::from_secs(3600));
    let start = Instant::now();
    let mut times = Vec::new();
    while start.elapsed() < Duration::from_secs(180) {
        b.acquire(Instant::now(), None, |_| {}).await.unwrap();
        times.push(Instant::now());
    }
    assert!(max_in_window(&times, Duration::from_secs(60)) <= 350);
    // Saturated for 180 s: the burst plus 5 tokens a second.
    let expected = 50.0 + 5.0 * 180.0;
    assert!(
        times.len() as f64 >= 0.99 * expected,
        "{} of {expected}",
        times.len()
    );
}

#[tokio::test(start_paused = true)]
async fn sixteen_concurrent_tasks_never_over_admit() {
    let b = Arc::new(bucket(
        300,
        50,
        WhenLimited::Wait,
        Duration::from_secs(3600),
    ));
    let start = Instant::now();
    let times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (b, times) = (b.clone(), times.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < Duration::from_secs(120) {
                b.acquire(Instant::now(), None, |_| {}).await.unwrap();
                times.lock().unwrap().push(Instant::now());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut times = times.lock().unwrap().clone();
    times.sort();
    assert!(max_in_window(&times, Duration::from_secs(60)) <= 350);
    let expected = 50.0 + 5.0 * 120.0;
    assert!(times.len() as f64 >= 0.99 * expected, "{}", times.len());
    assert!(times.len() as f64 <= expected + 16.0, "{}", times.len());
}

#[tokio::test(start_paused = true)]
async fn reject_returns_the_time_to_retry_after() {
    let b = bucket(60, 1, WhenLimited::Reject, Duration::from_secs(10));
    assert_eq!(
        b.acquire(Instant::now(), None, |_| {}).await,
        Ok(Admission::Immediate)
    );
    let limited = b.acquire(Instant::now(), None, |_| {}).await.unwrap_err();
    assert_eq!(limited.retry_after, Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        b.acquire(Instant::now(), None, |_| {}).await,
        Ok(Admission::Immediate)
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_longer_than_max_wait_gives_up_at_once() {
    let b = bucket(60, 1, WhenLimited::Wait, Duration::from_millis(500));
    b.acquire(Instant::now(), None, |_| {}).await.unwrap();
    let start = Instant::now();
    let limited = b.acquire(Instant::now(), None, |_| {}).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(limited.retry_after, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn waiting_callers_are_served_in_order_and_a_cancelled_one_gives_its_place_back() {
    let b = Arc::new(bucket(60, 1, WhenLimited::Wait, Duration::from_secs(60)));
    b.acquire(Instant::now(), None, |_| {}).await.unwrap();
    let start = Instant::now();
    // A waiter that gives up after half a second...
    let cancelled = tokio::time::timeout(
        Duration::from_millis(500),
        b.acquire(Instant::now(), None, |_| {}),
    )
    .await;
    assert!(cancelled.is_err());
    // ...does not hold a token: the next caller gets the one due at 1 s.
    let waited = b.acquire(Instant::now(), None, |_| {}).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(waited, Admission::Waited(Duration::from_millis(500)));
    assert_eq!(b.waiting(), 0);

    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for n in 0..5 {
        let (b, order) = (b.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            b.acquire(Instant::now(), None, |_| {}).await.unwrap();
            order.lock().unwrap().push(n);
        }));
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn keys_have_their_own_buckets_and_waits_are_counted() {
    let engine = engine(|p| {
        p.rate_limit.requests_per_minute = 60.try_into().unwrap();
        p.rate_limit.burst = 2.try_into().unwrap();
    });
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    for key in ["a", "b"] {
        for _ in 0..2 {
            engine
                .run(Call::new("t", "op").key(key), || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, TestError>(())
                })
                .await
                .unwrap();
        }
    }
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "each key has its own burst"
    );
    engine
        .run(Call::new("t", "op").key("a"), || async {
            Ok::<_, TestError>(())
        })
        .await
        .unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "a third call on `a` waits its turn"
    );
    let health = engine.health();
    assert_eq!(health.get("t", "a").unwrap().rate_limit_waits, 1);
    assert_eq!(
        health.get("t", "a").unwrap().rate_limit_violations,
        0,
        "a wait is not a violation"
    );
    assert_eq!(health.get("t", "b").unwrap().rate_limit_waits, 0);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_call_does_not_run_and_says_when_to_retry() {
    let engine = engine(|p| {
        p.rate_limit.requests_per_minute = 60.try_into().unwrap();
        p.rate_limit.burst = 1.try_into().unwrap();
        p.rate_limit.when_limited = WhenLimited::Reject;
    });
    let calls = AtomicU32::new(0);
    let run = || {
        engine.run(Call::new("t", "op").key("k"), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(())
        })
    };
    run().await.unwrap();
    let err = run().await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        err.stop(),
        Some(&Stop::RateLimited {
            retry_after: Duration::from_secs(1)
        })
    );
    assert!(
        err.to_string().contains("rate limited, retry after 1s"),
        "{err}"
    );
    assert_eq!(
        engine.health().get("t", "k").unwrap().rate_limit_rejections,
        1
    );
}

#[test]
fn threads_racing_for_tokens_never_over_admit() {
    // Real OS threads on the lock-free path, all at one instant: exactly `burst` win.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    for _ in 0..50 {
        let b = Arc::new(bucket(60, 5, WhenLimited::Reject, Duration::ZERO));
        let now = Instant::now();
        let admitted = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (b, admitted) = (b.clone(), admitted.clone());
                std::thread::spawn(move || {
                    for _ in 0..4 {
                        if b.try_acquire(now) {
                            admitted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(admitted.load(Ordering::SeqCst), 5);
    }
}

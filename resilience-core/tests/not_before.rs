//! An error that says when the dependency will take the next call (`Retry-After`,
//! "too many connections, come back in 5 s"): the retry waits until then instead of the
//! backoff, gives up at once when that is past the total deadline, and holds the key's
//! rate limiter so that other calls to the same dependency wait too. In virtual time.

mod common;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{EventLog, engine};
use resilience_core::{Call, ErrorClass, Failure, ResilientError, Stop};
use tokio::time::Instant;

/// Throttled, with or without a time before which the dependency will not take a call.
#[derive(Debug)]
enum HintError {
    Busy(Option<Instant>),
    Stopped(Box<Failure<HintError>>),
}

impl fmt::Display for HintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HintError::Busy(_) => f.write_str("server busy"),
            HintError::Stopped(failure) => failure.fmt(f),
        }
    }
}

impl ResilientError for HintError {
    fn class(&self) -> ErrorClass {
        match self {
            HintError::Busy(_) => ErrorClass::Throttled,
            HintError::Stopped(failure) => failure.class(),
        }
    }

    fn from_failure(failure: Failure<Self>) -> Self {
        HintError::Stopped(Box::new(failure))
    }

    fn not_before(&self) -> Option<Instant> {
        match self {
            HintError::Busy(at) => *at,
            HintError::Stopped(_) => None,
        }
    }
}

fn call(key: &'static str) -> Call<'static> {
    Call::new("t", "op").key(key)
}

/// Runs a call whose first attempt fails with `Busy(hint(now))` and whose second
/// succeeds; returns when each attempt started, relative to the first.
async fn retried_once(
    engine: &resilience_core::Engine,
    hint: impl Fn(Instant) -> Option<Instant>,
) -> Vec<Duration> {
    let start = Instant::now();
    let starts = std::sync::Mutex::new(Vec::new());
    engine
        .run(call("k"), || async {
            let now = Instant::now();
            let mut starts = starts.lock().unwrap();
            starts.push(now - start);
            if starts.len() == 1 {
                Err(HintError::Busy(hint(now)))
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
    starts.into_inner().unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_next_attempt_waits_for_the_hint_instead_of_the_backoff() {
    let engine = engine(|_| {});
    let log = EventLog::on(&engine);
    let starts = retried_once(&engine, |now| Some(now + Duration::from_secs(7))).await;
    assert_eq!(starts.len(), 2);
    assert_eq!(
        starts[1],
        Duration::from_secs(7),
        "the hint (7 s), not the backoff (1 s)"
    );
    let retry = log
        .take()
        .into_iter()
        .find(|e| e.name == "retry")
        .expect("a retry was scheduled");
    assert!(retry.detail.contains("delay=7s"), "{retry:?}");
}

#[tokio::test(start_paused = true)]
async fn a_hint_shorter_than_the_backoff_is_still_what_the_retry_waits() {
    let engine = engine(|p| p.retry.initial_delay = Duration::from_secs(10));
    let starts = retried_once(&engine, |now| Some(now + Duration::from_millis(1500))).await;
    assert_eq!(starts[1], Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn a_hint_of_now_or_none_falls_back_to_the_backoff() {
    let engine = engine(|_| {});
    // `Retry-After: 0`: the hint is the moment of the failure.
    let starts = retried_once(&engine, Some).await;
    assert_eq!(
        starts[1],
        Duration::from_secs(1),
        "the policy's 1 s backoff"
    );
    // No hint at all.
    let starts = retried_once(&engine, |_| None).await;
    assert_eq!(starts[1], Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_hint_past_the_total_deadline_gives_up_at_once_with_its_own_verdict() {
    let engine = engine(|p| p.timeout.total = Duration::from_secs(60));
    let log = EventLog::on(&engine);
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let err = engine
        .run(call("k"), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(HintError::Busy(Some(
                Instant::now() + Duration::from_secs(90),
            )))
        })
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "no waiting to fail");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let HintError::Stopped(failure) = &err else {
        panic!("expected the engine's verdict, got {err:?}");
    };
    assert_eq!(
        failure.stop,
        Stop::WaitBeyondDeadline {
            wait: Duration::from_secs(90),
            left: Duration::from_secs(60),
            attempts: 1,
        }
    );
    assert_eq!(failure.stop.name(), "wait_beyond_deadline");
    assert_eq!(err.class(), ErrorClass::Throttled, "the last error's class");
    let message = err.to_string();
    assert!(
        message.contains(
            "the dependency asked to wait 90s before the next attempt, more than the 60s \
             left of the total deadline"
        ),
        "{message}"
    );
    assert!(message.ends_with("last error: server busy"), "{message}");
    let gave_up = log
        .take()
        .into_iter()
        .find(|e| e.name == "gave_up")
        .expect("gave_up");
    assert!(
        gave_up.detail.contains("verdict=wait_beyond_deadline"),
        "{gave_up:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn other_calls_to_the_same_key_wait_for_the_hint_too() {
    let engine = Arc::new(engine(|p| {
        p.rate_limit.enabled = true;
        p.rate_limit.requests_per_minute = 6000.try_into().unwrap();
        p.rate_limit.burst = 10.try_into().unwrap();
        p.rate_limit.max_wait = Duration::from_secs(30);
        p.rate_limit.per_host = true;
    }));
    let start = Instant::now();
    let first_failed = Arc::new(tokio::sync::Notify::new());
    let retrying = {
        let (engine, first_failed) = (Arc::clone(&engine), Arc::clone(&first_failed));
        tokio::spawn(async move {
            let calls = AtomicU32::new(0);
            engine
                .run(call("host-a"), || async {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        first_failed.notify_one();
                        return Err(HintError::Busy(Some(
                            Instant::now() + Duration::from_secs(5),
                        )));
                    }
                    Ok(Instant::now() - start)
                })
                .await
                .unwrap()
        })
    };
    first_failed.notified().await;
    tokio::task::yield_now().await;
    // Another call to the same host, started while the first one waits.
    let same_host = engine
        .run(call("host-a"), || async {
            Ok::<_, HintError>(Instant::now() - start)
        })
        .await
        .unwrap();
    // A call to another host is not held.
    let other_host = engine
        .run(call("host-b"), || async {
            Ok::<_, HintError>(Instant::now() - start)
        })
        .await
        .unwrap();
    let retried = retrying.await.unwrap();
    assert!(
        same_host >= Duration::from_secs(5),
        "the other call to host-a went at {same_host:?}"
    );
    assert!(
        retried >= Duration::from_secs(5),
        "the retry went at {retried:?}"
    );
    assert!(
        other_host >= same_host && other_host < same_host + Duration::from_millis(5),
        "host-b was not held beyond what host-a's call took: {other_host:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_that_cannot_wait_out_the_hold_is_refused_at_once() {
    let engine = engine(|p| {
        p.rate_limit.enabled = true;
        p.rate_limit.requests_per_minute = 6000.try_into().unwrap();
        p.rate_limit.burst = 10.try_into().unwrap();
        p.rate_limit.max_wait = Duration::from_secs(2);
        p.timeout.attempt = Duration::from_secs(5);
        p.timeout.total = Duration::from_secs(20);
    });
    // A call that fails with a 15 s hint and then succeeds holds the key ...
    let start = Instant::now();
    let held = async {
        let calls = AtomicU32::new(0);
        engine
            .run(call("k"), || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(HintError::Busy(Some(
                        Instant::now() + Duration::from_secs(15),
                    )));
                }
                Ok(())
            })
            .await
    };
    // ... and a call that may wait 2 s for a token is refused without waiting.
    let refused = async {
        tokio::task::yield_now().await;
        let ran = AtomicU32::new(0);
        let err = engine
            .run(call("k"), || async {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, HintError>(())
            })
            .await
            .unwrap_err();
        (Instant::now() - start, ran.into_inner(), err)
    };
    let (held, (at, ran, err)) = tokio::join!(held, refused);
    held.unwrap();
    assert_eq!(ran, 0, "the refused call never reached the dependency");
    assert_eq!(at, Duration::ZERO, "refused at once, not after max_wait");
    let HintError::Stopped(failure) = &err else {
        panic!("{err:?}")
    };
    let Stop::RateLimited { retry_after } = failure.stop else {
        panic!("{:?}", failure.stop)
    };
    assert!(
        retry_after >= Duration::from_secs(15) - Duration::from_millis(20),
        "retry after {retry_after:?}"
    );
}

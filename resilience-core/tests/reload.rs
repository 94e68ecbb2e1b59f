//! Policies reloaded while calls run, in virtual time: state is kept, new settings apply
//! from the next attempt, a bucket hands out no burst, an open breaker stays open, and a
//! set that does not validate changes nothing.

mod common;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{FixedRng, TestError, fail_always};
use resilience_core::breaker::BreakerState;
use resilience_core::policy::{Jitter, LoadOptions, Policy, WhenLimited};
use resilience_core::{
    Call, Engine, ErrorClass, PolicyChange, PolicySet, Resilience, Resilient, Stop,
    resilient_operation,
};
use tokio::time::Instant;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// The db preset without jitter, edited.
fn policy(edit: impl FnOnce(&mut Policy)) -> Policy {
    let mut p = Policy::default();
    p.retry.jitter = Jitter::None;
    edit(&mut p);
    p
}

fn set(p: Policy) -> PolicySet {
    PolicySet::from_policies([("t", p)]).unwrap()
}

fn engine(p: Policy) -> Engine {
    let engine = Engine::new(set(p));
    engine.set_jitter_rng(Box::new(FixedRng(0.5)));
    engine
}

fn call() -> Call<'static> {
    Call::new("t", "op").key("k")
}

/// A limiter that waits (for up to a minute) at `per_minute` with `burst`.
fn limited(per_minute: u32, burst: u32) -> Policy {
    policy(|p| {
        p.rate_limit.requests_per_minute = nz(per_minute);
        p.rate_limit.burst = nz(burst);
        p.rate_limit.when_limited = WhenLimited::Wait;
        p.rate_limit.max_wait = Duration::from_secs(60);
        p.timeout.total = Duration::from_secs(120);
    })
}

/// Runs `tasks` tasks calling back to back until `until`, recording when each call was
/// admitted (its body ran); reloads to `next` at `reload_at`.
async fn load(
    engine: &Engine,
    tasks: usize,
    until: Duration,
    reload_at: Duration,
    next: Policy,
) -> (Instant, Vec<Instant>) {
    let start = Instant::now();
    let admitted = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (engine, admitted) = (engine.clone(), Arc::clone(&admitted));
        handles.push(tokio::spawn(async move {
            while start.elapsed() < until {
                engine
                    .run(call(), || async {
                        admitted.lock().unwrap().push(Instant::now());
                        Ok::<_, TestError>(())
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    tokio::time::sleep(reload_at).await;
    let reloaded = Instant::now();
    engine.reload(set(next)).unwrap();
    for h in handles {
        h.await.unwrap();
    }
    let times = admitted.lock().unwrap().clone();
    (reloaded, times)
}

/// The largest count of `times` at or after `from` in any window of `window`, minus what
/// `burst` and `per_minute` allow in it.
fn excess(times: &[Instant], from: Instant, per_minute: u32, burst: u32) -> f64 {
    let mut after: Vec<Instant> = times.iter().copied().filter(|t| *t >= from).collect();
    after.sort();
    let mut worst = f64::MIN;
    for (i, a) in after.iter().enumerate() {
        for (j, b) in after.iter().enumerate().skip(i) {
            let span = b.duration_since(*a).as_secs_f64();
            let allowed = f64::from(burst) + f64::from(per_minute) / 60.0 * span;
            worst = worst.max((j - i + 1) as f64 - allowed);
        }
    }
    worst
}

#[tokio::test(start_paused = true)]
async fn a_reload_under_load_admits_no_more_than_the_new_limit_in_any_window() {
    // 600/min with a burst of 20, lowered to 60/min with a burst of 5 after 10 s. The
    // bucket is empty at the reload (4 tasks keep it so): its debt of 20 tokens refills at
    // the new rate, 1 a second, so calls resume about 16 s after the reload.
    let engine = engine(limited(600, 20));
    let (reloaded, times) = load(
        &engine,
        4,
        Duration::from_secs(45),
        Duration::from_secs(10),
        limited(60, 5),
    )
    .await;
    let after = times.iter().filter(|t| **t >= reloaded).count();
    assert!(after >= 15, "calls kept going after the reload: {after}");
    let excess = excess(&times, reloaded, 60, 5);
    assert!(
        excess <= 1e-9,
        "a window after the reload admitted {excess} calls over the new limit"
    );
    // No new burst of 5 right after the reload: the debt carries over.
    let first = times.iter().filter(|t| **t >= reloaded).min().unwrap();
    assert!(
        first.duration_since(reloaded) >= Duration::from_secs(15),
        "first call {:?} after the reload",
        first.duration_since(reloaded)
    );
}

#[tokio::test(start_paused = true)]
async fn raising_the_limit_under_load_hands_out_no_burst() {
    // 60/min with a burst of 5, raised to 600/min with a burst of 50 after 10 s: the new
    // room fills at the new rate, so the first second admits about 10 calls, not 50.
    let engine = engine(limited(60, 5));
    let (reloaded, times) = load(
        &engine,
        4,
        Duration::from_secs(20),
        Duration::from_secs(10),
        limited(600, 50),
    )
    .await;
    let first_second = times
        .iter()
        .filter(|t| **t >= reloaded && t.duration_since(reloaded) <= Duration::from_secs(1))
        .count();
    assert!(
        (8..=11).contains(&first_second),
        "{first_second} calls in the first second after the reload"
    );
    assert!(excess(&times, reloaded, 600, 50) <= 1e-9);
    let later = times
        .iter()
        .filter(|t| t.duration_since(reloaded) >= Duration::from_secs(5))
        .count();
    assert!(later >= 45, "the new rate holds later on: {later} in 5 s");
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_stays_open_through_a_reload() {
    let engine = engine(policy(|p| p.retry.max_attempts = nz(1)));
    for _ in 0..5 {
        fail_always(&engine, call(), ErrorClass::Connection).await;
    }
    let breaker = engine.breaker("t", "k").unwrap();
    assert_eq!(breaker.state(), BreakerState::Open);
    tokio::time::advance(Duration::from_secs(10)).await;

    // A longer recovery timeout does not lengthen the open period already running.
    let changes = engine
        .reload(set(policy(|p| {
            p.retry.max_attempts = nz(2);
            p.circuit_breaker.recovery_timeout = Duration::from_secs(90);
        })))
        .unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        breaker.state(),
        BreakerState::Open,
        "still open after the reload"
    );
    let (calls, err) = fail_always(&engine, call(), ErrorClass::Connection).await;
    assert_eq!(calls, 0, "refused without calling");
    assert!(
        matches!(err.stop(), Some(Stop::CircuitOpen { .. })),
        "{err}"
    );
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(
        breaker.state(),
        BreakerState::HalfOpen,
        "half-open after the old 30 s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shorter_recovery_timeout_shortens_the_open_period_running() {
    let engine = engine(policy(|p| p.retry.max_attempts = nz(1)));
    for _ in 0..5 {
        fail_always(&engine, call(), ErrorClass::Connection).await;
    }
    let breaker = engine.breaker("t", "k").unwrap();
    engine
        .reload(set(policy(|p| {
            p.retry.max_attempts = nz(1);
            p.circuit_breaker.recovery_timeout = Duration::from_secs(5);
        })))
        .unwrap();
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(breaker.state(), BreakerState::Open);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_policy_keeps_its_counters_and_failure_count() {
    let p = policy(|p| p.retry.max_attempts = nz(1));
    let engine = engine(p.clone());
    for _ in 0..4 {
        fail_always(&engine, call(), ErrorClass::Connection).await;
    }
    let before = engine.health();
    let changes = engine.reload(set(p)).unwrap();
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(engine.health(), before, "every counter kept");
    // The fifth consecutive failure, after the reload, opens the breaker.
    fail_always(&engine, call(), ErrorClass::Connection).await;
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Open
    );
    assert_eq!(engine.health().get("t", "k").unwrap().calls, 5);
}

#[tokio::test(start_paused = true)]
async fn a_changed_policy_keeps_its_counters_and_says_what_changed() {
    let engine = engine(policy(|p| p.retry.max_attempts = nz(1)));
    for _ in 0..2 {
        fail_always(&engine, call(), ErrorClass::Connection).await;
    }
    let changes = engine
        .reload(set(policy(|p| {
            p.retry.max_attempts = nz(4);
            p.timeout.attempt = Duration::from_secs(10);
        })))
        .unwrap();
    assert_eq!(
        changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["policy `t`: retry.max_attempts 1 -> 4, timeout.attempt \"30s\" -> \"10s\""]
    );
    let k = engine.health().get("t", "k").unwrap().clone();
    assert_eq!((k.calls, k.failures), (2, 2));
    let (calls, _) = fail_always(&engine, call(), ErrorClass::Connection).await;
    assert_eq!(
        calls, 3,
        "two earlier failures + three = the threshold of 5"
    );
}

#[tokio::test(start_paused = true)]
async fn a_set_that_does_not_validate_is_refused_and_the_old_policies_stay() {
    let engine = engine(policy(|_| {}));
    // A broken file never becomes a set: the loader says where.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("default.toml"),
        "[policy.t.retry]\nmax_attempts = 0\n",
    )
    .unwrap();
    let err = PolicySet::load(&LoadOptions {
        dir: Some(dir.clone()),
        profile: None,
    })
    .unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!((err.line(), err.column()), (Some(2), Some(16)), "{err}");

    // Changing how a policy in use shares buckets is refused; nothing changes.
    fail_always(&engine, call(), ErrorClass::Auth).await;
    let err = engine
        .reload(set(policy(|p| {
            p.rate_limit.per_host = false;
            p.retry.max_attempts = nz(9);
        })))
        .unwrap_err();
    assert_eq!(err.key(), Some("policy.t.rate_limit.per_host"), "{err}");
    assert_eq!(
        engine.policies().get("t").unwrap().retry.max_attempts.get(),
        3
    );
    let (calls, _) = fail_always(&engine, call(), ErrorClass::Transient).await;
    assert_eq!(calls, 3, "the old policy runs");
}

#[tokio::test(start_paused = true)]
async fn a_removed_policy_fails_as_unknown_until_it_is_back() {
    let engine = engine(policy(|_| {}));
    let ok = || engine.run(call(), || async { Ok::<_, TestError>(()) });
    ok().await.unwrap();
    let other = PolicySet::from_policies([("u", Policy::default())]).unwrap();
    let changes = engine.reload(other).unwrap();
    assert_eq!(
        changes,
        [
            PolicyChange::Removed("t".into()),
            PolicyChange::Added("u".into())
        ]
    );
    let err = ok().await.unwrap_err();
    assert_eq!(
        err.stop(),
        Some(&Stop::UnknownPolicy {
            known: vec!["u".into()]
        })
    );
    engine.reload(set(policy(|_| {}))).unwrap();
    ok().await.unwrap();
    assert_eq!(engine.health().get("t", "k").unwrap().calls, 2);
}

struct Source {
    resilience: Resilience,
    calls: AtomicU32,
}

impl Resilient for Source {
    fn resilience(&self) -> &Resilience {
        &self.resilience
    }
}

impl Source {
    #[resilient_operation]
    async fn fetch(&self) -> Result<(), TestError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(TestError::Fail(ErrorClass::Transient))
    }
}

#[tokio::test(start_paused = true)]
async fn an_annotated_method_picks_up_a_new_max_attempts() {
    let engine = engine(policy(|p| p.circuit_breaker.enabled = false));
    let source = Source {
        resilience: Resilience::new(engine.clone(), "t").unwrap().with_key("h"),
        calls: AtomicU32::new(0),
    };
    source.fetch().await.unwrap_err();
    assert_eq!(source.calls.swap(0, Ordering::SeqCst), 3);
    engine
        .reload(set(policy(|p| {
            p.circuit_breaker.enabled = false;
            p.retry.max_attempts = nz(5);
        })))
        .unwrap();
    let err = source.fetch().await.unwrap_err();
    assert_eq!(source.calls.load(Ordering::SeqCst), 5);
    assert_eq!(err.stop(), Some(&Stop::RetriesExhausted { attempts: 5 }));
}

#[tokio::test(start_paused = true)]
async fn a_call_running_during_a_reload_takes_the_new_settings_at_its_next_attempt() {
    let engine = engine(policy(|p| p.circuit_breaker.enabled = false));
    let calls = AtomicU32::new(0);
    let running = engine.run(call(), || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(TestError::Fail(ErrorClass::Transient))
    });
    let reload = async {
        // During the first backoff (1 s): the call has made one attempt.
        tokio::time::sleep(Duration::from_millis(500)).await;
        engine
            .reload(set(policy(|p| {
                p.circuit_breaker.enabled = false;
                p.retry.max_attempts = nz(2);
            })))
            .unwrap();
    };
    let (err, ()) = tokio::join!(running, reload);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        err.unwrap_err().stop(),
        Some(&Stop::RetriesExhausted { attempts: 2 })
    );
}

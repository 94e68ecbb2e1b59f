//! Connection recovery and background probing, in virtual time.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::{TestError, engine, fail_always};
use resilience_core::breaker::BreakerState;
use resilience_core::{BoxFuture, Call, ErrorClass, Recovered, Recovery, RecoveryCause};

#[derive(Default)]
struct Hook {
    recoveries: AtomicU32,
    refreshes: AtomicU32,
    probes: AtomicU32,
    reachable: AtomicBool,
}

impl Recovery for Hook {
    fn recover(&self, cause: RecoveryCause) -> BoxFuture<'_, Result<Recovered, String>> {
        self.recoveries.fetch_add(1, Ordering::SeqCst);
        if cause.refresh_credentials {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
        }
        Box::pin(async { Ok(Recovered::Mended) })
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        self.probes.fetch_add(1, Ordering::SeqCst);
        let reachable = self.reachable.load(Ordering::SeqCst);
        Box::pin(async move { reachable })
    }
}

#[tokio::test(start_paused = true)]
async fn connection_failures_run_recovery_before_the_next_attempt_bounded_per_window() {
    let engine = engine(|p| {
        p.retry.max_attempts = 5.try_into().unwrap();
        p.retry.initial_delay = Duration::from_millis(10);
        p.circuit_breaker.failure_threshold = 100.try_into().unwrap();
    });
    let hook = Arc::new(Hook::default());
    let dyn_hook: Arc<dyn Recovery> = hook.clone();
    let (calls, _) = fail_always(
        &engine,
        Call::new("t", "op").key("k").recovery(&dyn_hook),
        ErrorClass::Connection,
    )
    .await;
    assert_eq!(calls, 5);
    assert_eq!(
        hook.recoveries.load(Ordering::SeqCst),
        3,
        "max_attempts = 3 per 30 s window"
    );
    assert_eq!(hook.refreshes.load(Ordering::SeqCst), 0);
    assert_eq!(
        engine
            .health()
            .get("t", "k")
            .unwrap()
            .connection_recovery_events,
        3
    );

    // Transient errors do not rebuild connections.
    tokio::time::advance(Duration::from_secs(30)).await;
    engine
        .run(
            Call::new("t", "op").key("k").recovery(&dyn_hook),
            || async { Err::<(), _>(TestError::Fail(ErrorClass::Transient)) },
        )
        .await
        .unwrap_err();
    assert_eq!(hook.recoveries.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn probes_close_the_breaker_without_user_traffic() {
    let engine = engine(|p| {
        p.retry.max_attempts = 1.try_into().unwrap();
        p.recovery.check_interval = Duration::from_secs(5);
    });
    let hook = Arc::new(Hook::default());
    let dyn_hook: Arc<dyn Recovery> = hook.clone();
    for _ in 0..5 {
        engine
            .run(
                Call::new("t", "op").key("k").recovery(&dyn_hook),
                || async { Err::<(), _>(TestError::Fail(ErrorClass::Connection)) },
            )
            .await
            .unwrap_err();
    }
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Open
    );
    // Still down: probes fail and the breaker stays open.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(hook.probes.load(Ordering::SeqCst), 2);
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Open
    );
    // Back: two successful probes close it, long before the 30 s recovery timeout.
    hook.reachable.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        engine.breaker("t", "k").unwrap().state(),
        BreakerState::Closed
    );
    let probes = hook.probes.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        hook.probes.load(Ordering::SeqCst),
        probes,
        "probing stops once closed"
    );
}

#[tokio::test(start_paused = true)]
async fn an_auth_failure_refreshes_credentials_once_and_retries_once() {
    let engine = engine(|p| p.recovery.credential_refresh = true);
    let hook = Arc::new(Hook::default());
    let dyn_hook: Arc<dyn Recovery> = hook.clone();
    let calls = AtomicU32::new(0);
    let value = engine
        .run(
            Call::new("t", "op").key("k").recovery(&dyn_hook),
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(TestError::Fail(ErrorClass::Auth)),
                    _ => Ok(1),
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(value, 1);
    assert_eq!(hook.refreshes.load(Ordering::SeqCst), 1);
    let health = engine.health();
    let key = health.get("t", "k").unwrap();
    assert_eq!(
        (key.attempts, key.retries),
        (2, 1),
        "the refreshed attempt counts as a retry"
    );

    calls.store(0, Ordering::SeqCst);
    let err = engine
        .run(
            Call::new("t", "op").key("k").recovery(&dyn_hook),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(TestError::Fail(ErrorClass::Auth))
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one refresh, one retry, then the error"
    );
    assert!(matches!(err, TestError::Fail(ErrorClass::Auth)));
}

#[tokio::test(start_paused = true)]
async fn without_credential_refresh_auth_is_called_once() {
    let engine = engine(|_| {});
    let hook = Arc::new(Hook::default());
    let dyn_hook: Arc<dyn Recovery> = hook.clone();
    let (calls, _) = fail_always(
        &engine,
        Call::new("t", "op").key("k").recovery(&dyn_hook),
        ErrorClass::Auth,
    )
    .await;
    assert_eq!(calls, 1);
    assert_eq!(hook.recoveries.load(Ordering::SeqCst), 0);
}

//! Typed events: what the engine did reaches observers as data, and health counts the same
//! events; nothing is published on the happy path.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{EventLog, TestError, engine, fail_always};
use resilience_core::breaker::BreakerState;
use resilience_core::events::Observer;
use resilience_core::policy::WhenLimited;
use resilience_core::{
    BoxFuture, Call, ErrorClass, Recovered, Recovery, RecoveryCause, ResilientError,
};

fn call() -> Call<'static> {
    Call::new("t", "op").key("k")
}

#[tokio::test(start_paused = true)]
async fn a_successful_call_publishes_nothing() {
    let engine = engine(|_| {});
    let log = EventLog::on(&engine);
    for _ in 0..3 {
        engine
            .run(call(), || async { Ok::<_, TestError>(()) })
            .await
            .unwrap();
    }
    assert!(log.take().is_empty());
}

#[tokio::test(start_paused = true)]
async fn retries_and_the_verdict_are_events_with_their_numbers() {
    let engine = engine(|_| {});
    let log = EventLog::on(&engine);
    let (calls, _) = fail_always(&engine, call(), ErrorClass::Connection).await;
    assert_eq!(calls, 3);
    let events = log.take();
    let names: Vec<_> = events.iter().map(|e| e.name).collect();
    assert_eq!(names, ["retry", "retry", "gave_up"]);
    assert_eq!(
        events[0].detail,
        "attempt=2/3 delay=1s class=connection error=connection failure"
    );
    assert_eq!(
        events[1].detail,
        "attempt=3/3 delay=2s class=connection error=connection failure"
    );
    assert_eq!(
        events[2].detail,
        "verdict=retries_exhausted attempts=3 class=connection error=connection failure"
    );
    assert!(
        events
            .iter()
            .all(|e| e.key == "k" && e.operation == Some("op"))
    );
    let health = engine.health();
    let k = health.get("t", "k").unwrap();
    assert_eq!(
        (k.retries, k.gave_up),
        (2, 1),
        "health counts the same events"
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_the_policy_does_not_retry_gives_up_at_once() {
    let engine = engine(|_| {});
    let log = EventLog::on(&engine);
    fail_always(&engine, call(), ErrorClass::InvalidInput).await;
    let events = log.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].detail,
        "verdict=not_retried attempts=1 class=invalid_input error=invalid_input failure"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_retried_with_the_timeout_as_its_reason() {
    let engine = engine(|p| {
        p.timeout.attempt = Duration::from_secs(2);
        p.retry.max_attempts = 2.try_into().unwrap();
    });
    let log = EventLog::on(&engine);
    let err = engine
        .run(call(), std::future::pending::<Result<(), TestError>>)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout);
    let events = log.take();
    assert_eq!(
        events[0].detail,
        "attempt=2/2 delay=1s class=timeout error=attempt timed out after 2s"
    );
    assert_eq!(
        events[1].detail,
        "verdict=attempt_timed_out attempts=2 class=- error=-"
    );
}

#[tokio::test(start_paused = true)]
async fn breaker_transitions_and_refusals_are_events() {
    let engine = engine(|p| {
        p.retry.max_attempts = 1.try_into().unwrap();
        p.circuit_breaker.failure_threshold = 2.try_into().unwrap();
        p.circuit_breaker.success_threshold = 1.try_into().unwrap();
    });
    let log = EventLog::on(&engine);
    for _ in 0..3 {
        fail_always(&engine, call(), ErrorClass::Connection).await;
    }
    let events = log.take();
    let names: Vec<_> = events.iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            "gave_up",
            "breaker_opened",
            "gave_up",
            "circuit_open_rejection",
            "gave_up"
        ]
    );
    assert_eq!(
        events[1].detail,
        "CLOSED->OPEN ConsecutiveFailures { failures: 2 }"
    );
    assert!(
        events[4].detail.starts_with("verdict=circuit_open "),
        "{events:?}"
    );

    tokio::time::advance(Duration::from_secs(30)).await;
    engine
        .run(call(), || async { Ok::<_, TestError>(()) })
        .await
        .unwrap();
    let events = log.take();
    let transitions: Vec<_> = events.iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(
        transitions,
        [
            "OPEN->HALF_OPEN OpenPeriodOver",
            "HALF_OPEN->CLOSED ProbesSucceeded"
        ]
    );
    let handle = engine.breaker("t", "k").unwrap();
    handle.force_open();
    handle.reset();
    assert_eq!(
        log.take()
            .iter()
            .map(|e| e.detail.as_str())
            .collect::<Vec<_>>(),
        ["CLOSED->OPEN Operator", "OPEN->CLOSED Operator"]
    );
    assert_eq!(handle.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_waits_and_rejections_are_separate_events() {
    let engine = engine(|p| {
        p.rate_limit.requests_per_minute = 60.try_into().unwrap();
        p.rate_limit.burst = 1.try_into().unwrap();
    });
    let log = EventLog::on(&engine);
    for _ in 0..2 {
        engine
            .run(call(), || async { Ok::<_, TestError>(()) })
            .await
            .unwrap();
    }
    let events = log.take();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].name, events[0].detail.as_str()),
        ("rate_limit_wait", "wait=1s")
    );

    let strict = engine_rejecting();
    let log = EventLog::on(&strict);
    for _ in 0..2 {
        let _ = strict
            .run(call(), || async { Ok::<_, TestError>(()) })
            .await;
    }
    assert_eq!(log.names(), ["rate_limit_rejected", "gave_up"]);
    let health = strict.health();
    let k = health.get("t", "k").unwrap();
    assert_eq!(
        (
            k.rate_limit_waits,
            k.rate_limit_rejections,
            k.rate_limit_violations
        ),
        (0, 1, 1)
    );
}

fn engine_rejecting() -> resilience_core::Engine {
    engine(|p| {
        p.rate_limit.requests_per_minute = 60.try_into().unwrap();
        p.rate_limit.burst = 1.try_into().unwrap();
        p.rate_limit.when_limited = WhenLimited::Reject;
    })
}

#[tokio::test(start_paused = true)]
async fn a_refused_retry_budget_is_an_event() {
    let engine = engine(|p| {
        p.retry.budget.ratio = 0.0;
        p.retry.budget.min_per_second = 0;
    });
    let log = EventLog::on(&engine);
    fail_always(&engine, call(), ErrorClass::Transient).await;
    assert_eq!(log.names(), ["budget_exhausted", "gave_up"]);
    assert_eq!(
        engine
            .health()
            .get("t", "k")
            .unwrap()
            .retry_budget_exhausted,
        1
    );
}

/// A hook answering with a fixed outcome.
struct Hook(Result<Recovered, String>);

impl Recovery for Hook {
    fn recover(&self, _: RecoveryCause) -> BoxFuture<'_, Result<Recovered, String>> {
        let outcome = self.0.clone();
        Box::pin(async move { outcome })
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { false })
    }
}

/// The recovery events of one call that fails once with a connection error.
async fn recovery_events(outcome: Result<Recovered, String>, refresh: bool) -> (Vec<String>, u64) {
    let engine = engine(|p| p.recovery.credential_refresh = refresh);
    let log = EventLog::on(&engine);
    let hook: Arc<dyn Recovery> = Arc::new(Hook(outcome));
    let calls = AtomicU32::new(0);
    engine
        .run(call().recovery(&hook), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(TestError::Fail(ErrorClass::Connection)),
                _ => Ok(()),
            }
        })
        .await
        .unwrap();
    let seen = log
        .take()
        .into_iter()
        .filter(|e| e.name != "retry")
        .map(|e| format!("{} {}", e.name, e.detail).trim().to_owned())
        .collect();
    let health = engine.health();
    let k = health.get("t", "k").unwrap();
    (seen, k.connection_recovery_events)
}

#[tokio::test(start_paused = true)]
async fn a_recovery_counts_only_when_it_mended_the_connection() {
    assert_eq!(
        recovery_events(Ok(Recovered::Mended), false).await,
        (
            vec![
                "recovery_started class=connection refresh=false".to_owned(),
                "recovery".to_owned()
            ],
            1
        )
    );
    assert_eq!(
        recovery_events(Ok(Recovered::Mended), true).await.0,
        [
            "recovery_started class=connection refresh=true",
            "recovery",
            "credentials_refreshed"
        ]
    );
    assert_eq!(
        recovery_events(Ok(Recovered::NotNeeded("direct path".into())), false).await,
        (
            vec![
                "recovery_started class=connection refresh=false".to_owned(),
                "recovery_not_needed reason=direct path".to_owned()
            ],
            0
        )
    );
    assert_eq!(
        recovery_events(Err("server refuses".into()), false).await,
        (
            vec![
                "recovery_started class=connection refresh=false".to_owned(),
                "recovery_failed error=server refuses".to_owned()
            ],
            0
        )
    );
}

#[tokio::test(start_paused = true)]
async fn an_unsubscribed_observer_hears_nothing_more() {
    let engine = engine(|p| p.retry.max_attempts = 1.try_into().unwrap());
    let log = EventLog::on(&engine);
    let observer: Arc<dyn Observer> = log.clone();
    fail_always(&engine, call(), ErrorClass::Connection).await;
    assert_eq!(log.names(), ["gave_up"]);
    // A second subscription of another observer, then the first leaves.
    let other = EventLog::on(&engine);
    assert!(!engine.unsubscribe(&(Arc::new(EventLog::default()) as Arc<dyn Observer>)));
    assert!(engine.unsubscribe(&observer));
    fail_always(&engine, call(), ErrorClass::Connection).await;
    assert!(log.take().is_empty());
    assert_eq!(other.names(), ["gave_up"]);
}

//! `Retry-After`, measured at the server: the client never comes back before the time
//! the server named, in either form; `0` falls back to the backoff; a time beyond the
//! total deadline gives up at once.

mod support;

use std::time::{Duration, Instant};

use resilience_core::{ErrorClass, ResilientError, Stop};
use support::{api, connector, engine, params, styles};
use test_support::http::{Fault, RetryAfter};

/// Reads `items` by cursor with `fault` on the third request; returns the server's log.
async fn read_with(
    name: &str,
    fault: Fault,
    edit: impl FnOnce(&mut resilience_core::Policy),
) -> Vec<test_support::http::Request> {
    let api = api(name, None).await;
    let (_, path, records, pagination) = styles().remove(2);
    let engine = engine(edit);
    let http = connector(&engine, params(&api, path, records, pagination, None));
    api.server.pass(2);
    api.server.push_fault(fault, 1);
    let read = http.read_all("items", vec![]).await.unwrap();
    assert_eq!(read, api.table().await, "every record once");
    api.server.requests()
}

/// The 429 and the request after it.
fn around_429(
    log: &[test_support::http::Request],
) -> (&test_support::http::Request, &test_support::http::Request) {
    let i = log
        .iter()
        .position(|r| r.status == 429)
        .expect("a 429 was answered");
    (&log[i], &log[i + 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_seconds_no_request_before_the_time_given() {
    let log = read_with("ra_secs", Fault::Throttle(RetryAfter::Seconds(1)), |_| {}).await;
    let (throttled, next) = around_429(&log);
    let allowed = throttled.not_before.expect("the 429 named a time");
    assert!(
        next.wall >= allowed,
        "the retry arrived {:?} before the time the server gave",
        allowed.duration_since(next.wall).unwrap_or_default()
    );
    assert!(next.at - throttled.at >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_date_no_request_before_the_time_given() {
    let log = read_with(
        "ra_date",
        Fault::Throttle(RetryAfter::Date(Duration::from_millis(1200))),
        |_| {},
    )
    .await;
    let (throttled, next) = around_429(&log);
    let allowed = throttled.not_before.expect("the 429 named a date");
    assert!(
        next.wall >= allowed,
        "the retry arrived {:?} before the date the server gave",
        allowed.duration_since(next.wall).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_falls_back_to_the_policy_backoff() {
    let log = read_with("ra_zero", Fault::Throttle(RetryAfter::Seconds(0)), |p| {
        p.retry.initial_delay = Duration::from_millis(400);
        p.retry.max_delay = Duration::from_millis(400);
    })
    .await;
    let (throttled, next) = around_429(&log);
    assert!(
        next.at - throttled.at >= Duration::from_millis(400),
        "the retry waited the backoff, not zero: {:?}",
        next.at - throttled.at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_beyond_the_deadline_gives_up_at_once() {
    let api = api("ra_beyond", None).await;
    let (_, path, records, pagination) = styles().remove(2);
    let engine = engine(|p| p.timeout.total = Duration::from_secs(20));
    let http = connector(&engine, params(&api, path, records, pagination, None));
    api.server
        .push_fault(Fault::Throttle(RetryAfter::Seconds(3600)), 1);
    let start = Instant::now();
    let err = http.read_all("items", vec![]).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "gave up at once, not after waiting"
    );
    let failure = err.failure().expect("the engine's verdict");
    assert!(
        matches!(failure.stop, Stop::WaitBeyondDeadline { attempts: 1, .. }),
        "{:?}",
        failure.stop
    );
    assert_eq!(err.class(), ErrorClass::Throttled);
    assert_eq!(err.status(), Some(429));
    let message = err.to_string();
    // The wait left when the engine decided: the 3600 s asked for, less the moments
    // between the answer and the decision.
    let asked: f64 = message
        .split("asked to wait ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| panic!("the wait asked for: {message}"));
    assert!((3590.0..=3600.0).contains(&asked), "{message}");
    assert_eq!(api.server.requests().len(), 1, "no second request");
}

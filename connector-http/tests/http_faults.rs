//! Every record exactly once, whatever the server does in between: each pagination
//! style read through 429s, 503s, slow answers (past the attempt timeout) and bodies cut
//! short, one kind at a time and all mixed; the output equals the table.

mod support;

use std::time::Duration;

use support::{api, connector, engine, params, styles};
use test_support::http::{Fault, RetryAfter};

/// The faults of one run: after `pass` good requests each, in turn.
fn plan(server: &test_support::http::ApiServer, faults: &[Fault]) {
    for (i, fault) in faults.iter().enumerate() {
        server.pass(1);
        server.push_fault(fault.clone(), 1 + i % 2);
    }
}

async fn read_through(name: &str, faults: Vec<Fault>) {
    let api = api(name, None).await;
    let expected = api.table().await;
    assert_eq!(expected.len() as i64, support::ROWS);
    for (style, path, records, pagination) in styles() {
        let engine = engine(|_| {});
        let http = connector(&engine, params(&api, path, records, pagination, None));
        api.server.clear_requests();
        plan(&api.server, &faults);
        let read = http.read_all("items", vec![]).await;
        let read = read.unwrap_or_else(|e| panic!("{style}: {e}"));
        assert_eq!(
            api.server.faults_pending(),
            0,
            "{style}: every fault was met"
        );
        assert_eq!(
            read, expected,
            "{style}: the records equal the table, each once, in order"
        );
        let failed = api
            .server
            .requests()
            .iter()
            .filter(|r| r.status != 200 || r.truncated)
            .count();
        let slow = faults
            .iter()
            .filter(|f| matches!(f, Fault::Slow(_)))
            .count();
        assert!(failed + slow > 0, "{style}: the faults were played");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_without_a_time_every_record_once() {
    read_through(
        "f429",
        vec![
            Fault::Throttle(RetryAfter::Absent),
            Fault::Throttle(RetryAfter::Seconds(0)),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_every_record_once() {
    read_through("f503", vec![Fault::Unavailable, Fault::Unavailable]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_past_the_attempt_timeout_every_record_once() {
    read_through("fslow", vec![Fault::Slow(Duration::from_millis(2500))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_bodies_every_record_once() {
    read_through("ftrunc", vec![Fault::Truncate, Fault::Truncate]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_faults_mixed_every_record_once() {
    read_through(
        "fmixed",
        vec![
            Fault::Throttle(RetryAfter::Absent),
            Fault::Truncate,
            Fault::Unavailable,
            Fault::Slow(Duration::from_millis(2500)),
            Fault::Throttle(RetryAfter::Seconds(0)),
            Fault::Truncate,
        ],
    )
    .await;
}

//! The pool under faults: a connection that froze mid-query must not wedge a pool of one
//! (sqlx issue 4349: the frozen connection went back to the pool and every later acquire
//! timed out).

mod pg_read_support;

use std::time::Duration;

use connector_postgres::PostgresConnector;
use resilience_chaos::{ChaosProxy, Direction};
use resilience_core::policy::Policy;
use resilience_core::{Engine, ErrorClass, PolicySet, ResilientError, Stop};
use test_support::postgres::{TestServer, ThrowawayCluster, pick_server};

const ATTEMPT: Duration = Duration::from_secs(1);

/// More than the acquire's ping sends: once this much has gone to the server, the call
/// holds the connection and is running its queries.
const CHECKED_OUT_BYTES: u64 = 64;

/// One attempt of at most a second per call, and a breaker that stays out of the way.
fn one_attempt_engine() -> Engine {
    let mut db = Policy::default();
    db.retry.max_attempts = 1.try_into().unwrap();
    db.circuit_breaker.enabled = false;
    db.timeout.attempt = ATTEMPT;
    Engine::new(PolicySet::from_policies([("db", db)]).unwrap())
}

#[tokio::test]
async fn frozen_connection_in_pool_of_one_does_not_wedge_the_pool() {
    let server = pick_server().await.unwrap();
    let mut params = server.create_database("pgc_pool_freeze").await.unwrap();
    let proxy = ChaosProxy::start(params.host_key().parse().unwrap())
        .await
        .unwrap();
    let chaos = proxy.handle().clone();
    params.port = proxy.local_addr().port();
    params.pool_size = 1;
    params.connect_timeout = Duration::from_secs(5);
    let mut pg = PostgresConnector::with_engine(one_attempt_engine());
    pg.configure(params).unwrap();
    pg.discover().await.unwrap();
    assert_eq!(proxy.connections(), 1, "the pool holds one connection");

    // Slow every round trip, start a call, and freeze the connection once the call has
    // it checked out: once more has gone to the server than the acquire's ping (the
    // call's BEGIN and queries), seen in the proxy's byte count, not guessed from a clock.
    chaos.set_delay(Duration::from_millis(100));
    let before = chaos.stats().bytes(Direction::ClientToServer);
    let call = tokio::spawn(async move {
        let outcome = pg.discover().await;
        (pg, outcome)
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while chaos.stats().bytes(Direction::ClientToServer) < before + CHECKED_OUT_BYTES {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never sent its queries"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(chaos.freeze_all(), 1);
    chaos.set_delay(Duration::ZERO);
    let (pg, outcome) = call.await.unwrap();
    let err = outcome.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout, "{err}");
    assert!(
        matches!(err.failure().unwrap().stop, Stop::AttemptTimedOut { .. }),
        "{err}"
    );

    // The frozen connection stays frozen; the next call gets a new one within its
    // one-second attempt instead of waiting on the wedged pool.
    pg.discover().await.unwrap();
    let health = pg.check_health().await.unwrap();
    assert_eq!(health.pool_size, 1);

    drop(pg);
    proxy.shutdown().await;
    server.drop_database("pgc_pool_freeze").await.unwrap();
}

#[tokio::test]
async fn idle_connections_killed_by_a_fast_restart_are_not_handed_out() {
    let cluster = ThrowawayCluster::start().await.unwrap();
    let server = TestServer::Throwaway(cluster);
    let mut params = server.create_database("pgc_pool_restart").await.unwrap();
    params.pool_size = 2;
    let engine = one_attempt_engine();
    let mut pg = PostgresConnector::with_engine(engine.clone());
    pg.configure(params).unwrap();
    pg.discover().await.unwrap();
    pg_read_support::wait_for_idle(&pg, 1).await;

    server.cluster().unwrap().restart_fast().await.unwrap();

    // One attempt, no retry: the idle connection the restart killed fails its
    // test-before-acquire ping and is replaced instead of failing the call.
    assert_eq!(pg.discover().await.unwrap().len(), 0);
    assert!(pg.test_connection().await.unwrap().success);
}

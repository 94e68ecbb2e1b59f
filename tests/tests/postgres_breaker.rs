//! A network outage longer than the retries, through the chaos proxy: the breaker opens,
//! calls fail fast, and it closes again once the server is back.

use std::time::Duration;

use connector_postgres::PostgresConnector;
use resilience_chaos::ChaosProxy;
use resilience_core::breaker::BreakerState;
use resilience_core::policy::{Jitter, Policy};
use resilience_core::{Engine, ErrorClass, PolicySet, ResilientError, Stop};
use test_support::postgres::pick_server;

const RECOVERY_TIMEOUT: Duration = Duration::from_millis(200);

/// `db` with short timings: 3 attempts 50 ms apart, breaker at 5 failed attempts, open
/// for 200 ms, closed after 2 successes. Background probes are pushed out of the test's
/// way so only real calls move the breaker.
fn outage_engine() -> Engine {
    let mut db = Policy::default();
    db.retry.initial_delay = Duration::from_millis(50);
    db.retry.max_delay = Duration::from_millis(50);
    db.retry.jitter = Jitter::None;
    db.retry.budget.enabled = false;
    db.circuit_breaker.recovery_timeout = RECOVERY_TIMEOUT;
    db.recovery.check_interval = Duration::from_secs(3600);
    db.timeout.attempt = Duration::from_secs(5);
    Engine::new(PolicySet::from_policies([("db", db)]).unwrap())
}

#[tokio::test]
async fn proxy_outage_longer_than_the_retries_opens_the_breaker_until_two_successes() {
    let server = pick_server().await.unwrap();
    let mut params = server.create_database("pgc_breaker").await.unwrap();
    let upstream = params.host_key().parse().unwrap();
    let proxy = ChaosProxy::start(upstream).await.unwrap();
    let chaos = proxy.handle().clone();
    params.port = proxy.local_addr().port();
    params.connect_timeout = Duration::from_secs(2);
    let key = params.host_key();
    let engine = outage_engine();
    let mut pg = PostgresConnector::with_engine(engine.clone());
    pg.configure(params).unwrap();
    let breaker = || engine.breaker("db", &key).unwrap().state();

    pg.discover().await.unwrap();
    assert_eq!(breaker(), BreakerState::Closed);

    // Outage: open connections are reset, new ones are refused.
    chaos.refuse_new(true);
    chaos.reset_all();

    // First call: three failed attempts, the breaker is still closed (3 < 5).
    let err = pg.discover().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Connection);
    assert_eq!(
        err.failure().unwrap().stop,
        Stop::RetriesExhausted { attempts: 3 }
    );
    assert_eq!(breaker(), BreakerState::Closed);

    // Second call: the fifth failed attempt opens the breaker, which ends the call.
    let err = pg.discover().await.unwrap_err();
    assert!(err.failure().unwrap().is_circuit_open(), "{err}");
    assert_eq!(breaker(), BreakerState::Open);
    let attempts = engine.health().get("db", &key).unwrap().attempts;
    assert_eq!(attempts, 1 + 5);

    // While open, calls fail at once without touching the network.
    let accepted = proxy.accepted();
    for _ in 0..3 {
        let err = pg.discover().await.unwrap_err();
        assert!(err.failure().unwrap().is_circuit_open(), "{err}");
    }
    assert_eq!(
        proxy.accepted(),
        accepted,
        "an open breaker let a call through"
    );
    assert_eq!(engine.health().get("db", &key).unwrap().attempts, attempts);

    // The outage ends; after the recovery timeout two successes close the breaker.
    chaos.clear();
    tokio::time::sleep(RECOVERY_TIMEOUT + Duration::from_millis(50)).await;
    assert_eq!(breaker(), BreakerState::HalfOpen);
    pg.discover().await.unwrap();
    assert_eq!(breaker(), BreakerState::HalfOpen);
    pg.discover().await.unwrap();
    assert_eq!(breaker(), BreakerState::Closed);

    let health = pg.check_health().await.unwrap();
    assert!(health.reachable);
    assert!(health.retry_attempts_last_hour >= 3);
    // Recovery ran during the outage, but the server refused every new connection: each
    // try is a failed recovery, none counts as a recovery.
    let key_health = engine.health().get("db", &key).unwrap().clone();
    assert!(
        key_health.recovery_failures >= 1,
        "recovery was never tried"
    );
    assert_eq!(
        key_health.connection_recovery_events, 0,
        "a recovery counted while the server refused connections"
    );

    drop(pg);
    proxy.shutdown().await;
    server.drop_database("pgc_breaker").await.unwrap();
}

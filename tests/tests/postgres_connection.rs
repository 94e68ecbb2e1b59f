//! Connecting to a real PostgreSQL: lifecycle, connection tests that name the real
//! cause, discovery and health.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use connector_postgres::{
    ConnectorState, Credential, PgParams, PostgresConnector, SslMode, TableKind,
};
use resilience_core::breaker::BreakerState;
use resilience_core::policy::{Jitter, Policy};
use resilience_core::{Engine, ErrorClass, PolicySet, ResilientError};
use sqlx::Executor;
use test_support::postgres::{TestServer, ThrowawayCluster, pick_server};

/// The `db` policy with short retry delays, so failing calls finish quickly.
fn fast_engine(credential_refresh: bool) -> Engine {
    let mut db = Policy::default();
    db.retry.initial_delay = Duration::from_millis(50);
    db.retry.max_delay = Duration::from_millis(100);
    db.retry.jitter = Jitter::None;
    db.recovery.credential_refresh = credential_refresh;
    Engine::new(PolicySet::from_policies([("db", db)]).unwrap())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A throwaway cluster (password authentication for every role but `postgres`) with a
/// login role `app_login` whose password is `right-password`.
async fn cluster_with_login() -> TestServer {
    let server = TestServer::Throwaway(ThrowawayCluster::start().await.unwrap());
    let mut admin = server.connect("postgres").await.unwrap();
    admin
        .execute("CREATE ROLE app_login LOGIN PASSWORD 'right-password'")
        .await
        .unwrap();
    server
}

#[tokio::test]
async fn operations_before_configure_are_refused_with_the_state() {
    let pg = PostgresConnector::new();
    assert_eq!(pg.state(), ConnectorState::Created);
    let err = pg.discover().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot discover: the connector is created; call configure first"
    );
    assert_eq!(err.class(), ErrorClass::Config);

    let mut pg = PostgresConnector::with_engine(fast_engine(false));
    let params = PgParams {
        pool_size: 0,
        ..PgParams::default()
    };
    assert!(pg.configure(params).is_err());
    assert_eq!(pg.state(), ConnectorState::Error);
    let err = pg.test_connection().await.unwrap_err().to_string();
    assert!(err.contains("configure failed (invalid pool_size"), "{err}");

    let err = PostgresConnector::new()
        .configure(PgParams::default().policy("no_such_policy"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid policy"), "{err}");
}

#[tokio::test]
async fn wrong_password_is_one_call_without_retry_and_leaves_the_breaker_closed() {
    let server = cluster_with_login().await;
    let engine = fast_engine(false);
    let mut pg = PostgresConnector::with_engine(engine.clone());
    let params = server
        .params("postgres")
        .user("app_login")
        .password(Credential::literal("wrong-password-42"));
    let key = params.host_key();
    pg.configure(params).unwrap();

    for _ in 0..6 {
        let result = pg.test_connection().await.unwrap();
        assert!(!result.success);
        assert!(
            result.message.starts_with(
                "authentication failed: password authentication failed for user \"app_login\""
            ),
            "{}",
            result.message
        );
        assert!(!result.message.contains("wrong-password-42"));
    }
    assert_eq!(pg.state(), ConnectorState::Error);
    let health = engine.health();
    let seen = health.get("db", &key).unwrap();
    assert_eq!((seen.calls, seen.attempts, seen.retries), (6, 6, 0));
    assert_eq!(
        engine.breaker("db", &key).unwrap().state(),
        BreakerState::Closed
    );

    // Through the pool the error is the same class and message, without the password.
    let err = pg.discover().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    assert_eq!(err.sqlstate().as_deref(), Some("28P01"));
    assert!(!format!("{err} {err:?} {pg:?}").contains("wrong-password-42"));
}

/// Everything logged, at every level, by every test of this file.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn passwords_never_reach_logs_debug_or_errors() {
    // A global subscriber: a scoped one misses events while other tests run in parallel.
    static LOGS: OnceLock<Captured> = OnceLock::new();
    let logs = LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    });

    let server = cluster_with_login().await;
    let secret = "Sup3r-s3cret-pw";
    let mut pg = PostgresConnector::with_engine(fast_engine(true));
    let url = format!("{}&policy=db", server.url("postgres")).replacen(
        "postgres://postgres@",
        &format!("postgres://app_login:{secret}@"),
        1,
    );
    pg.configure_url(&url).unwrap();
    let tested = pg.test_connection().await.unwrap();
    let err = pg.discover().await.unwrap_err();
    let health = serde_json::to_string(&pg.check_health().await.unwrap()).unwrap();

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("resilience patterns enabled for policy db"),
        "{logs}"
    );
    assert!(logs.contains("refresh_credentials=true"), "{logs}");
    let params = pg.params().unwrap();
    let resolved = params.password.as_ref().map(|c| c.resolve().unwrap());
    let options = params.connect_options(resolved.as_ref());
    let url = server.url_with_password("postgres");
    for text in [
        logs,
        format!("{tested:?} {err} {err:?} {pg:?} {health} {params:?} {options:?}"),
        format!("{url} {url:?} {}", server.url("postgres")),
    ] {
        assert!(!text.contains(secret), "password leaked: {text}");
    }
}

#[tokio::test]
async fn rotated_password_file_is_reread_once_on_auth_failure() {
    let server = cluster_with_login().await;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("secret");
    std::fs::write(&file, "old-password\n").unwrap();
    let engine = fast_engine(true);
    let mut pg = PostgresConnector::with_engine(engine.clone());
    let params = server
        .params("postgres")
        .user("app_login")
        .password(Credential::File(file.clone()));
    let key = params.host_key();
    pg.configure(params).unwrap();
    // The secret is rotated after the connector read it.
    std::fs::write(&file, "right-password\n").unwrap();

    let result = pg.test_connection().await.unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(result.success, "{}", result.message);
    assert_eq!(pg.state(), ConnectorState::Ready);
    let health = engine.health();
    let seen = health.get("db", &key).unwrap();
    assert_eq!((seen.attempts, seen.connection_recovery_events), (2, 1));
}

#[tokio::test]
async fn unknown_database_is_reported_after_one_call() {
    let server = pick_server().await.unwrap();
    let engine = fast_engine(false);
    let mut pg = PostgresConnector::with_engine(engine.clone());
    let params = server.params("pgc_no_such_database");
    let key = params.host_key();
    pg.configure(params).unwrap();

    let result = pg.test_connection().await.unwrap();
    assert!(!result.success);
    assert!(
        result.message.starts_with("database does not exist"),
        "{}",
        result.message
    );
    assert_eq!(engine.health().get("db", &key).unwrap().attempts, 1);
}

#[tokio::test]
async fn refused_port_is_reported_as_refused_without_waiting_for_the_connect_timeout() {
    let engine = fast_engine(false);
    let mut pg = PostgresConnector::with_engine(engine.clone());
    let mut params = PgParams::new("127.0.0.1", free_port(), "postgres");
    params.connect_timeout = Duration::from_secs(60);
    let key = params.host_key();
    pg.configure(params).unwrap();

    let started = Instant::now();
    let result = pg.test_connection().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for the connect timeout"
    );
    assert!(!result.success);
    assert!(
        result
            .message
            .starts_with(&format!("connection refused by {key}")),
        "{}",
        result.message
    );
    assert!(
        result
            .message
            .ends_with("(retries exhausted after 3 attempts)"),
        "{}",
        result.message
    );
    assert_eq!(engine.health().get("db", &key).unwrap().attempts, 3);
}

#[tokio::test]
async fn discover_lists_tables_and_views_as_the_catalog_names_them() {
    let server = pick_server().await.unwrap();
    let params = server.create_database("pgc_discover").await.unwrap();
    let mut admin = server.connect("pgc_discover").await.unwrap();
    admin
        .execute(
            r#"CREATE SCHEMA sales;
               CREATE TABLE sales.orders (id int PRIMARY KEY);
               CREATE VIEW sales."Big Orders" AS SELECT * FROM sales.orders WHERE id > 10;
               CREATE SCHEMA hr;
               CREATE TABLE hr.people (id int);"#,
        )
        .await
        .unwrap();

    let mut pg = PostgresConnector::with_engine(fast_engine(false));
    pg.configure(params.clone().schema("sales")).unwrap();
    let names: Vec<_> = pg
        .discover()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.schema, t.name, t.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("sales".into(), "Big Orders".into(), TableKind::View),
            ("sales".into(), "orders".into(), TableKind::Table),
        ]
    );
    assert_eq!(pg.state(), ConnectorState::Ready);

    pg.configure(params.clone().schema("Sales")).unwrap();
    let err = pg.discover().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid schema: `Sales` does not exist, expected one of: hr, public, sales"
    );

    pg.configure(params).unwrap();
    let all = pg.discover().await.unwrap();
    let qualified: Vec<_> = all
        .iter()
        .map(|t| format!("{}.{}", t.schema, t.name))
        .collect();
    assert_eq!(qualified, ["hr.people", "sales.Big Orders", "sales.orders"]);

    let health = pg.check_health().await.unwrap();
    assert!(health.reachable, "{:?}", health.error);
    assert!(health.pool_size >= 1);
    assert_eq!(health.circuit_breaker_state, Some(BreakerState::Closed));
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["circuit_breaker_state"], "CLOSED");
    assert!(json["latency_ms"].as_f64().unwrap() > 0.0);

    drop(pg);
    drop(admin);
    server.drop_database("pgc_discover").await.unwrap();
}

#[tokio::test]
async fn black_hole_is_reported_as_a_connect_timeout() {
    let server = pick_server().await.unwrap();
    let mut params = server.params("postgres");
    let proxy = resilience_chaos::ChaosProxy::start(params.host_key().parse().unwrap())
        .await
        .unwrap();
    proxy.handle().freeze_new(true);
    params.port = proxy.local_addr().port();
    params.connect_timeout = Duration::from_millis(200);
    let key = params.host_key();
    let mut pg = PostgresConnector::with_engine(fast_engine(false));
    pg.configure(params).unwrap();

    let result = pg.test_connection().await.unwrap();
    assert!(!result.success);
    assert_eq!(
        result.message,
        format!("connect to {key} timed out after 200ms (retries exhausted after 3 attempts)")
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn untrusted_certificate_is_a_config_failure_without_retry() {
    let server = pick_server().await.unwrap();
    let mut params = server.params("postgres");
    params.ssl_mode = SslMode::VerifyFull;
    let key = params.host_key();
    let engine = fast_engine(false);
    let mut pg = PostgresConnector::with_engine(engine.clone());
    pg.configure(params).unwrap();

    let result = pg.test_connection().await.unwrap();
    assert!(!result.success);
    assert!(
        result.message.starts_with("TLS failed: "),
        "{}",
        result.message
    );
    let err = pg.discover().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert_eq!(engine.health().get("db", &key).unwrap().attempts, 2);
}

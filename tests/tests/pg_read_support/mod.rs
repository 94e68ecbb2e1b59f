//! Shared set-up for the read tests: a database of the test's own, a connector on a fast
//! policy, and helpers to kill the reading connection and collect keys.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use connector_postgres::{PgParams, PostgresConnector};
use resilience_core::{Engine, Policy, PolicySet};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use test_support::postgres::{TestServer, pick_server};

/// A database created for one test, dropped by [`TestDb::drop`].
pub struct TestDb {
    pub server: TestServer,
    pub name: String,
    pub params: PgParams,
}

impl TestDb {
    /// Creates database `name` afresh on the picked server.
    pub async fn create(name: &str) -> TestDb {
        let server = pick_server().await.expect("a PostgreSQL server for tests");
        TestDb::on(server, name).await
    }

    /// Creates database `name` on `server`.
    pub async fn on(server: TestServer, name: &str) -> TestDb {
        let params = server
            .create_database(name)
            .await
            .expect("create test database");
        TestDb {
            server,
            name: name.to_owned(),
            params,
        }
    }

    /// An admin connection to the test database.
    pub async fn admin(&self) -> PgConnection {
        self.server
            .connect(&self.name)
            .await
            .expect("admin connection")
    }

    /// Runs SQL (several statements allowed) as admin.
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.admin().await;
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect(sql);
        let _ = conn.close().await;
    }

    /// A configured connector whose sessions carry `app` as application_name.
    pub fn connector(&self, app: &str) -> PostgresConnector {
        self.connector_with(app, |_| {})
    }

    /// Like [`connector`](Self::connector), adjusting the parameters first.
    pub fn connector_with(
        &self,
        app: &str,
        adjust: impl FnOnce(&mut PgParams),
    ) -> PostgresConnector {
        let mut params = self.params.clone();
        params.application_name = app.to_owned();
        params.pool_size = 2;
        adjust(&mut params);
        let mut pg = PostgresConnector::with_engine(fast_engine());
        pg.configure(params).expect("configure");
        pg
    }

    /// Drops the database.
    pub async fn drop(self) {
        self.server
            .drop_database(&self.name)
            .await
            .expect("drop test database");
    }
}

/// The `db` policy with short backoff and room for a server restart.
pub fn fast_engine() -> Engine {
    let mut policy = Policy::default();
    policy.retry.max_attempts = NonZeroU32::new(12).unwrap();
    policy.retry.initial_delay = Duration::from_millis(20);
    policy.retry.max_delay = Duration::from_millis(500);
    policy.retry.budget.enabled = false;
    policy.circuit_breaker.failure_threshold = NonZeroU32::new(50).unwrap();
    policy.rate_limit.enabled = false;
    Engine::new(PolicySet::from_policies([("db", policy)]).unwrap())
}

/// Terminates the sessions of `app` (optionally only those running a query); returns how
/// many were terminated.
pub async fn terminate(admin: &mut PgConnection, app: &str, only_active: bool) -> i64 {
    let sql = "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
               WHERE application_name = $1 AND pid <> pg_backend_pid() \
               AND (NOT $2 OR (state = 'active' AND query LIKE '%SELECT%LIMIT%'))) t";
    sqlx::query_scalar(sql)
        .bind(app)
        .bind(only_active)
        .fetch_one(admin)
        .await
        .expect("terminate")
}

/// Counts each `id` (Int64 column) seen in `batch` into `seen`.
pub fn count_ids(batch: &RecordBatch, column: &str, seen: &mut BTreeMap<i64, u32>) {
    let ids = batch
        .column_by_name(column)
        .expect("id column")
        .as_primitive::<Int64Type>();
    for id in ids.iter() {
        *seen.entry(id.expect("non-null id")).or_default() += 1;
    }
}

/// Asserts `seen` holds exactly the ids `1..=n`, each once.
pub fn assert_each_once(seen: &BTreeMap<i64, u32>, n: i64) {
    let repeated: Vec<_> = seen.iter().filter(|(_, c)| **c != 1).take(10).collect();
    assert!(
        repeated.is_empty(),
        "ids delivered more than once: {repeated:?}"
    );
    assert_eq!(seen.len() as i64, n, "expected every id of 1..={n} once");
    assert_eq!(seen.keys().next().copied(), Some(1));
    assert_eq!(seen.keys().last().copied(), Some(n));
}

/// Asserts the engine retried at least once: the fault really hit a page.
pub async fn assert_retried(pg: &PostgresConnector) {
    let health = pg.check_health().await.expect("health");
    assert!(
        health.retry_attempts_last_hour >= 1,
        "expected the fault to cost a retry, health: {health:?}"
    );
}

/// Waits until `pg`'s pool holds at least `idle` idle connections (a connection goes back
/// to the pool on a task of its own after its user drops it), for at most 30 s.
pub async fn wait_for_idle(pg: &PostgresConnector, idle: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let health = pg.check_health().await.unwrap();
        if health.pool_idle as u32 >= idle {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {idle} connections back in the pool after 30 s",
            health.pool_idle
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

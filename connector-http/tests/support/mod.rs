//! A real API to read from: a PostgreSQL table behind the test server, and a connector
//! on an engine whose `api` policy has short delays (the real preset waits seconds).
#![allow(dead_code)]

use std::time::Duration;

use connector_http::{HttpConnector, HttpParams};
use resilience_core::policy::{Jitter, Policy};
use resilience_core::{Engine, PolicySet};
use sqlx::postgres::PgPoolOptions;
use test_support::http::{ApiServer, Table};
use test_support::postgres::{TestServer, pick_server};

/// Rows in the table.
pub const ROWS: i64 = 95;

/// The server, the database behind it, and the ids the table holds.
pub struct Api {
    pub server: ApiServer,
    pub pool: sqlx::PgPool,
    pub pg: TestServer,
}

/// A table `items` of `ROWS` rows (ids 1..=95, `updated_at` a minute apart) in a
/// database of its own, served by a fresh API server requiring `secret` when given.
pub async fn api(name: &str, secret: Option<&str>) -> Api {
    let pg = pick_server().await.expect("a PostgreSQL server");
    let db = format!("http_conn_{name}");
    pg.create_database(&db).await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql("SET TIME ZONE 'UTC'").execute(conn).await?;
                Ok(())
            })
        })
        .connect(pg.url_with_password(&db).expose())
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE items (id int8 PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
         INSERT INTO items SELECT g, 'item ' || g, timestamptz '2024-01-01' + g * interval '1 minute'
           FROM generate_series(1, 95) g;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let tables = vec![Table::new("items", "id").cursor("updated_at")];
    let server = ApiServer::start(pool.clone(), tables, secret.map(str::to_owned))
        .await
        .unwrap();
    Api { server, pool, pg }
}

impl Api {
    /// The table's rows as JSON (PostgreSQL's own rendering), in id order.
    pub async fn table(&self) -> Vec<serde_json::Value> {
        let text: String =
            sqlx::query_scalar("SELECT coalesce(json_agg(t ORDER BY id), '[]')::text FROM items t")
                .fetch_one(&self.pool)
                .await
                .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// The built-in `api` policy with delays short enough for a test and a rate limit that
/// does not slow it, edited by `edit`.
pub fn engine(edit: impl FnOnce(&mut Policy)) -> Engine {
    let mut policy = (**PolicySet::builtin().get("api").unwrap()).clone();
    policy.retry.initial_delay = Duration::from_millis(20);
    policy.retry.max_delay = Duration::from_millis(200);
    policy.retry.jitter = Jitter::None;
    policy.retry.max_attempts = 6.try_into().unwrap();
    policy.rate_limit.requests_per_minute = 60_000.try_into().unwrap();
    policy.rate_limit.burst = 100.try_into().unwrap();
    policy.timeout.attempt = Duration::from_secs(2);
    policy.timeout.total = Duration::from_secs(30);
    edit(&mut policy);
    Engine::new(PolicySet::from_policies([("api", policy)]).unwrap())
}

/// Settings for one stream `items` paged as `pagination` (JSON) at `path`.
pub fn params(
    api: &Api,
    path: &str,
    records: &str,
    pagination: serde_json::Value,
    auth: Option<serde_json::Value>,
) -> HttpParams {
    let mut value = serde_json::json!({
        "base_url": format!("{}/", api.server.base_url()),
        "streams": [{
            "name": "items", "path": path, "records": records, "page_size": 10,
            "pagination": pagination, "primary_key": "id"
        }]
    });
    if let Some(auth) = auth {
        value["auth"] = auth;
    }
    serde_json::from_value(value).unwrap()
}

/// The four pagination styles the server offers, as (name, path, records, pagination).
pub fn styles() -> Vec<(&'static str, &'static str, &'static str, serde_json::Value)> {
    vec![
        (
            "page number",
            "page/items",
            "/data",
            serde_json::json!({"type": "page_number"}),
        ),
        (
            "offset",
            "offset/items",
            "/data",
            serde_json::json!({"type": "offset_limit"}),
        ),
        (
            "cursor",
            "cursor/items",
            "/data",
            serde_json::json!({"type": "cursor", "pointer": "/meta/next_cursor"}),
        ),
        (
            "link",
            "link/items",
            "",
            serde_json::json!({"type": "link"}),
        ),
    ]
}

/// A connector on `engine` configured with `params`.
pub fn connector(engine: &Engine, params: HttpParams) -> HttpConnector {
    let mut api = HttpConnector::with_engine(engine.clone());
    api.configure(params).unwrap();
    api
}

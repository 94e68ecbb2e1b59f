//! Scenario 2, incremental loading: the reading connection is killed in the middle of a
//! read, and no row is lost or repeated.
//!
//! The connector has a pool of one connection and a short acquire timeout, the setting in
//! which a dead connection returned to the pool would wedge every later call. A read holds
//! its connection, inside one read-only transaction, from page to page. After the first
//! page an admin session finds that backend and terminates it (`pg_terminate_backend`),
//! so the next page's query meets a dead connection. The engine classifies the failure as
//! a lost connection, rebuilds the pool, backs off and retries the page from the last
//! delivered position.
//! The delivered keys are then compared with the table's. Finally new rows are inserted
//! and a second run from the stored checkpoint must deliver exactly those.

use std::collections::BTreeSet;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use connector_postgres::{Checkpoint, IncrementalOptions, PostgresConnector};
use futures_util::StreamExt;
use resilience_core::Resilient;
use sqlx::{Executor, PgConnection};

use super::{Ctx, guarded, section};
use crate::demo::report::{Check, Claim};

const APP: &str = "resilient-demo-incremental";
const PAGE: usize = 750;
const NEW_ROWS: i32 = 25;

pub(crate) async fn run(ctx: &Ctx<'_>) -> Vec<Check> {
    section("2. Incremental loading (backend terminated mid-read)");
    guarded("incremental", &[Claim::Recovery], body(ctx)).await
}

async fn body(ctx: &Ctx<'_>) -> Result<Vec<Check>, String> {
    let proxy = ctx.proxy().await?;
    let pg = ctx.connector(&ctx.engine, &proxy, APP, |p| {
        p.pool_size = 1;
        p.connect_timeout = Duration::from_secs(1);
    })?;
    let key = pg.host_key().to_owned();
    let mut admin = ctx.db.admin().await.map_err(|e| e.to_string())?;
    println!(
        "   reading orders by (updated_at, id), pages of {PAGE}, pool of 1, acquire timeout 1s"
    );

    let mut ids = Vec::new();
    let mut last: Option<Checkpoint> = None;
    let mut killed = None;
    {
        let mut stream = Box::pin(pg.read_incremental(
            "orders",
            "updated_at",
            None,
            PAGE,
            IncrementalOptions::new(),
        ));
        while let Some(item) = {
            if killed.is_none() && !ids.is_empty() {
                killed = Some(kill_reader(&mut admin).await?);
            }
            stream.next().await
        } {
            let chunk = item.map_err(|e| format!("read failed: {e}"))?;
            ids.extend(keys(&chunk.batch)?);
            last = Some(chunk.checkpoint);
        }
    }
    let pid = killed.ok_or("the read ended before a page boundary")?;
    let retries = ctx.capture.take_retries(&key);
    for r in &retries {
        println!("   {}", r.describe());
    }
    let health = pg.resilience().engine().health();
    let recoveries = health
        .get("db", &key)
        .map_or(0, |k| k.connection_recovery_events);
    let table = table_ids(&mut admin, "SELECT id FROM orders").await?;
    let delivered: BTreeSet<i32> = ids.iter().copied().collect();
    let mut checks = vec![Check::expect(
        Claim::Recovery,
        "terminated backend: every row once",
        ids.len() == table.len() && delivered == table && !retries.is_empty() && recoveries > 0,
        format!(
            "backend {pid} terminated mid-read; {} retry, {recoveries} pool rebuild; {} rows \
             delivered, each once, same keys as the table",
            retries.len(),
            ids.len()
        ),
        format!(
            "{} rows delivered ({} distinct) vs {} in the table; {} retries, {recoveries} \
             recoveries (expected at least one of each)",
            ids.len(),
            delivered.len(),
            table.len(),
            retries.len()
        ),
    )];

    let stored = serde_json::to_string(&last.ok_or("no checkpoint was delivered")?)
        .map_err(|e| e.to_string())?;
    println!("   stored checkpoint {stored}");
    checks.push(second_run(&pg, &mut admin, &stored).await?);
    Ok(checks)
}

/// Terminates the reader's backend (idle in its read transaction between two pages) and
/// waits until it is gone. Returns the terminated pid.
async fn kill_reader(admin: &mut PgConnection) -> Result<i32, String> {
    let sql = |e: sqlx::Error| e.to_string();
    let pid: Option<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = $1 AND pid <> pg_backend_pid() LIMIT 1",
    )
    .bind(APP)
    .fetch_optional(&mut *admin)
    .await
    .map_err(sql)?;
    let pid = pid.ok_or("the reading session was not found on the server")?;
    sqlx::query("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .execute(&mut *admin)
        .await
        .map_err(sql)?;
    println!("   after page 1: backend {pid} terminated (the read's connection, mid-read)");
    Ok(pid)
}

/// Inserts new orders, reads from the stored checkpoint, and removes them again.
async fn second_run(
    pg: &PostgresConnector,
    admin: &mut PgConnection,
    stored: &str,
) -> Result<Check, String> {
    let from: Checkpoint = serde_json::from_str(stored).map_err(|e| e.to_string())?;
    let insert = format!(
        "INSERT INTO orders SELECT g, 1 + g % 1000, DATE '2025-01-01', 'pending', 0, \
         TIMESTAMP '2025-01-01 00:00' + (g % 5) * INTERVAL '1 hour' \
         FROM generate_series(5001, {}) AS g",
        5000 + NEW_ROWS
    );
    admin
        .execute(sqlx::AssertSqlSafe(insert))
        .await
        .map_err(|e| e.to_string())?;
    let mut stream = Box::pin(pg.read_incremental(
        "orders",
        "updated_at",
        Some(from),
        PAGE,
        IncrementalOptions::new(),
    ));
    let mut ids = Vec::new();
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => ids.extend(keys(&chunk.batch)?),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    drop(stream);
    admin
        .execute("DELETE FROM orders WHERE id > 5000")
        .await
        .map_err(|e| e.to_string())?;
    let expected: Vec<i32> = (5001..=5000 + NEW_ROWS).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    println!("   inserted {NEW_ROWS} orders; second run from the checkpoint (then removed them)");
    Ok(Check::expect(
        Claim::Recovery,
        "second run picks exactly the new rows",
        failure.is_none() && sorted == expected,
        format!("{} rows, ids 5001..={}", ids.len(), 5000 + NEW_ROWS),
        match failure {
            Some(e) => format!("read failed: {e}"),
            None => format!(
                "delivered {} rows {:?}, expected ids 5001..={}",
                ids.len(),
                sorted,
                5000 + NEW_ROWS
            ),
        },
    ))
}

/// The `id` column of a batch.
pub(crate) fn keys(batch: &RecordBatch) -> Result<Vec<i32>, String> {
    let column = batch.column_by_name("id").ok_or("batch has no id column")?;
    let ids = column
        .as_primitive_opt::<Int32Type>()
        .ok_or("id is not an int4 column")?;
    Ok(ids.iter().flatten().collect())
}

/// The ids a query returns, straight from the server.
pub(crate) async fn table_ids(
    conn: &mut PgConnection,
    sql: &'static str,
) -> Result<BTreeSet<i32>, String> {
    let ids: Vec<i32> = sqlx::query_scalar(sql)
        .fetch_all(conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ids.into_iter().collect())
}

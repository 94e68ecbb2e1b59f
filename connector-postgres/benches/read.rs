//! Reading a 2,000,000-row, 6-column table into Arrow, side by side with raw sqlx.
//!
//! Run: `cargo bench -p connector-postgres --bench read` (a PostgreSQL server at
//! `DATABASE_URL` or 127.0.0.1:5432, else a throwaway cluster). The table is created in the
//! database `pgread_bench` on the first run and kept. Each path runs in a fresh child process
//! (this binary with `--path NAME`), so its peak resident memory (`VmHWM`) is its own:
//!
//! - `connector`: `PostgresConnector::read` in pages of 50,000 rows (`PGREAD_BENCH_BATCH`
//!   overrides), into Arrow batches;
//! - `sqlx_fetch`: one `sqlx::query(..).fetch()` of the same rows in the same order, each
//!   value decoded (`try_get`, borrowed `&str` for text) and summed;
//! - `copy_binary`: `COPY (SELECT ..) TO STDOUT (FORMAT binary)` through `copy_out_raw`,
//!   bytes counted only: the ceiling of what the wire can deliver.

use std::process::Command;
use std::time::Instant;

use connector_postgres::PostgresConnector;
use connector_postgres::cluster::{TestServer, pick_server};
use futures_util::{StreamExt, TryStreamExt};
use resilience_core::Engine;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

const DATABASE: &str = "pgread_bench";
const TABLE: &str = "bench_rows";
const ROWS: i64 = 2_000_000;
const BATCH: usize = 50_000;
const RUNS: usize = 7;
const COLUMNS: &str = "id, qty, price, name, flag, at";
const PATHS: [&str; 3] = ["connector", "sqlx_fetch", "copy_binary"];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.iter().position(|a| a == "--path") {
        Some(i) => {
            let path = args.get(i + 1).ok_or("--path needs a name")?;
            let url = std::env::var("PGREAD_BENCH_URL")?;
            runtime.block_on(child(path, &url))
        }
        None if args.iter().any(|a| a == "--list") => Ok(()),
        None => runtime.block_on(parent()),
    }
}

/// Prepares the table, runs every path `RUNS` times in child processes and prints a table.
async fn parent() -> Result<(), BoxError> {
    let server = pick_server().await?;
    prepare(&server).await?;
    let url = server.url_with_password(DATABASE).expose().to_owned();
    let exe = std::env::current_exe()?;
    // Rounds run the paths back to back, so a noisy neighbour slows a whole round and the
    // per-round ratios stay comparable.
    let mut rounds: Vec<Vec<(f64, f64)>> = Vec::new();
    for _ in 0..RUNS {
        let mut round = Vec::new();
        for path in PATHS {
            let out = Command::new(&exe)
                .args(["--path", path])
                .env("PGREAD_BENCH_URL", &url)
                .output()?;
            if !out.status.success() {
                return Err(format!("{path}: {}", String::from_utf8_lossy(&out.stderr)).into());
            }
            let line = String::from_utf8(out.stdout)?;
            let mut fields = line.split_whitespace().map(|f| f.parse::<f64>());
            let secs = fields.next().ok_or("no time")??;
            let hwm_kb = fields.next().ok_or("no peak")??;
            round.push((secs, hwm_kb));
        }
        rounds.push(round);
    }
    println!("{ROWS} rows x 6 columns, {RUNS} rounds, each path in a fresh process");
    println!(
        "{:<12} {:>14} {:>14} {:>16} {:>12}",
        "path", "median s", "rows/s", "vs sqlx_fetch", "peak RSS MB"
    );
    for (i, path) in PATHS.iter().enumerate() {
        let secs = median(rounds.iter().map(|r| r[i].0).collect());
        let ratio = median(rounds.iter().map(|r| r[1].0 / r[i].0).collect());
        let peak = rounds.iter().map(|r| r[i].1).fold(0.0, f64::max) / 1024.0;
        let rate = ROWS as f64 / secs;
        println!("{path:<12} {secs:>14.3} {rate:>14.0} {ratio:>15.2}x {peak:>12.1}");
    }
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs one path once and prints `seconds peak_kb`.
async fn child(path: &str, url: &str) -> Result<(), BoxError> {
    let started = Instant::now();
    let rows = match path {
        "connector" => read_connector(url).await?,
        "sqlx_fetch" => read_sqlx(url).await?,
        "copy_binary" => copy_binary(url).await?,
        other => return Err(format!("unknown path {other}, expected one of {PATHS:?}").into()),
    };
    let secs = started.elapsed().as_secs_f64();
    if path != "copy_binary" && rows != ROWS as u64 {
        return Err(format!("{path} read {rows} rows, expected {ROWS}").into());
    }
    println!("{secs} {}", peak_rss_kb()?);
    Ok(())
}

async fn read_connector(url: &str) -> Result<u64, BoxError> {
    let mut pg = PostgresConnector::with_engine(Engine::builtin());
    pg.configure_url(url)?;
    let mut rows = 0;
    let batch = std::env::var("PGREAD_BENCH_BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(BATCH);
    let mut chunks = std::pin::pin!(pg.read(TABLE, None, batch));
    while let Some(chunk) = chunks.next().await {
        rows += chunk?.batch.num_rows() as u64;
    }
    Ok(rows)
}

async fn read_sqlx(url: &str) -> Result<u64, BoxError> {
    let mut conn = PgConnection::connect(url).await?;
    let sql = format!("SELECT {COLUMNS} FROM {TABLE} ORDER BY id");
    let mut stream = sqlx::query(AssertSqlSafe(sql)).fetch(&mut conn);
    let (mut rows, mut checksum) = (0u64, 0f64);
    while let Some(row) = stream.try_next().await? {
        let id: i64 = row.try_get(0)?;
        let qty: Option<i32> = row.try_get(1)?;
        let price: Option<f64> = row.try_get(2)?;
        let name: Option<&str> = row.try_get(3)?;
        let flag: Option<bool> = row.try_get(4)?;
        // No time crate is compiled in: the 8 bytes of the timestamptz decode as i64 µs.
        let at: Option<i64> = row.try_get_unchecked(5)?;
        checksum += (id + i64::from(qty.unwrap_or(0)) + at.unwrap_or(0) % 7) as f64
            + price.unwrap_or(0.0)
            + name.map_or(0, str::len) as f64
            + f64::from(u8::from(flag.unwrap_or(false)));
        rows += 1;
    }
    std::hint::black_box(checksum);
    Ok(rows)
}

async fn copy_binary(url: &str) -> Result<u64, BoxError> {
    let mut conn = PgConnection::connect(url).await?;
    let sql = format!("COPY (SELECT {COLUMNS} FROM {TABLE}) TO STDOUT (FORMAT binary)");
    let mut stream = conn.copy_out_raw(&sql).await?;
    let mut bytes = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        bytes += chunk.len() as u64;
    }
    Ok(bytes)
}

/// Creates the bench database and table once.
async fn prepare(server: &TestServer) -> Result<(), BoxError> {
    let mut admin = server.connect("postgres").await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {DATABASE}")))
            .execute(&mut admin)
            .await?;
    }
    let mut conn = server.connect(DATABASE).await?;
    let count: Option<i64> = sqlx::query_scalar(
        "SELECT CASE WHEN to_regclass('public.bench_rows') IS NULL THEN NULL \
         ELSE (SELECT count(*) FROM public.bench_rows) END",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap_or(None);
    if count != Some(ROWS) {
        eprintln!("creating {TABLE} with {ROWS} rows in database {DATABASE} ...");
        let sql = format!(
            "DROP TABLE IF EXISTS {TABLE};
             CREATE TABLE {TABLE} (id bigint PRIMARY KEY, qty int4 NOT NULL, price float8,
               name text NOT NULL, flag bool, at timestamptz NOT NULL);
             INSERT INTO {TABLE} SELECT g, (g % 1000)::int4, g * 0.01,
               'customer ' || g, g % 3 = 0,
               timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'
             FROM generate_series(1, {ROWS}) g;"
        );
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
        let vacuum = format!("VACUUM ANALYZE {TABLE}");
        sqlx::raw_sql(AssertSqlSafe(vacuum))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// Peak resident set size of this process in KiB (`VmHWM` in `/proc/self/status`).
fn peak_rss_kb() -> Result<f64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("bad VmHWM line")?
        .parse()?)
}

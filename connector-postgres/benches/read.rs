//! Reading a 2,000,000-row, 6-column table into Arrow, side by side with raw sqlx.
//!
//! Run: `cargo bench -p connector-postgres --bench read` (a PostgreSQL server at
//! `DATABASE_URL` or 127.0.0.1:5432, else a throwaway cluster). The table is created in the
//! database `pgread_bench` on the first run and kept. Each path runs in a fresh child process
//! (this binary with `--path NAME`), so its peak resident memory (`VmHWM`) and its CPU time
//! (user + system, `/proc/self/stat`) are its own:
//!
//! - `connector`: `PostgresConnector::read` with the default options (adaptive pages from
//!   50,000 rows, one page ahead, the page path chosen automatically: binary COPY);
//! - `connector_query`: the same with every page fetched by query;
//! - `connector_p2`, `connector_p4`: 2 and 4 partitions on one exported snapshot;
//! - `sqlx_fetch`: one `sqlx::query(..).fetch()` of the same rows in the same order, each
//!   value decoded (`try_get`, borrowed `&str` for text) and summed;
//! - `copy_binary`: `COPY (SELECT ..) TO STDOUT (FORMAT binary)` through `copy_out_raw`,
//!   bytes counted only: the ceiling of what one stream of the wire can deliver;
//! - `copy_binary_ordered`: the same `ORDER BY id`: the ceiling of one stream in key order,
//!   which the server produces by an index scan (a read that can resume needs key order);
//! - `copy_binary_x2`, `copy_binary_x4`: the table split into 2 or 4 key ranges, each one
//!   COPY on its own connection, in parallel, bytes counted only: the ceiling of a
//!   ConnectorX-style read (parallel, no snapshot, no paging, no resumption, no decoding).
//!
//! `PGREAD_BENCH_PATHS` (comma-separated) runs a subset, `PGREAD_BENCH_RUNS` sets the rounds.

use std::num::NonZeroUsize;
use std::process::Command;
use std::time::Instant;

use connector_postgres::{PagePath, Partitions, PgParams, PostgresConnector, ReadOptions};
use futures_util::{StreamExt, TryStreamExt};
use resilience_core::Engine;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use test_support::postgres::{TestServer, pick_server};

const DATABASE: &str = "pgread_bench";
const TABLE: &str = "bench_rows";
const ROWS: i64 = 2_000_000;
const BATCH: usize = 50_000;
const RUNS: usize = 7;
const COLUMNS: &str = "id, qty, price, name, flag, at";
const PATHS: [&str; 9] = [
    "connector",
    "connector_query",
    "connector_p2",
    "connector_p4",
    "sqlx_fetch",
    "copy_binary",
    "copy_binary_ordered",
    "copy_binary_x2",
    "copy_binary_x4",
];

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
    let paths: Vec<&str> = match std::env::var("PGREAD_BENCH_PATHS") {
        Ok(list) => PATHS
            .iter()
            .copied()
            .filter(|p| list.split(',').any(|w| w.trim() == *p))
            .collect(),
        Err(_) => PATHS.to_vec(),
    };
    let runs = std::env::var("PGREAD_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(RUNS);
    // Rounds run the paths back to back, so a noisy neighbour slows a whole round and the
    // per-round ratios stay comparable.
    let mut rounds: Vec<Vec<(f64, f64, f64)>> = Vec::new();
    for _ in 0..runs {
        let mut round = Vec::new();
        for path in &paths {
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
            let cpu = fields.next().ok_or("no cpu")??;
            round.push((secs, hwm_kb, cpu));
        }
        rounds.push(round);
    }
    println!("{ROWS} rows x 6 columns, {runs} rounds, each path in a fresh process");
    println!(
        "| path | median s | rows/s | vs best single stream | vs ordered COPY | CPU s | peak RSS MB |\n\
         |---|---|---|---|---|---|---|"
    );
    // The single-stream ceiling of each round: the faster of sqlx fetch and whole-table COPY.
    let ceiling = |round: &Vec<(f64, f64, f64)>| {
        paths
            .iter()
            .zip(round)
            .filter(|(p, _)| **p == "sqlx_fetch" || **p == "copy_binary")
            .map(|(_, r)| r.0)
            .fold(f64::INFINITY, f64::min)
    };
    let ordered = paths.iter().position(|p| *p == "copy_binary_ordered");
    for (i, path) in paths.iter().enumerate() {
        let secs = median(rounds.iter().map(|r| r[i].0).collect());
        let ratio = median(rounds.iter().map(|r| ceiling(r) / r[i].0).collect());
        let vs_ordered = ordered.map_or(f64::NAN, |o| {
            median(rounds.iter().map(|r| r[o].0 / r[i].0).collect())
        });
        let cpu = median(rounds.iter().map(|r| r[i].2).collect());
        let peak = rounds.iter().map(|r| r[i].1).fold(0.0, f64::max) / 1024.0;
        let rate = ROWS as f64 / secs;
        println!(
            "| {path} | {secs:.3} | {:.2}M | {ratio:.2}x | {vs_ordered:.2}x | {cpu:.2} | {peak:.1} |",
            rate / 1e6
        );
    }
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs one path once and prints `seconds peak_kb cpu_seconds`.
async fn child(path: &str, url: &str) -> Result<(), BoxError> {
    let started = Instant::now();
    let rows = match path {
        "connector" => read_connector(url, ReadOptions::new(BATCH)).await?,
        "connector_query" => {
            let options = ReadOptions {
                path: Some(PagePath::Query),
                ..ReadOptions::new(BATCH)
            };
            read_connector(url, options).await?
        }
        "connector_p2" | "connector_p4" => {
            let n = if path == "connector_p2" { 2 } else { 4 };
            let options = ReadOptions {
                partitions: Partitions::Count(NonZeroUsize::new(n).unwrap()),
                ..ReadOptions::new(BATCH)
            };
            read_connector(url, options).await?
        }
        "sqlx_fetch" => read_sqlx(url).await?,
        "copy_binary" => copy_binary(url, 1).await?,
        "copy_binary_ordered" => copy_binary(url, 0).await?,
        "copy_binary_x2" => copy_binary(url, 2).await?,
        "copy_binary_x4" => copy_binary(url, 4).await?,
        other => return Err(format!("unknown path {other}, expected one of {PATHS:?}").into()),
    };
    let secs = started.elapsed().as_secs_f64();
    if !path.starts_with("copy_binary") && rows != ROWS as u64 {
        return Err(format!("{path} read {rows} rows, expected {ROWS}").into());
    }
    println!("{secs} {} {}", peak_rss_kb()?, cpu_secs()?);
    Ok(())
}

async fn read_connector(url: &str, options: ReadOptions) -> Result<u64, BoxError> {
    let mut pg = PostgresConnector::with_engine(Engine::builtin());
    let mut params = PgParams::from_url(url)?;
    params.pool_size = 6;
    pg.configure(params)?;
    let mut rows = 0;
    let mut chunks = std::pin::pin!(pg.read_with(TABLE, None, options));
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

/// `ways` parallel COPY streams over equal key ranges, bytes counted only; `0` is one
/// stream in key order.
async fn copy_binary(url: &str, ways: i64) -> Result<u64, BoxError> {
    let (ways, order) = if ways == 0 {
        (1, " ORDER BY id")
    } else {
        (ways, "")
    };
    let step = ROWS / ways;
    let streams = (0..ways).map(|i| async move {
        let mut conn = PgConnection::connect(url).await?;
        let (lo, hi) = (
            i * step + 1,
            if i == ways - 1 { ROWS } else { (i + 1) * step },
        );
        let sql = match ways {
            1 => format!("COPY (SELECT {COLUMNS} FROM {TABLE}{order}) TO STDOUT (FORMAT binary)"),
            _ => format!(
                "COPY (SELECT {COLUMNS} FROM {TABLE} WHERE id BETWEEN {lo} AND {hi}) \
                 TO STDOUT (FORMAT binary)"
            ),
        };
        let mut stream = conn.copy_out_raw(&sql).await?;
        let mut bytes = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            bytes += chunk.len() as u64;
        }
        Ok::<u64, BoxError>(bytes)
    });
    let mut total = 0;
    for bytes in futures_util::future::join_all(streams).await {
        total += bytes?;
    }
    Ok(total)
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

/// User + system CPU time of this process so far, in seconds (`/proc/self/stat`, in clock
/// ticks of 1/100 s on Linux).
fn cpu_secs() -> Result<f64, BoxError> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = stat.rsplit_once(')').ok_or("bad /proc/self/stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
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

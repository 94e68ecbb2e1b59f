//! An incremental read with `lag` when the window holds many rows: state size, run time and
//! peak memory of the runs after the first.
//!
//! Run: `cargo bench -p connector-postgres --bench lag` (a PostgreSQL server at
//! `DATABASE_URL` or 127.0.0.1:5432, else a throwaway cluster). `LAG_BENCH_ROWS` (default
//! `300000,1000000`) lists the window sizes, `LAG_BENCH_BATCH` the page size (default
//! 50,000), `LAG_BENCH_RUNS` the rounds (default 3). Tables are created in the database
//! `lag_bench` on the first run and kept.
//!
//! For each size N, a table holds N rows whose cursors all lie inside the lag window (one
//! hour, rows a millisecond apart). Each round, in fresh child processes (so the peak
//! resident memory, `VmHWM`, is the run's own), with the built-in `db` policy:
//!
//! - `first`: reads everything from no checkpoint and stores the last checkpoint;
//! - `next`: 100 new rows and 1 late row (inside the window) were committed; reads from
//!   the stored checkpoint, must deliver exactly those 101;
//! - `quiet`: nothing new; reads from the checkpoint `next` stored, must deliver nothing.
//!
//! Each line reports the median seconds, the peak RSS and the size of the checkpoint the run
//! stored (as JSON, what a state file holds). A run that fails prints its error instead.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use connector_postgres::{Checkpoint, IncrementalOptions, Lag, PostgresConnector};
use futures_util::StreamExt;
use resilience_core::Engine;
use sqlx::AssertSqlSafe;
use test_support::postgres::{TestServer, pick_server};

const DATABASE: &str = "lag_bench";
const BATCH: usize = 50_000;
const RUNS: usize = 3;
const PHASES: [&str; 3] = ["first", "next", "quiet"];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.iter().position(|a| a == "--phase") {
        Some(i) => {
            let phase = args.get(i + 1).ok_or("--phase needs a name")?;
            let table = args.get(i + 2).ok_or("--phase needs a table")?;
            let state = args.get(i + 3).ok_or("--phase needs a state path")?;
            let url = std::env::var("LAG_BENCH_URL")?;
            runtime.block_on(child(phase, table, Path::new(state), &url))
        }
        None if args.iter().any(|a| a == "--list") => Ok(()),
        None => runtime.block_on(parent()),
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one child run reported.
struct Outcome {
    secs: f64,
    peak_kb: f64,
    rows: u64,
    state_bytes: u64,
}

async fn parent() -> Result<(), BoxError> {
    let server = pick_server().await?;
    let sizes: Vec<i64> = std::env::var("LAG_BENCH_ROWS")
        .unwrap_or_else(|_| "300000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let runs = env_or("LAG_BENCH_RUNS", RUNS);
    let url = server.url(DATABASE);
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("lag-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "lag window of 1 h, pages of {}, built-in db policy, {runs} rounds",
        env_or("LAG_BENCH_BATCH", BATCH)
    );
    println!(
        "{:>9} {:<6} {:>10} {:>10} {:>13} {:>8}",
        "rows", "run", "median s", "peak MB", "state bytes", "rows out"
    );
    for rows in sizes {
        let table = format!("lag_rows_{rows}");
        let mut results: Vec<Vec<Result<Outcome, String>>> = Vec::new();
        for _ in 0..runs {
            prepare(&server, &table, rows).await?;
            let state = dir.join(format!("{table}.json"));
            let _ = std::fs::remove_file(&state);
            let mut round = Vec::new();
            for phase in PHASES {
                if phase == "next" {
                    add_rows(&server, &table, rows).await?;
                }
                round.push(run_child(&exe, &url, phase, &table, &state));
            }
            results.push(round);
        }
        for (i, phase) in PHASES.iter().enumerate() {
            let ok: Vec<&Outcome> = results.iter().filter_map(|r| r[i].as_ref().ok()).collect();
            if let Some(Err(e)) = results.iter().map(|r| &r[i]).find(|r| r.is_err()) {
                println!("{rows:>9} {phase:<6} failed: {e}");
                continue;
            }
            let secs = median(ok.iter().map(|o| o.secs).collect());
            let peak = ok.iter().map(|o| o.peak_kb).fold(0.0, f64::max) / 1024.0;
            let state = ok.iter().map(|o| o.state_bytes).max().unwrap_or(0);
            let out = ok.first().map_or(0, |o| o.rows);
            println!("{rows:>9} {phase:<6} {secs:>10.3} {peak:>10.1} {state:>13} {out:>8}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn run_child(
    exe: &Path,
    url: &str,
    phase: &str,
    table: &str,
    state: &Path,
) -> Result<Outcome, String> {
    let out = Command::new(exe)
        .args(["--phase", phase, table, &state.to_string_lossy()])
        .env("LAG_BENCH_URL", url)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("no output").to_owned());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|v| v.parse::<f64>().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    match f.as_slice() {
        [secs, peak_kb, rows, state_bytes] => Ok(Outcome {
            secs: *secs,
            peak_kb: *peak_kb,
            rows: *rows as u64,
            state_bytes: *state_bytes as u64,
        }),
        _ => Err(format!("unexpected child output {line:?}")),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs one phase and prints `seconds peak_kb rows state_bytes`.
async fn child(phase: &str, table: &str, state: &Path, url: &str) -> Result<(), BoxError> {
    let from: Option<Checkpoint> = match phase {
        "first" => None,
        "next" | "quiet" => Some(serde_json::from_slice(&std::fs::read(state)?)?),
        other => return Err(format!("unknown phase {other}, expected one of {PHASES:?}").into()),
    };
    let mut pg = PostgresConnector::with_engine(Engine::builtin());
    pg.configure_url(url)?;
    let options = IncrementalOptions::new().lag(Lag::Time(Duration::from_secs(3600)));
    let batch = env_or("LAG_BENCH_BATCH", BATCH);
    let started = Instant::now();
    let mut rows = 0u64;
    let mut last = None;
    {
        let mut chunks = std::pin::pin!(pg.read_incremental(table, "at", from, batch, options));
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            rows += chunk.batch.num_rows() as u64;
            last = Some(chunk.checkpoint);
        }
    }
    if let Some(checkpoint) = last {
        // What a state file holds: the JSON of the last checkpoint, written as the run goes.
        std::fs::write(state, serde_json::to_vec(&checkpoint)?)?;
    }
    // A run that delivers nothing leaves the stored checkpoint as it was.
    let state_bytes = std::fs::metadata(state).map_or(0, |m| m.len());
    let secs = started.elapsed().as_secs_f64();
    let expected = match phase {
        "next" => Some(101),
        "quiet" => Some(0),
        _ => None,
    };
    if let Some(expected) = expected
        && rows != expected
    {
        return Err(format!("{phase} delivered {rows} rows, expected {expected}").into());
    }
    println!("{secs} {} {rows} {state_bytes}", peak_rss_kb()?);
    Ok(())
}

/// (Re)creates `table` with `rows` rows a millisecond apart, all inside one hour.
async fn prepare(server: &TestServer, table: &str, rows: i64) -> Result<(), BoxError> {
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
    let sql = format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (id bigint PRIMARY KEY, at timestamptz NOT NULL, note text NOT NULL);
         INSERT INTO {table} SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 ms',
           'row ' || g FROM generate_series(1, {rows}) g;
         CREATE INDEX ON {table} (at);"
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
    // VACUUM refuses to run inside the implicit transaction of a multi-statement string.
    sqlx::raw_sql(AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// 100 rows after the last one and one late row in the middle of the window.
async fn add_rows(server: &TestServer, table: &str, rows: i64) -> Result<(), BoxError> {
    let mut conn = server.connect(DATABASE).await?;
    let sql = format!(
        "INSERT INTO {table} SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 ms',
           'new ' || g FROM generate_series({} , {}) g;
         INSERT INTO {table} VALUES ({}, timestamptz '2024-01-01 00:00:00+00' + {} * interval '1 ms', 'late');",
        rows + 1,
        rows + 100,
        rows + 1000,
        rows / 2
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
    Ok(())
}

fn peak_rss_kb() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("malformed VmHWM")?
        .parse()?)
}

//! `resilient sync` against `psql \copy`, side by side: wall time, CPU time and peak memory
//! of whole processes, per output format.
//!
//! Run: `cargo bench -p resilience-cli --bench sync` (PostgreSQL at `DATABASE_URL` or
//! 127.0.0.1:5432 with trust authentication, `psql` on the `PATH`, GNU `time` at
//! `/usr/bin/time`). The tables are created once in the
//! database `sync_bench` and kept:
//!
//! - `wide6`: 2,000,000 rows of `(id bigint PRIMARY KEY, at timestamptz, qty int,
//!   amount numeric(12,2), name text, flag bool)`;
//! - `plain6`: 1,000,000 rows of `(id bigint PRIMARY KEY, ts timestamp, qty int,
//!   price float8, name text, flag bool)`.
//!
//! Each round runs every contender once, back to back, so that a noisy neighbour slows a
//! whole round; the figures are medians over `SYNC_BENCH_ROUNDS` rounds (default 3), and
//! ratios are taken per round before the median. Contenders:
//!
//! - `psql \copy`: `\copy (SELECT * FROM t ORDER BY id) TO file WITH CSV HEADER`;
//! - `sync <format>`: `resilient sync` of the table in full mode, zero configuration (the
//!   built-in `db` policy, the default page size);
//! - `sync-raised <format>`: the same under a profile whose `db` policy allows 1,000,000
//!   calls a minute, so that the rate limit is out of the picture;
//! - `sync-2-partitions csv`: zero configuration but `partitions = 2` in the pipeline (two
//!   key ranges read in parallel on one exported snapshot).
//!
//! Set `SYNC_BENCH_ONLY` to a comma list of contender-name prefixes (`psql,sync-raised`) to
//! run a subset, and `SYNC_BENCH_TABLES=plain6` for one table.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sqlx::{AssertSqlSafe, Connection};
use test_support::postgres::{TestServer, pick_server};

const DATABASE: &str = "sync_bench";

struct Table {
    name: &'static str,
    rows: i64,
    create: &'static str,
}

const TABLES: [Table; 2] = [
    Table {
        name: "wide6",
        rows: 2_000_000,
        create: "CREATE TABLE wide6 (id bigint PRIMARY KEY, at timestamptz NOT NULL, \
                 qty int NOT NULL, amount numeric(12, 2), name text NOT NULL, flag bool); \
                 INSERT INTO wide6 SELECT g, timestamptz '2024-01-01 00:00:00+00' \
                 + g * interval '1.5 second', (g % 1000)::int, (g % 100000) / 100.0, \
                 'name-' || g, g % 3 = 0 FROM generate_series(1, 2000000) g",
    },
    Table {
        name: "plain6",
        rows: 1_000_000,
        create: "CREATE TABLE plain6 (id bigint PRIMARY KEY, ts timestamp NOT NULL, \
                 qty int NOT NULL, price float8 NOT NULL, name text NOT NULL, flag bool); \
                 INSERT INTO plain6 SELECT g, timestamp '2024-01-01' + g * interval '1 second', \
                 (g % 1000)::int, g * 0.25, 'name-' || g, g % 2 = 0 \
                 FROM generate_series(1, 1000000) g",
    },
];

/// One measured process run.
#[derive(Clone, Copy)]
struct Run {
    wall: f64,
    cpu: f64,
    rss_mb: f64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let server = runtime.block_on(prepare())?;
    let rounds: usize = std::env::var("SYNC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let only: Vec<String> = std::env::var("SYNC_BENCH_ONLY")
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default();
    let work = std::env::temp_dir().join(format!("sync-bench-{}", std::process::id()));
    std::fs::create_dir_all(work.join("policies"))?;
    std::fs::write(
        work.join("policies/raised.toml"),
        "[policy.db.rate_limit]\nrequests_per_minute = 1000000\nburst = 1000000\n",
    )?;
    let url = server.url_with_password(DATABASE).expose().to_owned();
    let tables: Vec<String> = std::env::var("SYNC_BENCH_TABLES")
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default();
    for table in TABLES
        .iter()
        .filter(|t| tables.is_empty() || tables.iter().any(|n| n == t.name))
    {
        let pipeline = work.join(format!("{}.toml", table.name));
        std::fs::write(
            &pipeline,
            format!(
                "[connections.bench]\nurl = \"{}\"\n\n[[sources]]\nname = \"{name}\"\n\
                 type = \"postgres\"\nconnection = \"bench\"\ntable = \"{name}\"\n\
                 sync_mode = \"full\"\n",
                url_without_password(&server),
                name = table.name
            ),
        )?;
        let partitioned = work.join(format!("{}-p2.toml", table.name));
        std::fs::write(
            &partitioned,
            format!(
                "[pipeline]\npartitions = 2\n\n{}",
                std::fs::read_to_string(&pipeline)?
            ),
        )?;
        let mut contenders: Vec<(String, Vec<String>)> = vec![(
            "psql \\copy".into(),
            psql_copy(&url, table.name, &work.join("psql.csv")),
        )];
        for format in ["csv", "jsonl", "parquet"] {
            for (label, profile) in [("sync", None), ("sync-raised", Some("raised"))] {
                contenders.push((
                    format!("{label} {format}"),
                    sync_command(&work, &pipeline, format, profile),
                ));
            }
        }
        contenders.push((
            "sync-2-partitions csv".into(),
            sync_command(&work, &partitioned, "csv", None),
        ));
        contenders.retain(|(name, _)| only.is_empty() || only.iter().any(|o| name.starts_with(o)));
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); contenders.len()];
        for round in 0..rounds {
            for (i, (name, command)) in contenders.iter().enumerate() {
                let run = measure(command, &work)?;
                eprintln!(
                    "{} round {round}: {name}: {:.2} s wall, {:.2} s CPU, {:.0} MB",
                    table.name, run.wall, run.cpu, run.rss_mb
                );
                runs[i].push(run);
            }
        }
        report(table, &contenders, &runs);
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn psql_copy(url: &str, table: &str, out: &Path) -> Vec<String> {
    vec![
        "psql".into(),
        url.into(),
        "-q".into(),
        "-c".into(),
        format!(
            "\\copy (SELECT * FROM {table} ORDER BY id) TO '{}' WITH CSV HEADER",
            out.display()
        ),
    ]
}

fn sync_command(work: &Path, pipeline: &Path, format: &str, profile: Option<&str>) -> Vec<String> {
    // Each contender owns its output folder and state (a folder belongs to one state).
    let tag = format!(
        "{}-{format}-{}",
        pipeline
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("table"),
        profile.unwrap_or("default")
    );
    let mut cmd = vec![
        env!("CARGO_BIN_EXE_resilient").to_owned(),
        "sync".into(),
        "--config".into(),
        pipeline.display().to_string(),
        "--output".into(),
        work.join(format!("out-{tag}")).display().to_string(),
        "--state".into(),
        work.join(format!("state-{tag}.json")).display().to_string(),
        "--format".into(),
        format.into(),
    ];
    if let Some(profile) = profile {
        cmd.extend([
            "--policy-dir".into(),
            work.join("policies").display().to_string(),
            "--profile".into(),
            profile.into(),
        ]);
    }
    cmd
}

/// Runs `command` under GNU `time`, returning wall, user+system CPU and peak RSS.
fn measure(command: &[String], work: &Path) -> Result<Run, BoxError> {
    let stats = work.join("time.txt");
    let started = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-o")
        .arg(&stats)
        .arg("-f")
        .arg("%U %S %M")
        .args(command)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .status()?;
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{} failed: {status}", command.join(" ")).into());
    }
    let text = std::fs::read_to_string(&stats)?;
    let fields: Vec<f64> = text
        .split_whitespace()
        .rev()
        .take(3)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // Reversed: RSS (KB), system, user.
    Ok(Run {
        wall,
        cpu: fields[1] + fields[2],
        rss_mb: fields[0] / 1024.0,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(table: &Table, contenders: &[(String, Vec<String>)], runs: &[Vec<Run>]) {
    println!(
        "\n{} ({} rows), medians over {} rounds; ratios against psql \\copy per round:\n",
        table.name,
        table.rows,
        runs.first().map_or(0, Vec::len)
    );
    println!("| contender | wall s | rows/s | x psql wall | CPU s | peak RSS MB |");
    println!("|---|---|---|---|---|---|");
    let baseline = contenders.iter().position(|(n, _)| n.starts_with("psql"));
    for (i, (name, _)) in contenders.iter().enumerate() {
        let wall = median(runs[i].iter().map(|r| r.wall).collect());
        let ratio = baseline.map_or(f64::NAN, |b| {
            median(
                runs[i]
                    .iter()
                    .zip(&runs[b])
                    .map(|(r, p)| r.wall / p.wall)
                    .collect(),
            )
        });
        println!(
            "| {name} | {wall:.2} | {:.2}M | {ratio:.2}x | {:.2} | {:.0} |",
            table.rows as f64 / wall / 1e6,
            median(runs[i].iter().map(|r| r.cpu).collect()),
            median(runs[i].iter().map(|r| r.rss_mb).collect()),
        );
    }
}

fn url_without_password(server: &TestServer) -> String {
    let p = server.params(DATABASE);
    format!(
        "postgres://{}@{}/{DATABASE}?sslmode=disable",
        p.user,
        p.host_key()
    )
}

/// Creates the database and the tables once.
async fn prepare() -> Result<TestServer, BoxError> {
    let server = pick_server().await?;
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
    admin.close().await?;
    let mut conn = server.connect(DATABASE).await?;
    for table in &TABLES {
        let rows: Option<i64> = sqlx::query_scalar(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = $1 AND relkind = 'r'",
        )
        .bind(table.name)
        .fetch_optional(&mut conn)
        .await?;
        if rows != Some(table.rows) {
            eprintln!("creating {} ({} rows)...", table.name, table.rows);
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS {}; {}",
                table.name, table.create
            )))
            .execute(&mut conn)
            .await?;
            // VACUUM refuses to run inside the implicit transaction of a multi-statement
            // string.
            sqlx::raw_sql(AssertSqlSafe(format!("VACUUM ANALYZE {}", table.name)))
                .execute(&mut conn)
                .await?;
        }
    }
    conn.close().await?;
    Ok(server)
}

//! Scenario 5, analytics: load every table with a connector configured with nothing but
//! a connection, count what arrived, and show the health of every policy and key.
//!
//! The connector here gets no policy, profile or engine: it runs on the process-wide
//! engine, which (with no `RESILIENCE_*` variables set) holds the built-in presets. That
//! it loads every row, and that the configuration it ran on is the built-in `db` preset,
//! is what "zero configuration" means. Its row counts go into the results file.

use std::time::Instant;

use connector_postgres::PostgresConnector;
use futures_util::StreamExt;
use resilience_core::{PolicySet, Resilient};

use super::{Ctx, config_line, print_health, secs, section};
use crate::demo::report::{Check, Claim};
use crate::demo::seed::{Counts, TABLES};

const BATCH: usize = 5000;

/// The checks, and the rows loaded per table.
pub(crate) struct Analytics {
    pub checks: Vec<Check>,
    pub loaded: Counts,
}

pub(crate) async fn run(ctx: &Ctx<'_>) -> Analytics {
    section("5. Analytics: rows loaded and health");
    let mut loaded = Counts::default();
    let checks = super::guarded(
        "zero configuration",
        &[Claim::ZeroConfig],
        body(ctx, &mut loaded),
    )
    .await;
    Analytics { checks, loaded }
}

async fn body(ctx: &Ctx<'_>, loaded: &mut Counts) -> Result<Vec<Check>, String> {
    let mut pg = PostgresConnector::new();
    pg.configure(ctx.db.params())
        .map_err(|e| format!("configure failed: {e}"))?;
    let resilience = pg.resilience().clone();
    let policy = resilience
        .engine()
        .policies()
        .get(resilience.policy())
        .ok_or("the connector's policy is not loaded")?
        .clone();
    let builtin = PolicySet::builtin();
    let is_builtin = resilience.policy() == "db" && builtin.get("db") == Some(&policy);
    println!(
        "   connector configured with a connection only: policy `{}`",
        resilience.policy()
    );
    println!("   Configuration applied: {}", config_line(&policy));

    let mut problems = Vec::new();
    if !is_builtin {
        problems.push(format!(
            "the environment replaced the built-in `db` preset (profile `{}`, policy folder \
             {:?}); unset RESILIENCE_PROFILE and RESILIENCE_POLICY_DIR to see zero configuration",
            resilience.engine().policies().profile().unwrap_or("none"),
            std::env::var("RESILIENCE_POLICY_DIR").unwrap_or_default()
        ));
    }
    let started = Instant::now();
    for (i, table) in TABLES.iter().enumerate() {
        let table_started = Instant::now();
        let mut rows = 0u64;
        let mut stream = Box::pin(pg.read(table, None, BATCH));
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => rows += chunk.batch.num_rows() as u64,
                Err(e) => {
                    problems.push(format!("reading {table} failed: {e}"));
                    break;
                }
            }
        }
        loaded.0[i] = rows;
        let expected = ctx.seeded.get(table);
        if rows != expected {
            problems.push(format!(
                "{table}: loaded {rows} rows, the table has {expected}"
            ));
        }
        println!(
            "   {table:<12} {rows:>6} rows in {}",
            secs(table_started.elapsed())
        );
    }
    let elapsed = started.elapsed();
    let total: u64 = loaded.0.iter().sum();
    println!(
        "   {total} rows in {} ({:.0} rows/s)",
        secs(elapsed),
        total as f64 / elapsed.as_secs_f64().max(1e-3)
    );

    let zero_config = resilience.engine().health();
    if let Some(k) = zero_config.get("db", resilience.key())
        && k.failures > 0
    {
        problems.push(format!("{} calls failed", k.failures));
    }
    print_health("Health, zero-configuration connector", &zero_config);
    print_health("Health, fault scenarios so far", &ctx.engine.health());
    Ok(vec![Check::expect(
        Claim::ZeroConfig,
        "no policy given: built-in preset, every row loaded",
        problems.is_empty(),
        format!("{total} rows from 4 tables on the built-in `db` policy"),
        problems.join("; "),
    )])
}

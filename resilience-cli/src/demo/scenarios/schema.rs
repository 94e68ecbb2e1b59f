//! Scenario 3, schema discovery under injected latency.
//!
//! The proxy holds every chunk of traffic for 50 to 100 ms in each direction, a slow
//! network link. Discovery and the schema of each table must still come back complete
//! and correct within the policy's attempt timeout, and the measured latency shows the
//! delay was really there.

use std::time::{Duration, Instant};

use super::{Ctx, guarded, secs, section};
use crate::demo::report::{Check, Claim};
use crate::demo::seed::TABLES;

/// The latency injected in each direction while each table's schema is read.
const DELAYS_MS: [u64; 4] = [50, 65, 80, 100];

pub(crate) async fn run(ctx: &Ctx<'_>) -> Vec<Check> {
    section("3. Schema discovery under injected latency");
    guarded("schema discovery", &[Claim::Degradation], body(ctx)).await
}

async fn body(ctx: &Ctx<'_>) -> Result<Vec<Check>, String> {
    let proxy = ctx.proxy().await?;
    let pg = ctx.connector(&ctx.engine, &proxy, "resilient-demo-schema", |p| {
        p.pool_size = 1;
    })?;
    let chaos = proxy.handle();
    let mut problems = Vec::new();

    let delay = Duration::from_millis(50);
    chaos.set_delay(delay);
    let started = Instant::now();
    let discovered = pg.discover().await;
    let took = started.elapsed();
    match &discovered {
        Ok(tables) => {
            let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
            println!(
                "   discover ({}ms delay each way): {} in {}",
                delay.as_millis(),
                names.join(", "),
                secs(took)
            );
            for table in TABLES {
                if !names.contains(&table) {
                    problems.push(format!("discover did not list {table}"));
                }
            }
        }
        Err(e) => problems.push(format!("discover failed: {e}")),
    }
    if took < 2 * delay {
        problems.push(format!(
            "discover took {}, less than one delayed round trip",
            secs(took)
        ));
    }

    let mut slowest = Duration::ZERO;
    for (table, millis) in TABLES.iter().zip(DELAYS_MS) {
        let delay = Duration::from_millis(millis);
        chaos.set_delay(delay);
        let started = Instant::now();
        let schema = pg.get_schema(table).await;
        let took = started.elapsed();
        slowest = slowest.max(took);
        match schema {
            Ok(schema) => {
                let cursor = schema.column("updated_at").ok().map(|c| c.pg_type.clone());
                println!(
                    "   get_schema {table} ({}ms delay): {} columns, primary key {:?}, updated_at {} in {}",
                    delay.as_millis(),
                    schema.columns.len(),
                    schema.primary_key,
                    cursor.as_deref().unwrap_or("missing"),
                    secs(took)
                );
                if schema.primary_key != ["id"] {
                    problems.push(format!(
                        "{table}: primary key {:?}, expected [\"id\"]",
                        schema.primary_key
                    ));
                }
                if cursor.as_deref() != Some("timestamp without time zone") {
                    problems.push(format!("{table}: updated_at is {cursor:?}"));
                }
            }
            Err(e) => problems.push(format!("get_schema {table} failed: {e}")),
        }
        if took < 2 * delay {
            problems.push(format!(
                "get_schema {table} took {}, less than one delayed round trip",
                secs(took)
            ));
        }
    }
    chaos.clear();
    Ok(vec![Check::expect(
        Claim::Degradation,
        "slow network: discovery and schemas complete",
        problems.is_empty(),
        format!(
            "4 tables discovered and described; slowest call {}",
            secs(slowest)
        ),
        problems.join("; "),
    )])
}

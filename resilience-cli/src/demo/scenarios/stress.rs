//! Scenario 6, stress and recovery: an outage in the middle of a load.
//!
//! The customers table is loaded incrementally in small pages, as a pipeline would, with
//! a checkpoint after every page. After three pages the server "goes away" (see
//! [`outage`]). The load's retries fail, the breaker opens after the
//! policy's failure threshold, and the pipeline pauses instead of hammering the server:
//! calls made now are refused at once. When the outage ends the breaker closes by
//! itself, and the pipeline resumes from its last checkpoint. Every customer must arrive
//! exactly once; they are what the stress results file lists.

use std::collections::BTreeSet;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::temporal_conversions::date32_to_datetime;
use arrow_array::types::{Date32Type, Int32Type};
use arrow_array::{Array, RecordBatch};
use connector_postgres::{Checkpoint, IncrementalOptions, PgError, PostgresConnector};
use futures_util::StreamExt;
use resilience_core::breaker::BreakerState;

use super::incremental::table_ids;
use super::outage::{self, PROBE_CALLS};
use super::{Ctx, guarded, secs, section};
use crate::demo::output::CustomerRow;
use crate::demo::report::{Check, Claim};

const APP: &str = "resilient-demo-stress";
const PAGE: usize = 100;
const OUTAGE_AFTER_PAGES: usize = 3;
/// Interruptions the pipeline tolerates before it gives up.
const MAX_INTERRUPTIONS: u32 = 8;

/// The checks, and the customers loaded.
pub(crate) struct Stress {
    pub checks: Vec<Check>,
    pub customers: Vec<CustomerRow>,
}

pub(crate) async fn run(ctx: &Ctx<'_>) -> Stress {
    section("6. Stress and recovery: an outage during a load");
    let mut customers = Vec::new();
    let claims = [Claim::Breaker, Claim::Degradation];
    let checks = guarded("stress", &claims, body(ctx, &mut customers)).await;
    Stress { checks, customers }
}

async fn body(ctx: &Ctx<'_>, customers: &mut Vec<CustomerRow>) -> Result<Vec<Check>, String> {
    let policy = ctx.demo_policy()?;
    let threshold = policy.circuit_breaker.failure_threshold.get() as usize;
    let proxy = ctx.proxy().await?;
    let pg = ctx.connector(&ctx.engine, &proxy, APP, |p| {
        p.pool_size = 2;
        p.connect_timeout = Duration::from_millis(300);
    })?;
    let key = pg.host_key().to_owned();
    let chaos = proxy.handle().clone();
    println!(
        "   loading customers in pages of {PAGE}; breaker opens after {threshold} failed attempts"
    );

    let mut load = Pipeline::new(&pg);
    let mut breaker = BreakerStory::default();
    let mut outage_started = None;
    loop {
        let interrupted = load
            .pass(customers, |pages, loaded| {
                if pages == OUTAGE_AFTER_PAGES && outage_started.is_none() {
                    println!("   {loaded} customers loaded");
                    outage_started = Some(outage::begin(&chaos));
                }
            })
            .await?;
        let Some(error) = interrupted else { break };
        load.interruptions += 1;
        let retries = ctx.capture.take_retries(&key);
        for retry in &retries {
            println!("   {}", retry.describe());
        }
        println!(
            "   load interrupted after {} customers: {error}",
            customers.len()
        );
        if load.interruptions > MAX_INTERRUPTIONS {
            return Err(format!(
                "gave up after {MAX_INTERRUPTIONS} interruptions: {error}"
            ));
        }
        let open = ctx.engine.breaker("db", &key).map(|b| b.state()) == Some(BreakerState::Open);
        match outage_started {
            Some(started) if breaker.fail_fast.is_none() => {
                // Every retry follows a failed attempt, and so does the call's final error.
                breaker.failed_attempts += retries.len() + 1;
                if open {
                    breaker.fail_fast = Some(outage::measure_fail_fast(&pg, &chaos).await);
                    breaker.closed_after =
                        outage::end_and_await_close(&ctx.engine, &key, &chaos, started).await;
                    println!("   resuming from the checkpoint");
                    continue;
                }
            }
            _ => {}
        }
        // The pipeline's own pause before it resumes from its checkpoint.
        tokio::time::sleep(policy.retry.initial_delay).await;
    }

    let mut admin = ctx.db.admin().await.map_err(|e| e.to_string())?;
    let table = table_ids(&mut admin, "SELECT id FROM customers").await?;
    let delivered: BTreeSet<i32> = customers.iter().map(|c| c.id).collect();
    let complete = customers.len() == table.len() && delivered == table;
    println!(
        "   load finished: {} customers after {} interruption(s)",
        customers.len(),
        load.interruptions
    );
    let mut checks = breaker.checks(threshold);
    checks.push(Check::expect(
        Claim::Degradation,
        "pipeline survives the outage",
        complete && load.interruptions > 0,
        format!(
            "paused at {} interruption(s), resumed from its checkpoint: {} customers, each once",
            load.interruptions,
            customers.len()
        ),
        format!(
            "{} customers delivered ({} distinct), {} in the table, {} interruption(s)",
            customers.len(),
            delivered.len(),
            table.len(),
            load.interruptions
        ),
    ));
    Ok(checks)
}

/// An incremental load of the customers, carried across interruptions by its checkpoint.
struct Pipeline<'a> {
    pg: &'a PostgresConnector,
    checkpoint: Option<Checkpoint>,
    pages: usize,
    interruptions: u32,
}

impl<'a> Pipeline<'a> {
    fn new(pg: &'a PostgresConnector) -> Self {
        Pipeline {
            pg,
            checkpoint: None,
            pages: 0,
            interruptions: 0,
        }
    }

    /// Reads from the checkpoint to the end, or to the first error, which is returned.
    /// `on_page(pages, customers)` runs after each page is stored.
    async fn pass(
        &mut self,
        customers: &mut Vec<CustomerRow>,
        mut on_page: impl FnMut(usize, usize),
    ) -> Result<Option<PgError>, String> {
        let from = self.checkpoint.clone();
        let options = IncrementalOptions::new();
        let mut stream =
            Box::pin(
                self.pg
                    .read_incremental("customers", "updated_at", from, PAGE, options),
            );
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => {
                    customers.extend(rows(&chunk.batch)?);
                    self.checkpoint = Some(chunk.checkpoint);
                    self.pages += 1;
                    on_page(self.pages, customers.len());
                }
                Err(e) => return Ok(Some(e)),
            }
        }
        Ok(None)
    }
}

/// What the breaker went through during the outage.
#[derive(Default)]
struct BreakerStory {
    /// Attempts that failed before the breaker opened.
    failed_attempts: usize,
    /// Calls timed while it was open; `None` if it never opened.
    fail_fast: Option<outage::FailFast>,
    /// How long after the outage it closed; `None` if it did not.
    closed_after: Option<Duration>,
}

impl BreakerStory {
    fn checks(&self, threshold: usize) -> Vec<Check> {
        let Some(fail_fast) = &self.fail_fast else {
            let reason = format!(
                "the breaker never opened ({} failed attempts, threshold {threshold})",
                self.failed_attempts
            );
            return vec![Check::new(
                Claim::Breaker,
                "outage opens the breaker",
                Err(reason),
            )];
        };
        let failed = self.failed_attempts;
        vec![
            Check::expect(
                Claim::Breaker,
                "outage opens the breaker",
                failed == threshold,
                format!("OPEN after {failed} failed attempts (threshold {threshold})"),
                format!("OPEN after {failed} failed attempts, but the threshold is {threshold}"),
            ),
            Check::expect(
                Claim::Breaker,
                "open breaker fails fast",
                fail_fast.passed(),
                fail_fast.describe(),
                format!(
                    "{} (all {PROBE_CALLS} must be refused by the open circuit, none may reach \
                     the proxy)",
                    fail_fast.describe()
                ),
            ),
            Check::new(
                Claim::Breaker,
                "breaker closes by itself",
                self.closed_after
                    .map(|d| format!("CLOSED {} after the outage, with no calls made", secs(d)))
                    .ok_or_else(|| "still not CLOSED 10s after the outage ended".to_owned()),
            ),
        ]
    }
}

/// The customers of a batch.
fn rows(batch: &RecordBatch) -> Result<Vec<CustomerRow>, String> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or(format!("no {name} column"))
    };
    let ids = col("id")?
        .as_primitive_opt::<Int32Type>()
        .ok_or("id is not int4")?;
    let names = col("name")?
        .as_string_opt::<i32>()
        .ok_or("name is not text")?;
    let emails = col("email")?
        .as_string_opt::<i32>()
        .ok_or("email is not text")?;
    let created = col("created_at")?
        .as_primitive_opt::<Date32Type>()
        .ok_or("created_at is not a date")?;
    let notes = col("notes")?
        .as_string_opt::<i32>()
        .ok_or("notes is not text")?;
    (0..batch.num_rows())
        .map(|i| {
            let created_at = date32_to_datetime(created.value(i))
                .map(|d| d.date().to_string())
                .ok_or("created_at out of range")?;
            Ok(CustomerRow {
                id: ids.value(i),
                name: names.value(i).to_owned(),
                email: emails.value(i).to_owned(),
                created_at,
                notes: notes.is_valid(i).then(|| notes.value(i).to_owned()),
            })
        })
        .collect()
}

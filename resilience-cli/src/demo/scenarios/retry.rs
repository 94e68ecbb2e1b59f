//! Scenario 1, basic resilient connection: connections that fail are retried with
//! backoff until one gets through.
//!
//! Two real faults, each on a fresh connection attempt: the proxy resets the next two
//! connections (the client sees "connection reset"), then it black-holes one (the TCP
//! handshake succeeds but the server never answers, so the attempt runs into its connect
//! timeout). The attempts and backoff delays shown are the engine's own retry events.

use std::time::{Duration, Instant};

use resilience_chaos::ChaosProxy;
use resilience_core::Resilient;

use super::{Ctx, guarded, secs, section};
use crate::demo::capture::RetryEvent;
use crate::demo::report::{Check, Claim};

/// Connect timeout of this scenario's connector: how long a black-holed attempt lasts.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(800);

pub(crate) async fn run(ctx: &Ctx<'_>) -> Vec<Check> {
    section("1. Basic resilient connection");
    guarded("retry", &[Claim::Retry], body(ctx)).await
}

async fn body(ctx: &Ctx<'_>) -> Result<Vec<Check>, String> {
    let proxy = ctx.proxy().await?;
    let pg = ctx.connector(&ctx.engine, &proxy, "resilient-demo-retry", |p| {
        p.connect_timeout = CONNECT_TIMEOUT;
    })?;
    let key = pg.host_key().to_owned();
    let chaos = proxy.handle();
    let mut checks = Vec::new();

    println!("   proxy {key} resets the next 2 connections");
    chaos.reset_new(2);
    let started = Instant::now();
    let test = pg.test_connection().await.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let retries = ctx.capture.take_retries(&key);
    show(&retries);
    let attempts = attempts_made(&pg, &key);
    let rejected = proxy.stats().rejected;
    checks.push(Check::expect(
        Claim::Retry,
        "reset connections are retried",
        test.success && retries.len() == 2 && rejected == 2 && attempts == 3,
        format!(
            "connected on attempt {attempts} after {} ({})",
            secs(elapsed),
            delays(&retries)
        ),
        format!(
            "success {} ({}), {} retries, {rejected} connections reset, {attempts} attempts; \
             expected success after 2 retries",
            test.success,
            test.message,
            retries.len()
        ),
    ));

    println!(
        "   proxy {key} black-holes the next connection (attempt connect timeout {})",
        secs(CONNECT_TIMEOUT)
    );
    let before = attempts;
    let started = Instant::now();
    let newest_before = newest(&proxy);
    chaos.freeze_new(true);
    let (test, frozen) = tokio::join!(pg.test_connection(), unfreeze_after(&proxy, newest_before));
    let elapsed = started.elapsed();
    let test = test.map_err(|e| e.to_string())?;
    let retries = ctx.capture.take_retries(&key);
    show(&retries);
    let timed_out = retries.len() == 1 && retries[0].class == "timeout";
    let used = attempts_made(&pg, &key) - before;
    checks.push(Check::expect(
        Claim::Retry,
        "a connection timeout is retried",
        test.success && frozen && timed_out && used == 2 && elapsed >= CONNECT_TIMEOUT,
        format!(
            "attempt 1 timed out, attempt 2 connected; {} in all ({})",
            secs(elapsed),
            delays(&retries)
        ),
        format!(
            "success {} ({}), frozen {frozen}, retries {:?}, {used} attempts in {}; expected \
             one timeout then success",
            test.success,
            test.message,
            retries.iter().map(|r| r.class.as_str()).collect::<Vec<_>>(),
            secs(elapsed)
        ),
    ));
    Ok(checks)
}

/// The newest registered connection's id (0 when none is open).
fn newest(proxy: &ChaosProxy) -> u64 {
    let ids = proxy.handle().connection_ids();
    ids.iter().map(|id| id.get()).max().unwrap_or(0)
}

/// Once a connection newer than `before` is registered (its fate decided, so it started
/// frozen), lets new connections through again. False if none came within 3 s.
async fn unfreeze_after(proxy: &ChaosProxy, before: u64) -> bool {
    let waited = tokio::time::timeout(Duration::from_secs(3), async {
        while newest(proxy) <= before {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    proxy.handle().freeze_new(false);
    waited.is_ok()
}

fn attempts_made(pg: &connector_postgres::PostgresConnector, key: &str) -> u64 {
    pg.resilience()
        .engine()
        .health()
        .get("db", key)
        .map_or(0, |k| k.attempts)
}

fn show(retries: &[RetryEvent]) {
    for r in retries {
        println!("   {}", r.describe());
    }
}

fn delays(retries: &[RetryEvent]) -> String {
    let list: Vec<String> = retries.iter().map(|r| secs(r.delay)).collect();
    format!("backoff {}", list.join(", "))
}

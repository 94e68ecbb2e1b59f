//! Scenario 7, the REST API connector riding out a 429 storm.
//!
//! The test API serves the demo's `orders` table as a paginated JSON endpoint and answers
//! requests `429 Too Many Requests`: `Retry-After: 1`, an HTTP-date a second ahead, and
//! two without a time (the backoff decides). The connector must deliver every order once, and the
//! server's own clock must show that no request came back before the time it named.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use connector_http::{HttpConnector, HttpParams};
use test_support::http::{ApiServer, Fault, RetryAfter, Table};

use super::{Ctx, guarded, secs, section};
use crate::demo::report::{Check, Claim};

pub(crate) async fn run(ctx: &Ctx<'_>) -> Vec<Check> {
    section("7. REST API connector through a 429 storm (Retry-After honoured)");
    guarded(
        "api 429 storm",
        &[Claim::RateLimit, Claim::Retry],
        body(ctx),
    )
    .await
}

async fn body(ctx: &Ctx<'_>) -> Result<Vec<Check>, String> {
    let pool = ctx.db.pool().await?;
    let server = ApiServer::start(pool, vec![Table::new("orders", "id")], None)
        .await
        .map_err(|e| format!("cannot start the test API: {e}"))?;
    let params: HttpParams = serde_json::from_value(serde_json::json!({
        "base_url": format!("{}/", server.base_url()),
        "streams": [{
            "name": "orders", "path": "offset/orders", "records": "/data",
            "page_size": 2500, "primary_key": "id",
            "pagination": {"type": "offset_limit"}
        }]
    }))
    .map_err(|e| format!("API settings: {e}"))?;
    let mut api = HttpConnector::with_engine(ctx.engine.clone());
    api.configure(params)
        .map_err(|e| format!("configure failed: {e}"))?;
    println!(
        "   GET {}/offset/orders, pages of 2500, policy `api`, key {}",
        server.base_url(),
        api.host_key()
    );

    server.pass(1);
    server.push_fault(Fault::Throttle(RetryAfter::Seconds(1)), 1);
    server.push_fault(Fault::Throttle(RetryAfter::Absent), 1);
    server.pass(1);
    let date = RetryAfter::Date(Duration::from_millis(800));
    server.push_fault(Fault::Throttle(date), 1);
    server.push_fault(Fault::Throttle(RetryAfter::Absent), 1);
    let started = Instant::now();
    let read = api.read_all("orders", vec![]).await;
    let took = started.elapsed();
    let log = server.requests();
    let mut checks = Vec::new();

    let throttled = log.iter().filter(|r| r.status == 429).count();
    let records = read.map_err(|e| format!("the read failed: {e}"))?;
    let ids: Vec<i64> = records.iter().filter_map(|r| r["id"].as_i64()).collect();
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    let expected = ctx.seeded.get("orders") as usize;
    checks.push(Check::expect(
        Claim::Retry,
        "429 storm: every order once",
        throttled == 4 && ids.len() == expected && unique.len() == expected,
        format!(
            "{throttled} requests answered 429, all retried; {} orders delivered in {}, each once",
            ids.len(),
            secs(took)
        ),
        format!(
            "{throttled} answers 429 (expected 4), {} orders delivered, {} distinct, {expected} in the table",
            ids.len(),
            unique.len()
        ),
    ));

    let mut waits = Vec::new();
    let mut early = Vec::new();
    for pair in log.windows(2) {
        if let Some(allowed) = pair[0].not_before {
            waits.push(pair[1].at - pair[0].at);
            if pair[1].wall < allowed {
                early.push(allowed.duration_since(pair[1].wall).unwrap_or_default());
            }
        }
    }
    let shown: Vec<String> = waits.iter().map(|w| secs(*w)).collect();
    checks.push(Check::expect(
        Claim::RateLimit,
        "Retry-After honoured, measured at the server",
        waits.len() == 2 && early.is_empty(),
        format!(
            "after `Retry-After: 1` and an HTTP-date the next requests came {} later, none \
             before the time named",
            shown.join(" and ")
        ),
        format!(
            "{} requests came early ({early:?}); waits {shown:?}",
            early.len()
        ),
    ));
    Ok(checks)
}

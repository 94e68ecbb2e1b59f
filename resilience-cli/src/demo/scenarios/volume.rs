//! Scenario 4, high volume: more calls at once than the rate limit allows.
//!
//! A policy of 600 calls a minute with a burst of 5 (10 a second) meets 30 calls issued
//! together. With `when_limited = "wait"` the calls beyond the burst queue for tokens
//! instead of failing, so every call completes, none is dropped, and the rate measured at
//! the database side of the limiter stays within the limit.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use resilience_core::policy::WhenLimited;
use resilience_core::{Engine, PolicySet};

use super::{Ctx, guarded, secs, section};
use crate::demo::report::{Check, Claim};

const CALLS: usize = 30;
const PER_MINUTE: u32 = 600;
const BURST: u32 = 5;

pub(crate) async fn run(ctx: &Ctx<'_>) -> Vec<Check> {
    section("4. High volume against a rate limit");
    guarded("rate limit", &[Claim::RateLimit], body(ctx)).await
}

async fn body(ctx: &Ctx<'_>) -> Result<Vec<Check>, String> {
    let mut policy = ctx.demo_policy()?;
    policy.rate_limit.requests_per_minute = NonZeroU32::new(PER_MINUTE).ok_or("zero rate")?;
    policy.rate_limit.burst = NonZeroU32::new(BURST).ok_or("zero burst")?;
    policy.rate_limit.when_limited = WhenLimited::Wait;
    policy.rate_limit.max_wait = Duration::from_secs(10);
    let engine =
        Engine::new(PolicySet::from_policies([("db", policy)]).map_err(|e| e.to_string())?);
    let proxy = ctx.proxy().await?;
    let pg = ctx.connector(&engine, &proxy, "resilient-demo-volume", |p| {
        p.pool_size = 5
    })?;
    let key = pg.host_key().to_owned();
    let per_second = f64::from(PER_MINUTE) / 60.0;
    println!(
        "   {CALLS} schema calls at once; limit {PER_MINUTE}/min ({per_second}/s), burst {BURST}, wait when limited"
    );

    let started = Instant::now();
    let calls = (0..CALLS).map(|_| async {
        let result = pg.get_schema("customers").await;
        (
            result.map(|_| ()).map_err(|e| e.to_string()),
            started.elapsed(),
        )
    });
    let results = join_all(calls).await;
    let elapsed = started.elapsed();

    let errors: Vec<&String> = results
        .iter()
        .filter_map(|(r, _)| r.as_ref().err())
        .collect();
    let mut done: Vec<Duration> = results.iter().map(|(_, t)| *t).collect();
    done.sort();
    let health = engine.health();
    let stats = health.get("db", &key).ok_or("no health for the key")?;
    let after_burst = &done[BURST as usize..];
    let span = after_burst[after_burst.len() - 1].saturating_sub(after_burst[0]);
    let measured = (after_burst.len() - 1) as f64 / span.as_secs_f64().max(1e-3);
    let over = over_limit(&done, BURST, per_second);
    let connections = proxy.stats().accepted;
    println!(
        "   {} of {CALLS} succeeded in {}: {} waited for a token, {} refused; {connections} \
         connections opened",
        CALLS - errors.len(),
        secs(elapsed),
        stats.rate_limit_waits,
        stats.rate_limit_rejections
    );
    println!("   measured {measured:.1} calls/s after the burst (limit {per_second}/s)");

    let waited_enough = stats.rate_limit_waits as usize >= CALLS - BURST as usize - 1;
    let ok = errors.is_empty()
        && stats.successes == CALLS as u64
        && stats.rate_limit_rejections == 0
        && waited_enough
        && over.is_none();
    Ok(vec![Check::expect(
        Claim::RateLimit,
        "calls over the limit wait, none lost",
        ok,
        format!(
            "{CALLS}/{CALLS} calls completed, {} waited; at no moment more than {BURST} + \
             {per_second}/s x elapsed calls done",
            stats.rate_limit_waits
        ),
        format!(
            "errors {errors:?}; {} successes, {} waits (at least {} expected), {} rejections; \
             {}",
            stats.successes,
            stats.rate_limit_waits,
            CALLS - BURST as usize - 1,
            stats.rate_limit_rejections,
            over.unwrap_or_else(|| "rate within the limit".to_owned())
        ),
    )])
}

/// Checks the limiter's envelope on measured completion times (sorted): by any moment
/// `t`, at most `burst + rate × t` calls can have been admitted, and a call completes
/// only after it was admitted, so a slow database can only make the check easier to pass.
/// One call of slack covers a token refilled while the calls were being issued.
fn over_limit(sorted: &[Duration], burst: u32, per_second: f64) -> Option<String> {
    sorted.iter().enumerate().find_map(|(i, t)| {
        let done = i + 1;
        let allowed = f64::from(burst) + per_second * t.as_secs_f64() + 1.0;
        (done as f64 > allowed).then(|| {
            format!(
                "{done} calls done after {}, but the limit admits at most {allowed:.0} by then",
                secs(*t)
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_catches_calls_faster_than_the_limit() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        // A burst of 2 at once, then one every 100 ms (10/s): within the limit.
        assert!(over_limit(&ms(&[1, 1, 100, 200, 300, 400]), 2, 10.0).is_none());
        // Slow completions only make it easier.
        assert!(over_limit(&ms(&[300, 300, 400, 900, 900, 900]), 2, 10.0).is_none());
        // Six calls within 10 ms exceed a burst of 2 (plus one of slack).
        let err = over_limit(&ms(&[1, 2, 3, 4, 5, 6]), 2, 10.0).unwrap();
        assert!(err.starts_with("4 calls done after 0.00s"), "{err}");
    }
}

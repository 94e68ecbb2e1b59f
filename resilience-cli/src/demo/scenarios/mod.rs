//! The six scenarios, and what they share: the demo database, the engine running the
//! `demo` profile, the retry-event capture, and small helpers to start a proxy and a
//! connector behind it.
//!
//! Each scenario gets a proxy of its own, so its connector has its own `host:port` key:
//! its own breaker, rate limit and health counters. A scenario never panics or aborts the
//! demo; whatever goes wrong becomes a failed check with the reason.

pub(crate) mod analytics;
pub(crate) mod api;
pub(crate) mod incremental;
mod outage;
pub(crate) mod retry;
pub(crate) mod schema;
pub(crate) mod stress;
pub(crate) mod volume;

use std::future::Future;
use std::time::Duration;

use connector_postgres::{PgParams, PostgresConnector};
use resilience_chaos::ChaosProxy;
use resilience_core::{Engine, HealthReport, Policy};

use super::capture::Capture;
use super::report::{Check, Claim};
use super::seed::Counts;
use super::server::DemoDb;

/// A scenario that has not finished after this long has failed.
const SCENARIO_LIMIT: Duration = Duration::from_secs(45);

/// What every scenario needs.
pub(crate) struct Ctx<'a> {
    pub db: &'a DemoDb,
    /// Runs the `demo` profile; shared by the scenarios that use that profile.
    pub engine: Engine,
    pub capture: &'a Capture,
    /// Rows per table as seeded.
    pub seeded: Counts,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        db: &'a DemoDb,
        engine: Engine,
        capture: &'a Capture,
        seeded: Counts,
    ) -> Self {
        Ctx {
            db,
            engine,
            capture,
            seeded,
        }
    }

    /// The `db` policy of the demo profile.
    pub(crate) fn demo_policy(&self) -> Result<Policy, String> {
        self.engine
            .policies()
            .get("db")
            .map(|p| (**p).clone())
            .ok_or_else(|| "the demo profile has no `db` policy".to_owned())
    }

    /// A proxy in front of the demo database.
    pub(crate) async fn proxy(&self) -> Result<ChaosProxy, String> {
        ChaosProxy::start(self.db.upstream())
            .await
            .map_err(|e| format!("cannot start the chaos proxy: {e}"))
    }

    /// A connector on `engine` reaching the database through `proxy`; `tune` adjusts the
    /// parameters (pool size, connect timeout).
    pub(crate) fn connector(
        &self,
        engine: &Engine,
        proxy: &ChaosProxy,
        application_name: &str,
        tune: impl FnOnce(&mut PgParams),
    ) -> Result<PostgresConnector, String> {
        let mut params = self.db.params_via(proxy.local_addr(), application_name);
        tune(&mut params);
        let mut pg = PostgresConnector::with_engine(engine.clone());
        pg.configure(params)
            .map_err(|e| format!("configure failed: {e}"))?;
        Ok(pg)
    }
}

/// Prints a scenario's heading.
pub(crate) fn section(title: &str) {
    println!("\n{title}");
}

/// Runs a scenario body under the time limit; an error or overrun fails `claims`.
pub(crate) async fn guarded<F>(name: &'static str, claims: &[Claim], body: F) -> Vec<Check>
where
    F: Future<Output = Result<Vec<Check>, String>>,
{
    let reason = match tokio::time::timeout(SCENARIO_LIMIT, body).await {
        Ok(Ok(checks)) => return checks,
        Ok(Err(reason)) => reason,
        Err(_) => format!("did not finish within {}s", SCENARIO_LIMIT.as_secs()),
    };
    claims
        .iter()
        .map(|claim| Check::new(*claim, name, Err(reason.clone())))
        .collect()
}

/// The configuration line: the `db` policy a zero-configuration connector runs on.
pub(crate) fn config_line(policy: &Policy) -> String {
    format!(
        "Retry: {} attempts, Circuit Breaker: {} failure threshold, Rate Limit: {}/min",
        policy.retry.max_attempts,
        policy.circuit_breaker.failure_threshold,
        policy.rate_limit.requests_per_minute
    )
}

/// Prints the configuration a connector gets without any (the process-wide engine's
/// `db` policy), and the demo profile's timings, which the fault scenarios run under.
pub(crate) fn print_configuration(ctx: &Ctx<'_>) {
    if let Some(policy) = Engine::global().policies().get("db") {
        println!("\nConfiguration applied: {}", config_line(policy));
    }
    if let Ok(p) = ctx.demo_policy() {
        println!(
            "Fault scenarios run the `demo` profile (the presets, timings scaled down): \
             backoff {:?} x{} up to {:?}, breaker recovery {:?}, attempt timeout {:?}, total {:?}",
            p.retry.initial_delay,
            p.retry.multiplier,
            p.retry.max_delay,
            p.circuit_breaker.recovery_timeout,
            p.timeout.attempt,
            p.timeout.total
        );
    }
}

/// Prints a health snapshot, one line per policy and key.
pub(crate) fn print_health(title: &str, report: &HealthReport) {
    println!(
        "   {title} (profile {}):",
        report.profile.as_deref().unwrap_or("built-in")
    );
    for k in &report.keys {
        println!(
            "     {:<4} {:<16} breaker {:<9} calls {:>3} ok {:>3} failed {:>2} attempts {:>3} \
             retries {:>2} timeouts {:>2} rate-limit waits {:>2} recoveries {:>2} fail-fast {:>2}",
            k.policy,
            k.key,
            k.circuit_breaker_state.as_str(),
            k.calls,
            k.successes,
            k.failures,
            k.attempts,
            k.retries,
            k.timeouts,
            k.rate_limit_waits,
            k.connection_recovery_events,
            k.circuit_open_rejections
        );
    }
}

/// Seconds with two decimals.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

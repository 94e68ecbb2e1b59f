//! `resilient debug --connector http --api-config FILE`: what resilience would do for an
//! API, and how one live request is classified.
//!
//! The live request is a single attempt (the policy's retries set to one), so the answer
//! shown is the API's own, with the class the rules give it, whether the policy would
//! retry it, whether the breaker would count it, and any `Retry-After` it carried.

use connector_http::HttpConnector;
use resilience_core::{Engine, PolicySet, ResilientError};
use serde::Serialize;
use tokio::time::Instant;

use crate::args::DebugArgs;
use crate::connect;
use crate::error::CliError;

/// The report, printed as text or JSON.
#[derive(Debug, Serialize)]
struct Report {
    key: String,
    policy: String,
    retry: String,
    circuit_breaker: String,
    rate_limit: String,
    timeouts: String,
    rules: usize,
    attempt: Attempt,
}

#[derive(Debug, Serialize)]
struct Attempt {
    success: bool,
    latency_ms: f64,
    status: Option<u16>,
    class: Option<String>,
    retried: Option<bool>,
    counts_for_breaker: Option<bool>,
    retry_after_ms: Option<u128>,
    error: Option<String>,
}

/// Runs the report; exit 1 (2 for a refused request or bad settings) when the live
/// request failed, after printing it.
pub(crate) async fn run(args: &DebugArgs) -> Result<(), CliError> {
    let (params, shown) = connect::api_params(&args.target)?;
    let engine = connect::engine(&args.target.policies)?;
    let mut policy = engine
        .policies()
        .get(&params.policy)
        .map(|p| (**p).clone())
        .ok_or_else(|| CliError::Usage(format!("{shown}: unknown policy `{}`", params.policy)))?;
    let effective = policy.clone();
    policy.retry.max_attempts = 1.try_into().expect("one is not zero");
    let single = PolicySet::from_policies([(params.policy.as_str(), policy)])
        .map_err(|e| CliError::Failed(format!("a one-attempt copy of the policy: {e}")))?;
    let rules = params.rules.len();
    let policy_name = params.policy.clone();
    let mut api = HttpConnector::with_engine(Engine::new(single));
    api.configure(params)
        .map_err(|e| CliError::of_class(e.class(), format!("{shown}: {e}")))?;
    let started = Instant::now();
    let outcome = api.test_connection_once().await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let attempt = match &outcome {
        Ok(()) => Attempt {
            success: true,
            latency_ms,
            status: Some(200),
            class: None,
            retried: None,
            counts_for_breaker: None,
            retry_after_ms: None,
            error: None,
        },
        Err(e) => {
            let last = e.failure().and_then(|f| f.last_error.as_ref()).unwrap_or(e);
            let class = last.class();
            Attempt {
                success: false,
                latency_ms,
                status: e.status(),
                class: Some(class.as_str().to_owned()),
                retried: Some(effective.retry.retry_on.contains(class)),
                counts_for_breaker: Some(!effective.circuit_breaker.ignore.contains(class)),
                retry_after_ms: last
                    .not_before()
                    .map(|at| at.saturating_duration_since(Instant::now()).as_millis()),
                error: Some(last.to_string()),
            }
        }
    };
    let report = Report {
        key: api.host_key().to_owned(),
        policy: policy_name,
        retry: format!(
            "{} attempts, {:?} x{} up to {:?}, on {}",
            effective.retry.max_attempts,
            effective.retry.initial_delay,
            effective.retry.multiplier,
            effective.retry.max_delay,
            classes(effective.retry.retry_on)
        ),
        circuit_breaker: format!(
            "opens after {} failures, ignores {}",
            effective.circuit_breaker.failure_threshold,
            classes(effective.circuit_breaker.ignore)
        ),
        rate_limit: format!(
            "{}/min, burst {}",
            effective.rate_limit.requests_per_minute, effective.rate_limit.burst
        ),
        timeouts: format!(
            "attempt {:?}, total {:?}",
            effective.timeout.attempt, effective.timeout.total
        ),
        rules,
        attempt,
    };
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Failed(format!("cannot render the report: {e}")))?;
        println!("{json}");
    } else {
        println!(
            "Connector: http ({}), policy `{}`",
            report.key, report.policy
        );
        println!("Retry: {}", report.retry);
        println!("Circuit breaker: {}", report.circuit_breaker);
        println!("Rate limit: {}", report.rate_limit);
        println!("Timeouts: {}", report.timeouts);
        println!(
            "Classification: {} rule(s), then 429 throttled, 502/503/504 transient, 408 \
             timeout, 401/403 auth, other 4xx invalid_input",
            report.rules
        );
        let a = &report.attempt;
        if a.success {
            println!("Live request: answered in {:.1} ms", a.latency_ms);
        } else {
            println!(
                "Live request: failed in {:.1} ms, class {}, {}, {} for the breaker{}",
                a.latency_ms,
                a.class.as_deref().unwrap_or("unknown"),
                if a.retried == Some(true) {
                    "retried"
                } else {
                    "not retried"
                },
                if a.counts_for_breaker == Some(true) {
                    "counts"
                } else {
                    "does not count"
                },
                a.retry_after_ms
                    .map_or(String::new(), |ms| format!(", Retry-After {ms} ms"))
            );
            println!("Error: {}", a.error.as_deref().unwrap_or(""));
        }
    }
    match outcome {
        Ok(()) => Ok(()),
        Err(e) => Err(CliError::of_class(
            e.class(),
            format!("the live request failed: {e}"),
        )),
    }
}

fn classes(set: resilience_core::ClassSet) -> String {
    let names: Vec<&str> = set.iter().map(|c| c.as_str()).collect();
    names.join(", ")
}

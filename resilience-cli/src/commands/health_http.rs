//! `resilient health --connector http --api-config FILE`: does the API answer, how
//! fast, and what does the engine say about its host?
//!
//! The check fetches the first page of the first declared stream through the
//! connector's own resilient operation, so a `Retry-After` or a refused credential is
//! reported as the connector sees it. Exit 0 when the page came back, 2 when the API
//! refused the request or the settings (credentials, a wrong path), 1 when it could not
//! be reached.

use connector_http::HttpConnector;
use resilience_core::ResilientError;

use crate::args::HealthArgs;
use crate::connect;
use crate::error::CliError;

/// Runs the check and prints it (text, or JSON with `--json`).
pub(crate) async fn run(args: &HealthArgs) -> Result<(), CliError> {
    let (params, shown) = connect::api_params(&args.target)?;
    let engine = connect::engine(&args.target.policies)?;
    let mut api = HttpConnector::with_engine(engine);
    api.configure(params)
        .map_err(|e| CliError::of_class(e.class(), format!("{shown}: {e}")))?;
    let health = api
        .check_health()
        .await
        .map_err(|e| CliError::of_class(e.class(), format!("health check failed: {e}")))?;
    if args.json {
        let json = serde_json::to_string_pretty(&health)
            .map_err(|e| CliError::Failed(format!("cannot render the report: {e}")))?;
        println!("{json}");
    } else {
        println!("Connector: http ({})", health.host);
        let status = if health.reachable {
            "reachable"
        } else {
            "UNREACHABLE"
        };
        println!("Status: {status}");
        println!("Latency: {:.1} ms", health.latency.as_secs_f64() * 1000.0);
        if let Some(error) = &health.error {
            println!("Error: {error}");
        }
        if let Some(key) = &health.resilience {
            println!("Circuit breaker: {}", key.circuit_breaker_state.as_str());
            println!("Retries during the check: {}", key.retries);
        }
    }
    match (health.reachable, health.error_class) {
        (true, _) => Ok(()),
        (false, Some(class)) if class.is_caller_error() => Err(CliError::Usage(format!(
            "{} refused the request: {}",
            health.host,
            health.error.unwrap_or_default()
        ))),
        (false, _) => Err(CliError::Failed(format!(
            "{} is unreachable: {}",
            health.host,
            health.error.unwrap_or_default()
        ))),
    }
}

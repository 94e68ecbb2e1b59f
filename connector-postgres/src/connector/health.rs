//! `check_health`: is the server reachable, how fast, how full is the pool, and what the
//! engine has seen for this connector's policy and host.
//!
//! The check is an observation, not work: it connects directly (bounded by the connect
//! timeout) outside the retry loop and the breaker, so it neither retries nor moves the
//! breaker it reports on.

use std::time::Instant;

use resilience_core::breaker::BreakerState;
use resilience_core::connector::ConnectorState;
use resilience_core::{ErrorClass, Resilient, ResilientError};
use serde::Serialize;
use sqlx::Connection;

use super::PostgresConnector;
use super::probe::describe;
use crate::error::PgError;

/// The connector's health, serializable to JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorHealth {
    /// The lifecycle state.
    pub state: ConnectorState,
    /// `host:port`.
    pub key: String,
    /// The policy operations run under.
    pub policy: String,
    /// Whether the server answered: a direct connection ran `SELECT 1`, or the server
    /// itself refused it (see `error_class`). `false` when nothing answered in time.
    pub reachable: bool,
    /// Connect plus query time, in milliseconds.
    pub latency_ms: f64,
    /// Why the check failed, when it did.
    pub error: Option<String>,
    /// The class of that failure: `auth` or `config` when the server answered and refused
    /// (wrong password, unknown database), `connection` or `timeout` when it did not answer.
    pub error_class: Option<ErrorClass>,
    /// Connections the pool holds (idle and in use).
    pub pool_size: u32,
    /// Idle connections in the pool.
    pub pool_idle: usize,
    /// `CLOSED`, `OPEN` or `HALF_OPEN`, as the engine sees this policy and host
    /// (`None` before the first call).
    pub circuit_breaker_state: Option<BreakerState>,
    /// Retries started in the last hour.
    pub retry_attempts_last_hour: u64,
    /// Calls the rate limiter held back.
    pub rate_limit_violations: u64,
    /// Pool rebuilds, credential refreshes and successful probes.
    pub connection_recovery_events: u64,
}

impl PostgresConnector {
    /// Checks reachability directly and collects pool and engine figures.
    pub async fn check_health(&self) -> Result<ConnectorHealth, PgError> {
        let link = self.link("check health")?;
        let key = link.params().host_key();
        let started = Instant::now();
        let probe = async {
            let mut conn = link.connect_direct(None).await?;
            sqlx::query("SELECT 1").execute(&mut conn).await?;
            let _ = conn.close().await;
            Ok::<_, PgError>(())
        };
        let outcome = tokio::time::timeout(link.params().connect_timeout, probe).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (error, error_class) = match outcome {
            Ok(Ok(())) => (None, None),
            Ok(Err(e)) => (Some(describe(&e, &key)), Some(e.class())),
            Err(_) => (
                Some(format!(
                    "timed out after {}ms",
                    link.params().connect_timeout.as_millis()
                )),
                Some(ErrorClass::Timeout),
            ),
        };
        let (pool_size, pool_idle) = link.pool_figures();
        let resilience = self.resilience();
        let report = resilience.engine().health();
        let engine = report.get(resilience.policy(), &key);
        Ok(ConnectorHealth {
            state: self.state(),
            key: key.clone(),
            policy: resilience.policy().to_owned(),
            reachable: error_class.is_none_or(ErrorClass::is_caller_error),
            latency_ms,
            error,
            error_class,
            pool_size,
            pool_idle,
            circuit_breaker_state: engine.map(|k| k.circuit_breaker_state),
            retry_attempts_last_hour: engine.map_or(0, |k| k.retry_attempts_last_hour),
            rate_limit_violations: engine.map_or(0, |k| k.rate_limit_violations),
            connection_recovery_events: engine.map_or(0, |k| k.connection_recovery_events),
        })
    }
}

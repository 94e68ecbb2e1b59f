//! `test_connection`: one direct connection, so a failure says what really happened.
//!
//! Through a pool, a refused connection or a server that is starting up surfaces only as
//! "pool timed out" after the acquire timeout. The test therefore connects directly,
//! bounded by the connect timeout, and turns the error into a sentence (refused,
//! authentication failed, database does not exist, timed out).
//!
//! The test runs under the connector's policy like any operation: its outcome feeds the
//! breaker (a passing test can close a half-open breaker; a failing one counts), and a
//! connection-class failure is retried with the policy's backoff, so the answer means
//! "cannot connect within the policy", not "one packet was lost". Authentication,
//! configuration and unknown-database failures are never retried: they are answered
//! after one call.

use std::io;
use std::time::{Duration, Instant};

use resilience_core::connector::{ConnectionTestResult, ConnectorState};
use resilience_core::resilient_operation;
use sqlx::Connection;

use super::PostgresConnector;
use crate::error::PgError;

/// The operation name of the connection test: its path connects directly, so recovery
/// after its failure leaves the pool alone. The `name` of `connect_once` below.
pub(crate) const TEST_CONNECTION: &str = "test_connection";

impl PostgresConnector {
    /// Connects directly and runs a query; a failure is reported as `success: false`
    /// with the real cause. Errs only when the connector is not configured. Moves the
    /// connector to `Ready` on success and to `Error` on failure.
    ///
    /// Runs under the connector's policy: connection-class failures are retried with
    /// backoff and the message ends with the verdict ("(retries exhausted after 3
    /// attempts)"); authentication, TLS and unknown-database failures answer after one
    /// call and never move the breaker.
    pub async fn test_connection(&self) -> Result<ConnectionTestResult, PgError> {
        let link = self.link("test the connection")?;
        let key = link.params().host_key();
        let started = Instant::now();
        let outcome = self.connect_once().await;
        let latency = started.elapsed();
        let result = match outcome {
            Ok(version) => ConnectionTestResult {
                success: true,
                message: format!("connected to {key} as {}", link.params().user),
                server_version: Some(version),
                latency,
            },
            Err(e) => ConnectionTestResult {
                success: false,
                message: describe(&e, &key),
                server_version: None,
                latency,
            },
        };
        if result.success {
            self.mark_ready();
        } else {
            self.set_status(ConnectorState::Error, Some(result.message.clone()));
        }
        Ok(result)
    }

    /// One direct connection and `SHOW server_version`, bounded by the attempt's time.
    #[resilient_operation(name = "test_connection")]
    async fn connect_once(&self) -> Result<String, PgError> {
        let link = self.link("test the connection")?;
        let limit = match super::remaining() {
            Some(left) => left.min(link.params().connect_timeout),
            None => link.params().connect_timeout,
        };
        let mut conn = link.connect_direct(Some(limit)).await?;
        let query = sqlx::query_scalar::<_, String>("SHOW server_version").fetch_one(&mut conn);
        let version = match tokio::time::timeout(limit, query).await {
            Ok(version) => version?,
            Err(_) => {
                return Err(PgError::Timeout {
                    what: format!("first query on {}", link.params().host_key()),
                    after: limit,
                });
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
        Ok(version)
    }
}

/// A sentence for a failed connection test: the cause first, the driver's words after.
pub(crate) fn describe(err: &PgError, key: &str) -> String {
    if let PgError::Stopped(failure) = err {
        return match &failure.last_error {
            Some(last) => format!("{} ({})", describe(last, key), failure.stop),
            None => failure.to_string(),
        };
    }
    if let PgError::Driver(sqlx::Error::Database(db)) = err {
        let what = match db.code().as_deref() {
            Some("28P01" | "28000") => "authentication failed",
            Some("3D000") => "database does not exist",
            Some("53300") => "too many connections",
            Some("57P03") => "the server is starting up or shutting down",
            _ => "the server refused",
        };
        return format!("{what}: {}", db.message());
    }
    if let PgError::Driver(sqlx::Error::Io(e)) = err {
        return match e.kind() {
            io::ErrorKind::ConnectionRefused => format!("connection refused by {key}: {e}"),
            io::ErrorKind::TimedOut => format!("timed out connecting to {key}: {e}"),
            io::ErrorKind::InvalidData => format!("TLS failed: {e}"),
            _ => format!("cannot reach {key}: {e}"),
        };
    }
    match err {
        // Already a sentence: "connect to 127.0.0.1:5432 timed out after 10000ms".
        PgError::Timeout { .. } => err.to_string(),
        PgError::Driver(sqlx::Error::PoolTimedOut) => format!("timed out: {err}"),
        PgError::Driver(sqlx::Error::Tls(_)) => format!("TLS failed: {err}"),
        _ => err.to_string(),
    }
}

//! The interface every connector implements: a small lifecycle and the operations a
//! pipeline or the CLI drives without knowing which database is behind them.
//!
//! A connector is created empty, configured once with validated parameters (which also
//! enables its resilience policy), and becomes ready when a call reaches the server.
//! Calling an operation before `configure` is an error that says so, not a panic or a
//! connection attempt with half-made settings. The data types a connector produces
//! (tables, schemas, batches) are associated types, so this crate needs no driver or
//! Arrow dependency.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_core::Stream;
use serde::{Serialize, Serializer};

use crate::error::ResilientError;
use crate::resilience::Resilient;

/// Where a connector is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    /// Created, not configured: only `configure` is allowed.
    Created,
    /// Parameters validated and the policy enabled; nothing has reached the server yet.
    Configured,
    /// A call has reached the server.
    Ready,
    /// Configuration or the last connection test failed; `configure` (or, when
    /// parameters were accepted, another test) moves it on.
    Error,
}

impl ConnectorState {
    /// The lower-case name (`"ready"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnectorState::Created => "created",
            ConnectorState::Configured => "configured",
            ConnectorState::Ready => "ready",
            ConnectorState::Error => "error",
        }
    }
}

impl fmt::Display for ConnectorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of [`Connector::test_connection`]: a failure is an answer too, with the
/// real cause in `message` (refused, authentication failed, unknown database, timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionTestResult {
    /// Whether a connection was made and answered a query.
    pub success: bool,
    /// What happened, in words a person can act on.
    pub message: String,
    /// The server's version string, when connected.
    pub server_version: Option<String>,
    /// Time from the start of the test to the answer (serialized as `latency_ms`).
    #[serde(rename = "latency_ms", serialize_with = "serialize_millis")]
    pub latency: Duration,
}

/// Serializes a duration as fractional milliseconds, as every connector report writes a
/// latency (`#[serde(serialize_with = "...")]`).
pub fn serialize_millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// A data connector driven by pipelines and the CLI.
///
/// Every operation except `configure` and `state` runs under the connector's resilience
/// policy (see [`Resilient`]).
pub trait Connector: Resilient + Send + Sync {
    /// Connection parameters.
    type Params;
    /// The connector's error type.
    type Error: ResilientError + std::error::Error + Send + Sync + 'static;
    /// A table or view as discovery names it.
    type Table: Send;
    /// The health report, serializable to JSON.
    type Health: Serialize + Send;
    /// A table's columns, types, nullability and primary key.
    type Schema: Send;
    /// One chunk of a full read (a batch of rows and where it ends).
    type Chunk: Send;
    /// Where an incremental read starts: the checkpoint stored after the last chunk.
    type Checkpoint: Send;
    /// One chunk of an incremental read, with the checkpoint to store after it.
    type IncrementalChunk: Send;
    /// Options of an incremental read (late rows, NULL cursors).
    type IncrementalOptions: Default + Send;

    /// The lifecycle state.
    fn state(&self) -> ConnectorState;

    /// Validates the parameters and enables the policy: `Created -> Configured`.
    fn configure(&mut self, params: Self::Params) -> Result<(), Self::Error>;

    /// Connects directly (not through a pool) and reports the real cause of a failure.
    fn test_connection(
        &self,
    ) -> impl Future<Output = Result<ConnectionTestResult, Self::Error>> + Send;

    /// Tables and views from the catalog.
    fn discover(&self) -> impl Future<Output = Result<Vec<Self::Table>, Self::Error>> + Send;

    /// Reachability, latency, pool figures and the engine's view of this connector.
    fn check_health(&self) -> impl Future<Output = Result<Self::Health, Self::Error>> + Send;

    /// The schema of a table named as [`discover`](Connector::discover) lists it.
    fn get_schema(
        &self,
        table: &str,
    ) -> impl Future<Output = Result<Self::Schema, Self::Error>> + Send;

    /// Every row of `table` (or of the given columns) in chunks of at most `batch_size`
    /// rows; a fault in the middle resumes after the last delivered chunk.
    fn read<'a>(
        &'a self,
        table: &'a str,
        columns: Option<&'a [&'a str]>,
        batch_size: usize,
    ) -> impl Stream<Item = Result<Self::Chunk, Self::Error>> + Send + 'a;

    /// The rows after `from` in `cursor_field` order, in chunks that each carry the
    /// checkpoint to store once the chunk is durable.
    fn read_incremental<'a>(
        &'a self,
        table: &'a str,
        cursor_field: &'a str,
        from: Option<Self::Checkpoint>,
        batch_size: usize,
        options: Self::IncrementalOptions,
    ) -> impl Stream<Item = Result<Self::IncrementalChunk, Self::Error>> + Send + 'a;
}

/// Implements [`Connector`] for a type whose inherent methods of the same names do the
/// work, so that they stay callable without the trait in scope: the associated types are
/// given, `state`, `configure`, `test_connection`, `check_health` and `get_schema`
/// forward to the inherent methods, and the items that follow the types (`discover`,
/// `read`, `read_incremental`, whose signatures differ between connectors) are written
/// out by the connector.
///
/// ```ignore
/// resilience_core::impl_connector! {
///     MyConnector {
///         type Params = MyParams;
///         // ... every associated type of `Connector`
///     }
///     async fn discover(&self) -> Result<Vec<MyTable>, MyError> {
///         MyConnector::discover(self).await
///     }
///     // ... `read` and `read_incremental`
/// }
/// ```
#[macro_export]
macro_rules! impl_connector {
    (
        $connector:ty {
            $(type $name:ident = $value:ty;)*
        }
        $($own:tt)*
    ) => {
        impl $crate::connector::Connector for $connector {
            $(type $name = $value;)*

            fn state(&self) -> $crate::connector::ConnectorState {
                <$connector>::state(self)
            }

            fn configure(&mut self, params: Self::Params) -> ::core::result::Result<(), Self::Error> {
                <$connector>::configure(self, params)
            }

            async fn test_connection(
                &self,
            ) -> ::core::result::Result<$crate::connector::ConnectionTestResult, Self::Error> {
                <$connector>::test_connection(self).await
            }

            async fn check_health(&self) -> ::core::result::Result<Self::Health, Self::Error> {
                <$connector>::check_health(self).await
            }

            async fn get_schema(
                &self,
                table: &str,
            ) -> ::core::result::Result<Self::Schema, Self::Error> {
                <$connector>::get_schema(self, table).await
            }

            $($own)*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_result_serializes_latency_in_millis() {
        let r = ConnectionTestResult {
            success: false,
            message: "connection refused".into(),
            server_version: None,
            latency: Duration::from_micros(1500),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"success":false,"message":"connection refused","server_version":null,"latency_ms":1.5}"#
        );
        assert_eq!(ConnectorState::Ready.to_string(), "ready");
    }
}

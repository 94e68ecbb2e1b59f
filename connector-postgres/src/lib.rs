//! A PostgreSQL connector that survives faults without losing a row.
//!
//! Built on sqlx (tokio, rustls). Every operation runs under a resilience policy
//! (`db` by default): failures are classified by SQLSTATE ([`classify()`]), connection
//! failures rebuild the pool, timed-out connections never return to the pool, and
//! deadlines reach the server as `statement_timeout`.
//!
//! ```no_run
//! use connector_postgres::{PgParams, PostgresConnector};
//!
//! # async fn demo() -> Result<(), connector_postgres::PgError> {
//! let mut pg = PostgresConnector::new();
//! pg.configure(PgParams::from_url("postgres://postgres@127.0.0.1:5432/test")?)?;
//! let test = pg.test_connection().await?;
//! println!("{}: {}", test.success, test.message);
//! for table in pg.discover().await? {
//!     println!("{}.{}", table.schema, table.name);
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod arrow;
mod catalog;
mod classify;
pub mod config;
mod connector;
mod echo;
mod error;
mod ident;
mod incremental;
mod interface;
mod read;
#[cfg(test)]
mod testing;

pub use catalog::{ColumnInfo, TableSchema};
pub use classify::{classify, classify_io, classify_sqlstate};
pub use config::{Credential, PgParams, Secret, SslMode};
pub use connector::{ConnectorHealth, DiscoveredTable, PostgresConnector, TableKind};
pub use error::PgError;
pub use ident::{QualifiedName, quote};
pub use incremental::{
    Checkpoint, IncrementalChunk, IncrementalOptions, Lag, LagWindow, NullCursor, RecentRow,
};
pub use read::{
    DEFAULT_PAGE_MEMORY, DataChunk, PagePath, PageSize, Partitions, ReadOptions, ReadPlanReport,
    TypedValue, adaptive_page_target,
};
pub use resilience_core::connector::{ConnectionTestResult, Connector, ConnectorState};

//! The connector's one error type.
//!
//! Driver errors are kept whole (the `sqlx::Error` is the source, its message is shown
//! unchanged) and classified by [`classify`](crate::classify()) so the engine can decide
//! whether to retry. The engine's own verdicts (retries exhausted, circuit open) arrive
//! through [`ResilientError::from_failure`] and keep the last driver error inside.
//! No variant ever carries a password: parameters reach errors only by field name.

use std::time::Duration;

use resilience_core::{ErrorClass, Failure, ResilientError};

use crate::classify::classify;

/// Everything that can go wrong in the PostgreSQL connector.
#[derive(Debug, thiserror::Error, ResilientError)]
#[non_exhaustive]
pub enum PgError {
    /// The driver reported an error (I/O, TLS, protocol or a server error with SQLSTATE).
    #[error("{}", driver_message(.0))]
    #[resilient(classify = classify)]
    Driver(#[from] sqlx::Error),

    /// Connecting or a query did not finish in time; the connection was discarded.
    #[error("{what} timed out after {}ms", .after.as_millis())]
    #[resilient(class = "timeout")]
    Timeout {
        /// What timed out, e.g. `connect to 127.0.0.1:5432`.
        what: String,
        /// The time allowed.
        after: Duration,
    },

    /// A parameter is invalid.
    #[error("invalid {field}: {message}")]
    #[resilient(class = "config")]
    Config {
        /// The parameter's name, as written in a URL or params struct.
        field: &'static str,
        /// What is wrong and what would be valid.
        message: String,
    },

    /// The credential source could not be read (environment variable unset, file missing).
    #[error("cannot read the password from {source_name}: {message}")]
    #[resilient(class = "config")]
    Credential {
        /// Where the password was to come from (`env PGPASS`, `file /run/secret`).
        source_name: String,
        /// Why it could not be read.
        message: String,
    },

    /// An operation was called in a state that does not allow it.
    #[error("cannot {operation}: the connector is {state}; {hint}")]
    #[resilient(class = "config")]
    State {
        /// The operation called.
        operation: &'static str,
        /// The state the connector was in.
        state: resilience_core::connector::ConnectorState,
        /// What to do instead.
        hint: String,
    },

    /// The request is wrong: unknown table or column, unsupported type or argument.
    #[error("{0}")]
    #[resilient(class = "invalid_input")]
    InvalidInput(String),

    /// The data could not be converted.
    #[error("{0}")]
    #[resilient(class = "data")]
    Data(String),

    /// A valid value the column's Arrow type cannot hold: `NaN` in a numeric column read
    /// as a decimal (see `NumericMapping`), a timestamp after 294247 AD.
    #[error("column {column:?} ({pg_type}) holds {value}: {reason}")]
    #[resilient(class = "data")]
    Unrepresentable {
        /// The column.
        column: String,
        /// Its PostgreSQL type.
        pg_type: String,
        /// The value, or what kind of value it is (`NaN`).
        value: &'static str,
        /// Why it cannot be held, and what to do.
        reason: &'static str,
    },

    /// An incremental read that refuses rows whose cursor is NULL found some: they cannot
    /// be placed in cursor order, so they would never be delivered.
    #[error(
        "{} of {table} {} a NULL cursor ({}); an incremental read cannot place such rows in \
         cursor order, and refuses them rather than leave them out unannounced",
        match rows { 1 => "1 row".to_owned(), n => format!("{n} rows") },
        if *rows == 1 { "has" } else { "have" },
        crate::echo::quoted(.column)
    )]
    #[resilient(class = "data")]
    NullCursor {
        /// Rows whose cursor is NULL.
        rows: u64,
        /// The table, as the catalog names it.
        table: String,
        /// The cursor column.
        column: String,
    },

    /// A partitioned read's exported snapshot is gone: the coordinator's connection that
    /// holds it ended, so a partition can no longer join it.
    #[error(
        "the snapshot this read's partitions share is gone (the connection that exported it \
         ended)"
    )]
    #[resilient(class = "config")]
    SnapshotGone,

    /// Building an Arrow array or batch failed.
    #[error("arrow: {0}")]
    #[resilient(class = "data")]
    Arrow(#[from] arrow_schema::ArrowError),

    /// The resilience engine stopped the call (retries exhausted, circuit open, deadline).
    #[error("{0}")]
    #[resilient(failure)]
    Stopped(#[source] Box<Failure<PgError>>),
}

impl PgError {
    /// An invalid-input error (unknown table or column, bad argument).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        PgError::InvalidInput(message.into())
    }

    /// A data error (a value that cannot be converted).
    pub fn data(message: impl Into<String>) -> Self {
        PgError::Data(message.into())
    }

    /// A configuration error naming the parameter and what would be valid.
    pub fn config(field: &'static str, message: impl Into<String>) -> Self {
        PgError::Config {
            field,
            message: message.into(),
        }
    }

    /// The SQLSTATE code when the server reported the error.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            PgError::Driver(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            PgError::Stopped(f) => f.last_error.as_ref().and_then(PgError::sqlstate),
            _ => None,
        }
    }

    /// The error itself, or the last error inside the engine's verdict: what the
    /// dependency (or the connector's own checks) said.
    pub fn cause(&self) -> &PgError {
        match self {
            PgError::Stopped(f) => f.last_error.as_ref().map_or(self, PgError::cause),
            other => other,
        }
    }

    /// The engine's verdict when the call was stopped by a policy.
    pub fn failure(&self) -> Option<&Failure<PgError>> {
        match self {
            PgError::Stopped(f) => Some(f),
            _ => None,
        }
    }

    /// Whether the error means the connection it happened on must not be reused.
    pub(crate) fn poisons_connection(&self) -> bool {
        !matches!(
            self.class(),
            ErrorClass::InvalidInput | ErrorClass::Data | ErrorClass::Transient
        )
    }
}

/// The driver's message, except that a server error shows its SQLSTATE instead of the
/// line of the server's own C source that sqlx appends ("... at line 334"), which reads
/// like a line of the user's file, and a value the server quotes is cut when long.
fn driver_message(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!(
                "error returned from database: {} (SQLSTATE {code})",
                crate::echo::clip_quoted(db.message())
            ),
            None => format!(
                "error returned from database: {}",
                crate::echo::clip_quoted(db.message())
            ),
        },
        other => other.to_string(),
    }
}

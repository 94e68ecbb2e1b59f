//! What an incremental read hands back after each chunk, and the options it takes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::seen::LagWindow;
use crate::catalog::TableSchema;
use crate::error::PgError;
use crate::read::TypedValue;

/// The position to store after a chunk: the `(cursor, primary key)` of the last delivered
/// row, as typed text. Never a bare cursor value: rows sharing a cursor value are told apart
/// by their key, so none is lost or repeated at a page boundary. With a `lag`, the furthest
/// position delivered so far (a run that re-reads its window never moves it back), and the
/// record of the window ([`LagWindow`]).
///
/// JSON-friendly (`serde`); pass it back as `from` to continue after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The cursor value of the last delivered row.
    pub cursor: TypedValue,
    /// The primary key of the last delivered row, in key order.
    pub primary_key: Vec<TypedValue>,
    /// Only in checkpoints written by earlier versions with a `lag`: the rows delivered
    /// inside the window, one by one. A run honours such a list once (skipping those rows)
    /// and stores a [`lag_window`](Self::lag_window) instead; it is never written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<RecentRow>,
    /// With a `lag`: which snapshots read the window and which transactions' rows they
    /// delivered, so the next run's re-read skips exactly those rows. Its size does not
    /// depend on how many rows the window holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_window: Option<Box<LagWindow>>,
}

/// A delivered row inside the lag window, as checkpoints of earlier versions listed them:
/// its cursor and primary key as text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecentRow {
    /// The cursor value.
    pub cursor: String,
    /// The primary-key values, in key order.
    pub primary_key: Vec<String>,
}

/// What to do with rows whose cursor is NULL. They can never be placed on the
/// `(cursor, key)` order, so an incremental read cannot deliver them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NullCursor {
    /// Leave them out, log a warning with their count, and report the count on every chunk
    /// ([`IncrementalChunk::null_cursor_rows`](super::IncrementalChunk::null_cursor_rows)).
    #[default]
    Skip,
    /// Fail the read before delivering anything if any row has a NULL cursor.
    Error,
}

/// How far below the checkpoint a run re-reads, to catch rows that committed late (after a
/// run had already read past their cursor value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lag {
    /// A time window, for `date`, `timestamp` and `timestamptz` cursors.
    Time(Duration),
    /// A number of cursor units, for integer cursors.
    Units(i64),
}

impl Lag {
    /// The SQL literal subtracted from the checkpoint cursor, bound as text.
    pub(crate) fn sql_value(self) -> String {
        match self {
            Lag::Time(d) => format!("{} microseconds", d.as_micros()),
            Lag::Units(n) => n.to_string(),
        }
    }

    /// The SQL type the bound window is cast to.
    pub(crate) fn sql_type(self) -> &'static str {
        match self {
            Lag::Time(_) => "interval",
            Lag::Units(_) => "bigint",
        }
    }

    /// The SQL type of `cursor - lag` for a cursor of type `type_name` (`pg_type.typname`).
    pub(crate) fn window_type(self, type_name: &str) -> &'static str {
        match (self, type_name) {
            (Lag::Units(_), _) => "bigint",
            (Lag::Time(_), "timestamptz") => "timestamptz",
            (Lag::Time(_), _) => "timestamp",
        }
    }
}

/// Options of an incremental read.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct IncrementalOptions {
    /// Rows with a NULL cursor: skipped (default) or an error.
    pub null_cursor: NullCursor,
    /// Re-read this window below the checkpoint, skipping the rows the checkpoint's
    /// [`LagWindow`] says were delivered. `None`: no re-read.
    pub lag: Option<Lag>,
    /// Pages start at the batch size and grow while they are full and quick, up to
    /// [`page_memory`](Self::page_memory) of Arrow data, as full reads'
    /// pages do; a chunk is a page, so chunks may then hold more than the batch size.
    /// `false` (the default): every page and chunk holds at most the batch size.
    pub adaptive_pages: bool,
    /// The most Arrow memory one adaptive page may take, in bytes; `None`:
    /// [`DEFAULT_PAGE_MEMORY`](crate::DEFAULT_PAGE_MEMORY).
    pub page_memory: Option<usize>,
}

impl IncrementalOptions {
    /// The defaults: skip NULL cursors, no lag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the NULL-cursor policy.
    pub fn null_cursor(mut self, policy: NullCursor) -> Self {
        self.null_cursor = policy;
        self
    }

    /// Sets the lag window.
    pub fn lag(mut self, lag: Lag) -> Self {
        self.lag = Some(lag);
        self
    }

    /// Lets pages grow beyond the batch size (see [`adaptive_pages`](Self::adaptive_pages)).
    pub fn adaptive_pages(mut self, adaptive: bool) -> Self {
        self.adaptive_pages = adaptive;
        self
    }

    /// Bounds adaptive pages to `bytes` of Arrow data (see [`page_memory`](Self::page_memory)).
    pub fn page_memory(mut self, bytes: usize) -> Self {
        self.page_memory = Some(bytes);
        self
    }
}

/// A lag must fit the cursor type: a time window for dates and timestamps, units for integers.
pub(crate) fn check_lag(lag: Option<Lag>, type_name: &str) -> Result<(), PgError> {
    let ok = match lag {
        None => true,
        Some(Lag::Time(_)) => matches!(type_name, "date" | "timestamp" | "timestamptz"),
        Some(Lag::Units(n)) => n >= 0 && matches!(type_name, "int2" | "int4" | "int8"),
    };
    if ok {
        return Ok(());
    }
    let lag = match lag {
        Some(Lag::Time(d)) => format!("{}s", d.as_secs_f64()),
        Some(Lag::Units(n)) => format!("{n} units"),
        None => "none".into(),
    };
    Err(PgError::config(
        "lag",
        format!(
            "a lag of {lag} does not fit a cursor of type {type_name}: date, timestamp and \
             timestamptz cursors take a duration, integer cursors a whole number of units (not \
             negative), other cursors no lag"
        ),
    ))
}

/// A checkpoint must come from a read of the same cursor and key columns.
pub(crate) fn check_checkpoint(
    from: &Checkpoint,
    cursor: &str,
    schema: &TableSchema,
) -> Result<(), PgError> {
    let keys: Vec<&str> = from.primary_key.iter().map(|v| v.column.as_str()).collect();
    if from.cursor.column != cursor || keys != schema.primary_key {
        let list = |names: &[&str]| -> String {
            let quoted: Vec<String> = names.iter().map(|n| crate::echo::quoted(n)).collect();
            quoted.join(", ")
        };
        let table_keys: Vec<&str> = schema.primary_key.iter().map(String::as_str).collect();
        return Err(PgError::config(
            "checkpoint",
            format!(
                "the checkpoint is for cursor {} and key ({}), but this read uses cursor {} and \
                 key ({}) of {}",
                crate::echo::quoted(&from.cursor.column),
                list(&keys),
                crate::echo::quoted(cursor),
                list(&table_keys),
                schema.name
            ),
        ));
    }
    Ok(())
}

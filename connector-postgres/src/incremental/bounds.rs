//! The start of an incremental run: its upper bound, its NULL-cursor count, and with a lag
//! the lower edge of the window it re-reads.
//!
//! All are read once, in the run's `REPEATABLE READ READ ONLY` snapshot, before any page
//! (the pages continue in that snapshot until a fault forces a new connection). Every page
//! is limited to `cursor <= upper`, so a run ends even while writers keep adding rows, and
//! the next run starts where this one stopped. Values are printed in ISO style and UTC (the
//! session's print settings, applied to every fresh transaction) so they parse back to the
//! same value whatever the server settings.
//!
//! The query must cost what the run reads, not what the table holds: `max(cursor)` is one
//! step down an index on the cursor, and the NULL count is a separate `count(*) WHERE
//! cursor IS NULL`, which a btree on the cursor answers from its NULL entries (a column
//! declared `NOT NULL` is not counted at all). Without an index leading with the cursor,
//! both, and every page, scan the table: the query also says whether one exists, so the run
//! can warn once.

use resilience_core::resilient_operation;
use sqlx::AssertSqlSafe;

use super::checkpoint::Lag;
use crate::connector::PostgresConnector;
use crate::error::PgError;
use crate::ident::quote;
use crate::read::Session;

/// What the bounds query needs to know.
#[derive(Clone, Debug)]
pub(crate) struct BoundsQuery<'a> {
    /// The table, quoted and qualified.
    pub table: &'a str,
    /// The cursor column, unquoted.
    pub cursor: &'a str,
    /// The cursor column's type as `format_type` prints it.
    pub cursor_type: &'a str,
    /// The cursor column's type as `pg_type.typname` names it.
    pub cursor_type_name: &'a str,
    /// Whether the cursor column accepts NULL.
    pub nullable: bool,
    /// With a lag and a checkpoint: the checkpoint's cursor value and the lag.
    pub window: Option<(&'a str, Lag)>,
}

/// The run's bounds.
#[derive(Clone, Debug)]
pub(crate) struct Bounds {
    /// The largest cursor value, as text; `None` when no row has a cursor.
    pub upper: Option<String>,
    /// Rows whose cursor is NULL.
    pub null_rows: u64,
    /// With a window: `checkpoint - lag`, as text of [`Lag::window_type`].
    pub window_low: Option<String>,
    /// Whether a valid, non-partial index has the cursor as its first column.
    pub cursor_indexed: bool,
}

impl PostgresConnector {
    /// Reads the bounds of a run as the first step of its `session`, so the pages after it
    /// read the same snapshot.
    #[resilient_operation(key = self.host_key(), name = "incremental_bounds")]
    pub(crate) async fn incremental_bounds(
        &self,
        query: &BoundsQuery<'_>,
        session: &Session,
    ) -> Result<Bounds, PgError> {
        let column = quote(query.cursor)?;
        let table = query.table;
        let nulls = if query.nullable {
            format!("(SELECT count(*) FROM {table} WHERE {column} IS NULL)")
        } else {
            "0::int8".to_owned()
        };
        let low = match &query.window {
            Some((_, lag)) => format!(
                "(($3::{} - $4::{})::{})::text",
                query.cursor_type,
                lag.sql_type(),
                lag.window_type(query.cursor_type_name)
            ),
            None => "NULL::text".to_owned(),
        };
        let sql = format!(
            "SELECT (SELECT max({column})::text FROM {table}), {nulls}, {low}, \
             EXISTS (SELECT 1 FROM pg_catalog.pg_index i \
                     JOIN pg_catalog.pg_attribute a \
                       ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                     WHERE i.indrelid = $1::text::regclass AND a.attname = $2 \
                       AND i.indisvalid AND i.indpred IS NULL)"
        );
        let (checkpoint, lag) = match &query.window {
            Some((value, lag)) => (Some(*value), Some(lag.sql_value())),
            None => (None, None),
        };
        let mut lease = session.step(self).await?;
        // On error the lease is dropped, which discards the connection.
        let (upper, nulls, window_low, cursor_indexed): (
            Option<String>,
            i64,
            Option<String>,
            bool,
        ) = sqlx::query_as(AssertSqlSafe(sql))
            .bind(table)
            .bind(query.cursor)
            .bind(checkpoint)
            .bind(lag)
            .fetch_one(&mut *lease)
            .await?;
        session.keep(lease);
        Ok(Bounds {
            upper,
            null_rows: u64::try_from(nulls).unwrap_or(0),
            window_low,
            cursor_indexed,
        })
    }
}

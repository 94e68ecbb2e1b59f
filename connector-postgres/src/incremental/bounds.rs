//! The start of an incremental run: its upper bound and its NULL-cursor count.
//!
//! Both are read once, in the run's `REPEATABLE READ READ ONLY` snapshot, before any page
//! (the pages continue in that snapshot until a fault forces a new connection). Every page
//! is limited to `cursor <= upper`, so a run ends even while writers keep adding rows, and
//! the next run starts where this one stopped. The bound is printed in ISO style and UTC
//! (the session's print settings, applied to every fresh transaction) so it parses back to
//! the same value whatever the server settings.

use resilience_core::resilient_operation;
use sqlx::AssertSqlSafe;

use crate::ident::quote;
use crate::read::Session;
use crate::{PgError, PostgresConnector};

/// The run's upper bound and how many rows it cannot deliver for a NULL cursor.
#[derive(Clone, Debug)]
pub(crate) struct Bounds {
    /// The largest cursor value, as text; `None` when no row has a cursor.
    pub upper: Option<String>,
    /// Rows whose cursor is NULL.
    pub null_rows: u64,
}

impl PostgresConnector {
    /// Reads the upper bound and the NULL-cursor count of `table` (quoted, qualified) as
    /// the first step of the run's `session`, so the pages after it read the same snapshot.
    #[resilient_operation(key = self.host_key(), name = "incremental_bounds")]
    pub(crate) async fn incremental_bounds(
        &self,
        table: &str,
        cursor: &str,
        session: &Session,
    ) -> Result<Bounds, PgError> {
        let column = quote(cursor)?;
        let sql = format!(
            "SELECT max({column})::text, count(*) FILTER (WHERE {column} IS NULL) FROM {table}"
        );
        let mut lease = session.step(self).await?;
        // On error the lease is dropped, which discards the connection.
        let (upper, nulls): (Option<String>, i64) = sqlx::query_as(AssertSqlSafe(sql))
            .fetch_one(&mut *lease)
            .await?;
        session.keep(lease);
        Ok(Bounds {
            upper,
            null_rows: u64::try_from(nulls).unwrap_or(0),
        })
    }
}

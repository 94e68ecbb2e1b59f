//! The start of an incremental run: its upper bound and its NULL-cursor count.
//!
//! Both are read once, in one `REPEATABLE READ READ ONLY` snapshot, before any page. Every
//! page is then limited to `cursor <= upper`, so a run ends even while writers keep adding
//! rows, and the next run starts where this one stopped. The bound is printed in ISO style
//! and UTC (set locally) so it parses back to the same value whatever the server settings.

use resilience_core::resilient_operation;
use sqlx::{AssertSqlSafe, Connection};

use crate::connector::set_statement_timeout;
use crate::ident::quote;
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
    /// Reads the upper bound and the NULL-cursor count of `table` (quoted, qualified).
    #[resilient_operation(key = self.host_key(), name = "incremental_bounds")]
    pub(crate) async fn incremental_bounds(
        &self,
        table: &str,
        cursor: &str,
    ) -> Result<Bounds, PgError> {
        let column = quote(cursor)?;
        let sql = format!(
            "SELECT max({column})::text, count(*) FILTER (WHERE {column} IS NULL) FROM {table}"
        );
        let mut lease = self.lease().await?;
        let result = async {
            let mut tx = lease
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            set_statement_timeout(&mut tx).await?;
            sqlx::raw_sql("SET LOCAL datestyle = 'ISO, YMD'; SET LOCAL timezone = 'UTC'")
                .execute(&mut *tx)
                .await?;
            let (upper, nulls): (Option<String>, i64) = sqlx::query_as(AssertSqlSafe(sql))
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, PgError>(Bounds {
                upper,
                null_rows: u64::try_from(nulls).unwrap_or(0),
            })
        }
        .await;
        match &result {
            Ok(_) => lease.release(),
            Err(err) => lease.release_after(err),
        }
        result
    }
}

//! Finding values a decimal column cannot hold before a read meets them.
//!
//! Under [`NumericMapping::Decimal`](crate::arrow::NumericMapping) a bounded numeric column
//! becomes `Decimal128`, which has no `NaN` (bounded columns cannot hold an infinity). A read
//! that meets one stops with [`PgError::Unrepresentable`]; a caller that must not stop
//! halfway (an incremental run that would otherwise commit some parts and then fail at the
//! same row on every later run) asks first, for just the rows it is about to read.

use resilience_core::resilient_operation;
use sqlx::{AssertSqlSafe, Connection};

use crate::arrow::PgKind;
use crate::connector::PostgresConnector;
use crate::connector::set_statement_timeout;
use crate::error::PgError;
use crate::ident::quote;
use crate::read::TypedValue;

impl PostgresConnector {
    /// The first decimal-mapped numeric column of `table` (with its type) holding `NaN` in
    /// a row whose `cursor` is at or after `from`, or in any row when `from` is `None`.
    /// `None` when no such value exists (or the table has no decimal column). One scan of
    /// the rows in scope: with an index on the cursor, proportional to those rows.
    #[resilient_operation(key = self.host_key(), name = "find_decimal_nan")]
    pub async fn find_decimal_nan(
        &self,
        table: &str,
        from: Option<&TypedValue>,
    ) -> Result<Option<(String, String)>, PgError> {
        let schema = self.get_schema(table).await?;
        let decimals: Vec<_> = schema
            .columns
            .iter()
            .filter(|c| matches!(c.kind, PgKind::Decimal { .. }))
            .collect();
        if decimals.is_empty() {
            return Ok(None);
        }
        let mut flags = Vec::new();
        let mut any = Vec::new();
        for column in &decimals {
            let quoted = quote(&column.name)?;
            flags.push(format!("bool_or({quoted} = 'NaN')"));
            any.push(format!("{quoted} = 'NaN'"));
        }
        let mut sql = format!(
            "SELECT {} FROM {} WHERE ({})",
            flags.join(", "),
            schema.name.quoted()?,
            any.join(" OR ")
        );
        if let Some(from) = from {
            let cursor = schema.column(&from.column)?;
            sql.push_str(&format!(
                " AND {} >= $1::{}",
                quote(&cursor.name)?,
                cursor.pg_type
            ));
        }
        let mut lease = self.lease().await?;
        let mut tx = lease.begin().await?;
        set_statement_timeout(&mut tx).await?;
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(from) = from {
            query = query.bind(from.value.as_str());
        }
        let row = query.fetch_one(&mut *tx).await?;
        tx.commit().await?;
        lease.release();
        for (i, column) in decimals.iter().enumerate() {
            let found: Option<bool> = sqlx::Row::try_get(&row, i)?;
            if found == Some(true) {
                return Ok(Some((column.name.clone(), column.pg_type.clone())));
            }
        }
        Ok(None)
    }
}

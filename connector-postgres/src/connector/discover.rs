//! `discover`: the tables and views a connector can read, as the catalog names them.
//!
//! Names come from `pg_catalog` exactly as stored (no case folding, no quoting), so the
//! read paths can accept a table only when discovery returned it. System schemas are
//! left out; the schema filter is a bound value.

use resilience_core::resilient_operation;
use serde::Serialize;
use sqlx::{Connection, Row};

use super::{PostgresConnector, set_statement_timeout};
use crate::error::PgError;

/// What kind of relation a discovered table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// An ordinary table.
    Table,
    /// A partitioned table (its partitions are listed too).
    PartitionedTable,
    /// A view.
    View,
    /// A materialized view.
    MaterializedView,
    /// A foreign table.
    ForeignTable,
}

impl TableKind {
    fn from_relkind(kind: &str) -> Option<TableKind> {
        Some(match kind {
            "r" => TableKind::Table,
            "p" => TableKind::PartitionedTable,
            "v" => TableKind::View,
            "m" => TableKind::MaterializedView,
            "f" => TableKind::ForeignTable,
            _ => return None,
        })
    }
}

/// A table or view found in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DiscoveredTable {
    /// The schema, as the catalog spells it.
    pub schema: String,
    /// The name, as the catalog spells it.
    pub name: String,
    /// Table, view, ...
    pub kind: TableKind,
}

const DISCOVER_SQL: &str = "\
SELECT n.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS kind
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND CASE WHEN $1::text IS NULL
           THEN n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_toast%'
                AND n.nspname NOT LIKE 'pg\\_temp\\_%'
           ELSE n.nspname = $1::text END
ORDER BY 1, 2";

const SCHEMAS_SQL: &str = "\
SELECT nspname::text FROM pg_catalog.pg_namespace
WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
ORDER BY 1";

impl PostgresConnector {
    /// Tables and views of the configured schema, or of every non-system schema when
    /// none is configured, sorted by schema and name. A configured schema that does not
    /// exist is a configuration error listing the schemas that do.
    #[resilient_operation]
    pub async fn discover(&self) -> Result<Vec<DiscoveredTable>, PgError> {
        let schema = self.link("discover")?.params().schema.clone();
        let mut lease = self.lease().await?;
        let mut tx = lease.begin().await?;
        set_statement_timeout(&mut tx).await?;
        let rows = sqlx::query(DISCOVER_SQL)
            .bind(&schema)
            .fetch_all(&mut *tx)
            .await?;
        let known: Vec<String> = match &schema {
            Some(_) if rows.is_empty() => {
                sqlx::query_scalar(SCHEMAS_SQL).fetch_all(&mut *tx).await?
            }
            _ => Vec::new(),
        };
        tx.commit().await?;
        lease.release();
        self.mark_ready();
        if let Some(schema) = schema.filter(|s| rows.is_empty() && !known.contains(s)) {
            return Err(PgError::config(
                "schema",
                format!(
                    "`{schema}` does not exist, expected one of: {}",
                    known.join(", ")
                ),
            ));
        }
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(DiscoveredTable {
                    schema: row.try_get("schema")?,
                    name: row.try_get("name")?,
                    kind: TableKind::from_relkind(&kind)
                        .ok_or_else(|| PgError::data(format!("unexpected relkind `{kind}`")))?,
                })
            })
            .collect()
    }
}

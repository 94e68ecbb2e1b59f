//! Table schemas from the catalog: columns, types, nullability, primary key.
//!
//! Everything a read needs to build SQL and decode rows comes from `pg_catalog` in one place:
//! the column list in table order with each column's decoding ([`PgKind`]), the primary key
//! in index order (it drives paging), and the Arrow schema the batches will carry.

use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};
use sqlx::PgConnection;
use sqlx::postgres::types::Oid;

use resilience_core::resilient_operation;

use crate::arrow::{NumericMapping, PgKind, field};
use crate::connector::PostgresConnector;
use crate::error::PgError;
use crate::ident::{self, QualifiedName};

/// One column as the catalog describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnInfo {
    /// The column name, unquoted, as the catalog spells it.
    pub name: String,
    /// The type as `format_type` prints it, e.g. `numeric(12,2)` or `timestamp with time zone`.
    pub pg_type: String,
    /// The catalog name (`pg_type.typname`) of the column's type, or of a domain's base
    /// type, e.g. `numeric` or `timestamptz`.
    pub type_name: String,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// How values are selected and decoded.
    pub kind: PgKind,
}

/// A table's shape: columns, primary key and the Arrow schema of its batches.
#[derive(Clone, Debug)]
pub struct TableSchema {
    /// The table, named as the catalog names it.
    pub name: QualifiedName,
    /// Columns in table order.
    pub columns: Vec<ColumnInfo>,
    /// Primary-key column names in key order; empty when the table has none.
    pub primary_key: Vec<String>,
    /// The Arrow schema of a full-width batch (all columns, table order).
    pub arrow: SchemaRef,
}

impl TableSchema {
    /// The column called `name` (exact spelling), or an error listing the table's columns.
    pub fn column(&self, name: &str) -> Result<&ColumnInfo, PgError> {
        self.columns.iter().find(|c| c.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
            PgError::invalid_input(format!(
                "column {} is not in table {}; its columns are: {}",
                crate::echo::quoted(name),
                self.name,
                known.join(", ")
            ))
        })
    }

    /// The Arrow schema for a subset of columns, in the order given.
    pub fn arrow_for(&self, columns: &[&ColumnInfo]) -> SchemaRef {
        let fields: Vec<_> = columns
            .iter()
            .map(|c| field(&c.name, c.kind, &c.pg_type, &c.type_name, c.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// Loads the schema of `schema.table`, which must be spelled as the catalog spells it,
/// mapping numeric columns as `numeric` says. A domain column is decoded as its base type
/// (found through any chain of domains, with the typmod the chain declares).
pub(crate) async fn load(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    numeric: NumericMapping,
) -> Result<TableSchema, PgError> {
    let (name, oid) = ident::resolve(conn, schema, table).await?;
    let rows: Vec<(String, String, i32, String, bool)> = sqlx::query_as(
        "SELECT a.attname::text, b.typname::text, b.typmod, \
                pg_catalog.format_type(a.atttypid, a.atttypmod), NOT a.attnotnull \
         FROM pg_catalog.pg_attribute a \
         CROSS JOIN LATERAL ( \
             WITH RECURSIVE chain(oid, typmod, depth) AS ( \
                 SELECT a.atttypid, a.atttypmod, 0 \
                 UNION ALL \
                 SELECT t.typbasetype, \
                        CASE WHEN t.typtypmod <> -1 THEN t.typtypmod ELSE c.typmod END, \
                        c.depth + 1 \
                 FROM chain c JOIN pg_catalog.pg_type t ON t.oid = c.oid \
                 WHERE t.typtype = 'd' AND c.depth < 32 \
             ) \
             SELECT t.typname, c.typmod FROM chain c \
             JOIN pg_catalog.pg_type t ON t.oid = c.oid \
             ORDER BY c.depth DESC LIMIT 1 \
         ) b \
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(Oid(oid))
    .fetch_all(&mut *conn)
    .await?;
    let columns: Vec<ColumnInfo> = rows
        .into_iter()
        .map(|(name, type_name, typmod, pg_type, nullable)| ColumnInfo {
            kind: PgKind::from_pg_with(&type_name, typmod, numeric),
            name,
            pg_type,
            type_name,
            nullable,
        })
        .collect();
    let primary_key: Vec<(String,)> = sqlx::query_as(
        "SELECT a.attname::text \
         FROM pg_catalog.pg_index i \
         CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
         WHERE i.indrelid = $1 AND i.indisprimary \
         ORDER BY k.ord",
    )
    .bind(Oid(oid))
    .fetch_all(&mut *conn)
    .await?;
    let mut schema = TableSchema {
        name,
        columns,
        primary_key: primary_key.into_iter().map(|(n,)| n).collect(),
        arrow: Arc::new(Schema::empty()),
    };
    let all: Vec<&ColumnInfo> = schema.columns.iter().collect();
    schema.arrow = schema.arrow_for(&all);
    Ok(schema)
}

impl PostgresConnector {
    /// The schema of `table` in the connector's schema: columns, types, nullability, primary
    /// key and the Arrow schema of its batches. The table name must be spelled exactly as
    /// [`discover`](PostgresConnector::discover) lists it.
    #[resilient_operation(key = self.host_key(), name = "get_schema")]
    pub async fn get_schema(&self, table: &str) -> Result<TableSchema, PgError> {
        let mut lease = self.lease().await?;
        match load(&mut lease, self.schema(), table, self.numeric_mapping()).await {
            Ok(schema) => {
                lease.release();
                self.mark_ready();
                Ok(schema)
            }
            Err(err) => {
                lease.release_after(&err);
                Err(err)
            }
        }
    }
}

//! The SQL of a keyset read, built once per read.
//!
//! A plan orders by its key columns (an optional cursor, then the primary key), selects the
//! requested columns plus any key column not requested (dropped again before a batch is
//! handed out), and knows how to read the position of the last row back as typed text.
//! Values are always bound as text and cast to the column's own type (`$3::timestamptz`),
//! so positions keep full precision; identifiers are always quoted.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::page::{Bind, PageRequest};
use super::{DataChunk, TypedValue};
use crate::PgError;
use crate::arrow::{PgKind, text};
use crate::catalog::{ColumnInfo, TableSchema};
use crate::ident::quote;

/// Extra WHERE conditions a caller adds to every page, using parameters `$1..` in order,
/// and extra computed columns it reads back from each page.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filters {
    /// SQL fragments, ANDed together.
    pub sql: Vec<String>,
    /// The parameters the fragments refer to.
    pub binds: Vec<Bind>,
    /// `(name, SQL expression)` of `bigint` columns selected after the table's columns and
    /// dropped before a batch is handed out, like key columns added for paging.
    pub computed: Vec<(String, String)>,
}

/// A keyset-paged read of one table.
#[derive(Clone, Debug)]
pub(crate) struct KeysetPlan {
    sql_first: Arc<str>,
    sql_next: Arc<str>,
    binds: Vec<Bind>,
    schema: SchemaRef,
    kinds: Vec<PgKind>,
    /// (name, pg_type, index in the SELECT list) of each key column, in order.
    keys: Vec<(String, String, usize)>,
    /// (name, index in the SELECT list) of each computed column.
    computed: Vec<(String, usize)>,
    outputs: usize,
    /// The page size.
    pub limit: usize,
}

/// Whether a column can carry a keyset position (printed and bound back exactly, with a
/// btree order): not `json` (no order), `bool` (two values), nor floats, which are refused
/// as keys as they are as cursors (approximate values make poor positions).
pub(crate) fn is_key_kind(kind: PgKind) -> bool {
    !matches!(
        kind,
        PgKind::Float4 | PgKind::Float8 | PgKind::Bool | PgKind::Json | PgKind::Jsonb
    )
}

impl KeysetPlan {
    /// A plan ordered by `leading` columns then the primary key; `None` when the table has no
    /// primary key or one whose type cannot carry a position (float, bool, bytea).
    pub(crate) fn new(
        schema: &TableSchema,
        selected: &[String],
        leading: &[&str],
        limit: usize,
    ) -> Result<Option<Self>, PgError> {
        Self::with_filters(schema, selected, leading, Filters::default(), limit)
    }

    /// As [`new`](Self::new), with extra conditions on every page.
    pub(crate) fn with_filters(
        schema: &TableSchema,
        selected: &[String],
        leading: &[&str],
        filters: Filters,
        limit: usize,
    ) -> Result<Option<Self>, PgError> {
        if limit == 0 {
            return Err(PgError::invalid_input("batch_size must be at least 1"));
        }
        let pk_usable = !schema.primary_key.is_empty()
            && schema
                .primary_key
                .iter()
                .all(|k| schema.column(k).is_ok_and(|c| is_key_kind(c.kind)));
        if !pk_usable {
            return Ok(None);
        }
        let mut key_names: Vec<&str> = leading.to_vec();
        key_names.extend(schema.primary_key.iter().map(String::as_str));
        let mut list: Vec<&ColumnInfo> = Vec::with_capacity(selected.len() + key_names.len());
        for name in selected {
            list.push(schema.column(name)?);
        }
        let outputs = list.len();
        let mut keys = Vec::with_capacity(key_names.len());
        for name in &key_names {
            let column = schema.column(name)?;
            let index = match list.iter().position(|c| c.name == *name) {
                Some(i) => i,
                None => {
                    list.push(column);
                    list.len() - 1
                }
            };
            keys.push((column.name.clone(), column.pg_type.clone(), index));
        }
        let mut select = list
            .iter()
            .map(|c| c.kind.select_expr(&c.name))
            .collect::<Result<Vec<_>, _>>()?;
        let mut arrow_fields: Vec<Field> = schema
            .arrow_for(&list)
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut kinds: Vec<PgKind> = list.iter().map(|c| c.kind).collect();
        let mut computed = Vec::with_capacity(filters.computed.len());
        for (name, expr) in &filters.computed {
            select.push(format!("{expr} AS {}", quote(name)?));
            computed.push((name.clone(), arrow_fields.len()));
            arrow_fields.push(Field::new(name, DataType::Int64, false));
            kinds.push(PgKind::Int8);
        }
        let select = select.join(", ");
        let key_cols = key_names
            .iter()
            .map(|n| quote(n))
            .collect::<Result<Vec<_>, _>>()?
            .join(", ");
        let first_param = filters.binds.len() + 1;
        let after = keys
            .iter()
            .enumerate()
            .map(|(i, (_, ty, _))| format!("${}::{ty}", first_param + i))
            .collect::<Vec<_>>()
            .join(", ");
        let table = schema.name.quoted()?;
        let build = |extra: Option<String>| -> Arc<str> {
            let conds: Vec<String> = filters.sql.iter().cloned().chain(extra).collect();
            let filter = if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            };
            // One row more than the page holds: its presence says another page follows, so
            // a read whose last page is full ends without fetching an empty one.
            Arc::from(format!(
                "SELECT {select} FROM {table}{filter} ORDER BY {key_cols} LIMIT {}",
                limit.saturating_add(1)
            ))
        };
        Ok(Some(Self {
            sql_first: build(None),
            sql_next: build(Some(format!("({key_cols}) > ({after})"))),
            binds: filters.binds,
            schema: Arc::new(Schema::new(arrow_fields)),
            kinds,
            keys,
            computed,
            outputs,
            limit,
        }))
    }

    /// The page starting after the key `after` (from the start when `None`).
    pub(crate) fn request(&self, after: Option<&[String]>) -> PageRequest {
        let mut binds = self.binds.clone();
        let sql = match after {
            Some(values) => {
                binds.extend(values.iter().cloned().map(Bind::Text));
                Arc::clone(&self.sql_next)
            }
            None => Arc::clone(&self.sql_first),
        };
        PageRequest {
            sql,
            binds,
            schema: Arc::clone(&self.schema),
            kinds: self.kinds.clone(),
            limit: self.limit,
        }
    }

    /// The key of the last row of `batch` as typed text.
    pub(crate) fn last_key(&self, batch: &RecordBatch) -> Result<Vec<TypedValue>, PgError> {
        let row = batch
            .num_rows()
            .checked_sub(1)
            .ok_or_else(|| PgError::data("an empty page has no last key"))?;
        self.keys
            .iter()
            .map(|(column, pg_type, index)| {
                let field = batch.schema_ref().field(*index).clone();
                let value =
                    text::value_text_of(batch.column(*index), &field, row).ok_or_else(|| {
                        PgError::data(format!(
                            "key column {column:?} is NULL or cannot be printed"
                        ))
                    })?;
                Ok(TypedValue {
                    column: column.clone(),
                    pg_type: pg_type.clone(),
                    value,
                })
            })
            .collect()
    }

    /// The requested columns of `batch`, without key columns added for paging.
    pub(crate) fn project(&self, batch: &RecordBatch) -> Result<RecordBatch, PgError> {
        if batch.num_columns() == self.outputs {
            return Ok(batch.clone());
        }
        Ok(batch.project(&(0..self.outputs).collect::<Vec<_>>())?)
    }

    /// A read chunk for a fetched page.
    pub(crate) fn chunk(&self, batch: &RecordBatch) -> Result<DataChunk, PgError> {
        Ok(DataChunk {
            position: Some(self.last_key(batch)?),
            batch: self.project(batch)?,
            resumable: true,
        })
    }

    /// Where each key column sits in a fetched batch, in key order.
    pub(crate) fn key_indices(&self) -> Vec<usize> {
        self.keys.iter().map(|(_, _, index)| *index).collect()
    }

    /// Where the computed column `name` sits in a fetched batch.
    pub(crate) fn computed_index(&self, name: &str) -> Option<usize> {
        self.computed
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, index)| *index)
    }

    /// The raw values of a chunk's position, for the next request.
    pub(crate) fn values(chunk: &DataChunk) -> Vec<String> {
        chunk
            .position
            .iter()
            .flatten()
            .map(|v| v.value.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::Schema;

    use super::*;
    use crate::ident::QualifiedName;

    fn column(name: &str, type_name: &str, pg_type: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            pg_type: pg_type.into(),
            type_name: type_name.into(),
            nullable: false,
            kind: PgKind::from_pg(type_name, -1),
        }
    }

    fn table(primary_key: &[&str]) -> TableSchema {
        TableSchema {
            name: QualifiedName::new("s", "t \"x\""),
            columns: vec![
                column("id", "uuid", "uuid"),
                column("day", "date", "date"),
                column("v", "float8", "double precision"),
            ],
            primary_key: primary_key.iter().map(|k| (*k).to_owned()).collect(),
            arrow: Arc::new(Schema::empty()),
        }
    }

    #[test]
    fn pages_by_the_key_with_typed_casts_and_adds_missing_key_columns() {
        let plan = KeysetPlan::new(&table(&["day", "id"]), &["v".into()], &[], 10)
            .unwrap()
            .unwrap();
        let first = plan.request(None);
        assert_eq!(
            &*first.sql,
            "SELECT \"v\", \"day\", \"id\" FROM \"s\".\"t \"\"x\"\"\" \
             ORDER BY \"day\", \"id\" LIMIT 11"
        );
        let next = plan.request(Some(&["2024-01-01".into(), "a-b".into()]));
        assert!(
            next.sql
                .contains("WHERE (\"day\", \"id\") > ($1::date, $2::uuid) ORDER BY")
        );
        assert_eq!(plan.key_indices(), [1, 2]);
    }

    #[test]
    fn filters_take_the_first_parameters() {
        let filters = Filters {
            sql: vec!["\"day\" <= $1::date".into()],
            binds: vec![Bind::Text("2024-12-31".into())],
            computed: vec![("x".into(), "age(xmin)".into())],
        };
        let plan = KeysetPlan::with_filters(&table(&["id"]), &["v".into()], &["day"], filters, 5)
            .unwrap()
            .unwrap();
        let next = plan.request(Some(&["2024-01-01".into(), "k".into()]));
        assert!(next.sql.contains(
            "WHERE \"day\" <= $1::date AND (\"day\", \"id\") > ($2::date, $3::uuid) ORDER BY \"day\", \"id\""
        ), "{}", next.sql);
        // The computed column comes after the added key columns and is not an output.
        assert!(
            next.sql
                .starts_with("SELECT \"v\", \"day\", \"id\", age(xmin) AS \"x\" FROM"),
            "{}",
            next.sql
        );
        assert_eq!(plan.computed_index("x"), Some(3));
        assert_eq!(next.kinds.len(), 4);
        assert_eq!(next.schema.field(3).data_type(), &DataType::Int64);
    }

    #[test]
    fn no_usable_key_means_no_plan() {
        assert!(
            KeysetPlan::new(&table(&[]), &["v".into()], &[], 10)
                .unwrap()
                .is_none()
        );
        assert!(
            KeysetPlan::new(&table(&["v"]), &["v".into()], &[], 10)
                .unwrap()
                .is_none()
        );
        assert!(KeysetPlan::new(&table(&["id"]), &["v".into()], &[], 0).is_err());
    }
}

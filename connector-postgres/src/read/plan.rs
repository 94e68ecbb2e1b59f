//! The SQL of a keyset read, built once per read.
//!
//! A plan orders by its key columns (an optional cursor, then the primary key), selects the
//! requested columns plus any key column not requested (dropped again before a batch is
//! handed out), and knows how to read the position of the last row back as typed text.
//! Values are always passed as text and cast to the column's own type (`$3::timestamptz`),
//! so positions keep full precision; identifiers are always quoted.
//!
//! A page's SQL is written per page, for its row limit and its path: with parameters for a
//! query, or with the same values as quoted literals inside a binary `COPY`, which takes no
//! parameters. A page asks for one row more than its limit: the extra row only says that
//! more rows follow, so a read ends on a short page and never needs a last, empty one.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::copy::literal;
use super::page::{Bind, PagePath, PageRequest};
use super::{DataChunk, TypedValue};
use crate::arrow::{PgKind, text};
use crate::catalog::{ColumnInfo, TableSchema};
use crate::error::PgError;
use crate::ident::quote;

/// Extra WHERE conditions a caller adds to every page, using parameters `$1..` in order.
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

/// A range of the first key column, `lower <= key < upper` (either end open), as
/// PostgreSQL input text: the share of a table one partition reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyRange {
    /// The smallest key value in the range, inclusive.
    pub lower: Option<String>,
    /// The first key value after the range, exclusive.
    pub upper: Option<String>,
}

/// A keyset-paged read of one table; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct KeysetPlan {
    inner: Arc<Inner>,
    /// The page size the plan was made with.
    pub limit: usize,
}

#[derive(Debug)]
struct Inner {
    /// The table, quoted and qualified.
    table: String,
    /// The first key column's name, as the catalog spells it.
    first_key_name: String,
    /// `SELECT <list> FROM <table>`.
    select_from: String,
    /// The quoted key columns, comma-separated.
    key_cols: String,
    /// The first key column, quoted, and its type (the column partitions split).
    first_key: (String, String),
    filters: Filters,
    range: KeyRange,
    schema: SchemaRef,
    kinds: Vec<PgKind>,
    /// (name, pg_type, index in the SELECT list) of each key column, in order.
    keys: Vec<(String, String, usize)>,
    /// (name, index in the SELECT list) of each computed column.
    computed: Vec<(String, usize)>,
    outputs: usize,
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
        let first_key = (quote(key_names[0])?, keys[0].1.clone());
        let table = schema.name.quoted()?;
        Ok(Some(Self {
            inner: Arc::new(Inner {
                select_from: format!("SELECT {select} FROM {table}"),
                table,
                first_key_name: key_names[0].to_owned(),
                key_cols,
                first_key,
                filters,
                range: KeyRange::default(),
                schema: Arc::new(Schema::new(arrow_fields)),
                kinds,
                keys,
                computed,
                outputs,
            }),
            limit,
        }))
    }

    /// The same plan limited to `range` of the first key column.
    pub(crate) fn within(&self, range: KeyRange) -> Self {
        let inner = &self.inner;
        KeysetPlan {
            inner: Arc::new(Inner {
                table: inner.table.clone(),
                first_key_name: inner.first_key_name.clone(),
                select_from: inner.select_from.clone(),
                key_cols: inner.key_cols.clone(),
                first_key: inner.first_key.clone(),
                filters: inner.filters.clone(),
                range,
                schema: Arc::clone(&inner.schema),
                kinds: inner.kinds.clone(),
                keys: inner.keys.clone(),
                computed: inner.computed.clone(),
                outputs: inner.outputs,
            }),
            limit: self.limit,
        }
    }

    /// The table, quoted and qualified.
    pub(crate) fn table_name(&self) -> &str {
        &self.inner.table
    }

    /// The table as an escaped literal, for `::regclass`.
    pub(crate) fn table_oid_expr(&self) -> String {
        literal(&self.inner.table)
    }

    /// The first key column's name.
    pub(crate) fn first_key_name(&self) -> &str {
        &self.inner.first_key_name
    }

    /// The first key column, quoted.
    pub(crate) fn first_key_quoted(&self) -> &str {
        &self.inner.first_key.0
    }

    /// Whether pages can be fetched by binary COPY: only when no caller filter needs
    /// parameters (the position and range become literals).
    pub(crate) fn supports_copy(&self) -> bool {
        self.inner.filters.sql.is_empty()
    }

    /// The page of at most `limit` rows starting after the key `after` (from the start when
    /// `None`), fetched by `path`.
    pub(crate) fn page(
        &self,
        after: Option<Vec<String>>,
        limit: usize,
        path: PagePath,
    ) -> PageRequest {
        PageRequest {
            plan: self.clone(),
            after,
            limit: limit.max(1),
            path,
            shrink: true,
        }
    }

    /// The statement of a page: `LIMIT limit + 1`, the range and position as parameters
    /// (query) or literals (COPY, which is returned whole).
    pub(crate) fn sql(
        &self,
        after: Option<&[String]>,
        limit: usize,
        path: PagePath,
    ) -> (String, Vec<Bind>) {
        let inner = &*self.inner;
        let mut binds = inner.filters.binds.clone();
        let mut conds = inner.filters.sql.clone();
        let mut arg = |value: &str, ty: &str| match path {
            PagePath::Query => {
                binds.push(Bind::Text(value.to_owned()));
                format!("${}::{ty}", binds.len())
            }
            PagePath::Copy => format!("{}::{ty}", literal(value)),
        };
        let (first, first_ty) = &inner.first_key;
        if let Some(lower) = &inner.range.lower {
            conds.push(format!("{first} >= {}", arg(lower, first_ty)));
        }
        if let Some(upper) = &inner.range.upper {
            conds.push(format!("{first} < {}", arg(upper, first_ty)));
        }
        if let Some(values) = after {
            let args = inner
                .keys
                .iter()
                .zip(values)
                .map(|((_, ty, _), v)| arg(v, ty))
                .collect::<Vec<_>>()
                .join(", ");
            conds.push(format!("({}) > ({args})", inner.key_cols));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let fetch = limit.saturating_add(1);
        let select = format!("{}{filter} ORDER BY {}", inner.select_from, inner.key_cols);
        match path {
            PagePath::Query => {
                binds.push(Bind::Int(i64::try_from(fetch).unwrap_or(i64::MAX)));
                (format!("{select} LIMIT ${}", binds.len()), binds)
            }
            PagePath::Copy => (
                format!("COPY ({select} LIMIT {fetch}) TO STDOUT (FORMAT binary)"),
                Vec::new(),
            ),
        }
    }

    /// The Arrow schema of a fetched page (before projection).
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.inner.schema
    }

    /// How each column of a fetched page is decoded.
    pub(crate) fn kinds(&self) -> &[PgKind] {
        &self.inner.kinds
    }

    /// The key of the last row of `batch` as typed text.
    pub(crate) fn last_key(&self, batch: &RecordBatch) -> Result<Vec<TypedValue>, PgError> {
        let row = batch
            .num_rows()
            .checked_sub(1)
            .ok_or_else(|| PgError::data("an empty page has no last key"))?;
        self.inner
            .keys
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
        if batch.num_columns() == self.inner.outputs {
            return Ok(batch.clone());
        }
        Ok(batch.project(&(0..self.inner.outputs).collect::<Vec<_>>())?)
    }

    /// A read chunk for a fetched page.
    pub(crate) fn chunk(&self, batch: &RecordBatch) -> Result<DataChunk, PgError> {
        Ok(DataChunk {
            position: Some(self.last_key(batch)?),
            batch: self.project(batch)?,
            resumable: true,
            partition: 0,
        })
    }

    /// Where each key column sits in a fetched batch, in key order.
    pub(crate) fn key_indices(&self) -> Vec<usize> {
        self.inner.keys.iter().map(|(_, _, index)| *index).collect()
    }

    /// Where the computed column `name` sits in a fetched batch.
    pub(crate) fn computed_index(&self, name: &str) -> Option<usize> {
        self.inner
            .computed
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, index)| *index)
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
        let (first, binds) = plan.sql(None, 10, PagePath::Query);
        assert_eq!(
            first,
            "SELECT \"v\", \"day\", \"id\" FROM \"s\".\"t \"\"x\"\"\" \
             ORDER BY \"day\", \"id\" LIMIT $1"
        );
        assert!(
            matches!(binds[..], [Bind::Int(11)]),
            "one row more than the page"
        );
        let after = ["2024-01-01".to_owned(), "a-b".to_owned()];
        let (next, _) = plan.sql(Some(&after), 10, PagePath::Query);
        assert!(next.contains("WHERE (\"day\", \"id\") > ($1::date, $2::uuid) ORDER BY"));
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
        let after = ["2024-01-01".to_owned(), "k".to_owned()];
        let (next, binds) = plan.sql(Some(&after), 5, PagePath::Query);
        assert!(next.contains(
            "WHERE \"day\" <= $1::date AND (\"day\", \"id\") > ($2::date, $3::uuid) ORDER BY \"day\", \"id\" LIMIT $4"
        ), "{next}");
        assert_eq!(binds.len(), 4);
        assert!(!plan.supports_copy());
        // The computed column comes after the added key columns and is not an output.
        assert!(
            next.starts_with("SELECT \"v\", \"day\", \"id\", age(xmin) AS \"x\" FROM"),
            "{next}"
        );
        assert_eq!(plan.computed_index("x"), Some(3));
        assert_eq!(plan.kinds().len(), 4);
        assert_eq!(plan.schema().field(3).data_type(), &DataType::Int64);
    }

    #[test]
    fn copy_pages_carry_range_and_position_as_literals() {
        let plan = KeysetPlan::new(&table(&["id"]), &["v".into()], &[], 10)
            .unwrap()
            .unwrap()
            .within(KeyRange {
                lower: Some("a'1".into()),
                upper: Some("b".into()),
            });
        assert!(plan.supports_copy());
        let (sql, binds) = plan.sql(Some(&["a\\'2".to_owned()]), 10, PagePath::Copy);
        assert!(binds.is_empty());
        assert_eq!(
            sql,
            "COPY (SELECT \"v\", \"id\" FROM \"s\".\"t \"\"x\"\"\" WHERE \"id\" >= E'a''1'::uuid \
             AND \"id\" < E'b'::uuid AND (\"id\") > (E'a\\\\''2'::uuid) ORDER BY \"id\" LIMIT 11) \
             TO STDOUT (FORMAT binary)"
        );
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

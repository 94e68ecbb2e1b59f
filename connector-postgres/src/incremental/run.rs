//! One incremental run: its checks, its filters and, page by page, its checkpoints.
//!
//! Without a lag a run continues after the checkpoint's position. With one it re-reads from
//! the window's lower edge (`checkpoint - lag`, never below what earlier windows covered),
//! skipping what the checkpoint's [`LagWindow`] says was delivered, and records what it
//! reads in a [`Tracker`]. A checkpoint written by an earlier version, listing delivered
//! rows, is converted once ([`super::legacy`]); one written without a lag starts the window
//! at its position.

use arrow_array::RecordBatch;

use super::bounds::BoundsQuery;
use super::checkpoint::{self, Checkpoint, IncrementalOptions, NullCursor};
use super::filter::{self, SNAPSHOT_COLUMN, XID_COLUMN};
use super::seen::{LagWindow, Low};
use super::window::{Columns, Tracker};
use super::{IncrementalChunk, Lag};
use crate::arrow::text;
use crate::catalog::TableSchema;
use crate::connector::PostgresConnector;
use crate::error::PgError;
use crate::ident::quote;
use crate::read::page::Bind;
use crate::read::plan::{Filters, KeysetPlan};
use crate::read::{Session, Sizing, TypedValue};

/// Cursor column types an incremental read accepts (`pg_type.typname`).
const CURSOR_TYPES: [&str; 10] = [
    "int2",
    "int4",
    "int8",
    "numeric",
    "date",
    "timestamp",
    "timestamptz",
    "text",
    "varchar",
    "bpchar",
];

/// A run in progress.
pub(super) struct Run {
    pub(super) plan: KeysetPlan,
    pub(super) session: Session,
    /// How many rows the next page asks for (adaptive, as for full reads).
    pub(super) sizing: Sizing,
    table: String,
    upper: String,
    null_rows: u64,
    /// With a lag: what the run reads, and the furthest position delivered so far.
    lag: Option<LagRun>,
}

struct LagRun {
    tracker: Tracker,
    best: Option<(TypedValue, Vec<TypedValue>)>,
    xid: usize,
    snapshot: usize,
}

impl PostgresConnector {
    /// Validates the request, reads the run's bounds and builds its plan; `None` when no row
    /// has a cursor. Also returns the position the first page starts after.
    pub(super) async fn start_run(
        &self,
        table: &str,
        cursor_field: &str,
        from: Option<Checkpoint>,
        batch_size: usize,
        options: IncrementalOptions,
    ) -> Result<Option<(Run, Option<Vec<String>>)>, PgError> {
        let adaptive = options.adaptive_pages;
        let page_memory = options.page_memory.unwrap_or(crate::DEFAULT_PAGE_MEMORY);
        let schema = self.get_schema(table).await?;
        let cursor = schema.column(cursor_field)?;
        if !CURSOR_TYPES.contains(&cursor.type_name.as_str()) {
            return Err(PgError::invalid_input(format!(
                "cursor column {} has type {}; allowed cursor types: smallint, \
                 integer, bigint, numeric, date, timestamp, timestamptz, text, varchar, char",
                crate::echo::quoted(cursor_field),
                cursor.pg_type
            )));
        }
        checkpoint::check_lag(options.lag, &cursor.type_name)?;
        if let Some(from) = &from {
            checkpoint::check_checkpoint(from, cursor_field, &schema)?;
            if let Some(window) = &from.lag_window {
                window.check_keys(schema.primary_key.len())?;
            }
        }
        let session = Session::default();
        let quoted = schema.name.quoted()?;
        let window_from = match (options.lag, &from) {
            (Some(lag), Some(from)) => Some((from.cursor.value.as_str(), lag)),
            _ => None,
        };
        let bounds = self
            .incremental_bounds(
                &BoundsQuery {
                    table: &quoted,
                    cursor: cursor_field,
                    cursor_type: &cursor.pg_type,
                    cursor_type_name: &cursor.type_name,
                    nullable: cursor.nullable,
                    window: window_from,
                },
                &session,
            )
            .await?;
        if bounds.null_rows > 0 {
            if options.null_cursor == NullCursor::Error {
                return Err(PgError::NullCursor {
                    rows: bounds.null_rows,
                    table: schema.name.to_string(),
                    column: cursor_field.to_owned(),
                });
            }
            tracing::warn!(table = %schema.name, cursor = cursor_field, rows = bounds.null_rows,
                "skipping rows whose cursor is NULL");
        }
        if !bounds.cursor_indexed {
            let advice = format!(
                "no index of {} starts with the cursor column {cursor_field:?}, so every page \
                 of this read scans the whole table; `CREATE INDEX ON {quoted} ({})` makes each \
                 page cost only the rows it reads",
                schema.name,
                quote(cursor_field)?
            );
            tracing::warn!(table = %schema.name, cursor = cursor_field, "{advice}");
        }
        let Some(upper) = bounds.upper else {
            session.finish().await;
            return Ok(None);
        };
        let ty = &cursor.pg_type;
        let column = quote(cursor_field)?;
        let mut filters = Filters::default();
        filters.sql.push(format!("{column} <= $1::{ty}"));
        filters.binds.push(Bind::Text(upper.clone()));
        let mut after = None;
        let mut lag_state = None;
        match (options.lag, &from) {
            (None, None) => {}
            (None, Some(from)) => after = Some(position(from)),
            (Some(_), None) => lag_state = Some((LagWindow::default(), None)),
            (Some(lag), Some(from)) => {
                add(
                    &mut filters,
                    |n| {
                        format!(
                            "{column} >= (SELECT ${n}::{ty} - ${}::{})",
                            n + 1,
                            lag.sql_type()
                        )
                    },
                    [from.cursor.value.clone(), lag.sql_value()],
                );
                let base = match (&from.lag_window, from.recent.is_empty()) {
                    (Some(window), _) => (**window).clone(),
                    (None, false) => {
                        self.legacy_window(&schema, cursor_field, &from.recent, &session)
                            .await?
                    }
                    (None, true) => LagWindow {
                        low: Some(Low::After(position(from))),
                        runs: Vec::new(),
                    },
                };
                add_low(&mut filters, base.low.as_ref(), &schema, cursor_field, lag)?;
                let low = run_low(base.low.clone(), bounds.window_low);
                lag_state = Some((base, low));
            }
        }
        if let Some((base, _)) = &lag_state {
            filter::add_filter(&mut filters, base, &schema, cursor_field)?;
        }
        let all: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
        let plan = KeysetPlan::with_filters(&schema, &all, &[cursor_field], filters, batch_size)?
            .ok_or_else(|| {
            PgError::invalid_input(format!(
                "table {} has no primary key of an orderable type; an incremental read \
                     needs one to break ties between equal cursor values",
                schema.name
            ))
        })?;
        let lag = match lag_state {
            None => None,
            Some((base, low)) => Some(LagRun {
                xid: plan.computed_index(XID_COLUMN).ok_or_else(missing)?,
                snapshot: plan.computed_index(SNAPSHOT_COLUMN).ok_or_else(missing)?,
                tracker: Tracker::new(base, low, upper.clone()),
                best: from.map(|f| (f.cursor, f.primary_key)),
            }),
        };
        Ok(Some((
            Run {
                plan,
                session,
                sizing: self.single_reader_sizing(batch_size, adaptive, page_memory),
                table: schema.name.to_string(),
                upper,
                null_rows: bounds.null_rows,
                lag,
            },
            after,
        )))
    }
}

fn missing() -> PgError {
    PgError::data("a page lacks the lag window's hidden columns")
}

/// The checkpoint's `(cursor, key...)` values.
fn position(from: &Checkpoint) -> Vec<String> {
    std::iter::once(&from.cursor)
        .chain(&from.primary_key)
        .map(|v| v.value.clone())
        .collect()
}

/// Adds a condition whose parameters are numbered from the next free one. Bound values are
/// cast inside scalar subqueries, evaluated once per query rather than once per row.
fn add<const N: usize>(
    filters: &mut Filters,
    sql: impl FnOnce(usize) -> String,
    values: [String; N],
) {
    filters.sql.push(sql(filters.binds.len() + 1));
    filters.binds.extend(values.into_iter().map(Bind::Text));
}

/// Keeps the read at or above what earlier windows covered.
fn add_low(
    filters: &mut Filters,
    low: Option<&Low>,
    schema: &TableSchema,
    cursor: &str,
    lag: Lag,
) -> Result<(), PgError> {
    let column = quote(cursor)?;
    match low {
        None => {}
        Some(Low::From(value)) => {
            let ty = lag.window_type(&schema.column(cursor)?.type_name);
            add(
                filters,
                |n| format!("{column} >= (SELECT ${n}::{ty})"),
                [value.clone()],
            );
        }
        Some(Low::After(values)) => {
            let mut cols = vec![column];
            let mut types = vec![schema.column(cursor)?.pg_type.clone()];
            for key in &schema.primary_key {
                cols.push(quote(key)?);
                types.push(schema.column(key)?.pg_type.clone());
            }
            let first = filters.binds.len() + 1;
            let params: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(i, ty)| format!("(SELECT ${}::{ty})", first + i))
                .collect();
            filters
                .sql
                .push(format!("({}) > ({})", cols.join(", "), params.join(", ")));
            filters.binds.extend(values.iter().cloned().map(Bind::Text));
        }
    }
    Ok(())
}

/// This run's lower edge: the higher of the window's (`checkpoint - lag`, as the server
/// printed it) and what earlier windows covered. When either cannot be compared, the
/// earlier edge stays, which is safe: the read applies both.
fn run_low(earlier: Option<Low>, window: Option<String>) -> Option<Low> {
    let Some(window) = window else {
        return earlier;
    };
    let ordinal = text::parse_ordinal(&window);
    let edge = |value: Option<&String>| value.and_then(|v| text::parse_ordinal(v));
    match earlier {
        None => Some(Low::From(window)),
        Some(Low::From(value)) => match (ordinal, edge(Some(&value))) {
            (Some(w), Some(e)) if w > e => Some(Low::From(window)),
            _ => Some(Low::From(value)),
        },
        Some(Low::After(position)) => match (ordinal, edge(position.first())) {
            (Some(w), Some(e)) if w > e => Some(Low::From(window)),
            _ => Some(Low::After(position)),
        },
    }
}

impl Run {
    /// The chunk for a fetched page (`last` when it is the run's final page) and the
    /// position the next page starts after, `None` when the run ends with this chunk.
    pub(super) fn chunk(
        &mut self,
        batch: &RecordBatch,
        last: bool,
    ) -> Result<(IncrementalChunk, Option<Vec<String>>), PgError> {
        let mut batch = batch.clone();
        let mut more = !last;
        let mut lag_window = None;
        let mut keys = self.plan.last_key(&batch)?;
        if let Some(lag) = &mut self.lag {
            let indices = self.plan.key_indices();
            let columns = Columns {
                xid: lag.xid,
                snapshot: lag.snapshot,
                cursor: indices[0],
                keys: &indices[1..],
            };
            let generation = self.session.generation();
            let fits = lag.tracker.fits(&batch, columns, generation, last)?;
            let truncated = fits < batch.num_rows();
            if truncated {
                tracing::warn!(table = %self.table, rows = fits,
                    "the lag window holds rows of very many transactions that committed while \
                     an older transaction was still open; this run stops early so that its \
                     checkpoint stays small, and the next run continues (ending long-running \
                     transactions lets it catch up)");
                batch = batch.slice(0, fits);
                keys = self.plan.last_key(&batch)?;
                more = false;
            }
            let record = lag
                .tracker
                .page(&batch, columns, generation, last && !truncated)?;
            lag_window = Some(Box::new(record));
            let (cursor, key) = (&keys[0], &keys[1..]);
            let ahead = match &lag.best {
                None => true,
                Some((best, _)) => match (
                    text::parse_ordinal(&cursor.value),
                    text::parse_ordinal(&best.value),
                ) {
                    (Some(new), Some(old)) => new > old,
                    _ => true,
                },
            };
            if ahead {
                lag.best = Some((cursor.clone(), key.to_vec()));
            }
        }
        let next = more.then(|| keys.iter().map(|v| v.value.clone()).collect());
        let (cursor, primary_key) = match self.lag.as_ref().and_then(|l| l.best.clone()) {
            Some(best) => best,
            None => {
                let mut keys = keys;
                let cursor = keys.remove(0);
                (cursor, keys)
            }
        };
        Ok((
            IncrementalChunk {
                batch: self.plan.project(&batch)?,
                checkpoint: Checkpoint {
                    cursor,
                    primary_key,
                    recent: Vec::new(),
                    lag_window,
                },
                upper_bound: self.upper.clone(),
                null_cursor_rows: self.null_rows,
            },
            next,
        ))
    }
}

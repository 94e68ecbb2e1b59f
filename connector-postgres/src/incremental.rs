//! Incremental reads ordered and paged by (cursor, primary key).
//!
//! A run delivers the rows after a [`Checkpoint`] in `(cursor, key)` order, page by page
//! (`(cursor, key) > ($c, $k) ORDER BY cursor, key LIMIT n`), each page one resilient
//! operation, and hands back with every chunk the checkpoint to store after it. Ties on the
//! cursor are broken by the key, so a page boundary (or a fault at one) never loses or
//! repeats a row. The run is bounded by the largest cursor seen at its start (see
//! [`bounds`]).
//!
//! Guarantees, for a table whose rows' cursor only grows when they change:
//! - within a run, every row with `cursor <= upper` that existed when the run started and
//!   is not behind the run's position when it commits is delivered exactly once, whatever
//!   faults are retried in between;
//! - with a [`Lag`], a later run also delivers rows that committed late with a cursor in
//!   `[checkpoint - lag, checkpoint]`, and skips the rows of that window the checkpoint
//!   records as already delivered (same cursor and key): a row committed later than `lag`
//!   behind the checkpoint is still missed, and widening `lag` between runs can repeat rows;
//! - rows with a NULL cursor are never delivered: [`NullCursor`] says whether that is an
//!   error or a counted, logged skip.

mod bounds;
mod checkpoint;
mod window;

use arrow_array::RecordBatch;
use futures_core::Stream;
use futures_util::stream;

pub use checkpoint::{Checkpoint, IncrementalOptions, Lag, NullCursor, RecentRow};

use crate::ident::quote;
use crate::read::Session;
use crate::read::page::Bind;
use crate::read::plan::{Filters, KeysetPlan};
use crate::{PgError, PostgresConnector};
use window::Window;

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

/// One batch of an incremental read and the checkpoint to store once it is processed.
#[derive(Clone, Debug)]
pub struct IncrementalChunk {
    /// The rows, all columns in table order.
    pub batch: RecordBatch,
    /// The position after this chunk: pass it as `from` to continue after it.
    pub checkpoint: Checkpoint,
    /// The largest cursor value at the start of the run; the run stops there.
    pub upper_bound: String,
    /// Rows left out because their cursor is NULL (see [`NullCursor::Skip`]).
    pub null_cursor_rows: u64,
}

impl AsRef<RecordBatch> for IncrementalChunk {
    fn as_ref(&self) -> &RecordBatch {
        &self.batch
    }
}

/// A run in progress.
struct Run {
    plan: KeysetPlan,
    session: Session,
    window: Window,
    upper: String,
    null_rows: u64,
}

impl PostgresConnector {
    /// Reads the rows of `table` after `from` (all rows when `None`) in `(cursor_field, key)`
    /// order, in batches of at most `batch_size`, each with the [`Checkpoint`] to store after
    /// it. The cursor column must be an integer, numeric, date, timestamp, timestamptz or
    /// text column, and the table must have a primary key. See the module docs for the exact
    /// guarantees, NULL cursors and the lag window.
    pub fn read_incremental<'a>(
        &'a self,
        table: &'a str,
        cursor_field: &'a str,
        from: Option<Checkpoint>,
        batch_size: usize,
        options: IncrementalOptions,
    ) -> impl Stream<Item = Result<IncrementalChunk, PgError>> + Send + 'a {
        enum State {
            Start(Option<Checkpoint>, IncrementalOptions),
            Paging(Box<Run>, Option<Vec<String>>),
            Done,
        }
        let start = State::Start(from, options);
        stream::unfold(start, move |state| async move {
            let (mut run, after) = match state {
                State::Done => return None,
                State::Paging(run, after) => (run, after),
                State::Start(from, options) => {
                    match self
                        .start_run(table, cursor_field, from, batch_size, options)
                        .await
                    {
                        Ok(Some((run, after))) => (Box::new(run), after),
                        Ok(None) => return None,
                        Err(e) => return Some((Err(e), State::Done)),
                    }
                }
            };
            let (batch, full) = match self
                .fetch_page(&run.plan.request(after.as_deref()), &run.session)
                .await
            {
                // `more`: the page found a row past its limit, so an exactly full last
                // page ends the run without an empty page after it.
                Ok(page) => (page.batch, page.more),
                Err(e) => return Some((Err(e), State::Done)),
            };
            if !full {
                run.session.finish().await;
            }
            if batch.num_rows() == 0 {
                return None;
            }
            match run.chunk(&batch) {
                Ok(chunk) => {
                    let next = if full {
                        let mut values = vec![chunk.checkpoint.cursor.value.clone()];
                        values.extend(chunk.checkpoint.primary_key.iter().map(|v| v.value.clone()));
                        State::Paging(run, Some(values))
                    } else {
                        State::Done
                    };
                    Some((Ok(chunk), next))
                }
                Err(e) => Some((Err(e), State::Done)),
            }
        })
    }

    /// Validates the request, reads the run's bounds and builds its plan; `None` when no row
    /// has a cursor.
    async fn start_run(
        &self,
        table: &str,
        cursor_field: &str,
        from: Option<Checkpoint>,
        batch_size: usize,
        options: IncrementalOptions,
    ) -> Result<Option<(Run, Option<Vec<String>>)>, PgError> {
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
        }
        let session = Session::default();
        let bounds = self
            .incremental_bounds(&schema.name.quoted()?, cursor_field, &session)
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
        if let Some(from) = &from {
            match options.lag {
                Some(lag) => {
                    filters
                        .sql
                        .push(format!("{column} >= ($2::{ty} - $3::{})", lag.sql_type()));
                    filters.binds.push(Bind::Text(from.cursor.value.clone()));
                    filters.binds.push(Bind::Text(lag.sql_value()));
                    window::exclude_recent(&mut filters, from, &schema, cursor_field)?;
                }
                None => {
                    let mut values = vec![from.cursor.value.clone()];
                    values.extend(from.primary_key.iter().map(|v| v.value.clone()));
                    after = Some(values);
                }
            }
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
        let seed = from.as_ref().map(|f| f.recent.as_slice()).unwrap_or(&[]);
        let window = Window::new(options.lag, seed);
        let null_rows = bounds.null_rows;
        Ok(Some((
            Run {
                plan,
                session,
                window,
                upper,
                null_rows,
            },
            after,
        )))
    }
}

impl Run {
    fn chunk(&mut self, batch: &RecordBatch) -> Result<IncrementalChunk, PgError> {
        let mut keys = self.plan.last_key(batch)?;
        let cursor = keys.remove(0);
        let indices = self.plan.key_indices();
        self.window.extend(batch, indices[0], &indices[1..])?;
        Ok(IncrementalChunk {
            batch: self.plan.project(batch)?,
            checkpoint: Checkpoint {
                cursor,
                primary_key: keys,
                recent: self.window.rows(),
            },
            upper_bound: self.upper.clone(),
            null_cursor_rows: self.null_rows,
        })
    }
}

//! Paged, resumable reads into Arrow record batches.
//!
//! A table with a primary key is read page by page in key order
//! (`WHERE (pk) > ($1, ...) ORDER BY pk LIMIT n`). Each page is one resilient operation
//! ([`page`]), and the position it starts after is the last key already delivered, so a
//! fault in the middle of a read costs one page and never duplicates or skips a row.
//! The pages share one connection and one `REPEATABLE READ READ ONLY` snapshot until a
//! fault forces a new one ([`session`]). Memory is bounded by one page. A table without a
//! usable primary key has no such position: it streams in one query ([`unkeyed`]) and
//! says, on every chunk, that it cannot resume.

mod decimals;
pub(crate) mod page;
pub(crate) mod plan;
mod session;
mod unkeyed;

use arrow_array::RecordBatch;
use futures_core::Stream;
use futures_util::stream;
use serde::{Deserialize, Serialize};

pub(crate) use plan::KeysetPlan;
pub(crate) use session::Session;

use crate::catalog::TableSchema;
use crate::{PgError, PostgresConnector};

/// A value of a key column as PostgreSQL input text, with the type it is cast back to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypedValue {
    /// The column name, as the catalog spells it.
    pub column: String,
    /// The column's type as `format_type` prints it (the cast applied when binding).
    pub pg_type: String,
    /// The value in PostgreSQL input syntax, at full precision.
    pub value: String,
}

/// One batch of a read, with the position it ends at.
#[derive(Clone, Debug)]
pub struct DataChunk {
    /// The rows, with the requested columns.
    pub batch: RecordBatch,
    /// The primary key of the last row: a later read can start after it. `None` when the
    /// table has no usable primary key.
    pub position: Option<Vec<TypedValue>>,
    /// Whether a fault during this read could be (and was) recovered by resuming at the last
    /// delivered page. `false` for a table without a usable primary key.
    pub resumable: bool,
}

impl AsRef<RecordBatch> for DataChunk {
    fn as_ref(&self) -> &RecordBatch {
        &self.batch
    }
}

impl PostgresConnector {
    /// Reads `table` (as the catalog names it, in the connector's schema) as a stream of
    /// Arrow batches of at most `batch_size` rows, in primary-key order.
    ///
    /// `columns` selects and orders the output columns (all columns in table order when
    /// `None`). Each page is fetched by one resilient operation, so a fault resumes after the
    /// last delivered page: every row arrives exactly once. A table without a primary key is
    /// read in one query that cannot resume (`DataChunk::resumable` is `false`): it runs
    /// under the policy's total timeout on the server, and waiting longer than the attempt
    /// timeout for its next row, or any fault, ends the stream with an error.
    ///
    /// While the stream is consumed it holds one pooled connection and one read-only
    /// snapshot between pages (released when the stream ends or is dropped), so an
    /// undisturbed read sees the table as of its first page. Each page is one call under the connector's
    /// policy and takes one rate-limit token: with the `db` preset (300 per minute, burst 50)
    /// a large table wants a `batch_size` of tens of thousands of rows.
    pub fn read<'a>(
        &'a self,
        table: &'a str,
        columns: Option<&'a [&'a str]>,
        batch_size: usize,
    ) -> impl Stream<Item = Result<DataChunk, PgError>> + Send + 'a {
        enum State {
            Start,
            Keyset(Box<(KeysetPlan, Session)>, Option<Vec<String>>),
            Unkeyed(unkeyed::Receiver),
            Done,
        }
        stream::unfold(State::Start, move |state| async move {
            let mut state = state;
            loop {
                match state {
                    State::Done => return None,
                    State::Start => match self.plan_read(table, columns, batch_size).await {
                        Ok(Ok(plan)) => {
                            state = State::Keyset(Box::new((plan, Session::default())), None)
                        }
                        Ok(Err((schema, cols))) => {
                            match unkeyed::start(self, &schema, &cols, batch_size).await {
                                Ok(rx) => state = State::Unkeyed(rx),
                                Err(e) => return Some((Err(e), State::Done)),
                            }
                        }
                        Err(e) => return Some((Err(e), State::Done)),
                    },
                    State::Keyset(keyed, after) => {
                        let (plan, session) = &*keyed;
                        let request = plan.request(after.as_deref());
                        let page = match self.fetch_page(&request, session).await {
                            Ok(page) => page,
                            Err(e) => return Some((Err(e), State::Done)),
                        };
                        if !page.more {
                            session.finish().await;
                        }
                        if page.batch.num_rows() == 0 {
                            return None;
                        }
                        let chunk = plan.chunk(&page.batch);
                        let next = match &chunk {
                            Ok(c) if page.more => State::Keyset(keyed, Some(KeysetPlan::values(c))),
                            _ => State::Done,
                        };
                        return Some((chunk, next));
                    }
                    State::Unkeyed(mut rx) => {
                        return rx.recv().await.map(|item| (item, State::Unkeyed(rx)));
                    }
                }
            }
        })
    }

    /// Resolves the table and columns: a keyset plan, or the schema and columns of a table
    /// that has no usable primary key.
    async fn plan_read(
        &self,
        table: &str,
        columns: Option<&[&str]>,
        batch_size: usize,
    ) -> Result<Result<KeysetPlan, (TableSchema, Vec<String>)>, PgError> {
        let schema = self.get_schema(table).await?;
        let selected: Vec<String> = match columns {
            Some(cols) => {
                for c in cols {
                    schema.column(c)?;
                }
                cols.iter().map(|c| (*c).to_owned()).collect()
            }
            None => schema.columns.iter().map(|c| c.name.clone()).collect(),
        };
        if selected.is_empty() {
            return Err(PgError::invalid_input("read needs at least one column"));
        }
        match KeysetPlan::new(&schema, &selected, &[], batch_size)? {
            Some(plan) => Ok(Ok(plan)),
            None => {
                tracing::warn!(
                    table = %schema.name,
                    "table has no usable primary key: reading it in one query that cannot resume after a fault"
                );
                Ok(Err((schema, selected)))
            }
        }
    }
}

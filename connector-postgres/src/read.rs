//! Paged, resumable reads into Arrow record batches.
//!
//! A table with a primary key is read page by page in key order
//! (`WHERE (pk) > ($1, ...) ORDER BY pk LIMIT n`). Each page is one resilient operation
//! ([`page`]), and the position it starts after is the last key already fetched, so a
//! fault in the middle of a read costs one page and never duplicates or skips a row.
//! The pages share one connection and one `REPEATABLE READ READ ONLY` snapshot until a
//! fault forces a new one ([`session`]). Pages are fetched on a task of their own, one
//! page ahead of the caller ([`pager`]), grow while they are quick ([`sizing`]), and come
//! as a query or a binary `COPY` ([`copy`]), whichever is cheaper for the page. A full read
//! may be split into key ranges read in parallel on one exported snapshot ([`partition`],
//! [`snapshot`]). Memory is bounded by two pages per reader. A table without a usable
//! primary key has no position to resume from: it streams in one query ([`unkeyed`]) and
//! says, on every chunk, that it cannot resume.

mod copy;
mod decimals;
mod options;
pub(crate) mod page;
mod pager;
mod partition;
pub(crate) mod plan;
mod session;
mod sizing;
mod snapshot;
mod unkeyed;

use arrow_array::RecordBatch;
use futures_core::Stream;
use futures_util::stream;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use options::{DEFAULT_PAGE_MEMORY, Partitions, ReadOptions};
pub use page::PagePath;
pub use partition::ReadPlanReport;
pub(crate) use plan::KeysetPlan;
pub(crate) use session::Session;
pub(crate) use sizing::Sizing;
pub use sizing::{PageSize, adaptive_page_target};

use crate::catalog::TableSchema;
use crate::connector::PostgresConnector;
use crate::error::PgError;
use pager::Delivered;
use snapshot::Keeper;

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
    /// The primary key of the last row: a later read of the same partition can start after
    /// it. `None` when the table has no usable primary key.
    pub position: Option<Vec<TypedValue>>,
    /// Whether a fault during this read could be (and was) recovered by resuming at the last
    /// delivered page. `false` for a table without a usable primary key.
    pub resumable: bool,
    /// The key range the batch comes from (0 unless the read is partitioned).
    pub partition: usize,
}

impl AsRef<RecordBatch> for DataChunk {
    fn as_ref(&self) -> &RecordBatch {
        &self.batch
    }
}

/// The readers of a keyset read and where the caller is in the current page.
struct Paging {
    plan: KeysetPlan,
    rx: mpsc::Receiver<Result<Delivered, PgError>>,
    tasks: Readers,
    keeper: Option<Keeper>,
    batch_size: usize,
    current: Option<(Delivered, usize)>,
}

/// The reader tasks, aborted when the read is dropped.
struct Readers(Vec<JoinHandle<()>>);

impl Drop for Readers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Paging {
    /// The next batch: the rest of the current page, cut at the batch size, or the next page.
    async fn next(&mut self) -> Option<Result<DataChunk, PgError>> {
        loop {
            if let Some((delivered, offset)) = &mut self.current {
                let rows = delivered.page.batch.num_rows();
                if *offset < rows {
                    let len = self.batch_size.min(rows - *offset);
                    let slice = delivered.page.batch.slice(*offset, len);
                    *offset += len;
                    let partition = delivered.partition;
                    return Some(
                        self.plan
                            .chunk(&slice)
                            .map(|c| DataChunk { partition, ..c }),
                    );
                }
                self.current = None;
            }
            match self.rx.recv().await {
                Some(Ok(delivered)) => self.current = Some((delivered, 0)),
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    // Every reader has ended; one that panicked ended without its rows.
                    for task in self.tasks.0.drain(..) {
                        if let Err(e) = task.await {
                            return Some(Err(PgError::data(format!(
                                "a reader of the table stopped unexpectedly: {e}"
                            ))));
                        }
                    }
                    if let Some(keeper) = self.keeper.take() {
                        keeper.release().await;
                    }
                    return None;
                }
            }
        }
    }
}

impl PostgresConnector {
    /// Reads `table` (as the catalog names it, in the connector's schema) as a stream of
    /// Arrow batches of at most `batch_size` rows, in primary-key order, with the default
    /// [`ReadOptions`] (adaptive pages, one stream, the page path chosen automatically).
    ///
    /// `columns` selects and orders the output columns (all columns in table order when
    /// `None`). Each page is fetched by one resilient operation, so a fault resumes after the
    /// last fetched page: every row arrives exactly once. A table without a primary key is
    /// read in one query that cannot resume (`DataChunk::resumable` is `false`): it runs
    /// under the policy's total timeout on the server, and waiting longer than the attempt
    /// timeout for its next row, or any fault, ends the stream with an error.
    ///
    /// While the stream is consumed it holds one pooled connection and one read-only
    /// snapshot between pages (released when the stream ends or is dropped), so an
    /// undisturbed read sees the table as of its first page. Each page is one call under
    /// the connector's policy and takes one rate-limit token; pages grow while they are
    /// quick, up to a memory budget, so the rate limit does not bound a read it need not.
    pub fn read<'a>(
        &'a self,
        table: &'a str,
        columns: Option<&'a [&'a str]>,
        batch_size: usize,
    ) -> impl Stream<Item = Result<DataChunk, PgError>> + Send + 'a {
        self.read_with(table, columns, ReadOptions::new(batch_size))
    }

    /// As [`read`](Self::read), with [`ReadOptions`]: page sizing, page path and
    /// partitions. With more than one partition the table is split into key ranges of about
    /// equal row counts, read in parallel on one exported snapshot: batches come in key
    /// order within each partition (`DataChunk::partition`), interleaved across partitions.
    pub fn read_with<'a>(
        &'a self,
        table: &'a str,
        columns: Option<&'a [&'a str]>,
        options: ReadOptions,
    ) -> impl Stream<Item = Result<DataChunk, PgError>> + Send + 'a {
        enum State {
            Start(ReadOptions),
            Keyset(Box<Paging>),
            Unkeyed(unkeyed::Receiver),
            Done,
        }
        stream::unfold(State::Start(options), move |state| async move {
            let mut state = state;
            loop {
                match state {
                    State::Done => return None,
                    State::Start(options) => {
                        let started = match self.plan_read(table, columns, options.batch_size).await
                        {
                            Ok(Ok(plan)) => self
                                .start_paging(table, plan, &options)
                                .await
                                .map(|p| State::Keyset(Box::new(p))),
                            Ok(Err((schema, cols))) => {
                                unkeyed::start(self, &schema, &cols, options.batch_size)
                                    .await
                                    .map(State::Unkeyed)
                            }
                            Err(e) => Err(e),
                        };
                        match started {
                            Ok(next) => state = next,
                            Err(e) => return Some((Err(e), State::Done)),
                        }
                    }
                    State::Keyset(mut paging) => {
                        let item = paging.next().await?;
                        let next = match item {
                            Ok(_) => State::Keyset(paging),
                            Err(_) => State::Done,
                        };
                        return Some((item, next));
                    }
                    State::Unkeyed(mut rx) => {
                        return rx.recv().await.map(|item| (item, State::Unkeyed(rx)));
                    }
                }
            }
        })
    }

    /// Starts the readers of a keyset read: one, or one per partition on a shared snapshot.
    async fn start_paging(
        &self,
        table: &str,
        plan: KeysetPlan,
        options: &ReadOptions,
    ) -> Result<Paging, PgError> {
        let layout = self.layout(table, &plan, options).await?;
        let readers = layout.ranges.len();
        let keeper = if readers > 1 {
            Some(Keeper::export(self, table).await?)
        } else {
            None
        };
        tracing::debug!(
            table,
            partitions = readers,
            split_from = layout.split_from.unwrap_or("-"),
            page_size = ?options.page_size,
            first_page_rows = layout.sizing.rows(),
            page_memory = options.page_memory,
            page_path = match options.path {
                Some(path) => path.as_str(),
                None if plan.supports_copy() => "binary COPY (pages of 1000 rows or more)",
                None => "query",
            },
            "reading {table}"
        );
        let (tx, rx) = mpsc::channel(readers);
        let mut tasks = Vec::with_capacity(readers);
        for (partition, range) in layout.ranges.into_iter().enumerate() {
            let session = match &keeper {
                Some(keeper) => Session::importing(keeper.snapshot()),
                None => Session::default(),
            };
            let reader = pager::Reader {
                connector: self.handle(),
                plan: plan.within(range),
                session,
                sizing: layout.sizing.clone(),
                path: options.path,
                partition,
                keeper: keeper.clone(),
                watch: pager::LimitWatch {
                    estimate: layout.estimate.map(|e| e / readers as u64),
                    ..layout.watch.clone()
                },
            };
            tasks.push(tokio::spawn(reader.run(tx.clone())));
        }
        Ok(Paging {
            plan,
            rx,
            tasks: Readers(tasks),
            keeper,
            batch_size: options.batch_size,
            current: None,
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

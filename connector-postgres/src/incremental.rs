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
//! - with a [`Lag`], a later run also delivers the row versions that committed late with a
//!   cursor in `[checkpoint - lag, checkpoint]`, each once, and skips every row version of
//!   that window already delivered, across faults, crashes and new snapshots in between.
//!   What was delivered is decided by transaction visibility, not by a list of rows (see
//!   [`seen`]): a row version was delivered iff the snapshot that last read its position
//!   could see it. So a row *updated* without its cursor moving while it is inside the
//!   window is a new version and is delivered again; a row committed later than `lag`
//!   behind the checkpoint is still missed; a window never reaches below what an earlier
//!   window covered, so widening `lag` repeats nothing (the wider edge applies from there
//!   on), and adding a lag to a checkpoint made without one starts the window at its
//!   position;
//! - a lag run costs the server one pass over the window's rows (an index range scan and a
//!   few hundred nanoseconds of visibility check per row), but only the rows it delivers
//!   travel, and its checkpoint grows with the transactions that committed while an older
//!   one was still running, not with the rows of the window: a few ids in practice. When
//!   a transaction stays open while tens of thousands of others commit rows into the
//!   window, a run stops early instead of storing more than [`MAX_RANGES`](window::MAX_RANGES)
//!   id ranges, and the next run carries on;
//! - the 32-bit `xmin` of a row is widened against the run's own snapshot, which is exact
//!   for every row PostgreSQL has not frozen, and for frozen rows younger than about four
//!   billion transactions. Older frozen rows keep a 32-bit id that may read as recent
//!   again: one still inside the window (a table that received nothing newer in all that
//!   time) can be delivered once more when the transaction counter passes its old id;
//! - every snapshot is assumed to see at least what the previous run's saw (one primary,
//!   or synchronous replicas after a failover), as for any incremental read;
//! - rows with a NULL cursor are never delivered: [`NullCursor`] says whether that is an
//!   error or a counted, logged skip.
//!
//! Incremental reads need a primary key, so they read tables (plain or partitioned); views
//! and foreign tables have none, and no row versions to check either.

mod bounds;
mod checkpoint;
mod filter;
mod legacy;
mod run;
mod seen;
mod window;
mod xids;

use arrow_array::RecordBatch;
use futures_core::Stream;
use futures_util::stream;

pub use checkpoint::{Checkpoint, IncrementalOptions, Lag, NullCursor, RecentRow};
pub use seen::LagWindow;

use crate::connector::PostgresConnector;
use crate::error::PgError;
use crate::read::PagePath;
use run::Run;

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
            let mut request = run.plan.page(after, run.sizing.rows(), PagePath::Query);
            // A fixed page size is a promise about chunks: a retry asks for as many rows.
            request.shrink = run.sizing.adapts();
            let page = match self.fetch_page(&request, &run.session).await {
                Ok(page) => page,
                Err(e) => return Some((Err(e), State::Done)),
            };
            run.sizing.observe(&page);
            let (batch, full) = (page.batch, page.more);
            if batch.num_rows() == 0 {
                run.session.finish().await;
                return None;
            }
            match run.chunk(&batch, !full) {
                Ok((chunk, Some(next))) => Some((Ok(chunk), State::Paging(run, Some(next)))),
                Ok((chunk, None)) => {
                    run.session.finish().await;
                    Some((Ok(chunk), State::Done))
                }
                Err(e) => Some((Err(e), State::Done)),
            }
        })
    }
}

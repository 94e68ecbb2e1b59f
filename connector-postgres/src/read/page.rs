//! One keyset page: the unit that is retried.
//!
//! A page is a single `SELECT ... ORDER BY key LIMIT n` run in its own short read-only
//! transaction. Because the request carries the position it starts after, re-running it
//! after a fault returns exactly the same rows, so the retry engine can repeat it blindly.
//! The page's `statement_timeout` is the attempt's remaining time (set in the same round trip
//! as `BEGIN`), so a query the engine gave up on also stops on the server.
//!
//! A read keeps its pooled connection between pages ([`PageConn`]): going back to the pool
//! costs two pings per page (on release and on acquire), which on a busy machine is a
//! noticeable share of a page. The connection is held only while it is clean (between
//! transactions); one that failed or timed out mid-page is discarded, never reused or
//! returned, and the retry acquires a fresh one.

use std::sync::{Arc, Mutex, PoisonError};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures_util::TryStreamExt;
use resilience_core::resilient_operation;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::arrow::{BatchBuilder, PgKind};
use crate::connector::{Lease, remaining};
use crate::{PgError, PostgresConnector};

/// A bound parameter of a page query. All values travel as text and are cast in SQL to
/// the column's type, so they keep full precision.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    /// One text value (`$n::type`).
    Text(String),
    /// A text array (`$n::text[]`), e.g. keys to exclude.
    TextArray(Vec<String>),
}

/// Everything needed to fetch one page; re-running it yields the same rows.
#[derive(Clone, Debug)]
pub(crate) struct PageRequest {
    /// The SELECT, with `LIMIT` and the position predicate already in place.
    pub sql: Arc<str>,
    /// Parameters `$1..` in order.
    pub binds: Vec<Bind>,
    /// Schema of the SELECT list.
    pub schema: SchemaRef,
    /// Decoding of the SELECT list, column for column.
    pub kinds: Vec<PgKind>,
    /// Rows the page may hold (its LIMIT), used to size builders.
    pub capacity: usize,
}

/// The connection a read holds between its pages; returned to the pool when dropped.
#[derive(Default)]
pub(crate) struct PageConn(Mutex<Option<Lease>>);

impl PageConn {
    fn take(&self) -> Option<Lease> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn keep(&self, lease: Lease) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(lease);
    }
}

impl Drop for PageConn {
    fn drop(&mut self) {
        // Held only between transactions, so it is clean.
        if let Some(lease) = self.take() {
            lease.release();
        }
    }
}

impl PostgresConnector {
    /// Fetches one page as a record batch, on the read's held connection if it has one.
    /// One resilient operation: a retry re-runs the same request, which starts after the
    /// last delivered row.
    #[resilient_operation(key = self.host_key(), name = "fetch_page")]
    pub(crate) async fn fetch_page(
        &self,
        request: &PageRequest,
        held: &PageConn,
    ) -> Result<RecordBatch, PgError> {
        let mut lease = match held.take() {
            Some(lease) => lease,
            None => self.lease().await?,
        };
        match run_page(&mut lease, request).await {
            Ok(batch) => {
                held.keep(lease);
                Ok(batch)
            }
            Err(err) => {
                lease.release_after(&err);
                Err(err)
            }
        }
    }
}

/// Runs the page in a `REPEATABLE READ READ ONLY` transaction with the statement timeout.
async fn run_page(conn: &mut PgConnection, request: &PageRequest) -> Result<RecordBatch, PgError> {
    let mut begin = String::from("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if let Some(left) = remaining() {
        let millis = left.as_millis().clamp(1, i32::MAX as u128);
        begin.push_str(&format!("; SET LOCAL statement_timeout = {millis}"));
    }
    let mut tx = conn.begin_with(AssertSqlSafe(begin)).await?;
    let mut query = sqlx::query(AssertSqlSafe(Arc::clone(&request.sql)));
    for bind in &request.binds {
        query = match bind {
            Bind::Text(value) => query.bind(value.as_str()),
            Bind::TextArray(values) => query.bind(values.as_slice()),
        };
    }
    let mut builder = BatchBuilder::new(
        Arc::clone(&request.schema),
        request.kinds.clone(),
        request.capacity,
    );
    {
        let mut rows = query.fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            builder.append_row(&row)?;
        }
    }
    tx.commit().await?;
    builder.finish()
}

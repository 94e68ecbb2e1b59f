//! One keyset page: the unit that is retried.
//!
//! A page is a single `SELECT ... ORDER BY key LIMIT n + 1` in the read's read-only
//! transaction ([`Session`]): the page is the first `n` rows, and the one row more, when
//! there is one, says that another page follows. So a read ends with its last rows, never
//! with a fetch of an empty page that a fault could fail after every row was delivered. Because the request carries the position it starts after, re-running it
//! after a fault returns exactly the rows that were not delivered yet, so the retry engine
//! can repeat it blindly. The page's `statement_timeout` is the attempt's remaining time, so
//! a query the engine gave up on also stops on the server.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures_util::TryStreamExt;
use resilience_core::resilient_operation;
use sqlx::{AssertSqlSafe, PgConnection};

use super::session::Session;
use crate::arrow::{BatchBuilder, PgKind};
use crate::{PgError, PostgresConnector};

/// A bound parameter of a page query. All values travel as text and are cast in SQL to
/// the column's type, so they keep full precision.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    /// One text value (`$n::type`).
    Text(String),
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
    /// Rows the page delivers; the query asks for one more.
    pub limit: usize,
}

/// One fetched page.
#[derive(Debug)]
pub(crate) struct Page {
    /// At most `limit` rows.
    pub batch: RecordBatch,
    /// Whether rows follow this page (the query returned one more than `limit`).
    pub more: bool,
}

impl PostgresConnector {
    /// Fetches one page as a record batch, in the read's session.
    /// One resilient operation: a retry re-runs the same request, which starts after the
    /// last delivered row.
    #[resilient_operation(key = self.host_key(), name = "fetch_page")]
    pub(crate) async fn fetch_page(
        &self,
        request: &PageRequest,
        session: &Session,
    ) -> Result<Page, PgError> {
        let mut lease = session.step(self).await?;
        // On error the lease is dropped, which discards the connection.
        let batch = run_page(&mut lease, request).await?;
        session.keep(lease);
        let more = batch.num_rows() > request.limit;
        let batch = if more {
            batch.slice(0, request.limit)
        } else {
            batch
        };
        Ok(Page { batch, more })
    }
}

/// Runs the page query, decoding its rows into one batch.
async fn run_page(conn: &mut PgConnection, request: &PageRequest) -> Result<RecordBatch, PgError> {
    let mut query = sqlx::query(AssertSqlSafe(Arc::clone(&request.sql)));
    for bind in &request.binds {
        query = match bind {
            Bind::Text(value) => query.bind(value.as_str()),
        };
    }
    let mut builder = BatchBuilder::new(
        Arc::clone(&request.schema),
        request.kinds.clone(),
        request.limit.saturating_add(1),
    );
    {
        let mut rows = query.fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            builder.append_row(&row)?;
        }
    }
    builder.finish()
}

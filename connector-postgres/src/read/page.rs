//! One keyset page: the unit that is retried.
//!
//! A page is a single `SELECT ... ORDER BY key LIMIT n + 1` in the read's read-only
//! transaction ([`Session`]), sent either as a query (rows in the binary result format) or
//! inside a binary `COPY ... TO STDOUT` ([`copy`](super::copy)); both decode the same bytes
//! into the same Arrow builders. Because the request carries the position it starts after,
//! re-running it after a fault returns exactly the rows that were not delivered yet, so the
//! retry engine can repeat it blindly; a retry asks for half the rows of the attempt before
//! it (a page that timed out is too big for the time it has). The transaction's
//! `statement_timeout` never exceeds the attempt's remaining time, so a query the engine
//! gave up on also stops on the server.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use futures_util::TryStreamExt;
use resilience_core::resilient_operation;
use sqlx::{AssertSqlSafe, PgConnection};
use tokio::time::Instant;

use super::copy::CopyParser;
use super::plan::KeysetPlan;
use super::session::Session;
use crate::arrow::BatchBuilder;
use crate::connector::PostgresConnector;
use crate::error::PgError;

/// A bound parameter of a page query. Values travel as text and are cast in SQL to
/// the column's type, so they keep full precision.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    /// One text value (`$n::type`).
    Text(String),
    /// A row count (`LIMIT $n`).
    Int(i64),
}

/// How a page travels from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagePath {
    /// A query; each row is a `DataRow` message in the binary result format.
    Query,
    /// `COPY (query) TO STDOUT (FORMAT binary)`, decoded as one byte stream.
    Copy,
}

impl PagePath {
    /// How the path is named in logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PagePath::Query => "query",
            PagePath::Copy => "binary COPY",
        }
    }
}

/// Everything needed to fetch one page; re-running it yields the same rows.
#[derive(Clone, Debug)]
pub(crate) struct PageRequest {
    /// The read's plan.
    pub plan: KeysetPlan,
    /// The key the page starts after (from the start when `None`).
    pub after: Option<Vec<String>>,
    /// Rows the page may hold (on its first attempt).
    pub limit: usize,
    /// How the page is fetched.
    pub path: PagePath,
    /// Whether a retry asks for fewer rows (pages sized by [`Sizing`](super::sizing)).
    pub shrink: bool,
}

impl PageRequest {
    /// The limit of attempt `number`: halved for every retry when the request may shrink,
    /// at least one row.
    pub(crate) fn limit_for(&self, number: u32) -> usize {
        if !self.shrink {
            return self.limit;
        }
        let halvings = number.saturating_sub(1).min(usize::BITS - 1);
        (self.limit >> halvings).max(1)
    }
}

/// A fetched page.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    /// At most `limit` rows, in key order.
    pub batch: RecordBatch,
    /// Whether rows follow the page (it found one row more than its limit).
    pub more: bool,
    /// The limit of the attempt that fetched it.
    pub limit: usize,
    /// How long that attempt took.
    pub took: Duration,
}

impl PostgresConnector {
    /// Fetches one page, in the read's session.
    /// One resilient operation: a retry re-runs the same request, which starts after the
    /// last delivered row.
    #[resilient_operation(key = self.host_key(), name = "fetch_page")]
    pub(crate) async fn fetch_page(
        &self,
        request: &PageRequest,
        session: &Session,
    ) -> Result<Page, PgError> {
        let started = Instant::now();
        let number = resilience_core::attempt::current().map_or(1, |a| a.number);
        let limit = request.limit_for(number);
        let mut lease = session.step(self).await?;
        // On error the lease is dropped, which discards the connection.
        let batch = run_page(&mut lease, request, limit).await?;
        session.keep(lease);
        let more = batch.num_rows() > limit;
        Ok(Page {
            batch: if more { batch.slice(0, limit) } else { batch },
            more,
            limit,
            took: started.elapsed(),
        })
    }
}

/// Runs the page's statement, decoding its rows (up to `limit + 1`) into one batch.
async fn run_page(
    conn: &mut PgConnection,
    request: &PageRequest,
    limit: usize,
) -> Result<RecordBatch, PgError> {
    let plan = &request.plan;
    let (sql, binds) = plan.sql(request.after.as_deref(), limit, request.path);
    let mut builder = BatchBuilder::new(
        Arc::clone(plan.schema()),
        plan.kinds().to_vec(),
        limit.saturating_add(1),
    );
    match request.path {
        PagePath::Query => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for bind in &binds {
                query = match bind {
                    Bind::Text(value) => query.bind(value.as_str()),
                    Bind::Int(value) => query.bind(*value),
                };
            }
            let mut rows = query.fetch(&mut *conn);
            while let Some(row) = rows.try_next().await? {
                builder.append_row(&row)?;
            }
        }
        PagePath::Copy => {
            let mut parser = CopyParser::new(plan.kinds().len());
            let mut stream = conn.copy_out_raw(&sql).await?;
            while let Some(chunk) = stream.try_next().await? {
                parser.feed(&chunk, &mut builder)?;
            }
            parser.finish()?;
        }
    }
    builder.into_batch()
}

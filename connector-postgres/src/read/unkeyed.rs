//! Reading a table that has no primary key: one query, streamed, not resumable.
//!
//! Without a key there is no position to resume from, so the read is a single query whose
//! rows are cut into batches as they arrive. It runs on its own task feeding a channel of
//! one batch, which keeps memory at one batch being built plus one waiting, and lets the
//! stream hold no borrow of the connection. A fault ends the stream with the error.
//!
//! Opening the read (a connection, a `READ ONLY` transaction with the session's print
//! settings) is one resilient operation, so it goes through the breaker and the rate limit,
//! and is retried. The query itself cannot be retried once rows have been delivered, so it
//! is bounded instead: every wait for the server (the next row) may take at most the
//! policy's attempt timeout. The query as a whole has no server-side limit
//! (`statement_timeout = 0`): one query streams the whole table and may rightly run for
//! long; a stalled connection is dropped by the client, and the server ends the query when
//! it next writes to it. A stalled or broken connection ends the stream with an error that
//! says the read cannot resume; it never hangs and never ends early without an error.

use std::time::Duration;

use futures_util::TryStreamExt;
use resilience_core::{Policy, Resilient, resilient_operation};
use sqlx::AssertSqlSafe;
use tokio::sync::mpsc;

use super::DataChunk;
use super::session::PRINT_SETTINGS;
use crate::arrow::BatchBuilder;
use crate::catalog::{ColumnInfo, TableSchema};
use crate::connector::Lease;
use crate::connector::PostgresConnector;
use crate::error::PgError;

/// The receiving end of an unkeyed read.
pub(crate) type Receiver = mpsc::Receiver<Result<DataChunk, PgError>>;

/// Starts the single-query read of `columns` of `schema` in batches of `batch_size`.
pub(crate) async fn start(
    connector: &PostgresConnector,
    schema: &TableSchema,
    columns: &[String],
    batch_size: usize,
) -> Result<Receiver, PgError> {
    if batch_size == 0 {
        return Err(PgError::invalid_input("batch_size must be at least 1"));
    }
    let list = columns
        .iter()
        .map(|c| schema.column(c))
        .collect::<Result<Vec<&ColumnInfo>, _>>()?;
    let select = list
        .iter()
        .map(|c| c.kind.select_expr(&c.name))
        .collect::<Result<Vec<_>, _>>()?
        .join(", ");
    let sql = format!("SELECT {select} FROM {}", schema.name.quoted()?);
    let builder = BatchBuilder::new(
        schema.arrow_for(&list),
        list.iter().map(|c| c.kind).collect(),
        batch_size,
    );
    let stall = connector.unkeyed_stall_limit();
    let lease = connector.open_unkeyed().await?;
    let table = schema.name.to_string();
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut rows = 0;
        if let Err(err) = stream_rows(lease, sql, builder, batch_size, stall, &tx, &mut rows).await
        {
            tracing::warn!(%table, rows_delivered = rows, error = %err,
                "read of a table without a primary key failed mid-stream; it cannot resume");
            let err = match err {
                PgError::Timeout { after, .. } => PgError::Timeout {
                    what: format!(
                        "reading {table}: waiting for the next row (the table has no primary \
                         key, so the read cannot resume after a fault; {rows} rows were \
                         delivered before it stopped)"
                    ),
                    after,
                },
                other => other,
            };
            let _ = tx.send(Err(err)).await;
        }
    });
    Ok(rx)
}

impl PostgresConnector {
    /// How long one wait for the server may take: the policy's attempt timeout.
    fn unkeyed_stall_limit(&self) -> Duration {
        let resilience = self.resilience();
        match resilience.engine().policies().get(resilience.policy()) {
            Some(policy) => policy.timeout.attempt,
            None => Policy::default().timeout.attempt,
        }
    }

    /// Opens the connection of an unkeyed read: a `READ ONLY` transaction with the print
    /// settings and no server-side statement limit (see the module docs).
    #[resilient_operation(key = self.host_key(), name = "open_unkeyed")]
    async fn open_unkeyed(&self) -> Result<Lease, PgError> {
        let mut lease = self.lease().await?;
        let sql = format!("BEGIN READ ONLY; {PRINT_SETTINGS}; SET LOCAL statement_timeout = 0");
        // On failure the lease is dropped, which discards the connection.
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *lease)
            .await?;
        Ok(lease)
    }
}

/// Streams the query's rows into batches; every wait for the server is bounded by `stall`.
/// `delivered` counts the rows sent.
async fn stream_rows(
    mut lease: Lease,
    sql: String,
    mut builder: BatchBuilder,
    batch_size: usize,
    stall: Duration,
    tx: &mpsc::Sender<Result<DataChunk, PgError>>,
    delivered: &mut usize,
) -> Result<(), PgError> {
    let timed_out = || PgError::Timeout {
        what: "waiting for the next row".to_owned(),
        after: stall,
    };
    {
        let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *lease);
        loop {
            let next = tokio::time::timeout(stall, rows.try_next())
                .await
                .map_err(|_| timed_out())?;
            // On error the lease is dropped, which discards the connection.
            let Some(row) = next? else {
                break;
            };
            builder.append_row(&row)?;
            if builder.len() >= batch_size {
                let rows = builder.len();
                if !send(tx, &mut builder).await? {
                    // The reader went away mid-query: dropping the lease discards the
                    // connection.
                    return Ok(());
                }
                *delivered += rows;
            }
        }
    }
    if !builder.is_empty() {
        let rows = builder.len();
        if !send(tx, &mut builder).await? {
            return Ok(());
        }
        *delivered += rows;
    }
    lease.end().await;
    Ok(())
}

/// Sends the built batch; `false` when the receiver is gone.
async fn send(
    tx: &mpsc::Sender<Result<DataChunk, PgError>>,
    builder: &mut BatchBuilder,
) -> Result<bool, PgError> {
    let chunk = DataChunk {
        batch: builder.finish()?,
        position: None,
        resumable: false,
        partition: 0,
    };
    Ok(tx.send(Ok(chunk)).await.is_ok())
}

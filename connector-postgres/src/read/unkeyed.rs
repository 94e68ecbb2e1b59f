//! Reading a table that has no primary key: one query, streamed, not resumable.
//!
//! Without a key there is no position to resume from, so the read is a single query whose
//! rows are cut into batches as they arrive. It runs on its own task feeding a channel of
//! one batch, which keeps memory at one batch being built plus one waiting, and lets the
//! stream hold no borrow of the connection. A fault ends the stream with the error.

use futures_util::TryStreamExt;
use sqlx::{AssertSqlSafe, PgPool};
use tokio::sync::mpsc;

use super::DataChunk;
use crate::arrow::BatchBuilder;
use crate::catalog::{ColumnInfo, TableSchema};
use crate::connector::Lease;
use crate::{PgError, PostgresConnector};

/// The receiving end of an unkeyed read.
pub(crate) type Receiver = mpsc::Receiver<Result<DataChunk, PgError>>;

/// Starts the single-query read of `columns` of `schema` in batches of `batch_size`.
pub(crate) fn start(
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
    let pool = connector.pool()?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        if let Err(err) = stream_rows(pool, sql, builder, batch_size, &tx).await {
            let _ = tx.send(Err(err)).await;
        }
    });
    Ok(rx)
}

async fn stream_rows(
    pool: PgPool,
    sql: String,
    mut builder: BatchBuilder,
    batch_size: usize,
    tx: &mpsc::Sender<Result<DataChunk, PgError>>,
) -> Result<(), PgError> {
    let mut lease = Lease::acquire(&pool).await?;
    {
        let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *lease);
        while let Some(row) = rows.try_next().await? {
            builder.append_row(&row)?;
            if builder.len() >= batch_size && !send(tx, &mut builder).await? {
                // The reader went away mid-query: dropping the lease discards the connection.
                return Ok(());
            }
        }
    }
    if !builder.is_empty() {
        send(tx, &mut builder).await?;
    }
    lease.release();
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
    };
    Ok(tx.send(Ok(chunk)).await.is_ok())
}

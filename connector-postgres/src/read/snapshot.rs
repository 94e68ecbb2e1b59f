//! One snapshot for every partition of a read.
//!
//! Partitions read on connections of their own, and each connection's transaction would
//! see the table at its own instant: rows committed in between would show in one
//! partition's range and not another's. Instead a coordinator connection opens a
//! `REPEATABLE READ` transaction and exports its snapshot (`pg_export_snapshot()`), and
//! every partition's transaction imports it (`SET TRANSACTION SNAPSHOT`) before its first
//! query, so the union of the partitions is the table at one instant. A partition that
//! reconnects after a fault imports the same snapshot again and continues unchanged.
//!
//! The snapshot lives as long as the exporting transaction: the [`Keeper`] holds that
//! connection until the read ends. If it is lost (the server ended the connection), a
//! partition that reconnects cannot import the snapshot any more; the keeper then exports
//! a new one, says so, and the unfinished partitions continue from their positions on it.
//! Every row is still read exactly once (positions do not depend on snapshots), but rows
//! changed between the two instants may be read in either state.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use resilience_core::resilient_operation;

use sqlx::AssertSqlSafe;

use super::session::Snapshot;
use crate::connector::PostgresConnector;
use crate::connector::{Lease, remaining_millis};
use crate::error::PgError;

/// How long the keeper waits for its connection to answer before exporting anew.
const PING: Duration = Duration::from_secs(5);

/// The exported snapshot of a partitioned read and the connection that holds it.
#[derive(Clone)]
pub(crate) struct Keeper(Arc<Inner>);

struct Inner {
    id: Snapshot,
    holder: tokio::sync::Mutex<Option<Lease>>,
    table: String,
}

impl PostgresConnector {
    /// Opens a `REPEATABLE READ READ ONLY` transaction and exports its snapshot; the
    /// returned lease must stay open for the snapshot to stay importable.
    #[resilient_operation(key = self.host_key(), name = "export_snapshot")]
    pub(crate) async fn export_snapshot(&self) -> Result<(Lease, String), PgError> {
        let mut lease = self.lease().await?;
        let mut begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_owned();
        if let Some(millis) = remaining_millis() {
            begin.push_str(&format!("; SET LOCAL statement_timeout = {millis}"));
        }
        sqlx::raw_sql(AssertSqlSafe(begin))
            .execute(&mut *lease)
            .await?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut *lease)
            .await?;
        Ok((lease, id))
    }
}

impl Keeper {
    /// Exports a snapshot for the partitions of `table`.
    pub(crate) async fn export(
        connector: &PostgresConnector,
        table: &str,
    ) -> Result<Self, PgError> {
        let (lease, id) = connector.export_snapshot().await?;
        tracing::debug!(table, snapshot = %id, "exported the snapshot the partitions share");
        Ok(Keeper(Arc::new(Inner {
            id: Arc::new(Mutex::new(Some(id))),
            holder: tokio::sync::Mutex::new(Some(lease)),
            table: table.to_owned(),
        })))
    }

    /// The shared identifier the partitions' sessions import.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Arc::clone(&self.0.id)
    }

    /// Called by a partition that could not import the snapshot: unless the holding
    /// connection still answers (another partition renewed it already), exports a new
    /// snapshot and warns that the read now spans two instants.
    pub(crate) async fn renew(&self, connector: &PostgresConnector) -> Result<(), PgError> {
        let mut holder = self.0.holder.lock().await;
        if let Some(lease) = holder.as_mut() {
            let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut **lease);
            if let Ok(Ok(_)) = tokio::time::timeout(PING, ping).await {
                return Ok(());
            }
        }
        // Dropping the lease discards the dead connection.
        *holder = None;
        *self.0.id.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let (lease, id) = connector.export_snapshot().await?;
        tracing::warn!(
            table = %self.0.table,
            "reading {}: the snapshot shared by the partitions is gone (the connection that \
             exported it ended); the unfinished partitions continue from their positions on a \
             new snapshot: every row is still read once, but rows changed in between may be \
             read as of either snapshot",
            self.0.table
        );
        *self.0.id.lock().unwrap_or_else(PoisonError::into_inner) = Some(id);
        *holder = Some(lease);
        Ok(())
    }

    /// Ends the exporting transaction (the read is over).
    pub(crate) async fn release(&self) {
        let lease = self.0.holder.lock().await.take();
        *self.0.id.lock().unwrap_or_else(PoisonError::into_inner) = None;
        if let Some(lease) = lease {
            lease.end().await;
        }
    }
}

//! A pooled connection that goes back to the pool only when the code says it is clean.
//!
//! sqlx returns a dropped `PoolConnection` to the pool. If the drop happened because an
//! attempt timed out (the engine drops the attempt's future) or the socket failed
//! mid-query, that connection may be half-open; with a small pool it then wedges every
//! later acquire (sqlx issue 4349: `max_connections = 1`, one frozen query, then
//! `PoolTimedOut` forever). A [`Lease`] inverts the default: dropping it *detaches* the
//! connection (freeing the pool slot at once) and closes it in the background; only
//! [`Lease::release`] returns it. The second half of the defence is on the server:
//! [`set_statement_timeout`] carries the attempt's remaining time to `statement_timeout`,
//! so a query the client gave up on stops there too.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Connection, Postgres};

use crate::error::PgError;

/// How long a detached connection gets to say goodbye before its socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long ending a read's transaction may take before the connection is given up on.
/// Ending runs after the read's last resilient operation, with no attempt deadline, so
/// without a bound a dead socket would hang the read (and hold its pool slot).
pub(crate) const END_GRACE: Duration = Duration::from_secs(2);

/// A pooled connection that is discarded unless released.
pub(crate) struct Lease {
    conn: Option<PoolConnection<Postgres>>,
}

impl Lease {
    /// Acquires a connection from `pool`.
    pub(crate) async fn acquire(pool: &PgPool) -> Result<Lease, PgError> {
        Ok(Lease {
            conn: Some(pool.acquire().await?),
        })
    }

    /// Returns the connection to the pool: call only after the work on it finished.
    pub(crate) fn release(mut self) {
        drop(self.conn.take());
    }

    /// Rolls back the connection's transaction (a read's: it only read) and releases the
    /// connection; on an error, or when the rollback takes longer than [`END_GRACE`], the
    /// lease is dropped instead, which discards the connection.
    pub(crate) async fn end(mut self) {
        let rollback = sqlx::raw_sql("ROLLBACK").execute(&mut *self);
        if let Ok(Ok(_)) = tokio::time::timeout(END_GRACE, rollback).await {
            self.release();
        }
    }

    /// Returns the connection to the pool if `err` leaves it usable (a server-reported
    /// data or input error), else discards it.
    pub(crate) fn release_after(self, err: &PgError) {
        if !err.poisons_connection() {
            self.release();
        }
    }
}

impl Deref for Lease {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn
            .as_deref()
            .expect("lease holds a connection until dropped")
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn
            .as_deref_mut()
            .expect("lease holds a connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            discard(conn);
        }
    }
}

/// Detaches `conn` from its pool (the pool may open a replacement at once) and closes it
/// in the background, giving up after a short grace period.
fn discard(conn: PoolConnection<Postgres>) {
    let raw = conn.detach();
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = tokio::time::timeout(CLOSE_GRACE, raw.close()).await;
        });
    }
}

/// The attempt's remaining time, if the call runs under a deadline.
pub(crate) fn remaining() -> Option<Duration> {
    resilience_core::attempt::current().and_then(|a| a.remaining())
}

/// `left` as a `statement_timeout` in milliseconds (at least 1: 0 would mean no limit).
pub(crate) fn timeout_millis(left: Duration) -> u128 {
    left.as_millis().clamp(1, i32::MAX as u128)
}

/// The attempt's remaining time as a `statement_timeout` in milliseconds, if the call runs
/// under a deadline.
pub(crate) fn remaining_millis() -> Option<u128> {
    remaining().map(timeout_millis)
}

/// Sets `statement_timeout` for the current transaction from the attempt's remaining
/// time (`SET LOCAL` semantics: call inside a transaction). Does nothing outside an
/// attempt with a deadline.
pub(crate) async fn set_statement_timeout(conn: &mut PgConnection) -> Result<(), PgError> {
    let Some(millis) = remaining_millis() else {
        return Ok(());
    };
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(format!("{millis}ms"))
        .execute(conn)
        .await?;
    Ok(())
}

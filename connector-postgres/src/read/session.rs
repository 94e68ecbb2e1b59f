//! The connection and snapshot a read keeps from one page to the next.
//!
//! Going back to the pool after every page costs two pings (on release and on acquire) and
//! a `COMMIT`, and gives every page a snapshot of its own. Instead a read holds one pooled
//! connection with one `REPEATABLE READ READ ONLY` transaction open across its pages, so an
//! undisturbed run reads one consistent snapshot, and a page costs one round trip for
//! `SET LOCAL statement_timeout` plus its query. After a fault the retry starts a fresh
//! connection and transaction (a new snapshot, which the keyset position makes safe).
//!
//! A connection leaves the session only clean: [`Session::finish`] commits and returns it
//! to the pool, dropping the session rolls back and returns it in the background, and a
//! connection whose page failed is discarded (it may sit in an aborted transaction).

use std::sync::{Mutex, PoisonError};

use sqlx::AssertSqlSafe;

use crate::connector::{Lease, remaining};
use crate::{PgError, PostgresConnector};

/// A read's held connection; while held it is inside the read's open transaction.
#[derive(Default)]
pub(crate) struct Session(Mutex<Option<Lease>>);

impl Session {
    fn take(&self) -> Option<Lease> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Puts the connection back after a successful step (its transaction still open).
    pub(crate) fn keep(&self, lease: Lease) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(lease);
    }

    /// The held connection, or a new one with a new `REPEATABLE READ READ ONLY` transaction;
    /// in either case with `statement_timeout` set from the attempt's remaining time and
    /// `settings` (more `SET LOCAL` statements) applied, in one round trip.
    pub(crate) async fn step(
        &self,
        connector: &PostgresConnector,
        settings: &str,
    ) -> Result<Lease, PgError> {
        let (mut lease, fresh) = match self.take() {
            Some(lease) => (lease, false),
            None => (connector.lease().await?, true),
        };
        let mut sql = Vec::with_capacity(3);
        if fresh {
            sql.push("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_owned());
        }
        if let Some(left) = remaining() {
            let millis = left.as_millis().clamp(1, i32::MAX as u128);
            sql.push(format!("SET LOCAL statement_timeout = {millis}"));
        }
        if !settings.is_empty() {
            sql.push(settings.to_owned());
        }
        if !sql.is_empty() {
            // On failure the lease is dropped, which discards the connection.
            sqlx::raw_sql(AssertSqlSafe(sql.join("; ")))
                .execute(&mut *lease)
                .await?;
        }
        Ok(lease)
    }

    /// Ends the transaction and returns the connection to the pool.
    pub(crate) async fn finish(&self) {
        if let Some(lease) = self.take() {
            end(lease).await;
        }
    }
}

/// Rolls back (the transaction only read) and releases; a failure discards the connection.
async fn end(mut lease: Lease) {
    if sqlx::raw_sql("ROLLBACK").execute(&mut *lease).await.is_ok() {
        lease.release();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(lease) = self.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(end(lease));
                }
                Err(_) => drop(lease),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use resilience_core::{Call, Engine, Policy, PolicySet};

    use super::*;
    use crate::cluster::pick_server;

    async fn statement_timeout(lease: &mut Lease) -> String {
        sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(&mut **lease)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn steps_carry_the_attempt_deadline_and_finish_clears_it() {
        let server = pick_server().await.unwrap();
        let mut policy = Policy::default();
        policy.timeout.attempt = Duration::from_secs(7);
        let engine = Engine::new(PolicySet::from_policies([("db", policy)]));
        let mut pg = PostgresConnector::with_engine(engine.clone());
        let mut params = server.params("postgres");
        params.pool_size = 1;
        pg.configure(params).unwrap();
        let session = Session::default();
        for _ in 0..2 {
            let shown = engine
                .run(Call::new("db", "test_step"), || async {
                    let mut lease = session.step(&pg, "").await?;
                    let shown = statement_timeout(&mut lease).await;
                    session.keep(lease);
                    Ok::<_, PgError>(shown)
                })
                .await
                .unwrap();
            let millis: u64 = shown.trim_end_matches("ms").parse().unwrap_or(0);
            assert!(
                (6_000..=7_000).contains(&millis),
                "statement_timeout {shown}"
            );
        }
        session.finish().await;
        let mut lease = pg.lease().await.unwrap();
        assert_eq!(
            statement_timeout(&mut lease).await,
            "0",
            "SET LOCAL ended with the read"
        );
        lease.release();
    }
}

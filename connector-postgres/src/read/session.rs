//! The connection and snapshot a read keeps from one page to the next.
//!
//! Going back to the pool after every page costs two pings (on release and on acquire) and
//! a `COMMIT`, and gives every page a snapshot of its own. Instead a read holds one pooled
//! connection with one `REPEATABLE READ READ ONLY` transaction open across its pages, so an
//! undisturbed run reads one consistent snapshot, and a page costs one round trip for
//! `SET LOCAL statement_timeout` plus its query. After a fault the retry starts a fresh
//! connection and transaction (a new snapshot, which the keyset position makes safe).
//! Every fresh transaction gets the same output settings ([`PRINT_SETTINGS`]), so values
//! printed as text read the same before and after a fault.
//!
//! A connection leaves the session only clean: [`Session::finish`] commits and returns it
//! to the pool, dropping the session rolls back and returns it in the background, and a
//! connection whose page failed is discarded (it may sit in an aborted transaction). Ending
//! is bounded ([`Lease::end`]): a rollback that does not answer in time discards the
//! connection instead of hanging the read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use sqlx::AssertSqlSafe;

use crate::connector::{Lease, remaining_millis};
use crate::{PgError, PostgresConnector};

/// Output settings under which values cast to text print the same way on every server
/// and in every transaction of a read, in a form their input functions read back as the
/// same value: ISO dates, UTC, PostgreSQL's interval style, shortest exact floats (inside
/// arrays, ranges and geometric types) and hex `bytea` (inside arrays).
pub(crate) const PRINT_SETTINGS: &str = "SET LOCAL datestyle = 'ISO, YMD'; \
     SET LOCAL timezone = 'UTC'; SET LOCAL intervalstyle = 'postgres'; \
     SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'";

/// A read's held connection; while held it is inside the read's open transaction.
#[derive(Default)]
pub(crate) struct Session(Mutex<Option<Lease>>, AtomicU64);

impl Session {
    fn take(&self) -> Option<Lease> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Puts the connection back after a successful step (its transaction still open).
    pub(crate) fn keep(&self, lease: Lease) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(lease);
    }

    /// How many transactions the session has begun: a step that returns with the same
    /// number as an earlier one ran in the same transaction, so in the same snapshot.
    pub(crate) fn generation(&self) -> u64 {
        self.1.load(Ordering::Acquire)
    }

    /// The held connection, or a new one with a new `REPEATABLE READ READ ONLY` transaction
    /// and [`PRINT_SETTINGS`]; in either case with `statement_timeout` set from the
    /// attempt's remaining time, in one round trip.
    pub(crate) async fn step(&self, connector: &PostgresConnector) -> Result<Lease, PgError> {
        let (mut lease, fresh) = match self.take() {
            Some(lease) => (lease, false),
            None => (connector.lease().await?, true),
        };
        let mut sql = Vec::with_capacity(3);
        if fresh {
            sql.push("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_owned());
            sql.push(PRINT_SETTINGS.to_owned());
        }
        if let Some(millis) = remaining_millis() {
            sql.push(format!("SET LOCAL statement_timeout = {millis}"));
        }
        if !sql.is_empty() {
            // On failure the lease is dropped, which discards the connection.
            sqlx::raw_sql(AssertSqlSafe(sql.join("; ")))
                .execute(&mut *lease)
                .await?;
        }
        if fresh {
            self.1.fetch_add(1, Ordering::AcqRel);
        }
        Ok(lease)
    }

    /// Ends the transaction and returns the connection to the pool (or discards it when the
    /// rollback fails or does not answer within a short grace).
    pub(crate) async fn finish(&self) {
        if let Some(lease) = self.take() {
            lease.end().await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(lease) = self.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(lease.end());
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
        let engine = Engine::new(PolicySet::from_policies([("db", policy)]).unwrap());
        let mut pg = PostgresConnector::with_engine(engine.clone());
        let mut params = server.params("postgres");
        params.pool_size = 1;
        pg.configure(params).unwrap();
        let session = Session::default();
        for _ in 0..2 {
            let shown = engine
                .run(Call::new("db", "test_step"), || async {
                    let mut lease = session.step(&pg).await?;
                    let shown = statement_timeout(&mut lease).await;
                    let print: (String, String) = sqlx::query_as(
                        "SELECT current_setting('datestyle'), current_setting('timezone')",
                    )
                    .fetch_one(&mut *lease)
                    .await
                    .unwrap();
                    assert_eq!(print, ("ISO, YMD".to_owned(), "UTC".to_owned()));
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fresh_transaction_after_a_fault_gets_the_print_settings() {
        let server = pick_server().await.unwrap();
        let engine = Engine::new(PolicySet::from_policies([("db", Policy::default())]).unwrap());
        let mut pg = PostgresConnector::with_engine(engine.clone());
        let mut params = server.params("postgres");
        params.pool_size = 1;
        pg.configure(params).unwrap();
        let session = Session::default();
        let at = || async {
            engine
                .run(Call::new("db", "test_print"), || async {
                    let mut lease = session.step(&pg).await?;
                    let at: String =
                        sqlx::query_scalar("SELECT timestamptz '2024-03-05 06:07:08+02'::text")
                            .fetch_one(&mut *lease)
                            .await?;
                    session.keep(lease);
                    Ok::<_, PgError>(at)
                })
                .await
                .unwrap()
        };
        assert_eq!(at().await, "2024-03-05 04:07:08+00");
        // A fault drops the held connection; the next step opens a fresh transaction, here
        // on a pooled connection whose session prints differently.
        drop(session.take());
        let mut lease = pg.lease().await.unwrap();
        sqlx::raw_sql("SET timezone = 'Asia/Tokyo'; SET datestyle = 'SQL, DMY'")
            .execute(&mut *lease)
            .await
            .unwrap();
        lease.release();
        assert_eq!(at().await, "2024-03-05 04:07:08+00");
        session.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finishing_on_a_frozen_connection_gives_up_and_frees_the_pool() {
        let server = pick_server().await.unwrap();
        let mut params = server.params("postgres");
        let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], params.port));
        let proxy = resilience_chaos::ChaosProxy::start(upstream).await.unwrap();
        params.port = proxy.local_addr().port();
        params.pool_size = 1;
        let engine = Engine::new(PolicySet::from_policies([("db", Policy::default())]).unwrap());
        let mut pg = PostgresConnector::with_engine(engine.clone());
        pg.configure(params).unwrap();
        let session = Session::default();
        engine
            .run(Call::new("db", "test_freeze"), || async {
                let lease = session.step(&pg).await?;
                session.keep(lease);
                Ok::<_, PgError>(())
            })
            .await
            .unwrap();
        assert_eq!(proxy.handle().freeze_all(), 1);
        tokio::time::timeout(Duration::from_secs(30), session.finish())
            .await
            .expect("finish gives up on a frozen connection");
        // The frozen connection was discarded, not returned: the one pool slot is free.
        let mut lease = tokio::time::timeout(Duration::from_secs(30), pg.lease())
            .await
            .expect("the pool is not wedged")
            .unwrap();
        assert_eq!(statement_timeout(&mut lease).await, "0");
        lease.release();
    }
}

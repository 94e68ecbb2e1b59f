//! The connection and snapshot a read keeps from one page to the next.
//!
//! Going back to the pool after every page costs two pings (on release and on acquire) and
//! a `COMMIT`, and gives every page a snapshot of its own. Instead a read holds one pooled
//! connection with one `REPEATABLE READ READ ONLY` transaction open across its pages, so an
//! undisturbed run reads one consistent snapshot, and a page costs one round trip: its
//! query. After a fault the retry starts a fresh connection and transaction (a new
//! snapshot, which the keyset position makes safe), or imports the read's exported
//! snapshot ([`Snapshot`]) when it has one, so it sees the same rows as before the fault.
//! Every fresh transaction gets the same output settings ([`PRINT_SETTINGS`]), so values
//! printed as text read the same before and after a fault.
//!
//! `statement_timeout` comes from the attempt's remaining time. It is set with the
//! transaction, in the same round trip as `BEGIN`, and set again only when a later page
//! has less time left than the value in force; a page on a held connection is the first
//! attempt of its call and has the whole attempt timeout left, so it travels without a
//! settings round trip of its own while the server still stops any query the client has
//! stopped waiting for.
//!
//! A connection leaves the session only clean: [`Session::finish`] commits and returns it
//! to the pool, dropping the session rolls back and returns it in the background, and a
//! connection whose page failed is discarded (it may sit in an aborted transaction). Ending
//! is bounded ([`Lease::end`]): a rollback that does not answer in time discards the
//! connection instead of hanging the read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::AssertSqlSafe;

use crate::connector::PostgresConnector;
use crate::connector::{Lease, remaining_millis};
use crate::error::PgError;

/// Output settings under which values cast to text print the same way on every server
/// and in every transaction of a read, in a form their input functions read back as the
/// same value: ISO dates, UTC, PostgreSQL's interval style, shortest exact floats (inside
/// arrays, ranges and geometric types) and hex `bytea` (inside arrays).
pub(crate) const PRINT_SETTINGS: &str = "SET LOCAL datestyle = 'ISO, YMD'; \
     SET LOCAL timezone = 'UTC'; SET LOCAL intervalstyle = 'postgres'; \
     SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'";

/// The identifier of a snapshot exported by a read's coordinator (`pg_export_snapshot()`),
/// shared by the sessions that import it. Empty when the snapshot is gone.
pub(crate) type Snapshot = Arc<Mutex<Option<String>>>;

/// A read's held connection; while held it is inside the read's open transaction.
#[derive(Default)]
pub(crate) struct Session {
    held: Mutex<Option<Held>>,
    /// The `statement_timeout` (ms) of the last step's transaction.
    timeout: Mutex<Option<u128>>,
    snapshot: Option<Snapshot>,
    /// How many transactions the session has begun.
    generation: AtomicU64,
}

struct Held {
    lease: Lease,
    timeout: Option<u128>,
}

impl Session {
    /// A session whose transactions import `snapshot` (see [`Snapshot`]).
    pub(crate) fn importing(snapshot: Snapshot) -> Self {
        Session {
            held: Mutex::default(),
            timeout: Mutex::default(),
            snapshot: Some(snapshot),
            generation: AtomicU64::new(0),
        }
    }

    fn take(&self) -> Option<Held> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// How many transactions the session has begun: a step that returns with the same
    /// number as an earlier one ran in the same transaction, so in the same snapshot.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Puts the connection back after a successful step (its transaction still open).
    pub(crate) fn keep(&self, lease: Lease) {
        let timeout = *self.timeout.lock().unwrap_or_else(PoisonError::into_inner);
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = Some(Held { lease, timeout });
    }

    /// The held connection, or a new one with a new `REPEATABLE READ READ ONLY` transaction
    /// (importing the read's snapshot, if any) and [`PRINT_SETTINGS`]; in either case with a
    /// `statement_timeout` no longer than the attempt's remaining time.
    pub(crate) async fn step(&self, connector: &PostgresConnector) -> Result<Lease, PgError> {
        let left = remaining_millis();
        let (mut lease, sql, timeout) = match self.take() {
            Some(held) => match (left, held.timeout) {
                (Some(left), Some(set)) if set <= left => (held.lease, Vec::new(), Some(set)),
                (None, set) => (held.lease, Vec::new(), set),
                (Some(left), _) => (
                    held.lease,
                    vec![format!("SET LOCAL statement_timeout = {left}")],
                    Some(left),
                ),
            },
            None => {
                let lease = connector.lease().await?;
                let mut sql = vec!["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_owned()];
                if let Some(snapshot) = &self.snapshot {
                    let id = snapshot
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone()
                        .ok_or_else(snapshot_gone)?;
                    sql.push(format!(
                        "SET TRANSACTION SNAPSHOT {}",
                        super::copy::literal(&id)
                    ));
                }
                sql.push(PRINT_SETTINGS.to_owned());
                if let Some(left) = left {
                    sql.push(format!("SET LOCAL statement_timeout = {left}"));
                }
                (lease, sql, left)
            }
        };
        let began = sql.first().is_some_and(|s| s.starts_with("BEGIN"));
        if !sql.is_empty() {
            let importing = self.snapshot.is_some() && sql.len() > 1 && began;
            // On failure the lease is dropped, which discards the connection.
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql.join("; ")))
                .execute(&mut *lease)
                .await
            {
                let e = PgError::from(e);
                // 22023, invalid snapshot identifier: the exporting transaction ended.
                if importing && e.sqlstate().as_deref() == Some("22023") {
                    return Err(snapshot_gone());
                }
                return Err(e);
            }
        }
        if began {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        *self.timeout.lock().unwrap_or_else(PoisonError::into_inner) = timeout;
        Ok(lease)
    }

    /// Ends the transaction and returns the connection to the pool (or discards it when the
    /// rollback fails or does not answer within a short grace).
    pub(crate) async fn finish(&self) {
        if let Some(held) = self.take() {
            held.lease.end().await;
        }
    }
}

/// The error of a session whose read's exported snapshot is gone.
pub(crate) fn snapshot_gone() -> PgError {
    PgError::SnapshotGone
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(held) = self.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(held.lease.end());
                }
                Err(_) => drop(held),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use resilience_core::{Call, Engine, Policy, PolicySet};

    use super::*;
    use crate::testing::{params, pick_server};

    async fn statement_timeout(lease: &mut Lease) -> String {
        sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(&mut **lease)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn steps_carry_the_attempt_deadline_and_finish_clears_it() {
        let server = pick_server().await;
        let mut policy = Policy::default();
        policy.timeout.attempt = Duration::from_secs(7);
        let engine = Engine::new(PolicySet::from_policies([("db", policy)]).unwrap());
        let mut pg = PostgresConnector::with_engine(engine.clone());
        let mut params = params(&server, "postgres");
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
    async fn a_held_connection_is_only_sent_a_timeout_shorter_than_the_one_in_force() {
        let server = pick_server().await;
        let policy = |secs| {
            let mut policy = Policy::default();
            policy.timeout.attempt = Duration::from_secs(secs);
            policy
        };
        let engine = Engine::new(
            PolicySet::from_policies([
                ("db", policy(7)),
                ("long", policy(30)),
                ("short", policy(3)),
            ])
            .unwrap(),
        );
        let mut pg = PostgresConnector::with_engine(engine.clone());
        let mut params = params(&server, "postgres");
        params.pool_size = 1;
        pg.configure(params).unwrap();
        let session = Session::default();
        let step_under = |name: &'static str| {
            let (engine, session, pg) = (&engine, &session, &pg);
            async move {
                engine
                    .run(Call::new(name, "test_step"), || async {
                        let mut lease = session.step(pg).await?;
                        let ms: String = sqlx::query_scalar(
                            "SELECT setting FROM pg_settings WHERE name = 'statement_timeout'",
                        )
                        .fetch_one(&mut *lease)
                        .await
                        .unwrap();
                        session.keep(lease);
                        Ok::<_, PgError>(ms.parse::<u64>().unwrap())
                    })
                    .await
                    .unwrap()
            }
        };
        let first = step_under("db").await;
        assert!((6_000..=7_000).contains(&first), "{first}");
        // More time left than the value in force: nothing is sent, the value stays.
        assert_eq!(step_under("long").await, first);
        // Less time left: the value is lowered before the page.
        let short = step_under("short").await;
        assert!((2_000..=3_000).contains(&short), "{short}");
        session.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fresh_transaction_after_a_fault_gets_the_print_settings() {
        let server = pick_server().await;
        let engine = Engine::new(PolicySet::from_policies([("db", Policy::default())]).unwrap());
        let mut pg = PostgresConnector::with_engine(engine.clone());
        let mut params = params(&server, "postgres");
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
        let server = pick_server().await;
        let mut params = params(&server, "postgres");
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

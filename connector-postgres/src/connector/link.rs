//! The connection state shared by the connector and its recovery hook: parameters, the
//! resolved password and the lazily built pool.
//!
//! Recovery replaces the pool rather than repairing it, so a pool full of half-open
//! sockets cannot outlive an outage, and it never makes things worse:
//!
//! - the old pool is *drained*, not closed under its users: calls holding or awaiting one
//!   of its connections finish with it, and it is closed once no acquire can still be
//!   waiting on it (its acquire timeout later), so a rebuild cannot fail a call in flight
//!   (with `PoolClosed`, which would count against the server);
//! - a failure on a path that does not use the pool (`test_connection` connects
//!   directly) leaves the pool alone, unless the credentials it was built with changed;
//! - a pool replaced a moment ago (by the recovery of another call that failed at the
//!   same instant) is not replaced again;
//! - a recovery is reported as done only when a new connection to the server works.
//!
//! The probe connects directly, bounded by the connect timeout, because a pool reports an
//! unreachable server only as an acquire timeout.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use resilience_core::{BoxFuture, Recovered, Recovery, RecoveryCause};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::probe::TEST_CONNECTION;
use crate::config::{PgParams, Secret};
use crate::error::PgError;

/// A pool replaced less than this long ago is not replaced again: the failure that asks
/// for it most likely hit the old pool at the same instant.
const REBUILT_RECENTLY: Duration = Duration::from_secs(1);

/// Parameters, password and pool of one configured connector.
pub(crate) struct Link {
    params: PgParams,
    password: Mutex<Option<Secret>>,
    pool: Mutex<Option<Built>>,
}

/// A pool, and when it replaced the previous one (`None` for the first).
struct Built {
    pool: PgPool,
    replaced_at: Option<Instant>,
}

impl Link {
    /// Resolves the password once; the pool is built on first use.
    pub(crate) fn new(params: PgParams) -> Result<Link, PgError> {
        let password = params.password.as_ref().map(|c| c.resolve()).transpose()?;
        Ok(Link {
            params,
            password: Mutex::new(password),
            pool: Mutex::new(None),
        })
    }

    pub(crate) fn params(&self) -> &PgParams {
        &self.params
    }

    fn options(&self) -> PgConnectOptions {
        let password = self.password.lock().unwrap_or_else(PoisonError::into_inner);
        self.params.connect_options(password.as_ref()).into_sqlx()
    }

    /// The pool, built on first use with `test_before_acquire` on and the connect
    /// timeout as acquire timeout.
    pub(crate) fn pool(&self) -> PgPool {
        let mut slot = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(built) = slot.as_ref().filter(|b| !b.pool.is_closed()) {
            return built.pool.clone();
        }
        let pool = self.build_pool();
        *slot = Some(Built {
            pool: pool.clone(),
            replaced_at: None,
        });
        pool
    }

    fn build_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(self.params.pool_size)
            .min_connections(0)
            .acquire_timeout(self.params.connect_timeout)
            .test_before_acquire(true)
            .connect_lazy_with(self.options())
    }

    /// Pool size and idle connections, `(0, 0)` before first use.
    pub(crate) fn pool_figures(&self) -> (u32, usize) {
        let slot = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .map_or((0, 0), |b| (b.pool.size(), b.pool.num_idle()))
    }

    /// Re-reads the password from its source (environment variable, file); `true` when it
    /// changed.
    pub(crate) fn refresh_credentials(&self) -> Result<bool, PgError> {
        let fresh = self
            .params
            .password
            .as_ref()
            .map(|c| c.resolve())
            .transpose()?;
        let mut password = self.password.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = *password != fresh;
        *password = fresh;
        Ok(changed)
    }

    /// Replaces the pool with a new one built on first use; the old one is drained (see
    /// the module docs). Does nothing when the pool was replaced less than
    /// [`REBUILT_RECENTLY`] ago; `false` then.
    pub(crate) fn replace_pool(&self) -> bool {
        let mut slot = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        let recent = |b: &Built| {
            b.replaced_at
                .is_some_and(|at| at.elapsed() < REBUILT_RECENTLY)
        };
        if slot
            .as_ref()
            .is_some_and(|b| recent(b) && !b.pool.is_closed())
        {
            return false;
        }
        let old = slot.replace(Built {
            pool: self.build_pool(),
            replaced_at: Some(Instant::now()),
        });
        drop(slot);
        if let Some(old) = old {
            drain(old.pool, self.params.connect_timeout);
        }
        true
    }

    /// Closes the pool in the background (the connector was configured anew: nothing
    /// can use this link any more); the next use builds a new one.
    pub(crate) fn reset_pool(&self) {
        let old = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(old), Ok(rt)) = (old, tokio::runtime::Handle::try_current()) {
            rt.spawn(async move { old.pool.close().await });
        }
    }

    /// Connects without the pool, bounded by `timeout` (default: the connect timeout).
    pub(crate) async fn connect_direct(
        &self,
        timeout: Option<Duration>,
    ) -> Result<PgConnection, PgError> {
        let limit = timeout.unwrap_or(self.params.connect_timeout);
        let options = self.options();
        match tokio::time::timeout(limit, PgConnection::connect_with(&options)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(PgError::Timeout {
                what: format!("connect to {}", self.params.host_key()),
                after: limit,
            }),
        }
    }
}

/// Closes `old` once no acquire can still be waiting on it: after its acquire timeout
/// (plus a second), every acquire begun before it was replaced has its connection or its
/// timeout; the connections then in use are closed as they come back.
fn drain(old: PgPool, acquire_timeout: Duration) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            tokio::time::sleep(acquire_timeout + Duration::from_secs(1)).await;
            old.close().await;
        });
    }
}

/// Recovery hook handed to the engine: replace the pool, re-read credentials, probe.
pub(crate) struct LinkRecovery(pub(crate) Arc<Link>);

impl Recovery for LinkRecovery {
    fn recover(&self, cause: RecoveryCause) -> BoxFuture<'_, Result<Recovered, String>> {
        Box::pin(async move {
            let link = &self.0;
            let changed = cause.refresh_credentials
                && link.refresh_credentials().map_err(|e| e.to_string())?;
            if cause.operation == TEST_CONNECTION && !changed {
                return Ok(Recovered::NotNeeded(format!(
                    "{} connects directly, not through the pool",
                    cause.operation
                )));
            }
            if !link.replace_pool() {
                return Ok(Recovered::NotNeeded(format!(
                    "the pool was replaced less than {}s ago",
                    REBUILT_RECENTLY.as_secs()
                )));
            }
            let key = link.params.host_key();
            tracing::debug!(
                key = %key,
                operation = cause.operation,
                class = %cause.class,
                refreshed_credentials = changed,
                "postgres pool replaced; the old one drains"
            );
            // Mended only if the server takes a connection again.
            match link.connect_direct(None).await {
                Ok(conn) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
                    Ok(Recovered::Mended)
                }
                Err(e) => Err(format!(
                    "pool replaced, but {key} does not take a connection yet: {e}"
                )),
            }
        })
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            match self.0.connect_direct(None).await {
                Ok(conn) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
                    true
                }
                Err(_) => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{params, pick_server};
    use resilience_core::ErrorClass;

    fn cause(operation: &'static str, refresh_credentials: bool) -> RecoveryCause {
        RecoveryCause {
            class: ErrorClass::Connection,
            refresh_credentials,
            operation,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replaced_pool_drains_instead_of_failing_the_calls_waiting_on_it() {
        let server = pick_server().await;
        let mut params = params(&server, "postgres");
        params.pool_size = 1;
        let link = Arc::new(Link::new(params).unwrap());
        let old = link.pool();
        let held = old.acquire().await.unwrap();
        // A second call waits for the pool's only connection.
        let (started, waiting) = tokio::sync::oneshot::channel();
        let waiter = tokio::spawn({
            let old = old.clone();
            async move {
                let acquire = old.acquire();
                let _ = started.send(());
                acquire.await.map(|mut conn| {
                    conn.close_on_drop();
                })
            }
        });
        waiting.await.unwrap();
        assert!(link.replace_pool(), "the first replacement happens");
        assert!(!old.is_closed(), "the old pool drains, it is not closed");
        drop(held);
        // The waiting call gets the old pool's connection, not `PoolClosed`.
        waiter.await.unwrap().unwrap();
        // The new pool works too.
        let new = link.pool();
        let mut conn = new.acquire().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recovery_leaves_the_pool_of_a_direct_path_alone_and_replaces_a_pool_once() {
        let server = pick_server().await;
        let link = Arc::new(Link::new(params(&server, "postgres")).unwrap());
        let hook = LinkRecovery(Arc::clone(&link));
        let pool = link.pool();

        // The connection test connects directly: its failure says nothing about the pool.
        let outcome = hook.recover(cause(TEST_CONNECTION, false)).await.unwrap();
        assert!(matches!(outcome, Recovered::NotNeeded(_)), "{outcome:?}");
        assert!(link.pool().is_closed() == pool.is_closed());
        assert_eq!(
            link.pool_figures(),
            (pool.size(), pool.num_idle()),
            "the same pool"
        );

        // A pooled operation's failure replaces the pool, once: a second failure at the
        // same instant (another call of the same fault) does not replace it again.
        assert_eq!(
            hook.recover(cause("read_page", false)).await.unwrap(),
            Recovered::Mended,
            "the server takes a new connection"
        );
        let replaced = link.pool();
        let again = hook.recover(cause("read_page", false)).await.unwrap();
        assert!(matches!(again, Recovered::NotNeeded(_)), "{again:?}");
        let mut conn = link.pool().acquire().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
        drop(conn);
        assert_eq!(link.pool().size(), replaced.size());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recovery_that_cannot_reach_the_server_is_a_failure_not_a_recovery() {
        let mut params = PgParams::new("127.0.0.1", 1, "x");
        params.connect_timeout = Duration::from_secs(2);
        let link = Arc::new(Link::new(params).unwrap());
        let hook = LinkRecovery(Arc::clone(&link));
        let err = hook.recover(cause("read_page", false)).await.unwrap_err();
        assert!(
            err.contains("pool replaced, but 127.0.0.1:1 does not take a connection yet"),
            "{err}"
        );
    }
}

//! The connection state shared by the connector and its recovery hook: parameters, the
//! resolved password and the lazily built pool.
//!
//! Recovery rebuilds the pool rather than repairing it: the old pool is closed in the
//! background (a checked-out connection sees `PoolClosed`, a connection-class error, and
//! its retry uses the new pool), so a pool full of half-open sockets cannot outlive an
//! outage. The probe connects directly, bounded by the connect timeout, because a pool
//! reports an unreachable server only as an acquire timeout.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use resilience_core::{BoxFuture, Recovered, Recovery, RecoveryCause};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::PgError;
use crate::config::{PgParams, Secret};

/// Parameters, password and pool of one configured connector.
pub(crate) struct Link {
    params: PgParams,
    password: Mutex<Option<Secret>>,
    pool: Mutex<Option<PgPool>>,
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
        self.params.connect_options(password.as_ref())
    }

    /// The pool, built on first use with `test_before_acquire` on and the connect
    /// timeout as acquire timeout.
    pub(crate) fn pool(&self) -> PgPool {
        let mut slot = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pool) = slot.as_ref().filter(|p| !p.is_closed()) {
            return pool.clone();
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.params.pool_size)
            .min_connections(0)
            .acquire_timeout(self.params.connect_timeout)
            .test_before_acquire(true)
            .connect_lazy_with(self.options());
        *slot = Some(pool.clone());
        pool
    }

    /// Pool size and idle connections, `(0, 0)` before first use.
    pub(crate) fn pool_figures(&self) -> (u32, usize) {
        let slot = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map_or((0, 0), |p| (p.size(), p.num_idle()))
    }

    /// Re-reads the password from its source (environment variable, file).
    pub(crate) fn refresh_credentials(&self) -> Result<(), PgError> {
        let fresh = self
            .params
            .password
            .as_ref()
            .map(|c| c.resolve())
            .transpose()?;
        *self.password.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// Drops the pool (closing it in the background); the next use builds a new one.
    pub(crate) fn reset_pool(&self) {
        let old = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(old), Ok(rt)) = (old, tokio::runtime::Handle::try_current()) {
            rt.spawn(async move { old.close().await });
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

/// Recovery hook handed to the engine: rebuild the pool, re-read credentials, probe.
pub(crate) struct LinkRecovery(pub(crate) Arc<Link>);

impl Recovery for LinkRecovery {
    fn recover(&self, cause: RecoveryCause) -> BoxFuture<'_, Result<Recovered, String>> {
        Box::pin(async move {
            if cause.refresh_credentials {
                self.0.refresh_credentials().map_err(|e| e.to_string())?;
            }
            self.0.reset_pool();
            let key = self.0.params.host_key();
            tracing::info!(
                key = %key,
                operation = cause.operation,
                class = %cause.class,
                refreshed_credentials = cause.refresh_credentials,
                "postgres pool rebuilt"
            );
            // Mended only if the server takes a connection again.
            match self.0.connect_direct(None).await {
                Ok(conn) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
                    Ok(Recovered::Mended)
                }
                Err(e) => Err(format!(
                    "pool rebuilt, but {key} does not take a connection yet: {e}"
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

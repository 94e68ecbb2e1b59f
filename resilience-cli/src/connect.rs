//! Building an engine and a configured connector from command-line flags.
//!
//! Shared by `health`, `debug` and `sync`, so every command reads URLs and policies the
//! same way and reports a bad URL as a usage error (exit 2) without echoing it.
//!
//! [`preflight`] makes one direct connection under the source's policy before any work:
//! through a pool, a refused connection only surfaces as a pool timeout after the acquire
//! timeout, once per attempt; directly, it is refused at once, retried with the policy's
//! backoff, and classified, so a wrong password exits 2 and a down server exits 1.

use connector_http::HttpParams;
use connector_postgres::{PgError, PgParams, PostgresConnector};
use resilience_core::policy::PolicySet;
use resilience_core::{Call, Engine, Failure, ResilientError};
use sqlx::{Connection, PgConnection};

use crate::args::{PolicySource, Target};
use crate::error::CliError;

/// The database used when neither `--database-url` nor `DATABASE_URL` is given.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// An engine running the policies `source` selects, local to this process: the one-shot
/// commands (`health`, `debug`) make no calls that a fleet should count.
pub fn engine(source: &PolicySource) -> Result<Engine, CliError> {
    Ok(Engine::new(PolicySet::load(&source.options())?))
}

/// An engine running `policies`: with their `[store]` when they name one, so that shared
/// policies hold across every process naming the same store. Must run inside the Tokio
/// runtime (the store reports this worker in the background).
pub fn engine_of(policies: PolicySet) -> Result<Engine, CliError> {
    let Some(store) = policies.store() else {
        return Ok(Engine::new(policies));
    };
    let store = resilience_redis::RedisStore::new(store)
        .map_err(|e| CliError::Usage(format!("[store]: {e}")))?;
    let counters = store.counters();
    let engine = Engine::with_store(policies, std::sync::Arc::new(store));
    engine.subscribe(counters);
    Ok(engine)
}

/// Parameters from a `postgres://` URL; a bad URL is a usage error that never quotes it.
pub fn params_from_url(url: &str, what: &str) -> Result<PgParams, CliError> {
    PgParams::from_url(url).map_err(|e| CliError::Usage(format!("{what}: {e}")))
}

/// A connector configured with `params` on `engine`.
pub fn connector(params: PgParams, engine: Engine) -> Result<PostgresConnector, CliError> {
    let mut pg = PostgresConnector::with_engine(engine);
    pg.configure(params)
        .map_err(|e| CliError::connector("invalid connection settings", &e))?;
    Ok(pg)
}

/// A connector for `--database-url` (else the default URL) under the selected policies.
pub fn from_flags(
    url: Option<&str>,
    policies: &PolicySource,
) -> Result<(PostgresConnector, Engine), CliError> {
    let engine = engine(policies)?;
    let params = params_from_url(url.unwrap_or(DEFAULT_URL), "--database-url")?;
    Ok((connector(params, engine.clone())?, engine))
}

/// Why a direct connection failed.
#[derive(Debug, thiserror::Error, ResilientError)]
pub enum ConnectError {
    /// The driver's error (refused, authentication, unknown database, TLS), worded as the
    /// connector words it: the SQLSTATE rather than the server's source line.
    #[error("{0}")]
    #[resilient(classify = ResilientError::class)]
    Sql(PgError),
    /// No answer within the connect timeout.
    #[error("no answer within {}ms", .0.as_millis())]
    #[resilient(class = "timeout")]
    Timeout(std::time::Duration),
    /// The password could not be read from its source.
    #[error("{0}")]
    #[resilient(class = "config")]
    Credential(PgError),
    /// The policy gave up.
    #[error("{0}")]
    #[resilient(failure)]
    Stopped(Box<Failure<ConnectError>>),
}

impl ConnectError {
    /// The SQLSTATE the server answered with, if any.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            ConnectError::Sql(e) => e.sqlstate(),
            ConnectError::Stopped(f) => f.last_error.as_ref().and_then(ConnectError::sqlstate),
            _ => None,
        }
    }

    /// As a command error: exit 2 for credentials and configuration, else 1.
    pub fn into_cli(self, context: &str) -> CliError {
        CliError::of_class(self.class(), format!("{context}: {self}"))
    }
}

/// One direct connection, bounded by the connect timeout; never logs the options.
pub async fn connect_once(
    params: &PgParams,
    application: &str,
) -> Result<PgConnection, ConnectError> {
    let secret = match &params.password {
        Some(credential) => Some(credential.resolve().map_err(ConnectError::Credential)?),
        None => None,
    };
    let options = params
        .connect_options(secret.as_ref())
        .application_name(application);
    match tokio::time::timeout(params.connect_timeout, options.connect()).await {
        Ok(result) => result.map_err(|e| ConnectError::Sql(PgError::Driver(e))),
        Err(_) => Err(ConnectError::Timeout(params.connect_timeout)),
    }
}

/// Connects once under the policy of `params` (retried, journaled, breaker-counted).
pub async fn preflight(engine: &Engine, params: &PgParams) -> Result<(), ConnectError> {
    let key = params.host_key();
    let call = Call::new(&params.policy, "preflight").key(&key);
    engine
        .run(call, || async {
            let conn = connect_once(params, "resilient-preflight").await?;
            // The connection answered; a server that then stops answering must not hang
            // the preflight, so the close is bounded too (dropping it closes the socket).
            let _ = tokio::time::timeout(params.connect_timeout, conn.close()).await;
            Ok(())
        })
        .await
}

/// The REST API's settings from `--api-config FILE` (for `--connector http`), with the
/// file's name as messages show it.
pub fn api_params(target: &Target) -> Result<(HttpParams, String), CliError> {
    let path = target.api_config.as_ref().ok_or_else(|| {
        CliError::Usage(
            "--connector http needs --api-config FILE: the API's settings as TOML (see the \
             README, \"The REST API connector\")"
                .into(),
        )
    })?;
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("--api-config {shown}: {e}")))?;
    let params = toml::from_str(&text).map_err(|e| CliError::Usage(format!("{shown}: {e}")))?;
    Ok((params, shown))
}

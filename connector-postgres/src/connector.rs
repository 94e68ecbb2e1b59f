//! The connector: lifecycle, configuration, and the seam the read paths build on.
//!
//! `configure` validates the parameters and enables the resilience policy; nothing
//! connects until an operation needs to (the pool is lazy). Operations run under
//! `#[resilient_operation]` with the connector's policy and the `host:port` key, so every
//! operation against one server shares one breaker and one rate limit.
//!
//! The read paths (catalog, read, incremental) use the crate-internal seam: `lease()` for
//! a pooled connection that is discarded unless released, `set_statement_timeout` to
//! carry the attempt's deadline to the server, `schema()`, and `mark_ready()`.

mod discover;
mod health;
mod lease;
mod link;
mod probe;

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use resilience_core::connector::ConnectorState;
use resilience_core::policy::LoadOptions;
use resilience_core::{Engine, PolicySet, Resilience, Resilient};

pub use discover::{DiscoveredTable, TableKind};
pub use health::ConnectorHealth;
pub(crate) use lease::{Lease, remaining, remaining_millis, set_statement_timeout};

use crate::arrow::NumericMapping;
use crate::config::PgParams;
use crate::error::PgError;
use link::{Link, LinkRecovery};

/// A PostgreSQL connector. Create it, [`configure`](Self::configure) it, then test,
/// discover and read.
pub struct PostgresConnector {
    engine: Option<Engine>,
    setup: Option<Setup>,
    status: Arc<Mutex<Status>>,
    numeric: NumericMapping,
}

/// What `configure` built.
#[derive(Clone)]
struct Setup {
    link: Arc<Link>,
    resilience: Resilience,
}

#[derive(Debug)]
struct Status {
    state: ConnectorState,
    last_error: Option<String>,
}

impl Default for PostgresConnector {
    fn default() -> Self {
        PostgresConnector::new()
    }
}

impl std::fmt::Debug for PostgresConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConnector")
            .field("state", &self.state())
            .field("params", &self.setup.as_ref().map(|s| s.link.params()))
            .finish_non_exhaustive()
    }
}

impl PostgresConnector {
    /// A connector in the `Created` state using the process-wide engine
    /// ([`Engine::global`]), or an engine for the profile named in the parameters.
    pub fn new() -> Self {
        PostgresConnector {
            engine: None,
            setup: None,
            status: Arc::new(Mutex::new(Status {
                state: ConnectorState::Created,
                last_error: None,
            })),
            numeric: NumericMapping::default(),
        }
    }

    /// How `numeric` columns arrive in Arrow from now on (schemas and reads):
    /// `Decimal128` where they fit (the default), or exact text that also holds `NaN`.
    pub fn set_numeric_mapping(&mut self, mapping: NumericMapping) {
        self.numeric = mapping;
    }

    /// How `numeric` columns arrive in Arrow.
    pub fn numeric_mapping(&self) -> NumericMapping {
        self.numeric
    }

    /// A handle on the same configuration, pool, policy and status, owned, so that a read
    /// can page on a task of its own while its caller works on the previous page.
    pub(crate) fn handle(&self) -> PostgresConnector {
        PostgresConnector {
            engine: self.engine.clone(),
            setup: self.setup.clone(),
            status: Arc::clone(&self.status),
            numeric: self.numeric,
        }
    }

    /// A connector running on `engine` (shared breakers and limits, custom policies).
    pub fn with_engine(engine: Engine) -> Self {
        PostgresConnector {
            engine: Some(engine),
            ..PostgresConnector::new()
        }
    }

    /// The lifecycle state.
    pub fn state(&self) -> ConnectorState {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .state
    }

    /// Validates `params`, resolves the password and enables the policy:
    /// `Created | Configured | Ready | Error -> Configured`, or `Error` when invalid.
    pub fn configure(&mut self, params: PgParams) -> Result<(), PgError> {
        match self.build(params) {
            Ok(setup) => {
                if let Some(old) = self.setup.replace(setup) {
                    old.link.reset_pool();
                }
                self.set_status(ConnectorState::Configured, None);
                Ok(())
            }
            Err(e) => {
                if let Some(old) = self.setup.take() {
                    old.link.reset_pool();
                }
                self.set_status(ConnectorState::Error, Some(e.to_string()));
                Err(e)
            }
        }
    }

    /// Like [`configure`](Self::configure) from a `postgres://` URL.
    pub fn configure_url(&mut self, url: &str) -> Result<(), PgError> {
        self.configure(PgParams::from_url(url)?)
    }

    fn build(&self, params: PgParams) -> Result<Setup, PgError> {
        params.validate()?;
        let engine = match (&self.engine, &params.profile) {
            (Some(engine), _) => engine.clone(),
            (None, Some(profile)) => {
                let options = LoadOptions {
                    dir: None,
                    profile: Some(profile.clone()),
                };
                Engine::new(
                    PolicySet::load(&options)
                        .map_err(|e| PgError::config("profile", e.to_string()))?,
                )
            }
            (None, None) => Engine::global().clone(),
        };
        let key = params.host_key();
        let link = Arc::new(Link::new(params)?);
        let resilience = Resilience::new(engine, &link.params().policy)
            .map_err(|e| PgError::config("policy", e.to_string()))?
            .with_key(key)
            .with_recovery(Arc::new(LinkRecovery(link.clone())));
        Ok(Setup { link, resilience })
    }

    /// The parameters `configure` accepted.
    pub fn params(&self) -> Option<&PgParams> {
        self.setup.as_ref().map(|s| s.link.params())
    }

    /// The rate-limit and breaker key, `host:port`.
    pub fn host_key(&self) -> &str {
        self.resilience().key()
    }

    fn set_status(&self, state: ConnectorState, last_error: Option<String>) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = Status { state, last_error };
    }

    /// Records that a call reached the server.
    pub(crate) fn mark_ready(&self) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if status.state != ConnectorState::Ready && self.setup.is_some() {
            *status = Status {
                state: ConnectorState::Ready,
                last_error: None,
            };
        }
    }

    /// The configured link, or a state error naming `operation`.
    fn link(&self, operation: &'static str) -> Result<&Arc<Link>, PgError> {
        match &self.setup {
            Some(setup) => Ok(&setup.link),
            None => {
                let status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
                let hint = match &status.last_error {
                    Some(e) => {
                        format!("configure failed ({e}); call configure with valid parameters")
                    }
                    None => "call configure first".to_owned(),
                };
                Err(PgError::State {
                    operation,
                    state: status.state,
                    hint,
                })
            }
        }
    }

    /// A pooled connection that is discarded unless released (see [`Lease`]).
    ///
    /// sqlx retries refused connections (and 53300/57P03) inside the pool until the
    /// acquire timeout, then says only "pool timed out". On that error a direct
    /// connection is tried: if it fails, its error (the real cause, a connection-class
    /// error that triggers recovery) is returned; if it succeeds, the pool was merely
    /// exhausted and the timeout stands.
    pub(crate) async fn lease(&self) -> Result<Lease, PgError> {
        let link = self.link("acquire a connection")?;
        match Lease::acquire(&link.pool()).await {
            Err(PgError::Driver(sqlx::Error::PoolTimedOut)) => {
                let limit = remaining().map_or(link.params().connect_timeout, |left| {
                    left.min(link.params().connect_timeout)
                });
                match link.connect_direct(Some(limit)).await {
                    Err(cause) => Err(cause),
                    Ok(conn) => {
                        drop(conn);
                        Err(PgError::Driver(sqlx::Error::PoolTimedOut))
                    }
                }
            }
            other => other,
        }
    }

    /// The schema to work in: the configured one, or `public`.
    pub(crate) fn schema(&self) -> &str {
        self.params()
            .and_then(|p| p.schema.as_deref())
            .unwrap_or("public")
    }
}

impl Resilient for PostgresConnector {
    fn resilience(&self) -> &Resilience {
        match &self.setup {
            Some(setup) => &setup.resilience,
            // Only reached by an operation called before configure, whose body then
            // fails with a state error; the built-in `db` policy always exists.
            None => {
                static UNCONFIGURED: OnceLock<Resilience> = OnceLock::new();
                UNCONFIGURED.get_or_init(|| {
                    Resilience::new(Engine::builtin(), "db")
                        .expect("the built-in presets define the db policy")
                        .with_key("unconfigured")
                })
            }
        }
    }
}

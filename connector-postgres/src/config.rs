//! Connection parameters: what they are, which values are valid, how they become sqlx
//! options.
//!
//! Everything is validated before anything connects, with errors that name the field and
//! the valid values. The password is held as a [`Credential`] (a source) and resolved
//! to a [`Secret`] only when options are built; no `Debug` or error of this module
//! prints it.

mod options;
mod secret;
mod ssl;
mod url;

use std::path::PathBuf;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

pub use options::ConnectOptions;
pub use secret::{Credential, Secret};
pub use ssl::SslMode;

use crate::error::PgError;

/// Parameters of a PostgreSQL connection; build with [`PgParams::new`] or
/// [`PgParams::from_url`], adjust the public fields, and hand to `configure`.
#[derive(Debug, Clone)]
pub struct PgParams {
    /// Host name or IP address (or a Unix socket directory starting with `/`).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// Role to connect as.
    pub user: String,
    /// Where the password comes from; `None` for trust or peer authentication.
    pub password: Option<Credential>,
    /// The schema to discover; `None` means all non-system schemas.
    pub schema: Option<String>,
    /// TLS mode.
    pub ssl_mode: SslMode,
    /// Root certificate (PEM) to verify the server against.
    pub ssl_root_cert: Option<PathBuf>,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
    /// Maximum connections in the pool.
    pub pool_size: u32,
    /// Time allowed to open one connection (also the pool's acquire timeout).
    pub connect_timeout: Duration,
    /// Resilience policy applied to every operation.
    pub policy: String,
    /// Policy profile (`prod`, ...) loaded over the built-in presets; `None` uses the
    /// process-wide engine (`RESILIENCE_PROFILE`).
    pub profile: Option<String>,
}

impl Default for PgParams {
    fn default() -> Self {
        PgParams {
            host: "127.0.0.1".into(),
            port: 5432,
            database: "postgres".into(),
            user: "postgres".into(),
            password: None,
            schema: None,
            ssl_mode: SslMode::Prefer,
            ssl_root_cert: None,
            application_name: "resilient-connector".into(),
            pool_size: 5,
            connect_timeout: Duration::from_secs(10),
            policy: "db".into(),
            profile: None,
        }
    }
}

/// Largest pool accepted; PostgreSQL's own default `max_connections` is 100.
const MAX_POOL_SIZE: u32 = 1000;
/// PostgreSQL truncates identifiers and `application_name` to 63 bytes.
const MAX_NAME_BYTES: usize = 63;

impl PgParams {
    /// Parameters for `user@host:port/database`, everything else default.
    pub fn new(host: impl Into<String>, port: u16, database: impl Into<String>) -> Self {
        PgParams {
            host: host.into(),
            port,
            database: database.into(),
            ..PgParams::default()
        }
    }

    /// Sets the role.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Sets the password source.
    pub fn password(mut self, credential: Credential) -> Self {
        self.password = Some(credential);
        self
    }

    /// Sets the schema to discover.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Sets the resilience policy.
    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.policy = policy.into();
        self
    }

    /// The rate-limit and breaker key: `host:port` (`[::1]:5432` for IPv6).
    pub fn host_key(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Checks every field; the error names the field and what would be valid.
    pub fn validate(&self) -> Result<(), PgError> {
        if self.host.is_empty() || self.host.contains(char::is_whitespace) {
            return Err(PgError::config(
                "host",
                "expected a host name, IP address or socket directory",
            ));
        }
        if self.port == 0 {
            return Err(PgError::config("port", "expected 1 to 65535"));
        }
        name("database", &self.database)?;
        name("user", &self.user)?;
        if let Some(schema) = &self.schema {
            name("schema", schema)?;
        }
        if self.application_name.len() > MAX_NAME_BYTES
            || !self
                .application_name
                .chars()
                .all(|c| c.is_ascii_graphic() || c == ' ')
        {
            return Err(PgError::config(
                "application_name",
                format!("expected at most {MAX_NAME_BYTES} printable ASCII characters"),
            ));
        }
        if self.pool_size == 0 || self.pool_size > MAX_POOL_SIZE {
            return Err(PgError::config(
                "pool_size",
                format!(
                    "{} is out of range, expected 1 to {MAX_POOL_SIZE}",
                    self.pool_size
                ),
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(PgError::config(
                "connect_timeout",
                "expected a positive duration, e.g. 10s",
            ));
        }
        if let Some(cert) = &self.ssl_root_cert {
            if self.ssl_mode == SslMode::Disable {
                return Err(PgError::config(
                    "sslrootcert",
                    "has no effect with sslmode=disable; use require, verify-ca or verify-full",
                ));
            }
            if !cert.is_file() {
                return Err(PgError::config(
                    "sslrootcert",
                    format!("{} is not a readable file", cert.display()),
                ));
            }
        }
        if self.policy.is_empty() {
            return Err(PgError::config("policy", "expected a policy name, e.g. db"));
        }
        Ok(())
    }

    /// Options for these parameters with the resolved password (see
    /// [`Credential::resolve`]), for a direct connection outside the connector. Their
    /// `Debug` prints `***` for the password.
    pub fn connect_options(&self, password: Option<&Secret>) -> ConnectOptions {
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .database(&self.database)
            .username(&self.user)
            .ssl_mode(self.ssl_mode.to_sqlx())
            .application_name(&self.application_name);
        if let Some(password) = password {
            options = options.password(password.expose());
        }
        if let Some(cert) = &self.ssl_root_cert {
            options = options.ssl_root_cert(cert);
        }
        ConnectOptions::new(options, password.is_some())
    }
}

fn name(field: &'static str, value: &str) -> Result<(), PgError> {
    if value.is_empty() || value.len() > MAX_NAME_BYTES || value.contains('\0') {
        return Err(PgError::config(
            field,
            format!("expected 1 to {MAX_NAME_BYTES} bytes without NUL"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        PgParams::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_field_and_valid_values() {
        let p = PgParams {
            pool_size: 0,
            ..PgParams::default()
        };
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            "invalid pool_size: 0 is out of range, expected 1 to 1000"
        );
        let err = "verify".parse::<SslMode>().unwrap_err().to_string();
        assert!(err.contains("verify-ca, verify-full"), "{err}");
        let p = PgParams {
            database: String::new(),
            ..PgParams::default()
        };
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .starts_with("invalid database")
        );
    }

    #[test]
    fn root_cert_must_exist_and_need_tls() {
        let mut p = PgParams {
            ssl_root_cert: Some("/nonexistent/root.crt".into()),
            ..PgParams::default()
        };
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("not a readable file")
        );
        p.ssl_mode = SslMode::Disable;
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("sslmode=disable")
        );
    }

    #[test]
    fn password_never_in_debug() {
        let p = PgParams::default().password(Credential::literal("s3cr3t-pw"));
        assert!(!format!("{p:?}").contains("s3cr3t-pw"));
    }

    #[test]
    fn host_key_brackets_ipv6() {
        assert_eq!(PgParams::new("::1", 5433, "d").host_key(), "[::1]:5433");
        assert_eq!(PgParams::default().host_key(), "127.0.0.1:5432");
    }
}

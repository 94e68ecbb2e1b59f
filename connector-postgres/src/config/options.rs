//! sqlx connection options that cannot leak the password.
//!
//! `PgConnectOptions` derives `Debug` and prints the password it holds. [`ConnectOptions`]
//! wraps it: its `Debug` shows where it connects and `***` for the password, and it
//! connects by itself, so callers never need the sqlx type (the pool, inside this crate,
//! is the one place that takes it).

use std::fmt;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// Options for one connection, built by [`PgParams::connect_options`](super::PgParams).
#[derive(Clone)]
pub struct ConnectOptions {
    inner: PgConnectOptions,
    has_password: bool,
}

impl ConnectOptions {
    pub(super) fn new(inner: PgConnectOptions, has_password: bool) -> Self {
        Self {
            inner,
            has_password,
        }
    }

    /// The same options with another `application_name`.
    pub fn application_name(mut self, name: &str) -> Self {
        self.inner = self.inner.application_name(name);
        self
    }

    /// Opens one connection (no timeout of its own: bound the await).
    pub async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.inner).await
    }

    /// The sqlx options, for the pool. Their `Debug` prints the password.
    pub(crate) fn into_sqlx(self) -> PgConnectOptions {
        self.inner
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("host", &self.inner.get_host())
            .field("port", &self.inner.get_port())
            .field("database", &self.inner.get_database())
            .field("user", &self.inner.get_username())
            .field("password", &if self.has_password { "***" } else { "none" })
            .field("ssl_mode", &self.inner.get_ssl_mode())
            .field("application_name", &self.inner.get_application_name())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::PgParams;
    use crate::config::Secret;

    #[test]
    fn debug_shows_where_it_connects_but_not_the_password() {
        let params = PgParams::new("db.example", 6543, "sales");
        let secret = Secret::new("hunter2-of-the-night");
        let shown = format!("{:?}", params.connect_options(Some(&secret)));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("db.example") && shown.contains("6543"),
            "{shown}"
        );
        assert!(shown.contains("password: \"***\""), "{shown}");
        let shown = format!("{:?}", params.connect_options(None));
        assert!(shown.contains("password: \"none\""), "{shown}");
    }
}

//! The PostgreSQL server and database the demo runs in.
//!
//! `--database-url` (or `DATABASE_URL`) names a server; else the local one on
//! 127.0.0.1:5432 is used when it answers; else a throwaway cluster is started from the
//! PostgreSQL binaries on the machine and removed when the demo ends. The demo works in a
//! database of its own, created afresh and dropped afterwards, so it never touches other
//! data and several runs can go on side by side under different names.

use std::net::SocketAddr;
use std::time::Duration;

use connector_postgres::{PgError, PgParams};
use sqlx::PgConnection;
use test_support::SupportError;
use test_support::postgres::{TestServer, pick_server};

use crate::args::DemoArgs;
use crate::error::CliError;

/// The server, and the database created on it for the demo.
pub(crate) struct DemoDb {
    server: TestServer,
    name: String,
    upstream: SocketAddr,
}

impl DemoDb {
    /// Finds or starts a server and creates the demo database on it.
    pub(crate) async fn prepare(args: &DemoArgs) -> Result<DemoDb, CliError> {
        let server = match args.database_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => TestServer::External(
                PgParams::from_url(url)
                    .map_err(|e| CliError::Usage(format!("--database-url: {e}")))?,
            ),
            None => pick_server().await.map_err(|e| {
                CliError::Failed(format!(
                    "no PostgreSQL server: nothing answers on 127.0.0.1:5432 and a throwaway \
                     cluster could not be started ({e})"
                ))
            })?,
        };
        let where_ = match &server {
            TestServer::External(_) => format!("{} (already running)", server.host_key()),
            TestServer::Throwaway(c) => format!(
                "throwaway cluster on 127.0.0.1:{} (removed afterwards)",
                c.port()
            ),
        };
        let upstream = resolve(&server).await?;
        server
            .create_database(&args.database_name)
            .await
            .map_err(|e| CliError::connector("create the demo database", &into_pg(e)))?;
        println!("PostgreSQL: {where_}, database {}", args.database_name);
        Ok(DemoDb {
            server,
            name: args.database_name.clone(),
            upstream,
        })
    }

    /// The server's TCP address, which the chaos proxies forward to.
    pub(crate) fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Connection parameters for the demo database, without policy settings.
    pub(crate) fn params(&self) -> PgParams {
        self.server.params(&self.name)
    }

    /// Parameters that reach the demo database through a proxy listening on `proxy`.
    pub(crate) fn params_via(&self, proxy: SocketAddr, application_name: &str) -> PgParams {
        let mut params = self.params();
        params.host = proxy.ip().to_string();
        params.port = proxy.port();
        params.application_name = application_name.to_owned();
        params
    }

    /// A small pool of admin connections to the demo database, for the test API.
    pub(crate) async fn pool(&self) -> Result<sqlx::PgPool, String> {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(self.server.url_with_password(&self.name).expose())
            .await
            .map_err(|e| format!("cannot connect the test API to the demo database: {e}"))
    }

    /// A direct admin connection to the demo database (never through a proxy).
    pub(crate) async fn admin(&self) -> Result<PgConnection, PgError> {
        self.server.connect(&self.name).await.map_err(into_pg)
    }

    /// Drops the demo database unless asked to keep it; a throwaway cluster is removed
    /// when `self` is dropped.
    pub(crate) async fn finish(self, keep: bool) {
        if keep {
            println!("Kept database {} on {}", self.name, self.server.host_key());
        } else if let Err(e) = self.server.drop_database(&self.name).await {
            eprintln!("warning: could not drop database {}: {e}", self.name);
        }
    }
}

/// Rejects a database name the demo would not create, before anything connects.
pub(crate) fn check_name(name: &str) -> Result<(), CliError> {
    if test_support::postgres::is_valid_database_name(name) {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--database-name `{name}` is not valid, expected 1 to 63 of [a-z0-9_]"
        )))
    }
}

/// A test-server error as the connector's, so it is classified and reported as one.
fn into_pg(error: SupportError) -> PgError {
    match error {
        SupportError::Postgres(e) => e,
        SupportError::Sql(e) => PgError::from(e),
        other => PgError::config("database", other.to_string()),
    }
}

/// The server's socket address: the proxies forward TCP, so a Unix socket will not do.
async fn resolve(server: &TestServer) -> Result<SocketAddr, CliError> {
    let params = server.params("postgres");
    if params.host.starts_with('/') {
        return Err(CliError::Usage(format!(
            "the demo needs a TCP address for PostgreSQL, not the Unix socket {}; use host=127.0.0.1",
            params.host
        )));
    }
    let key = params.host_key();
    let lookup = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host(&key)).await;
    match lookup {
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| CliError::Failed(format!("{key} resolves to no address"))),
        Ok(Err(e)) => Err(CliError::Failed(format!("cannot resolve {key}: {e}"))),
        Err(_) => Err(CliError::Failed(format!("resolving {key} timed out"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_checked_before_connecting() {
        assert!(check_name("resilient_demo_2").is_ok());
        for bad in ["", "Demo", "demo-db", "a;drop", &"x".repeat(64)] {
            let err = check_name(bad).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::EXIT_USAGE, "{bad}");
        }
    }
}

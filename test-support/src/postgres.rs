//! Servers to run against: the one named by `DATABASE_URL`, the local one on
//! 127.0.0.1:5432, or a throwaway cluster started on the spot.
//!
//! Shared by the tests and the CLI demo, never by the connector itself. Work happens in a
//! database of its own ([`TestServer::create_database`]), so runs in parallel do not see
//! each other and cleaning up is one `DROP DATABASE`.

mod throwaway;

use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Executor};

pub use throwaway::ThrowawayCluster;

use connector_postgres::{PgParams, Secret, SslMode};

use crate::SupportError;

/// Where the local server is looked for when `DATABASE_URL` is not set.
const LOCAL: &str = "127.0.0.1:5432";

/// A server to connect to, with admin rights.
#[derive(Debug)]
pub enum TestServer {
    /// A server that was already running (`DATABASE_URL` or 127.0.0.1:5432).
    External(PgParams),
    /// A cluster this process started; removed when dropped.
    Throwaway(ThrowawayCluster),
}

/// `DATABASE_URL` if set; else 127.0.0.1:5432 (user `postgres`, trust authentication)
/// if it accepts a connection; else a new [`ThrowawayCluster`].
pub async fn pick_server() -> Result<TestServer, SupportError> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok(TestServer::External(PgParams::from_url(&url)?));
    }
    let local = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect(LOCAL),
    )
    .await;
    if matches!(local, Ok(Ok(_))) {
        let mut params = PgParams::new("127.0.0.1", 5432, "postgres");
        params.ssl_mode = SslMode::Disable;
        return Ok(TestServer::External(params));
    }
    Ok(TestServer::Throwaway(ThrowawayCluster::start().await?))
}

impl TestServer {
    /// Admin parameters for `database` (the server's superuser, password if any).
    pub fn params(&self, database: &str) -> PgParams {
        let mut params = match self {
            TestServer::External(p) => p.clone(),
            TestServer::Throwaway(c) => {
                let mut p = PgParams::new("127.0.0.1", c.port(), "postgres");
                p.ssl_mode = SslMode::Disable;
                p
            }
        };
        params.database = database.to_owned();
        params
    }

    /// An admin `postgres://` URL for `database`, without a password (see
    /// [`url_with_password`](Self::url_with_password)).
    pub fn url(&self, database: &str) -> String {
        self.url_inner(database, None)
    }

    /// The admin URL with the password, when `DATABASE_URL` had one, as a [`Secret`]
    /// (its `Debug` and `Display` print `***`): for handing to a child process.
    pub fn url_with_password(&self, database: &str) -> Secret {
        let password = self
            .params(database)
            .password
            .and_then(|c| c.resolve().ok());
        Secret::new(self.url_inner(database, password.as_ref()))
    }

    fn url_inner(&self, database: &str, password: Option<&Secret>) -> String {
        let p = self.params(database);
        let password = password.map_or(String::new(), |s| format!(":{}", encode(s.expose())));
        format!(
            "postgres://{}{password}@{}/{}?sslmode=disable",
            encode(&p.user),
            p.host_key(),
            encode(database)
        )
    }

    /// The host and port, `127.0.0.1:5432`.
    pub fn host_key(&self) -> String {
        self.params("postgres").host_key()
    }

    /// The throwaway cluster, when this server is one (for restarts).
    pub fn cluster(&self) -> Option<&ThrowawayCluster> {
        match self {
            TestServer::Throwaway(c) => Some(c),
            TestServer::External(_) => None,
        }
    }

    /// A direct admin connection to `database`.
    pub async fn connect(&self, database: &str) -> Result<PgConnection, SupportError> {
        let p = self.params(database);
        let password = p.password.as_ref().map(|c| c.resolve()).transpose()?;
        let options = p.connect_options(password.as_ref());
        match tokio::time::timeout(Duration::from_secs(10), options.connect()).await {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(SupportError::TestServer(format!(
                "connect to {} timed out",
                p.host_key()
            ))),
        }
    }

    /// Creates `name` afresh (dropping a leftover of the same name) and returns admin
    /// parameters for it. Names are restricted to `[a-z0-9_]`.
    pub async fn create_database(&self, name: &str) -> Result<PgParams, SupportError> {
        check_name(name)?;
        let mut admin = self.connect("postgres").await?;
        admin
            .execute(AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
            )))
            .await?;
        // The name is checked to be [a-z0-9_] above: safe to splice.
        admin
            .execute(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await?;
        let _ = admin.close().await;
        Ok(self.params(name))
    }

    /// Drops `name`, terminating its sessions.
    pub async fn drop_database(&self, name: &str) -> Result<(), SupportError> {
        check_name(name)?;
        let mut admin = self.connect("postgres").await?;
        admin
            .execute(AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
            )))
            .await?;
        let _ = admin.close().await;
        Ok(())
    }
}

/// Whether `name` is a database name the test-server helpers create: 1 to 63 of
/// `[a-z0-9_]`, so it never needs quoting.
pub fn is_valid_database_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn check_name(name: &str) -> Result<(), SupportError> {
    if is_valid_database_name(name) {
        Ok(())
    } else {
        Err(SupportError::TestServer(format!(
            "`{name}` is not a test database name, expected 1 to 63 of [a-z0-9_]"
        )))
    }
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

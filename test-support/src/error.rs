//! The one error type of this crate.

/// What can go wrong while starting or preparing a server to test against.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupportError {
    /// Starting, stopping or preparing a test server failed.
    #[error("test server: {0}")]
    TestServer(String),

    /// The PostgreSQL connector refused the server's parameters (a bad `DATABASE_URL`,
    /// a credential that cannot be read).
    #[error(transparent)]
    Postgres(#[from] connector_postgres::PgError),

    /// A statement on the admin connection failed.
    #[error("test server: {0}")]
    Sql(#[from] sqlx::Error),
}

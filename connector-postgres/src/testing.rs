//! The server unit tests run against, from the shared test support.
//!
//! The support crate depends on this one, so inside this crate's own tests its
//! parameter type is another compilation's: the server is handed over as a URL.

use crate::PgParams;

pub(crate) use test_support::postgres::TestServer;

/// The server the tests use (`DATABASE_URL`, 127.0.0.1:5432, or a throwaway cluster).
pub(crate) async fn pick_server() -> TestServer {
    test_support::postgres::pick_server()
        .await
        .expect("a PostgreSQL server for tests")
}

/// Admin parameters for `database` on `server`, as this crate's type.
pub(crate) fn params(server: &TestServer, database: &str) -> PgParams {
    PgParams::from_url(server.url_with_password(database).expose()).expect("a valid URL")
}

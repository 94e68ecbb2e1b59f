//! Servers to test against, shared by the integration tests and the `resilient demo`,
//! never by production code: a connector must not carry the harness that tests it.
//!
//! - [`postgres`]: the server at `DATABASE_URL`, else the local one on 127.0.0.1:5432,
//!   else a throwaway cluster started from the PostgreSQL binaries and removed on drop.
//! - [`http`]: a REST API serving paginated JSON from PostgreSQL tables, with faults
//!   switched on per request (429 with `Retry-After`, 503, slow and truncated answers,
//!   expiring credentials) and every request's arrival time recorded.
//! - [`redis`]: the Redis at `REDIS_URL`, else the local one on 127.0.0.1:6379, else a
//!   throwaway `redis-server` started for the test process.
//!
//! ```no_run
//! # async fn demo() -> Result<(), test_support::SupportError> {
//! let server = test_support::postgres::pick_server().await?;
//! let params = server.create_database("my_test").await?;
//! # let _ = params;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod error;
pub mod http;
pub mod postgres;
pub mod redis;

pub use error::SupportError;

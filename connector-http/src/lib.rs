//! A REST API connector on reqwest that survives faults.
//!
//! It reads JSON records from paginated endpoints (page number, offset and limit, a
//! cursor token from the body, or `Link: rel="next"`), each page fetched by one
//! `#[resilient_operation]` under the `api` policy keyed by `host:port`: retries with
//! backoff, a circuit breaker, a rate limit and deadlines come from the policy files,
//! and nothing in this crate sleeps or retries by hand.
//!
//! - Answers are classified by declarative rules ([`Rule`]: status codes, a header, a
//!   body field or substring) before the defaults (429 throttled, 502/503/504
//!   transient, 408 timeout, 401/403 auth, other 4xx invalid input).
//! - `Retry-After` in either form ([`retry_after`]) becomes the error's
//!   [`not_before`](resilience_core::ResilientError::not_before): the engine's next
//!   attempt waits until then (no earlier, whatever the backoff says), gives up at once
//!   when that is past the total deadline, and holds the host's rate limit meanwhile.
//! - Credentials come from an environment variable or a file and are re-read once after
//!   a `401` (the policy's `credential_refresh`); they never appear in `Debug`, logs or
//!   errors.
//!
//! ```no_run
//! # async fn demo() -> Result<(), connector_http::HttpError> {
//! use connector_http::{HttpConnector, HttpParams};
//!
//! let params: HttpParams = serde_json::from_value(serde_json::json!({
//!     "base_url": "http://127.0.0.1:8080/",
//!     "auth": {"type": "bearer", "from": {"env": "API_TOKEN"}},
//!     "streams": [{
//!         "name": "items", "path": "cursor/items", "records": "/data", "page_size": 100,
//!         "pagination": {"type": "cursor", "pointer": "/meta/next_cursor"}
//!     }]
//! })).expect("valid settings");
//! let mut api = HttpConnector::new();
//! api.configure(params)?;
//! let records = api.read_all("items", vec![]).await?;
//! # let _ = records;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod arrow;
pub mod auth;
pub mod classify;
mod config;
mod connector;
mod error;
pub mod incremental;
mod interface;
pub mod paginate;
mod read;
pub mod retry_after;

pub use classify::{Action, Rule};
pub use config::{HttpParams, StreamSpec};
pub use connector::{HttpConnector, Page};
pub use error::HttpError;
pub use incremental::{Checkpoint, IncrementalChunk, IncrementalOptions};
pub use interface::{DiscoveredStream, HttpHealth};
pub use paginate::Pagination;

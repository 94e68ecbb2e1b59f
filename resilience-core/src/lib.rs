//! Policy-driven resilience for data connectors.
//!
//! A connector author writes `#[resilient_operation]` on an async method; the method then
//! runs under a named policy from TOML policy files — retry with jittered exponential
//! backoff, a circuit breaker, token-bucket rate limiting per host, per-attempt and total
//! deadlines, and connection recovery — in one fixed order:
//!
//! ```text
//! total deadline
//!   └ retry loop (attempts, backoff schedule, retry budget)
//!       └ per attempt: breaker permit → rate-limit permit (key) → attempt deadline → call
//! ```
//!
//! Zero configuration works: the built-in presets (`db`, `api`, `file`) are compiled in,
//! and `RESILIENCE_POLICY_DIR` / `RESILIENCE_PROFILE` (and `<NAME>_RESILIENCE_CONFIG` for
//! one policy) let an operator swap them per environment without a rebuild;
//! [`Engine::reload`] swaps them in a running process, keeping every breaker and bucket.
//!
//! What the engine does is published as typed [`events`] to observers
//! ([`Engine::subscribe`]); health, metrics and logs are derived from the same events.
//! Each call runs in a `resilient_call` tracing span and each attempt in an `attempt`
//! span inside it (at `debug` level).
//!
//! With the cargo feature `tower`, `ResilienceLayer` (module `layer`) runs any
//! tower `Service` under a policy the same way.
//!
//! # Example
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use resilience_core::{Call, Engine, Failure, ResilientError};
//!
//! #[derive(Debug, ResilientError)]
//! enum DbError {
//!     #[resilient(class = "connection")]
//!     Reset,
//!     #[resilient(failure)]
//!     Stopped(Box<Failure<DbError>>),
//! }
//!
//! impl std::fmt::Display for DbError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         match self {
//!             DbError::Reset => f.write_str("connection reset by peer"),
//!             DbError::Stopped(failure) => failure.fmt(f),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let engine = Engine::builtin();
//! let calls = AtomicU32::new(0);
//! // The first call is reset; the `db` policy retries it after a jittered backoff.
//! let rows = engine
//!     .run(Call::new("db", "count_rows").key("127.0.0.1:5432"), || async {
//!         if calls.fetch_add(1, Ordering::SeqCst) == 0 {
//!             Err(DbError::Reset)
//!         } else {
//!             Ok(42)
//!         }
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(rows, 42);
//! assert_eq!(calls.load(Ordering::SeqCst), 2);
//! let health = engine.health();
//! assert_eq!(health.get("db", "127.0.0.1:5432").unwrap().retries, 1);
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod arena;
pub mod attempt;
pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod connector;
mod engine;
mod error;
pub mod events;
mod failure;
mod handle;
pub mod health;
#[cfg(feature = "tower")]
pub mod layer;
pub mod limiter;
pub mod recovery;
mod registry;
mod resilience;
mod run;
mod sharded;
pub mod shared;
mod slot;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// The policy model and loader (re-exported from `resilience-policy`).
pub mod policy {
    pub use resilience_policy::*;
}

pub use engine::Engine;
pub use error::ResilientError;
pub use failure::{Failure, Stop};
pub use handle::BreakerHandle;
pub use health::HealthReport;
#[cfg(feature = "tower")]
pub use layer::{ResilienceLayer, ResilienceService};
pub use recovery::{BoxFuture, Recovered, Recovery, RecoveryCause};
pub use registry::PolicyChange;
pub use resilience::{Resilience, Resilient, UnknownPolicyError};
pub use resilience_policy::{ClassSet, ErrorClass, Policy, PolicyError, PolicySet};
pub use run::{Attempted, Call, ResultLike};

/// Wraps an `async fn` returning a `Result` in its policy. See the crate docs.
pub use resilience_macros::{ResilientError, resilient_operation};

//! A Redis store for the resilience framework: rate limits shared by every process that
//! names the same store, with a defined behaviour when Redis is away.
//!
//! A profile names the store (`[store] backend = "redis"`, see
//! [`StorePolicy`](resilience_core::policy::StorePolicy)); [`RedisStore::new`] builds it
//! and [`Engine::with_store`](resilience_core::Engine::with_store) plugs it into an
//! engine. Every policy the set marks as shared then takes its rate-limit tokens from
//! one GCRA bucket per policy and key in Redis ([`gcra`](crate) module docs): at most
//! `burst + rate × t` calls in any window `t`, across all processes together.
//!
//! Why a crate of its own rather than a feature of `resilience-core`: the engine stays
//! free of a network client and its dependencies for the zero-configuration case, the
//! seam ([`SharedStore`](resilience_core::shared::SharedStore)) is the whole contract, and
//! another store could plug in the same way.
//!
//! When Redis does not answer within the store's `timeout`, `on_unavailable = "local"`
//! runs each bucket locally at this process's fair share (the limit divided by the live
//! workers the store last counted, see [`fleet`]), logs the switch once, and returns to
//! the shared bucket when Redis answers again; `"fail_closed"` refuses calls with
//! [`Stop::StoreUnavailable`](resilience_core::Stop::StoreUnavailable).
//!
//! ```no_run
//! use std::sync::Arc;
//! use resilience_core::{Engine, PolicySet};
//! use resilience_core::policy::StorePolicy;
//! use resilience_redis::RedisStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policies = PolicySet::builtin().with_store(
//!     StorePolicy::redis("redis://127.0.0.1:6379"),
//!     ["file"], // kept local to each process
//! );
//! let store = RedisStore::new(policies.store().unwrap())?;
//! let engine = Engine::with_store(policies, Arc::new(store));
//! # let _ = engine;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod breaker;
mod error;
pub mod fleet;
mod gcra;
pub mod lease;
mod link;
pub mod metrics;
mod store;

pub use error::StoreError;
pub use store::{RedisStore, Unavailable};

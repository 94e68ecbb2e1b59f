//! Policy files for the resilience framework: the model, the loader and its errors.
//!
//! This crate is shared by the runtime (`resilience-core`) and the
//! `#[resilient_operation]` macro, so a policy name is checked at compile time by the
//! same code that loads it at run time. Loading is synchronous and needs no async runtime.
//!
//! Policies come in layers, merged key by key: the built-in `default.toml` (the presets
//! `db`, `api` and `file`), then `default.toml` in a policy folder, then a profile
//! (`prod.toml`, ...), then for each policy the file its `<NAME>_RESILIENCE_CONFIG`
//! variable names (`DB_RESILIENCE_CONFIG` for `db`). A policy may `extends = "other"` to
//! inherit the keys it does not set. Every error names the file, line, column and key,
//! and says what would be valid. Files and policies built in code
//! ([`PolicySet::from_policies`]) are checked by the same rules.
//!
//! ```
//! use resilience_policy::{LoadOptions, PolicySet};
//!
//! let builtin = PolicySet::builtin();
//! assert_eq!(builtin.get("db").unwrap().retry.max_attempts.get(), 3);
//!
//! let prod = PolicySet::load(&LoadOptions { dir: None, profile: Some("prod".into()) })?;
//! assert_eq!(prod.profile(), Some("prod"));
//! assert!(prod.names().any(|name| name == "api"));
//! # Ok::<(), resilience_policy::PolicyError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod class;
mod convert;
mod diff;
mod discover;
mod embedded;
mod error;
mod location;
mod merge;
mod model;
mod overrides;
mod raw;
mod resolve;
mod rules;
mod schema;
mod set;
mod store;
mod suggest;
mod table;
mod validate;

pub use class::{ClassSet, ErrorClass, UnknownClass};
pub use diff::Difference;
pub use discover::{find_policy_dir, known_policy_names};
pub use error::{Location, PolicyError};
pub use model::{
    BreakerMode, BreakerPolicy, BudgetPolicy, Jitter, Policy, RateLimitPolicy, RecoveryPolicy,
    RetryPolicy, TimeoutPolicy, WhenLimited,
};
pub use overrides::variable as override_variable;
pub use set::{LoadOptions, PolicySet, available_profiles};
pub use store::{OnUnavailable, PasswordSource, StoreBackend, StorePolicy};

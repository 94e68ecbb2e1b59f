//! The one error type of this crate: a store that cannot be set up.
//!
//! Failures of a running store are not errors of this type: a request that fails or
//! times out makes the store *unavailable*, which the policy's `on_unavailable` turns into
//! a local fallback or a refused call (see [`Stop::StoreUnavailable`]).
//!
//! [`Stop::StoreUnavailable`]: resilience_core::Stop::StoreUnavailable

/// Why a store could not be set up.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one the client understands.
    #[error("store.url `{url}` is not a valid Redis URL: {reason}")]
    Url {
        /// The URL (it never holds a password: the policy loader refuses one).
        url: String,
        /// What the client said.
        reason: String,
    },
    /// The password's variable or file could not be read.
    #[error("{0}")]
    Password(String),
    /// The policy names a backend this crate does not serve.
    #[error("store.backend is not \"redis\"")]
    Backend,
}

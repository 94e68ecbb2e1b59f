//! The trait a connector's error type implements so the engine can act on it.

use std::fmt;

use crate::failure::Failure;
use resilience_policy::ErrorClass;

/// Implemented by a connector's error type so the engine can decide what to do with it.
///
/// `class` says what kind of failure the error is; `from_failure` turns the engine's
/// verdict (retries exhausted, circuit open, rate limited, deadline exceeded) into the
/// connector's own error type, so a `#[resilient_operation]` keeps its signature. Keep the
/// original error inside: the caller should see the driver's message unchanged, with the
/// verdict beside it.
///
/// Derive it (`#[derive(ResilientError)]`, one `#[resilient(...)]` per variant: see the
/// derive's documentation), or write it by hand:
///
/// ```
/// use resilience_core::{ErrorClass, Failure, ResilientError};
///
/// #[derive(Debug)]
/// enum MyError {
///     Refused,
///     Stopped(Box<Failure<MyError>>),
/// }
///
/// impl std::fmt::Display for MyError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         match self {
///             MyError::Refused => f.write_str("connection refused"),
///             MyError::Stopped(failure) => failure.fmt(f),
///         }
///     }
/// }
///
/// impl ResilientError for MyError {
///     fn class(&self) -> ErrorClass {
///         match self {
///             MyError::Refused => ErrorClass::Connection,
///             MyError::Stopped(failure) => failure.class(),
///         }
///     }
///     fn from_failure(failure: Failure<Self>) -> Self {
///         MyError::Stopped(Box::new(failure))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `ResilientError`, so the engine cannot classify it",
    label = "the error type of a resilient operation",
    note = "implement `resilience_core::ResilientError` for `{Self}`: `class` says whether an error is retried, `from_failure` wraps the engine's verdict"
)]
pub trait ResilientError: Sized + fmt::Display {
    /// The class of this error.
    fn class(&self) -> ErrorClass;

    /// Wraps the engine's verdict on a call into this error type.
    fn from_failure(failure: Failure<Self>) -> Self;

    /// The moment before which the dependency said it will not take another call (an
    /// HTTP `Retry-After`, a database's "too many connections, retry in 5 s"), if it said
    /// one. The engine's next attempt waits until then instead of the policy's backoff,
    /// gives up at once ([`Stop::WaitBeyondDeadline`](crate::Stop::WaitBeyondDeadline))
    /// when that is past the total deadline, and holds the key's rate limiter until then
    /// so that other calls to the same dependency wait too. `None` (the default), or a
    /// moment already past, leaves the backoff in charge.
    fn not_before(&self) -> Option<tokio::time::Instant> {
        None
    }
}

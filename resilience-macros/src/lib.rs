//! The `#[resilient_operation]` attribute and `#[derive(ResilientError)]`. Use them through
//! `resilience-core`, which re-exports them (`resilience_core::resilient_operation`,
//! `resilience_core::ResilientError`); this crate only holds the macros.
//!
//! The macro is glue: it parses its arguments (`args`), checks the function and the
//! policy name (`validate`, against the policy files through `catalog`), and replaces
//! the body with a retry loop that calls into `resilience_core::__private`
//! (`expand`). All behaviour lives in the core crate. On any error, the original
//! function is emitted unchanged next to the errors, so an editor keeps working.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod args;
mod catalog;
mod derive;
mod expand;
mod item;
mod validate;

#[cfg(test)]
mod derive_tests;
#[cfg(test)]
mod signature_tests;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use syn::Error;

use crate::args::Args;
use crate::catalog::Catalog;
use crate::item::Function;

/// Runs an `async fn` under a resilience policy: retry with backoff, circuit breaker,
/// rate limit, per-attempt and total deadlines, and connection recovery.
///
/// ```
/// use std::fmt;
/// use resilience_core::{
///     Engine, ErrorClass, Failure, Resilience, Resilient, ResilientError, resilient_operation,
/// };
///
/// struct PostgresConnector {
///     resilience: Resilience,
///     host: String,
/// }
///
/// impl Resilient for PostgresConnector {
///     fn resilience(&self) -> &Resilience {
///         &self.resilience
///     }
/// }
///
/// impl PostgresConnector {
///     /// Runs under the connector's default policy, keyed by its host.
///     #[resilient_operation]
///     async fn test_connection(&self) -> Result<&'static str, PgError> {
///         Ok("PostgreSQL 15")
///     }
///
///     #[resilient_operation(policy = "db", key = self.host.as_str(), name = "fetch_page")]
///     async fn fetch_page(&self, table: &str, after: Option<i64>) -> Result<Vec<i64>, PgError> {
///         let first = after.map_or(1, |id| id + 1);
///         Ok((first..first + 3).collect())
///     }
/// }
///
/// /// A free function names its policy and runs on the process-wide engine.
/// #[resilient_operation(policy = "api")]
/// async fn list_orders(customer: u32) -> Result<Vec<u32>, PgError> {
///     Ok(vec![customer * 10])
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pg = PostgresConnector {
///     resilience: Resilience::new(Engine::builtin(), "db")
///         .unwrap()
///         .with_key("127.0.0.1:5432"),
///     host: "127.0.0.1:5432".to_owned(),
/// };
/// assert_eq!(pg.test_connection().await.unwrap(), "PostgreSQL 15");
/// assert_eq!(pg.fetch_page("orders", Some(3)).await.unwrap(), [4, 5, 6]);
/// assert_eq!(list_orders(7).await.unwrap(), [70]);
/// let health = pg.resilience().engine().health();
/// assert_eq!(health.get("db", "127.0.0.1:5432").unwrap().calls, 2);
/// # }
/// #
/// # #[derive(Debug)]
/// # enum PgError {
/// #     Stopped(Box<Failure<PgError>>),
/// # }
/// # impl fmt::Display for PgError {
/// #     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
/// #         match self {
/// #             PgError::Stopped(failure) => failure.fmt(f),
/// #         }
/// #     }
/// # }
/// # impl ResilientError for PgError {
/// #     fn class(&self) -> ErrorClass {
/// #         match self {
/// #             PgError::Stopped(failure) => failure.class(),
/// #         }
/// #     }
/// #     fn from_failure(failure: Failure<Self>) -> Self {
/// #         PgError::Stopped(Box::new(failure))
/// #     }
/// # }
/// ```
///
/// # Arguments
///
/// All are optional, each at most once:
///
/// - `policy = "<name>"`: the policy to run under, a string literal. The name is
///   checked at compile time against the built-in presets and the policy files the
///   build sees (`policies/` in the crate's folder or the nearest ancestor, or
///   `RESILIENCE_POLICY_DIR`); an unknown name is an error listing the known ones.
///   Without it, a method uses the default policy of its receiver (see `Resilient`).
///   A function without `self` must name a policy; it then runs on the process-wide
///   engine (`Engine::global()`), loaded from `RESILIENCE_POLICY_DIR` and
///   `RESILIENCE_PROFILE`, or the built-in presets. The settings of the policy are
///   read at run time, so switching profiles needs no rebuild. The check accepts a
///   name that any of the folder's files defines; at run time that name exists only
///   when the folder is selected (`RESILIENCE_POLICY_DIR`, or the engine the receiver
///   was built with) and the profile defines it — otherwise the call fails with an
///   unknown-policy error that lists the names loaded. The built-in presets always
///   exist.
/// - `key = <expression>`: the rate-limit key (typically the host), any expression
///   whose value is `AsRef<str>` (`&str`, `String`, `Arc<str>`); evaluated once per
///   call, before the first attempt, and held for the whole call (with `&mut self`,
///   give an owned value such as `self.host.clone()`). Default: the receiver's key,
///   or the policy name for a free function.
/// - `name = "<operation>"`: the operation name in logs, metrics and health.
///   Default: the function's name.
/// - `crate = "<path>"`: the path `resilience-core` is reachable under, for a facade
///   crate that re-exports the macro (`crate = "my_facade::resilience"`, where
///   `my_facade` has `pub use resilience_core as resilience;`). Default:
///   `::resilience_core`.
///
/// # What it accepts
///
/// An `async fn` returning a `Result` (`Result<T, E>`, or an alias: `io::Result<T>`,
/// `PgResult<T>`, ...) whose error type implements `ResilientError`, with `&self`, `&mut self` or no
/// receiver; a method's `Self` implements `Resilient`. Generics, lifetimes, `where`
/// clauses, `impl Trait` arguments and methods of trait impls all work. The signature,
/// visibility, attributes and doc comments are kept as written. Anything else is a
/// compile error on the offending tokens that says what to write instead. The return
/// type is checked by the compiler, once, at the error type (or the alias): an error type
/// without `ResilientError` is one error there, not one per use in the expansion.
///
/// The expansion includes the policy files the name was checked against, so editing
/// one (or changing `RESILIENCE_POLICY_DIR`) re-runs the check; a policy file added
/// later is seen on the next rebuild of the crate.
///
/// # The body runs once per attempt
///
/// Only the body is replaced: it becomes an `async` block that is created and awaited
/// afresh for every attempt. `?` and `return` end the current attempt with that
/// result (an early `return Ok(..)` is a success; an error is classified and maybe
/// retried). `&mut self` changes made by one attempt are seen by the next.
///
/// Because the body may run several times, it must not consume its arguments: borrow
/// them (`&str`, `&[T]`, `&Table`) or clone inside the body. A body that moves an
/// owned argument does not compile ("value moved here, in previous iteration of
/// loop"):
///
/// ```compile_fail
/// # use resilience_core::{ErrorClass, Failure, ResilientError, resilient_operation};
/// # #[derive(Debug)]
/// # struct PgError;
/// # impl std::fmt::Display for PgError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("pg") }
/// # }
/// # impl ResilientError for PgError {
/// #     fn class(&self) -> ErrorClass { ErrorClass::Unknown }
/// #     fn from_failure(_: Failure<Self>) -> Self { PgError }
/// # }
/// # struct Row;
/// # async fn write_all(rows: Vec<Row>) -> Result<(), PgError> { Ok(()) }
/// #[resilient_operation(policy = "db")]
/// async fn insert(rows: Vec<Row>) -> Result<(), PgError> {
///     write_all(rows).await // error: `rows` is moved by the first attempt
///     // write: write_all(rows.clone()).await, or take `rows: &[Row]`
/// }
/// ```
#[proc_macro_attribute]
pub fn resilient_operation(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr.into(), item.into()).into()
}

/// Implements `ResilientError` for an error enum: each variant says its class, or the
/// function that classifies its one field, or that it holds the engine's verdict.
///
/// ```
/// use resilience_core::{ErrorClass, Failure, ResilientError};
///
/// /// What the driver of this connector reports.
/// #[derive(Debug)]
/// struct DriverError { code: u16 }
///
/// fn classify(e: &DriverError) -> ErrorClass {
///     match e.code {
///         429 => ErrorClass::Throttled,
///         500..=599 => ErrorClass::Transient,
///         _ => ErrorClass::InvalidInput,
///     }
/// }
///
/// #[derive(Debug, ResilientError)]
/// enum ApiError {
///     #[resilient(classify = classify)]
///     Driver(DriverError),
///     #[resilient(class = "timeout")]
///     TimedOut { after_ms: u64 },
///     #[resilient(class = "config")]
///     MissingToken,
///     #[resilient(failure)]
///     Stopped(Box<Failure<ApiError>>),
/// }
/// # impl std::fmt::Display for ApiError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") }
/// # }
///
/// assert_eq!(ApiError::Driver(DriverError { code: 503 }).class(), ErrorClass::Transient);
/// assert_eq!(ApiError::TimedOut { after_ms: 30 }.class(), ErrorClass::Timeout);
/// assert_eq!(ApiError::MissingToken.class(), ErrorClass::Config);
/// ```
///
/// - `#[resilient(class = "...")]`: the variant is always of this class (`connection`,
///   `timeout`, `transient`, `throttled`, `auth`, `config`, `invalid_input`, `data`,
///   `unknown`);
/// - `#[resilient(classify = path)]`: the variant has one field, and `path(&field)`
///   returns its class (a driver error mapped by code, never by message text);
/// - `#[resilient(failure)]`: exactly one variant, with one field of type
///   `Failure<Self>` or `Box<Failure<Self>>`, holds the engine's verdict (retries
///   exhausted, circuit open, deadline passed); its class is the verdict's.
///
/// Every variant needs one of them, so a variant added later cannot fall into a default
/// class unnoticed. On the enum, `#[resilient(crate = "my_facade::resilience")]` names
/// the path `resilience-core` is re-exported under, for facade crates.
#[proc_macro_derive(ResilientError, attributes(resilient))]
pub fn derive_resilient_error(input: TokenStream) -> TokenStream {
    derive::expand(input.into()).into()
}

/// The macro on `proc_macro2` tokens, with the policy files of the crate being built.
fn expand(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    expand_with(attr, item, Catalog::for_build)
}

/// The macro, with the policy catalog injected (the unit tests pass a fixed one).
fn expand_with(
    attr: TokenStream2,
    item: TokenStream2,
    catalog: impl FnOnce() -> Result<Catalog, String>,
) -> TokenStream2 {
    let mut errors = Errors::default();
    let args = Args::parse(attr, &mut errors);
    let plan = match syn::parse2::<Function>(item.clone()) {
        Ok(function) => {
            validate::validate(args, &function, catalog, &mut errors).map(|plan| (function, plan))
        }
        Err(error) => {
            let message =
                format!("#[resilient_operation] applies to an `async fn` with a body: {error}");
            errors.push(Error::new(error.span(), message));
            None
        }
    };
    match (errors.into_inner(), plan) {
        (None, Some((function, plan))) => expand::expand(&function, plan),
        (error, _) => {
            let mut tokens = item;
            if let Some(error) = error {
                tokens.extend(error.into_compile_error());
            }
            tokens
        }
    }
}

/// Errors collected in order and combined into one.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    /// Adds `error` after the ones already collected.
    pub(crate) fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Adds an error at `span`.
    pub(crate) fn push_at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(Error::new(span, message));
    }

    /// Whether no error was collected.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Every error collected, combined; `None` when there were none.
    pub(crate) fn into_inner(self) -> Option<Error> {
        self.0
    }
}

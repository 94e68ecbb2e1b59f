//! What `#[resilient_operation]` expands to. Not a public API: the names here change
//! with the macro.

pub use crate::resilience::{Resilience, Resilient};
pub use crate::run::{Attempted, ResultLike};

use crate::engine::Engine;
use crate::run::Call;

/// The return type of a macro-wrapped function, checked once: a `Result` (under any alias)
/// whose error type implements [`ResilientError`](crate::ResilientError).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Result`, so a resilient operation cannot return it",
    label = "the return type of a resilient operation",
    note = "write `-> Result<T, E>` (or an alias of it) where `E: ResilientError`, so that failed attempts can be classified and retried"
)]
pub trait ResilientResult {}

impl<T, E: crate::ResilientError> ResilientResult for Result<T, E> {}

/// The function's return type `R`, as a value the check's methods are called on:
/// `(&Check::<R>::new()).run(&mut run)`.
///
/// Method lookup tries [`CheckedRun`] (on `Check<R>`, taking `&self`) first; it applies
/// only when `R` is a [`ResilientResult`] and hands the run back (borrowed, so that the run
/// is not moved: it is as large as a call's state). Otherwise lookup falls
/// through to [`UncheckedRun`] (on `&Check<R>`, one auto-reference further), whose bound
/// `R: ResilientResult` fails: one error, where the expansion spans the call (the user's return type). Its result is a type
/// nothing constrains, so the compiler reports none of the later calls on the run that
/// would fail for the same reason.
pub struct Check<R>(core::marker::PhantomData<fn() -> R>);

impl<R> std::fmt::Debug for Check<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Check")
    }
}

impl<R> Check<R> {
    /// The check for return type `R`.
    #[inline(always)]
    pub const fn new() -> Self {
        Check(core::marker::PhantomData)
    }
}

impl<R> Default for Check<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// The check, passed: see [`Check`].
pub trait CheckedRun {
    /// `run`, unchanged.
    fn run<'r, 'a>(&self, run: &'r mut Run<'a>) -> &'r mut Run<'a>;
}

impl<T, E: crate::ResilientError> CheckedRun for Check<Result<T, E>> {
    #[inline(always)]
    fn run<'r, 'a>(&self, run: &'r mut Run<'a>) -> &'r mut Run<'a> {
        run
    }
}

/// The check, failed: see [`Check`].
pub trait UncheckedRun<R> {
    /// Never compiles: `R: ResilientResult` does not hold where this is chosen.
    fn run<X>(&self, run: &mut Run<'_>) -> X
    where
        R: ResilientResult;
}

impl<R> UncheckedRun<R> for &Check<R> {
    fn run<X>(&self, _: &mut Run<'_>) -> X
    where
        R: ResilientResult,
    {
        unreachable!("`CheckedRun` is chosen whenever `R: ResilientResult` holds")
    }
}

/// The run of one macro-wrapped call.
pub struct Run<'a>(crate::run::Run<'a>);

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a> Run<'a> {
    /// A method's call: the receiver's engine; its default policy and key unless given.
    #[inline]
    pub fn method(
        resilience: &'a Resilience,
        policy: Option<&'static str>,
        key: Option<&'a str>,
        operation: &'static str,
    ) -> Self {
        let defaults = policy.is_none_or(|p| p == resilience.policy())
            && key.is_none_or(|k| k == resilience.key());
        let mut call = Call::new(policy.unwrap_or(resilience.policy()), operation)
            .key(key.unwrap_or(resilience.key()));
        if let Some(hook) = resilience.recovery() {
            call = call.recovery(hook);
        }
        let slot = resilience.default_slot().filter(|_| defaults);
        Run(crate::run::Run::resolved_or_new(
            resilience.engine(),
            call,
            slot,
        ))
    }

    /// A free function's call: the process-wide engine.
    pub fn global(policy: &'static str, key: Option<&'a str>, operation: &'static str) -> Self {
        let mut call = Call::new(policy, operation);
        if let Some(key) = key {
            call = call.key(key);
        }
        Run(crate::run::Run::new(Engine::global(), call))
    }

    /// One attempt of the body's future `fut`: see `crate::run::Run::step`. The future
    /// is built before admission (an `async` block runs nothing until polled) and dropped
    /// unpolled when the call ends before its attempt.
    #[inline]
    pub fn step<R, F>(
        &mut self,
        fut: F,
    ) -> impl core::future::Future<Output = Option<Result<R::Ok, R::Err>>>
    where
        R: ResultLike,
        R::Err: crate::ResilientError,
        F: core::future::Future<Output = R>,
    {
        self.0.step::<R, _, F>(move || fut)
    }
}

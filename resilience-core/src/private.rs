//! What `#[resilient_operation]` expands to. Not a public API: the names here change
//! with the macro.

pub use crate::resilience::{Resilience, Resilient};
pub use crate::run::{Attempted, ResultLike};

use crate::engine::Engine;
use crate::run::Call;

/// The run of one macro-wrapped call.
pub struct Run<'a>(crate::run::Run<'a>);

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a> Run<'a> {
    /// A method's call: the receiver's engine; its default policy and key unless given.
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
        let engine = resilience.engine();
        match resilience.default_slot().filter(|_| defaults) {
            Some(slot) => Run(crate::run::Run::resolved(engine, call, slot)),
            None => Run(crate::run::Run::new(engine, call)),
        }
    }

    /// A free function's call: the process-wide engine.
    pub fn global(policy: &'static str, key: Option<&'a str>, operation: &'static str) -> Self {
        let mut call = Call::new(policy, operation);
        if let Some(key) = key {
            call = call.key(key);
        }
        Run(crate::run::Run::new(Engine::global(), call))
    }

    /// See [`crate::run::Run::before_attempt`].
    pub async fn before_attempt<T, E: crate::ResilientError>(&mut self) -> Option<Result<T, E>> {
        self.0.before_attempt().await
    }

    /// See [`crate::run::Run::attempt`].
    pub async fn attempt<R: ResultLike, F: core::future::Future<Output = R>>(
        &mut self,
        fut: F,
    ) -> Attempted<R::Ok, R::Err> {
        self.0.attempt(fut).await
    }

    /// See [`crate::run::Run::after_attempt`].
    pub async fn after_attempt<T, E: crate::ResilientError>(
        &mut self,
        outcome: Attempted<T, E>,
    ) -> Option<Result<T, E>> {
        self.0.after_attempt(outcome).await
    }
}

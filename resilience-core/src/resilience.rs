//! What a connector hands its `#[resilient_operation]` methods: the engine, the default
//! policy, the rate-limit key and the recovery hook.

use std::sync::Arc;

use crate::engine::Engine;
use crate::recovery::Recovery;

/// Implemented by a type whose methods use `#[resilient_operation]` without naming a
/// policy (and by any type with such methods: the engine and key come from here).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Resilient`, so its `#[resilient_operation]` methods have no engine",
    label = "this receiver needs `impl Resilient`",
    note = "implement `resilience_core::Resilient` for `{Self}`, returning the `Resilience` (engine, default policy, rate-limit key) its operations run under"
)]
pub trait Resilient {
    /// The engine, default policy, key and recovery hook of this receiver.
    fn resilience(&self) -> &Resilience;
}

/// A policy name that the engine has not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy `{name}`, expected one of: {}", known.join(", "))]
pub struct UnknownPolicyError {
    /// The name asked for.
    pub name: String,
    /// The names loaded.
    pub known: Vec<String>,
}

/// An engine bound to a default policy, a rate-limit key and a recovery hook.
#[derive(Clone)]
pub struct Resilience {
    engine: Engine,
    policy: Arc<str>,
    key: Arc<str>,
    recovery: Option<Arc<dyn Recovery>>,
}

impl std::fmt::Debug for Resilience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resilience")
            .field("policy", &self.policy)
            .field("key", &self.key)
            .field("recovery", &self.recovery.is_some())
            .finish()
    }
}

impl Resilience {
    /// Binds `engine` with `policy` as the default; the key starts as the policy's name.
    /// Logs "resilience patterns enabled for policy NAME".
    pub fn new(engine: Engine, policy: &str) -> Result<Resilience, UnknownPolicyError> {
        let Some(p) = engine.policies().get(policy) else {
            return Err(UnknownPolicyError {
                name: policy.to_owned(),
                known: engine.policies().names().map(str::to_owned).collect(),
            });
        };
        tracing::info!(
            policy,
            max_attempts = p.retry.max_attempts.get(),
            failure_threshold = p.circuit_breaker.failure_threshold.get(),
            requests_per_minute = p.rate_limit.requests_per_minute.get(),
            "resilience patterns enabled for policy {policy}"
        );
        Ok(Resilience {
            engine,
            policy: Arc::from(policy),
            key: Arc::from(policy),
            recovery: None,
        })
    }

    /// Sets the rate-limit and breaker key (for a database, `host:port`).
    pub fn with_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.key = key.into();
        self
    }

    /// Sets the hook that mends the connection after connection-class failures.
    pub fn with_recovery(mut self, hook: Arc<dyn Recovery>) -> Self {
        self.recovery = Some(hook);
        self
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The default policy's name.
    pub fn policy(&self) -> &str {
        &self.policy
    }

    /// The rate-limit key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The recovery hook, if any.
    pub fn recovery(&self) -> Option<&Arc<dyn Recovery>> {
        self.recovery.as_ref()
    }
}

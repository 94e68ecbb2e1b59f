//! What a connector hands its `#[resilient_operation]` methods: the engine, the default
//! policy, the rate-limit key and the recovery hook.

use std::sync::{Arc, OnceLock};

use crate::engine::Engine;
use crate::recovery::Recovery;
use crate::slot::Slot;

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
///
/// Cheap to clone (one reference count). The runtime state of the default policy and key
/// is resolved on first use and kept, so a call under the defaults does no lookup.
#[derive(Clone)]
pub struct Resilience {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    engine: Engine,
    policy: Arc<str>,
    key: Arc<str>,
    recovery: Option<Arc<dyn Recovery>>,
    slot: OnceLock<Option<Arc<Slot>>>,
}

impl std::fmt::Debug for Resilience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resilience")
            .field("policy", &self.inner.policy)
            .field("key", &self.inner.key)
            .field("recovery", &self.inner.recovery.is_some())
            .finish()
    }
}

impl Resilience {
    /// Binds `engine` with `policy` as the default; the key starts as the policy's name.
    /// Logs "resilience patterns enabled for policy NAME".
    pub fn new(engine: Engine, policy: &str) -> Result<Resilience, UnknownPolicyError> {
        let policies = engine.policies();
        let Some(p) = policies.get(policy) else {
            return Err(UnknownPolicyError {
                name: policy.to_owned(),
                known: policies.names().map(str::to_owned).collect(),
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
            inner: Arc::new(Inner {
                engine,
                policy: Arc::from(policy),
                key: Arc::from(policy),
                recovery: None,
                slot: OnceLock::new(),
            }),
        })
    }

    fn edit(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.slot = OnceLock::new();
        f(&mut inner);
        Resilience {
            inner: Arc::new(inner),
        }
    }

    /// Sets the rate-limit and breaker key (for a database, `host:port`).
    pub fn with_key(self, key: impl Into<Arc<str>>) -> Self {
        let key = key.into();
        self.edit(|inner| inner.key = key)
    }

    /// Sets the hook that mends the connection after connection-class failures.
    pub fn with_recovery(self, hook: Arc<dyn Recovery>) -> Self {
        self.edit(|inner| inner.recovery = Some(hook))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The default policy's name.
    pub fn policy(&self) -> &str {
        &self.inner.policy
    }

    /// The rate-limit key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The recovery hook, if any.
    pub fn recovery(&self) -> Option<&Arc<dyn Recovery>> {
        self.inner.recovery.as_ref()
    }

    /// The runtime state of the default policy and key, resolved once.
    #[inline]
    pub(crate) fn default_slot(&self) -> Option<&Arc<Slot>> {
        match self.inner.slot.get() {
            Some(slot) => slot.as_ref(),
            None => self.resolve_slot(),
        }
    }

    /// [`default_slot`](Self::default_slot) the first time: resolved once.
    #[cold]
    #[inline(never)]
    fn resolve_slot(&self) -> Option<&Arc<Slot>> {
        self.inner
            .slot
            .get_or_init(|| {
                let engine = &self.inner.engine;
                engine.slot(&self.inner.policy, &self.inner.key).cloned()
            })
            .as_ref()
    }
}

//! The engine: loaded policies plus the runtime state of every policy and key.
//!
//! One engine serves a whole connector (or process): breakers, budgets and buckets are
//! shared by every call with the same policy and key, which is what lets a breaker see
//! that a host is down whichever operation hit it. Cloning an engine is cheap and shares
//! that state.

use std::sync::{Arc, Mutex, OnceLock};

use tokio::time::Instant;

use crate::backoff::{JitterRng, SplitMix64};
use crate::events::Observer;
use crate::handle::BreakerHandle;
use crate::health::HealthReport;
use crate::policy::{PolicyError, PolicySet};
use crate::registry::Registry;
use crate::slot::Slot;

struct Inner {
    policies: PolicySet,
    registry: Registry,
    rng: Mutex<Box<dyn JitterRng>>,
}

/// Runs operations under their policies. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policies", &self.inner.policies.names().collect::<Vec<_>>())
            .field("profile", &self.inner.policies.profile())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `policies`.
    pub fn new(policies: PolicySet) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                policies,
                registry: Registry::default(),
                rng: Mutex::new(Box::new(SplitMix64::from_entropy())),
            }),
        }
    }

    /// An engine over the built-in presets (`db`, `api`, `file`).
    pub fn builtin() -> Engine {
        Engine::new(PolicySet::builtin())
    }

    /// An engine over the policies `RESILIENCE_POLICY_DIR` and `RESILIENCE_PROFILE`
    /// select (the built-in presets when neither is set).
    pub fn from_env() -> Result<Engine, PolicyError> {
        Ok(Engine::new(PolicySet::from_env()?))
    }

    /// The process-wide engine used by free functions, loaded on first use from the
    /// environment. A policy file that does not load is logged as an error and the
    /// built-in presets are used, so a typo cannot stop every call in the process.
    pub fn global() -> &'static Engine {
        static GLOBAL: OnceLock<Engine> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            Engine::from_env().unwrap_or_else(|error| {
                tracing::error!(%error, "policy files did not load; using the built-in presets");
                Engine::builtin()
            })
        })
    }

    /// The loaded policies.
    pub fn policies(&self) -> &PolicySet {
        &self.inner.policies
    }

    /// Replaces the jitter source (for deterministic tests).
    pub fn set_jitter_rng(&self, rng: Box<dyn JitterRng>) {
        *self.inner.rng.lock().unwrap_or_else(|p| p.into_inner()) = rng;
    }

    pub(crate) fn with_rng<R>(&self, f: impl FnOnce(&mut dyn JitterRng) -> R) -> R {
        let mut rng = self.inner.rng.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut **rng)
    }

    /// Hands every later event of this engine to `observer` (see [`events`](crate::events)).
    pub fn subscribe(&self, observer: Arc<dyn Observer>) {
        self.inner.registry.hub.subscribe(observer);
    }

    /// Stops handing events to `observer` (the same `Arc` given to
    /// [`subscribe`](Self::subscribe)); `false` when it was not subscribed.
    pub fn unsubscribe(&self, observer: &Arc<dyn Observer>) -> bool {
        self.inner.registry.hub.unsubscribe(observer)
    }

    /// The state of every policy and key served so far.
    pub fn health(&self) -> HealthReport {
        let now = Instant::now();
        let mut keys: Vec<_> = self
            .inner
            .registry
            .all()
            .iter()
            .map(|slot| slot.health(now))
            .collect();
        keys.sort_by(|a, b| (&a.policy, &a.key).cmp(&(&b.policy, &b.key)));
        HealthReport {
            profile: self.inner.policies.profile().map(str::to_owned),
            keys,
        }
    }

    /// The breaker of a policy and key, once a call has used them.
    pub fn breaker(&self, policy: &str, key: &str) -> Option<BreakerHandle> {
        let slot = self.inner.registry.find(policy, key)?;
        (&*slot.key == key).then_some(BreakerHandle { slot })
    }

    /// The slot for a policy and key, created on first use; `None` for an unknown policy.
    pub(crate) fn slot(&self, policy: &str, key: &str) -> Option<Arc<Slot>> {
        if let Some(slot) = self.inner.registry.find(policy, key) {
            return Some(slot);
        }
        let settings = self.inner.policies.get(policy)?;
        Some(self.inner.registry.get_or_create(policy, key, settings))
    }
}

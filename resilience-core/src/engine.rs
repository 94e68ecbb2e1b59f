//! The engine: loaded policies plus the runtime state of every policy and key.
//!
//! One engine serves a whole connector (or process): breakers, budgets and buckets are
//! shared by every call with the same policy and key, which is what lets a breaker see
//! that a host is down whichever operation hit it. Cloning an engine is cheap and shares
//! that state.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::time::Instant;

use crate::ResilientError;
use crate::backoff::{JitterRng, SplitMix64};
use crate::breaker::BreakerState;
use crate::health::HealthReport;
use crate::limiter::TokenBucket;
use crate::policy::{PolicyError, PolicySet};
use crate::recovery::Recovery;
use crate::run::Run;
use crate::slot::Slot;

/// Keys kept per policy; calls with further keys share one overflow slot, so a caller
/// that makes up keys cannot grow memory without bound.
const MAX_KEYS_PER_POLICY: usize = 1024;
const OVERFLOW_KEY: &str = "(other)";

/// FNV-1a: the slot maps are keyed by short policy names and `host:port` keys from the
/// connector's own configuration, so a fast hash beats SipHash's flooding resistance.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;
type Slots = FastMap<Arc<str>, FastMap<Arc<str>, Arc<Slot>>>;
type Buckets = HashMap<(Arc<str>, Arc<str>), Arc<TokenBucket>>;

struct Inner {
    policies: PolicySet,
    slots: RwLock<Slots>,
    buckets: Mutex<Buckets>,
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

/// One call's policy, operation name, rate-limit key and recovery hook.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub(crate) policy: &'a str,
    pub(crate) operation: &'static str,
    pub(crate) key: Option<&'a str>,
    pub(crate) recovery: Option<&'a Arc<dyn Recovery>>,
}

impl<'a> Call<'a> {
    /// A call of `operation` under `policy`; the rate-limit key defaults to the policy's
    /// name.
    pub fn new(policy: &'a str, operation: &'static str) -> Self {
        Call {
            policy,
            operation,
            key: None,
            recovery: None,
        }
    }

    /// The rate-limit and breaker key (usually `host:port`).
    pub fn key(mut self, key: &'a str) -> Self {
        self.key = Some(key);
        self
    }

    /// The hook that mends the connection after connection-class failures.
    pub fn recovery(mut self, hook: &'a Arc<dyn Recovery>) -> Self {
        self.recovery = Some(hook);
        self
    }
}

/// Operator controls for one breaker.
pub struct BreakerHandle {
    slot: Arc<Slot>,
}

impl BreakerHandle {
    /// The breaker's state (an open breaker whose timeout has passed reports HALF_OPEN).
    pub fn state(&self) -> BreakerState {
        let (state, transition) = self.slot.breaker.state(Instant::now());
        if let Some(t) = transition {
            self.slot.on_transition(t, None);
        }
        state
    }

    /// Opens the breaker now: calls fail fast until the recovery timeout passes.
    pub fn force_open(&self) {
        tracing::warn!(
            policy = &*self.slot.policy_name,
            key = &*self.slot.key,
            "circuit breaker forced OPEN"
        );
        self.slot.breaker.force_open(Instant::now());
        self.slot.meters.breaker_state.set(1.0);
    }

    /// Closes the breaker and forgets its failure count.
    pub fn reset(&self) {
        tracing::info!(
            policy = &*self.slot.policy_name,
            key = &*self.slot.key,
            "circuit breaker reset to CLOSED"
        );
        self.slot.breaker.reset(Instant::now());
        self.slot.meters.breaker_state.set(0.0);
    }
}

impl Engine {
    /// An engine over `policies`.
    pub fn new(policies: PolicySet) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                policies,
                slots: RwLock::new(Slots::default()),
                buckets: Mutex::new(HashMap::new()),
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

    /// Runs `f` under the call's policy: retries, breaker, rate limit, deadlines and
    /// recovery. Each attempt calls `f` afresh.
    pub async fn run<T, E, Fut, F>(&self, call: Call<'_>, mut f: F) -> Result<T, E>
    where
        E: ResilientError,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut run = Run::new(self, call);
        loop {
            if let Some(done) = run.before_attempt().await {
                return done;
            }
            let outcome = run.attempt::<Result<T, E>, _>(f()).await;
            if let Some(done) = run.after_attempt(outcome).await {
                return done;
            }
        }
    }

    /// The state of every policy and key served so far.
    pub fn health(&self) -> HealthReport {
        let now = Instant::now();
        let slots = self.inner.slots.read().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<_> = slots
            .values()
            .flat_map(|by_key| by_key.values())
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
        let slots = self.inner.slots.read().unwrap_or_else(|p| p.into_inner());
        let slot = slots.get(policy)?.get(key)?;
        Some(BreakerHandle {
            slot: Arc::clone(slot),
        })
    }

    /// The slot for a policy and key, created on first use; `None` for an unknown policy.
    pub(crate) fn slot(&self, policy: &str, key: &str) -> Option<Arc<Slot>> {
        {
            let slots = self.inner.slots.read().unwrap_or_else(|p| p.into_inner());
            if let Some(by_key) = slots.get(policy) {
                if let Some(slot) = by_key.get(key) {
                    return Some(Arc::clone(slot));
                }
                if by_key.len() >= MAX_KEYS_PER_POLICY
                    && let Some(slot) = by_key.get(OVERFLOW_KEY)
                {
                    return Some(Arc::clone(slot));
                }
            }
        }
        let policy_arc = self.inner.policies.get(policy)?;
        let name = policy;
        let mut slots = self.inner.slots.write().unwrap_or_else(|p| p.into_inner());
        let by_key = slots.entry(Arc::from(name)).or_default();
        if let Some(slot) = by_key.get(key) {
            return Some(Arc::clone(slot));
        }
        let key: Arc<str> = if by_key.len() >= MAX_KEYS_PER_POLICY {
            if let Some(slot) = by_key.get(OVERFLOW_KEY) {
                return Some(Arc::clone(slot));
            }
            // Once per policy: later keys find the overflow slot under the read lock.
            tracing::warn!(
                policy,
                key,
                max_keys = MAX_KEYS_PER_POLICY,
                "too many rate-limit keys; further keys share the slot `{OVERFLOW_KEY}`"
            );
            Arc::from(OVERFLOW_KEY)
        } else {
            Arc::from(key)
        };
        let policy_name: Arc<str> = Arc::from(name);
        let bucket_key = if policy_arc.rate_limit.per_host {
            Arc::clone(&key)
        } else {
            Arc::from("")
        };
        let bucket = Arc::clone(
            self.inner
                .buckets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((Arc::clone(&policy_name), bucket_key))
                .or_insert_with(|| Arc::new(TokenBucket::new(&policy_arc.rate_limit))),
        );
        let slot = Arc::new(Slot::new(
            policy_name,
            Arc::clone(&key),
            Arc::clone(policy_arc),
            bucket,
        ));
        by_key.insert(key, Arc::clone(&slot));
        Some(slot)
    }
}

//! The engine: loaded policies plus the runtime state of every policy and key.
//!
//! One engine serves a whole connector (or process): breakers, budgets and buckets are
//! shared by every call with the same policy and key, which is what lets a breaker see
//! that a host is down whichever operation hit it. Cloning an engine is cheap and shares
//! that state.

use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::time::Instant;

use crate::backoff::{JitterRng, SplitMix64};
use crate::events::Observer;
use crate::handle::BreakerHandle;
use crate::health::HealthReport;
use crate::policy::{PolicyError, PolicySet};
use crate::registry::{PolicyChange, Registry};
use crate::shared::SharedStore;
use crate::slot::Slot;

struct Inner {
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
        let policies = self.policies();
        f.debug_struct("Engine")
            .field("policies", &policies.names().collect::<Vec<_>>())
            .field("profile", &policies.profile())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `policies`.
    pub fn new(policies: PolicySet) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                registry: Registry::new(policies),
                rng: Mutex::new(Box::new(SplitMix64::from_entropy())),
            }),
        }
    }

    /// An engine over `policies` whose shared policies
    /// ([`PolicySet::is_shared`]) take their rate-limit tokens from `store`, so that
    /// every process naming the same store shares one limit. Policies that are not
    /// shared (no `[store]`, or `shared = false`) run exactly as under [`Engine::new`].
    /// Whether a policy and key is shared is settled at its first call: a
    /// [`reload`](Self::reload) changes settings, not sharing (restart to apply that).
    pub fn with_store(policies: PolicySet, store: Arc<dyn SharedStore>) -> Engine {
        let mut registry = Registry::new(policies);
        registry.store = Some(store);
        Engine {
            inner: Arc::new(Inner {
                registry,
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

    /// The policies running now (a [`reload`](Self::reload) swaps them).
    pub fn policies(&self) -> Arc<PolicySet> {
        self.inner.registry.policies()
    }

    /// Swaps in `policies` while calls run, keeping the runtime state of every policy and
    /// key, and says what changed.
    ///
    /// - The set is checked first ([`PolicySet::validate`]); a set that fails, or that
    ///   changes `rate_limit.per_host` of a policy in use, is refused and nothing changes.
    /// - A policy whose settings did not change keeps everything as it was.
    /// - A changed policy keeps its breaker's state (an OPEN breaker stays open until its
    ///   time, measured with the new `recovery_timeout` only if that is shorter), its
    ///   bucket's debt (a new rate or burst never admits more than the new limit allows
    ///   in any window: no burst is handed out by the reload), its counters and windows;
    ///   retry and timeout settings apply from the next attempt, also for calls running
    ///   now and for `#[resilient_operation]` methods whose receiver resolved the policy.
    /// - A removed policy's calls fail as an unknown policy; an added one is used from its
    ///   first call.
    pub fn reload(&self, policies: PolicySet) -> Result<Vec<PolicyChange>, PolicyError> {
        policies.validate()?;
        self.inner.registry.reload(policies, Instant::now())
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
            profile: self.policies().profile().map(str::to_owned),
            keys,
        }
    }

    /// The breaker of a policy and key, once a call has used them.
    pub fn breaker(&self, policy: &str, key: &str) -> Option<BreakerHandle> {
        let slot = self.inner.registry.find(policy, key)?;
        (&*slot.key == key).then_some(BreakerHandle { slot })
    }

    /// The slot for a policy and key, created on first use; `None` for an unknown policy.
    ///
    /// A thread remembers the number of the last slot it looked up: a connector calling
    /// one policy and key over and over (the usual case for `Engine::run`) then borrows it
    /// from the engine's arena, with no lock, no hashing and no reference count. The
    /// slot's policy and key are compared with the call's either way, so a remembered
    /// number can only ever give the slot the registry would (slots are changed in place
    /// by a reload, never replaced).
    #[inline]
    pub(crate) fn slot(&self, policy: &str, key: &str) -> Option<&Arc<Slot>> {
        let remembered = LAST_SLOT
            .try_with(Cell::get)
            .ok()
            .flatten()
            .filter(|&(engine, _)| engine == self.identity())
            .and_then(|(_, number)| self.inner.registry.arena.get(number))
            .filter(|slot| same(&slot.policy_name, policy) && same(&slot.key, key));
        match remembered {
            Some(slot) => Some(slot),
            None => self.slot_lookup(policy, key),
        }
    }

    /// [`slot`](Self::slot) when this thread does not remember it: the registry's, then
    /// remembered.
    #[inline(never)]
    fn slot_lookup(&self, policy: &str, key: &str) -> Option<&Arc<Slot>> {
        let slot = self.inner.registry.get_or_create(policy, key)?;
        let _ = LAST_SLOT.try_with(|last| last.set(Some((self.identity(), slot.number))));
        Some(slot)
    }

    /// Which engine this is, among those alive (its shared state's address).
    #[inline]
    fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner).addr()
    }
}

/// Whether two names are equal: a policy name or a `host:port` key, mostly 16 bytes or
/// fewer, compared in two overlapping words each instead of through a call to `memcmp`.
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // The first and last `k` bytes of each, as one integer: together they cover the name.
    fn ends<const K: usize>(s: &[u8]) -> ([u8; K], [u8; K]) {
        let (mut head, mut tail) = ([0; K], [0; K]);
        head.copy_from_slice(&s[..K]);
        tail.copy_from_slice(&s[s.len() - K..]);
        (head, tail)
    }
    match n {
        0 => true,
        1..4 => a == b,
        4..8 => ends::<4>(a) == ends::<4>(b),
        8..=16 => ends::<8>(a) == ends::<8>(b),
        _ => a == b,
    }
}

thread_local! {
    /// The last engine (by [`Engine::identity`]) and slot number this thread looked up.
    /// An engine dropped and another made at the same address can only make a lookup
    /// miss: the slot found is checked by its policy and key.
    static LAST_SLOT: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn engine() -> Engine {
        let policies = [("a", Policy::default()), ("b", Policy::default())];
        Engine::new(PolicySet::from_policies(policies).unwrap())
    }

    /// The slot the registry holds for `policy` and `key`.
    fn registered(engine: &Engine, policy: &str, key: &str) -> Arc<Slot> {
        engine.inner.registry.find(policy, key).unwrap()
    }

    #[test]
    fn names_compare_as_strings_whatever_their_length() {
        let names: Vec<String> = (0..40)
            .flat_map(|n: usize| {
                let base: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
                // The same length, one byte changed at the start, middle or end.
                let mut variants = vec![base.clone()];
                for at in [0, n / 2, n.saturating_sub(1)] {
                    if n > 0 {
                        let mut bytes = base.clone().into_bytes();
                        bytes[at] = b'#';
                        variants.push(String::from_utf8(bytes).unwrap());
                    }
                }
                variants
            })
            .chain(["127.0.0.1:5432", "127.0.0.1:5433", "db", "api", "é"].map(String::from))
            .collect();
        for a in &names {
            for b in &names {
                assert_eq!(same(a, b), a == b, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn a_remembered_slot_is_the_registrys_for_the_same_policy_and_key_only() {
        let (one, two) = (engine(), engine());
        // Interleaved on one thread: every lookup after the first of a pair is remembered
        // or looked up again, and each must be the slot of its own engine, policy and key.
        for _ in 0..3 {
            for (engine, policy, key) in [
                (&one, "a", "k1"),
                (&one, "a", "k1"),
                (&one, "a", "k2"),
                (&one, "b", "k1"),
                (&two, "a", "k1"),
                (&two, "a", "k1"),
                (&one, "a", "k1"),
            ] {
                let slot = engine.slot(policy, key).unwrap();
                assert!(Arc::ptr_eq(slot, &registered(engine, policy, key)));
                assert_eq!((&*slot.policy_name, &*slot.key), (policy, key));
            }
        }
        assert!(one.slot("unknown", "k1").is_none());
        // A slot number remembered from one engine names another slot (or none) in
        // another: the check by policy and key sends the lookup to the registry. `one`
        // numbered a/k1, a/k2, b/k1; `two` gets a/k1, b/k1, a/k2.
        let _ = (two.slot("b", "k1"), two.slot("a", "k2"));
        let b_of_one = one.slot("b", "k1").unwrap().number;
        assert_eq!(two.slot("a", "k2").unwrap().number, b_of_one);
        LAST_SLOT.with(|last| last.set(Some((two.identity(), b_of_one))));
        let slot = two.slot("b", "k1").unwrap();
        assert!(Arc::ptr_eq(slot, &registered(&two, "b", "k1")));
    }
}

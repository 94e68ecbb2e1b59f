//! The policies an engine runs and the runtime state of every policy and key it has served:
//! slots by policy and key, and the token buckets they share.
//!
//! A slot is created on the first call for its policy and key and lives as long as the
//! engine. Lookups take a read lock; only the first call of a new key takes the write
//! lock. Keys per policy are bounded, so a caller that makes up keys cannot grow memory
//! without bound: calls with further keys share one overflow slot.
//!
//! A reload swaps the policies and reconfigures every slot and bucket under the slots'
//! write lock, so a slot is never created from the old policies after the swap.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, RwLock};

use tokio::time::Instant;

use crate::arena::SlotArena;
use crate::events::Hub;
use crate::limiter::TokenBucket;
use crate::policy::{Difference, PolicyError, PolicySet};
use crate::shared::SharedStore;
use crate::slot::Slot;

/// Keys kept per policy.
const MAX_KEYS_PER_POLICY: usize = 1024;
/// The key shared by calls past [`MAX_KEYS_PER_POLICY`] keys.
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

/// The policies, slots by policy and key, and the buckets they share.
pub(crate) struct Registry {
    policies: RwLock<Arc<PolicySet>>,
    slots: RwLock<Slots>,
    /// The same slots by number, borrowed by calls that know it (see [`SlotArena`]).
    pub(crate) arena: SlotArena,
    buckets: Mutex<Buckets>,
    /// The engine's observers, which every slot reports to.
    pub(crate) hub: Arc<Hub>,
    /// The shared store, for the slots of policies the set marks as shared.
    pub(crate) store: Option<Arc<dyn SharedStore>>,
}

/// What a reload changed for one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyChange {
    /// A policy the old set did not have.
    Added(String),
    /// A policy the new set does not have: its calls now fail as an unknown policy.
    Removed(String),
    /// A policy whose settings changed, and how.
    Changed(String, Vec<Difference>),
}

impl std::fmt::Display for PolicyChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyChange::Added(name) => write!(f, "policy `{name}` added"),
            PolicyChange::Removed(name) => write!(f, "policy `{name}` removed"),
            PolicyChange::Changed(name, diffs) => {
                let diffs: Vec<String> = diffs.iter().map(ToString::to_string).collect();
                write!(f, "policy `{name}`: {}", diffs.join(", "))
            }
        }
    }
}

impl Registry {
    /// A registry running `policies`, with no slot yet.
    pub(crate) fn new(policies: PolicySet) -> Registry {
        Registry {
            policies: RwLock::new(Arc::new(policies)),
            slots: RwLock::default(),
            arena: SlotArena::new(),
            buckets: Mutex::default(),
            hub: Arc::default(),
            store: None,
        }
    }

    /// The policies running now.
    pub(crate) fn policies(&self) -> Arc<PolicySet> {
        Arc::clone(&self.policies.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Swaps in `next` (already validated) and reconfigures every slot and bucket at
    /// `now`: state is kept, settings change (see [`Slot::reconfigure`] and
    /// [`TokenBucket::reconfigure`]). Refused, changing nothing, when a policy in use
    /// changes `rate_limit.per_host` (its calls share buckets by host or by policy from
    /// the first call on).
    pub(crate) fn reload(
        &self,
        next: PolicySet,
        now: Instant,
    ) -> Result<Vec<PolicyChange>, PolicyError> {
        let slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let mut current = self.policies.write().unwrap_or_else(|p| p.into_inner());
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut changes = Vec::new();
        for name in current.names() {
            let old = current.get(name).expect("a listed name");
            match next.get(name) {
                None => changes.push(PolicyChange::Removed(name.to_owned())),
                Some(new) if old != new => {
                    if old.rate_limit.per_host != new.rate_limit.per_host
                        && slots.contains_key(name)
                    {
                        return Err(PolicyError::InvalidPolicy {
                            policy: name.to_owned(),
                            key: format!("policy.{name}.rate_limit.per_host"),
                            message: format!(
                                "cannot change from {} to {} while the engine runs (calls already share rate-limit buckets {}); restart to apply it",
                                old.rate_limit.per_host,
                                new.rate_limit.per_host,
                                if old.rate_limit.per_host {
                                    "per host"
                                } else {
                                    "per policy"
                                }
                            ),
                        });
                    }
                    changes.push(PolicyChange::Changed(name.to_owned(), old.differences(new)));
                }
                Some(_) => {}
            }
        }
        for name in next.names().filter(|n| current.get(n).is_none()) {
            changes.push(PolicyChange::Added(name.to_owned()));
        }
        for ((policy, _), bucket) in buckets.iter_mut() {
            if let (Some(old), Some(new)) = (current.get(policy), next.get(policy))
                && old.rate_limit != new.rate_limit
            {
                bucket.reconfigure(&new.rate_limit, now);
            }
        }
        for (policy, by_key) in slots.iter() {
            for slot in by_key.values() {
                slot.reconfigure(next.get(policy));
            }
        }
        *current = Arc::new(next);
        Ok(changes)
    }
    /// The slot of `policy` and `key` if it exists (or the overflow slot, once the policy
    /// has too many keys).
    pub(crate) fn find(&self, policy: &str, key: &str) -> Option<Arc<Slot>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        let by_key = slots.get(policy)?;
        if let Some(slot) = by_key.get(key) {
            return Some(Arc::clone(slot));
        }
        if by_key.len() >= MAX_KEYS_PER_POLICY {
            return by_key.get(OVERFLOW_KEY).map(Arc::clone);
        }
        None
    }

    /// The slot of `policy` and `key`, created when it does not exist yet; `None` for a
    /// policy that is not loaded.
    pub(crate) fn get_or_create(&self, policy: &str, key: &str) -> Option<&Arc<Slot>> {
        if let Some(slot) = self.find(policy, key) {
            return self.arena.get(slot.number);
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let settings = Arc::clone(self.policies().get(policy)?);
        let by_key = slots.entry(Arc::from(policy)).or_default();
        if let Some(slot) = by_key.get(key) {
            return self.arena.get(slot.number);
        }
        let key: Arc<str> = if by_key.len() >= MAX_KEYS_PER_POLICY {
            if let Some(slot) = by_key.get(OVERFLOW_KEY) {
                return self.arena.get(slot.number);
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
        let policy_name: Arc<str> = Arc::from(policy);
        let bucket_key = if settings.rate_limit.per_host {
            Arc::clone(&key)
        } else {
            Arc::from("")
        };
        let bucket = Arc::clone(
            self.buckets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((Arc::clone(&policy_name), bucket_key))
                .or_insert_with(|| Arc::new(TokenBucket::new(&settings.rate_limit))),
        );
        let shared = self.policies().is_shared(policy);
        // Numbered and put in the arena under the write lock, before any call can find it.
        let number = self.arena.next_number();
        let mut slot = Slot::new(
            number,
            policy_name,
            Arc::clone(&key),
            settings,
            bucket,
            Arc::clone(&self.hub),
        );
        slot.shared = self.store.clone().filter(|_| shared);
        let slot = Arc::new(slot);
        by_key.insert(key, Arc::clone(&slot));
        self.arena.put(number, slot);
        self.arena.get(number)
    }

    /// Every slot, in no particular order.
    pub(crate) fn all(&self) -> Vec<Arc<Slot>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .values()
            .flat_map(|by_key| by_key.values())
            .map(Arc::clone)
            .collect()
    }
}

//! The runtime state of every policy and key an engine has served: slots by policy and key,
//! and the token buckets they share.
//!
//! A slot is created on the first call for its policy and key and lives as long as the
//! engine. Lookups take a read lock; only the first call of a new key takes the write
//! lock. Keys per policy are bounded, so a caller that makes up keys cannot grow memory
//! without bound: calls with further keys share one overflow slot.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, RwLock};

use crate::events::Hub;
use crate::limiter::TokenBucket;
use crate::policy::Policy;
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

/// Slots by policy and key, and the buckets they share.
#[derive(Default)]
pub(crate) struct Registry {
    slots: RwLock<Slots>,
    buckets: Mutex<Buckets>,
    /// The engine's observers, which every slot reports to.
    pub(crate) hub: Arc<Hub>,
}

impl Registry {
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

    /// The slot of `policy` and `key`, created with `settings` when it does not exist yet.
    pub(crate) fn get_or_create(
        &self,
        policy: &str,
        key: &str,
        settings: &Arc<Policy>,
    ) -> Arc<Slot> {
        if let Some(slot) = self.find(policy, key) {
            return slot;
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let by_key = slots.entry(Arc::from(policy)).or_default();
        if let Some(slot) = by_key.get(key) {
            return Arc::clone(slot);
        }
        let key: Arc<str> = if by_key.len() >= MAX_KEYS_PER_POLICY {
            if let Some(slot) = by_key.get(OVERFLOW_KEY) {
                return Arc::clone(slot);
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
        let slot = Arc::new(Slot::new(
            policy_name,
            Arc::clone(&key),
            Arc::clone(settings),
            bucket,
            Arc::clone(&self.hub),
        ));
        by_key.insert(key, Arc::clone(&slot));
        slot
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

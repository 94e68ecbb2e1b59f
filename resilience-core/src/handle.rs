//! Operator controls for one breaker, as [`Engine::breaker`](crate::Engine::breaker) hands
//! them out.

use std::sync::Arc;

use tokio::time::Instant;

use crate::breaker::BreakerState;
use crate::slot::Slot;

/// Operator controls for one breaker.
pub struct BreakerHandle {
    pub(crate) slot: Arc<Slot>,
}

impl std::fmt::Debug for BreakerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerHandle")
            .field("policy", &self.slot.policy_name)
            .field("key", &self.slot.key)
            .finish_non_exhaustive()
    }
}

impl BreakerHandle {
    /// The breaker's state (an open breaker whose timeout has passed reports HALF_OPEN).
    pub fn state(&self) -> BreakerState {
        let (state, transition) = self.slot.breaker.state(Instant::now());
        if let Some(t) = transition {
            self.slot.on_transition(t, None, None);
        }
        state
    }

    /// Opens the breaker now: calls fail fast until the recovery timeout passes.
    pub fn force_open(&self) {
        let t = self.slot.breaker.force_open(Instant::now());
        self.slot.on_transition(t, None, None);
    }

    /// Closes the breaker and forgets its failure count.
    pub fn reset(&self) {
        let t = self.slot.breaker.reset(Instant::now());
        self.slot.on_transition(t, None, None);
    }
}

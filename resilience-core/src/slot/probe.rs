//! Background probing: while a breaker is not closed, ask the connector's recovery hook
//! every `check_interval` whether the dependency answers, so the breaker can close when
//! the server is back even if no user traffic arrives.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::time::Instant;

use super::Slot;
use crate::breaker::BreakerState;
use crate::events::EventKind;
use crate::recovery::Recovery;

impl Slot {
    /// Starts the probe loop, unless recovery is off, there is no runtime, or one runs.
    pub(super) fn start_probing(self: &Arc<Self>, hook: &Arc<dyn Recovery>) {
        if !self.policy().recovery.enabled || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(probe_loop(Arc::downgrade(self), Arc::downgrade(hook)));
    }

    /// Ends probing once the breaker is closed. A breaker that reopened just as probing
    /// ended (its transition saw the flag still set and started no loop) keeps this loop:
    /// returns `false` then.
    fn stop_probing(&self) -> bool {
        self.probing.store(false, Ordering::Release);
        self.breaker.state_now() == BreakerState::Closed
            || self.probing.swap(true, Ordering::AcqRel)
    }
}

/// Probes the dependency every `check_interval` (as the policy says now: a reload applies
/// from the next probe) while the breaker is not closed. Holds only weak references, so
/// it ends when the connector or the engine goes away.
async fn probe_loop(slot: Weak<Slot>, hook: Weak<dyn Recovery>) {
    loop {
        let Some(interval) = slot.upgrade().map(|s| s.policy().recovery.check_interval) else {
            return;
        };
        tokio::time::sleep(interval).await;
        let Some(slot) = slot.upgrade() else {
            return;
        };
        let Some(hook) = hook.upgrade() else {
            // The connector is gone; a later one on the same engine may probe again.
            slot.probing.store(false, Ordering::Release);
            return;
        };
        if slot.breaker.state_now() != BreakerState::Closed {
            let reachable = tokio::time::timeout(interval, hook.probe())
                .await
                .unwrap_or(false);
            slot.emit(None, EventKind::Probed { reachable });
            for transition in slot.breaker.record_probe(reachable, Instant::now()) {
                slot.on_transition(transition, None, None);
            }
        }
        if slot.breaker.state_now() == BreakerState::Closed && slot.stop_probing() {
            return;
        }
    }
}

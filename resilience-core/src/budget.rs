//! The retry budget: a fleet-wide outage must not become a retry storm.
//!
//! Per-call retry limits multiply: 1000 calls with 3 attempts each put 3000 requests on a
//! server that is already struggling. The budget caps retries at a ratio of the calls
//! made recently (plus a small floor per second, so a quiet client can still retry), in
//! the manner of tower's and Finagle's retry budgets. With the defaults (ratio 0.2, floor
//! 10/s over 10 s) a single call's two retries always fit, so the budget changes nothing
//! until retries are a large share of the traffic.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::policy::BudgetPolicy;

const SLOTS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    deposits: u64,
    withdrawals: u64,
}

#[derive(Debug)]
struct Window {
    slots: [Slot; SLOTS],
    /// Index of the slot that covers `slot_start`.
    current: usize,
    slot_start: Instant,
}

/// Counts calls and retries over a sliding window and says whether one more retry fits.
#[derive(Debug)]
pub struct RetryBudget {
    policy: BudgetPolicy,
    slot_len: Duration,
    window: Mutex<Window>,
}

impl RetryBudget {
    /// A budget with an empty window starting now.
    pub fn new(policy: &BudgetPolicy) -> Self {
        let slot_len = (policy.ttl / SLOTS as u32).max(Duration::from_millis(1));
        RetryBudget {
            policy: policy.clone(),
            slot_len,
            window: Mutex::new(Window {
                slots: [Slot::default(); SLOTS],
                current: 0,
                slot_start: Instant::now(),
            }),
        }
    }

    fn window(&self, now: Instant) -> std::sync::MutexGuard<'_, Window> {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(w.slot_start);
        if elapsed >= self.slot_len {
            let steps = (elapsed.as_nanos() / self.slot_len.as_nanos()) as u64;
            for _ in 0..steps.min(SLOTS as u64) {
                w.current = (w.current + 1) % SLOTS;
                let current = w.current;
                w.slots[current] = Slot::default();
            }
            w.slot_start += self.slot_len * steps.min(u32::MAX as u64) as u32;
        }
        w
    }

    /// Records a call (first attempt).
    pub fn deposit(&self, now: Instant) {
        if !self.policy.enabled {
            return;
        }
        let mut w = self.window(now);
        let current = w.current;
        w.slots[current].deposits += 1;
    }

    /// Takes one retry from the budget; `false` when the budget is spent.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        if !self.policy.enabled {
            return true;
        }
        let mut w = self.window(now);
        let (deposits, withdrawals) = w.slots.iter().fold((0u64, 0u64), |(d, r), s| {
            (d + s.deposits, r + s.withdrawals)
        });
        let reserve = self.policy.min_per_second as f64 * self.policy.ttl.as_secs_f64();
        let balance = reserve + self.policy.ratio * deposits as f64 - withdrawals as f64;
        if balance >= 1.0 {
            let current = w.current;
            w.slots[current].withdrawals += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ratio: f64, min_per_second: u32) -> RetryBudget {
        RetryBudget::new(&BudgetPolicy {
            enabled: true,
            ratio,
            min_per_second,
            ttl: Duration::from_secs(10),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn floor_allows_retries_without_traffic() {
        let b = budget(0.0, 1);
        let now = Instant::now();
        let allowed = (0..20).filter(|_| b.try_withdraw(now)).count();
        assert_eq!(allowed, 10, "1 per second over 10 s");
    }

    #[tokio::test(start_paused = true)]
    async fn ratio_grows_with_calls_and_expires() {
        let b = budget(0.5, 0);
        let now = Instant::now();
        for _ in 0..10 {
            b.deposit(now);
        }
        let allowed = (0..10).filter(|_| b.try_withdraw(now)).count();
        assert_eq!(allowed, 5);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!b.try_withdraw(Instant::now()), "old calls left the window");
    }

    #[tokio::test(start_paused = true)]
    async fn disabled_budget_always_allows() {
        let b = RetryBudget::new(&BudgetPolicy {
            enabled: false,
            ..BudgetPolicy::default()
        });
        assert!((0..1000).all(|_| b.try_withdraw(Instant::now())));
    }
}

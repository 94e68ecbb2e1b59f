//! The retry budget: a fleet-wide outage must not become a retry storm.
//!
//! Per-call retry limits multiply: 1000 calls with 3 attempts each put 3000 requests on a
//! server that is already struggling. The budget caps retries at a ratio of the calls
//! made recently (plus a small floor per second, so a quiet client can still retry), in
//! the manner of tower's and Finagle's retry budgets. With the defaults (ratio 0.2, floor
//! 10/s over 10 s) a single call's two retries always fit, so the budget changes nothing
//! until retries are a large share of the traffic.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::policy::BudgetPolicy;
use crate::sharded::PerThread;

const SLOTS: usize = 10;

const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const PERIOD_MASK: u64 = (1 << (64 - COUNT_BITS)) - 1;

/// `period`'s stamp in a packed withdrawal word.
fn stamp(period: u64) -> u64 {
    period & PERIOD_MASK
}

/// The withdrawals counted in `word` for `period` (0 when counted for another).
fn count_for(word: u64, period: u64) -> u64 {
    if word >> COUNT_BITS == stamp(period) {
        word & COUNT_MASK
    } else {
        0
    }
}

/// The ring's word for `period`.
#[inline]
fn ring(period: u64) -> usize {
    (period % SLOTS as u64) as usize
}

/// A deposit word: the period it counts (low 32 bits of it, high half) and the deposits
/// one thread made in it (low half, saturating). A line untouched for exactly a multiple
/// of 2³² periods (136 years of the default 1 s periods, 49 days of the shortest, 1 ms)
/// would be taken for the current period's.
const DEPOSIT_BITS: u32 = 32;
const DEPOSIT_MASK: u64 = (1 << DEPOSIT_BITS) - 1;

/// `period`'s stamp in a deposit word.
#[inline]
fn deposit_stamp(period: u64) -> u64 {
    period & DEPOSIT_MASK
}

/// `word` with one deposit more for `period`: the first of the period when the word
/// counted another one.
#[inline]
fn deposited(word: u64, period: u64) -> u64 {
    if word >> DEPOSIT_BITS == deposit_stamp(period) {
        word + u64::from(word & DEPOSIT_MASK != DEPOSIT_MASK)
    } else {
        (deposit_stamp(period) << DEPOSIT_BITS) | 1
    }
}

/// The deposits counted in `word` for `period` (0 when counted for another).
#[inline]
fn deposits_for(word: u64, period: u64) -> u64 {
    if word >> DEPOSIT_BITS == deposit_stamp(period) {
        word & DEPOSIT_MASK
    } else {
        0
    }
}

/// Counts calls and retries over a sliding window and says whether one more retry fits.
///
/// The window is a ring of ten periods. Every count is stamped with the period it was
/// made in, in the same word, so a count can never be credited to another period and
/// nothing has to be cleared when a period begins. Calls are counted by every worker
/// thread, each in its own line (a plain store, no atomic add: see [`PerThread`]), and a
/// retry sums the lines. Retries are counted in one word per period, changed atomically,
/// so none is ever lost: concurrent callers cannot overdraw the budget.
#[derive(Debug)]
pub struct RetryBudget {
    settings: Settings,
    origin: Instant,
    /// Each thread's deposits, one word per period of the ring (on the heap: 2 kB).
    deposits: Box<PerThread<SLOTS>>,
    /// The withdrawals, one word per period of the ring: the period they were counted in
    /// (high 40 bits) and their count (low 24 bits).
    withdrawals: [AtomicU64; SLOTS],
}

/// The policy, in atomics so that a reload can change it under running calls. A reload
/// that changes `ttl` changes the periods' length: counts stamped with periods of the old
/// length are counted only where a new period happens to bear the same number (the
/// numbers restart at a different pace), and are overwritten as the new ones are made, so
/// the window restarts.
#[derive(Debug)]
struct Settings {
    enabled: AtomicBool,
    /// `ratio` as `f64` bits.
    ratio: AtomicU64,
    /// Retries always allowed over the window: `min_per_second × ttl`, as `f64` bits.
    reserve: AtomicU64,
    slot_len: AtomicU64,
    /// `2⁶⁴ / slot_len`, rounded down: a slot's number is found by a multiplication (a
    /// division, on every call, costs tens of cycles). See [`RetryBudget::period_at`].
    slot_inverse: AtomicU64,
}

impl Settings {
    fn new(policy: &BudgetPolicy) -> Settings {
        let settings = Settings {
            enabled: AtomicBool::new(false),
            ratio: AtomicU64::new(0),
            reserve: AtomicU64::new(0),
            slot_len: AtomicU64::new(1),
            slot_inverse: AtomicU64::new(u64::MAX),
        };
        settings.store(policy);
        settings
    }

    fn store(&self, policy: &BudgetPolicy) {
        let slot_len = (policy.ttl / SLOTS as u32).max(Duration::from_millis(1));
        let reserve = f64::from(policy.min_per_second) * policy.ttl.as_secs_f64();
        let slot_len = slot_len.as_nanos() as u64;
        let inverse = u64::try_from((1u128 << 64) / u128::from(slot_len)).unwrap_or(u64::MAX);
        self.slot_len.store(slot_len, Ordering::Relaxed);
        self.slot_inverse.store(inverse, Ordering::Relaxed);
        self.ratio.store(policy.ratio.to_bits(), Ordering::Relaxed);
        self.reserve.store(reserve.to_bits(), Ordering::Relaxed);
        self.enabled.store(policy.enabled, Ordering::Relaxed);
    }
}

impl RetryBudget {
    /// A budget with an empty window starting now.
    pub fn new(policy: &BudgetPolicy) -> Self {
        RetryBudget {
            settings: Settings::new(policy),
            origin: Instant::now(),
            deposits: Box::default(),
            withdrawals: Default::default(),
        }
    }

    /// Applies a reloaded policy; the window keeps its counts (see [`Settings`]).
    pub fn reconfigure(&self, policy: &BudgetPolicy) {
        self.settings.store(policy);
    }

    /// When the budget's window started: the origin of [`since_origin`](Self::since_origin).
    pub(crate) fn origin(&self) -> Instant {
        self.origin
    }

    /// `now` in nanoseconds since the budget's origin (0 before it). In 64-bit nanoseconds
    /// (584 years): a 128-bit division would cost more than the rest of a deposit.
    #[inline]
    pub(crate) fn since_origin(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin);
        since.as_secs() * 1_000_000_000 + u64::from(since.subsec_nanos())
    }

    /// The current period (1-based, so a fresh word's stamp 0 never matches).
    #[inline]
    fn period(&self, now: Instant) -> u64 {
        self.period_at(self.since_origin(now)) + 1
    }

    /// `nanos / slot_len`, exactly, by a multiplication by the slot length's inverse: the
    /// quotient it gives is the exact one or one less (the inverse is rounded down by less
    /// than one, times at most 2⁶⁴ / 2⁶⁴), and the remainder tells which. A length and an
    /// inverse read across a reload that changed them can be further apart: the remainder
    /// shows it too, and the division is done.
    #[inline]
    fn period_at(&self, nanos: u64) -> u64 {
        let len = self.settings.slot_len.load(Ordering::Relaxed);
        let inverse = self.settings.slot_inverse.load(Ordering::Relaxed);
        let guess = ((u128::from(nanos) * u128::from(inverse)) >> 64) as u64;
        let rest = nanos.wrapping_sub(guess.wrapping_mul(len));
        if rest < len {
            guess
        } else if rest - len < len {
            guess + 1
        } else {
            nanos / len
        }
    }

    /// Records a call (first attempt).
    pub fn deposit(&self, now: Instant) {
        self.deposit_at(self.since_origin(now));
    }

    /// [`deposit`](Self::deposit) at `nanos` since the [`origin`](Self::origin).
    #[inline(always)]
    pub(crate) fn deposit_at(&self, nanos: u64) {
        if self.settings.enabled.load(Ordering::Relaxed) {
            let period = self.period_at(nanos) + 1;
            self.deposits
                .update(ring(period), |word| deposited(word, period));
        }
    }

    /// Takes one retry from the budget; `false` when the budget is spent.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        if !self.settings.enabled.load(Ordering::Relaxed) {
            return true;
        }
        let period = self.period(now);
        let current = &self.withdrawals[ring(period)];
        // Take the retry first, then sum the window: a caller sees its own withdrawal and
        // every one made before it, so concurrent callers cannot overdraw the budget
        // (at worst a race refuses one retry too many).
        let _ = current.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
            let count = count_for(word, period).saturating_add(1).min(COUNT_MASK);
            Some((stamp(period) << COUNT_BITS) | count)
        });
        let oldest = period.saturating_sub(SLOTS as u64 - 1);
        let (deposits, withdrawals) = (oldest..=period).fold((0u64, 0u64), |(d, w), period| {
            let deposits = self
                .deposits
                .sum(ring(period), |word| deposits_for(word, period));
            // Periods fit in the stamp for 34 years of 1 ms periods: no wrap to mind.
            let word = self.withdrawals[ring(period)].load(Ordering::Acquire);
            (d + deposits, w + count_for(word, period))
        });
        let reserve = f64::from_bits(self.settings.reserve.load(Ordering::Relaxed));
        let ratio = f64::from_bits(self.settings.ratio.load(Ordering::Relaxed));
        let balance = reserve + ratio * deposits as f64 - withdrawals as f64;
        if balance >= 0.0 {
            true
        } else {
            // Give the retry back, unless its period is over (then it counts no more).
            let _ = current.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let count = count_for(word, period);
                (count > 0).then(|| (stamp(period) << COUNT_BITS) | (count - 1))
            });
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The slot number by multiplication is the division's, for every instant and slot
        /// length, and also when the length and its inverse come from two reloads.
        #[test]
        fn period_by_inverse_is_the_division(
            nanos in any::<u64>(),
            len_ms in 1u64..=100_000_000,
            other_ms in 1u64..=100_000_000,
            torn in any::<bool>(),
        ) {
            let b = budget(0.2, 10);
            let store = |ms: u64| b.settings.store(&BudgetPolicy {
                enabled: true,
                ratio: 0.2,
                min_per_second: 10,
                ttl: Duration::from_millis(ms * SLOTS as u64),
            });
            store(len_ms);
            let len = b.settings.slot_len.load(Ordering::Relaxed);
            prop_assert_eq!(len, len_ms * 1_000_000);
            if torn {
                // A reload between the two loads: the length is new, the inverse old.
                store(other_ms);
                b.settings.slot_len.store(len, Ordering::Relaxed);
            }
            prop_assert_eq!(b.period_at(nanos), nanos / len);
            for near in [len.saturating_mul(nanos % 1000), (nanos / len) * len, u64::MAX] {
                prop_assert_eq!(b.period_at(near), near / len);
                prop_assert_eq!(b.period_at(near.saturating_sub(1)), near.saturating_sub(1) / len);
            }
        }
    }

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

    /// A period's deposits share their word with those of the period one window earlier
    /// (the ring's same word): the stamp keeps the old ones out.
    #[tokio::test(start_paused = true)]
    async fn deposits_a_window_ago_do_not_count_in_their_word() {
        let b = budget(1.0, 0);
        for _ in 0..10 {
            b.deposit(Instant::now());
        }
        let period = b.period(Instant::now());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(ring(b.period(Instant::now())), ring(period));
        b.deposit(Instant::now());
        b.deposit(Instant::now());
        let allowed = (0..20).filter(|_| b.try_withdraw(Instant::now())).count();
        assert_eq!(allowed, 2);
    }

    #[test]
    fn deposits_from_many_threads_all_count() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let b = std::sync::Arc::new(budget(1.0, 0));
        let now = Instant::now();
        let threads: Vec<_> = (0..24)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..100).for_each(|_| b.deposit(now)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let allowed = (0..3000).filter(|_| b.try_withdraw(now)).count();
        assert_eq!(allowed, 2400);
    }

    #[test]
    fn a_deposit_word_counts_its_period_only_and_saturates() {
        let word = deposited(deposited(0, 7), 7);
        assert_eq!((deposits_for(word, 7), deposits_for(word, 8)), (2, 0));
        assert_eq!(
            deposits_for(word, 7 + (1 << DEPOSIT_BITS)),
            2,
            "the stamp wraps"
        );
        let word = deposited(word, 8);
        assert_eq!((deposits_for(word, 7), deposits_for(word, 8)), (0, 1));
        let full = (deposit_stamp(8) << DEPOSIT_BITS) | DEPOSIT_MASK;
        assert_eq!(deposited(full, 8), full);
    }

    #[test]
    fn threads_racing_for_retries_never_overdraw() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        for _ in 0..100 {
            let b = std::sync::Arc::new(budget(0.0, 1));
            let now = Instant::now();
            let taken = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let (b, taken) = (b.clone(), taken.clone());
                    std::thread::spawn(move || {
                        for _ in 0..4 {
                            if b.try_withdraw(now) {
                                taken.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert!(
                taken.load(Ordering::SeqCst) <= 10,
                "a reserve of 10 retries"
            );
        }
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

//! The backoff schedule: exponential growth, the cap, and jitter bounds (property tests).

use std::time::Duration;

use proptest::prelude::*;
use resilience_core::backoff::{Backoff, JitterRng};
use resilience_core::policy::{Jitter, RetryPolicy};

struct Fixed(f64);
impl JitterRng for Fixed {
    fn next_unit(&mut self) -> f64 {
        self.0
    }
}

fn policy(jitter: Jitter, initial_ms: u64, multiplier: f64, max_ms: u64) -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(initial_ms),
        multiplier,
        max_delay: Duration::from_millis(max_ms.max(initial_ms)),
        jitter,
        ..RetryPolicy::default()
    }
}

#[test]
fn db_preset_without_jitter_waits_one_two_four_seconds() {
    let mut b = Backoff::new(&policy(Jitter::None, 1000, 2.0, 30_000));
    let delays: Vec<_> = (1..=3).map(|r| b.delay(r, &mut Fixed(0.9))).collect();
    assert_eq!(delays, [1, 2, 4].map(Duration::from_secs));
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated)
    ]
}

proptest! {
    #[test]
    fn every_jitter_stays_in_its_documented_bounds_and_under_the_cap(
        jitter in jitter(),
        initial_ms in 0u64..5_000,
        multiplier in 1.0f64..10.0,
        max_ms in 0u64..120_000,
        samples in proptest::collection::vec(0.0f64..1.0, 1..12),
    ) {
        let p = policy(jitter, initial_ms, multiplier, max_ms);
        let mut b = Backoff::new(&p);
        let mut previous = p.initial_delay;
        for (i, u) in samples.iter().enumerate() {
            let retry = i as u32 + 1;
            let base = b.base(retry);
            let (low, high) = b.bounds(retry);
            let d = b.delay(retry, &mut Fixed(*u));
            prop_assert!(d <= p.max_delay, "cap: {d:?} > {:?}", p.max_delay);
            prop_assert!(d >= low && d <= high, "{jitter:?} {d:?} outside [{low:?}, {high:?}]");
            match jitter {
                Jitter::None => prop_assert_eq!(d, base),
                Jitter::Full => prop_assert!(d <= base),
                Jitter::Equal => prop_assert!(d >= base / 2 && d <= base),
                Jitter::Decorrelated => {
                    let upper = (previous * 3).max(p.initial_delay).min(p.max_delay);
                    prop_assert!(d >= p.initial_delay.min(p.max_delay) && d <= upper + Duration::from_nanos(1));
                }
            }
            previous = d;
        }
    }

    #[test]
    fn the_base_schedule_grows_monotonically_to_the_cap(
        initial_ms in 1u64..5_000,
        multiplier in 1.0f64..10.0,
        max_ms in 1u64..120_000,
    ) {
        let p = policy(Jitter::None, initial_ms, multiplier, max_ms);
        let b = Backoff::new(&p);
        let mut last = Duration::ZERO;
        for retry in 1..64 {
            let d = b.base(retry);
            prop_assert!(d >= last && d <= p.max_delay);
            last = d;
        }
    }
}

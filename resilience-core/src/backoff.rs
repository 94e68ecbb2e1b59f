//! The retry delay schedule: capped exponential growth, spread by jitter.
//!
//! Why jitter at all: when a database restarts, every client sees the failure at the same
//! instant. Without jitter they all retry at 1 s, 2 s, 4 s together and hit the server in
//! waves; with jitter their retries spread over the interval. The schedule lives here
//! (not in a third-party crate) so its bounds are ours to document and test, and the
//! randomness comes from an injectable [`JitterRng`] so tests are deterministic.

use std::time::Duration;

use crate::policy::{Jitter, RetryPolicy};

/// A source of uniform samples in `[0, 1)` for jitter. Inject a fixed one in tests.
pub trait JitterRng: Send {
    /// The next uniform sample in `[0, 1)`.
    fn next_unit(&mut self) -> f64;
}

/// A small, fast, seedable generator (SplitMix64). Not for cryptography.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// A generator seeded from the clock and the address of a stack value.
    pub fn from_entropy() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        let addr = &local as *const u8 as usize as u64;
        SplitMix64(nanos ^ addr.rotate_left(32))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl JitterRng for SplitMix64 {
    fn next_unit(&mut self) -> f64 {
        // 53 random bits make every f64 in [0, 1) with a multiple of 2^-53 equally likely.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The delay schedule of one call: ask it for the delay before each retry.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    multiplier: f64,
    max: Duration,
    jitter: Jitter,
    previous: Duration,
}

impl Backoff {
    /// The schedule of a retry policy.
    pub fn new(policy: &RetryPolicy) -> Self {
        Backoff {
            initial: policy.initial_delay,
            multiplier: policy.multiplier,
            max: policy.max_delay,
            jitter: policy.jitter,
            previous: policy.initial_delay,
        }
    }

    /// The capped exponential delay before retry `retry` (1 = the first retry), without
    /// jitter: `min(max_delay, initial_delay × multiplier^(retry-1))`.
    pub fn base(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(1024) as i32;
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exp);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The smallest and largest delay jitter can give before retry `retry`. For
    /// decorrelated jitter the upper bound depends on the previous delay; this gives the
    /// widest it can be.
    pub fn bounds(&self, retry: u32) -> (Duration, Duration) {
        let base = self.base(retry);
        match self.jitter {
            Jitter::None => (base, base),
            Jitter::Full => (Duration::ZERO, base),
            Jitter::Equal => (base / 2, base),
            Jitter::Decorrelated => (self.initial.min(self.max), self.max),
        }
    }

    /// The delay before retry `retry`, drawing jitter from `rng`. Never above `max_delay`.
    pub fn delay(&mut self, retry: u32, rng: &mut dyn JitterRng) -> Duration {
        let base = self.base(retry);
        let delay = match self.jitter {
            Jitter::None => base,
            Jitter::Full => base.mul_f64(rng.next_unit()),
            Jitter::Equal => base / 2 + (base / 2).mul_f64(rng.next_unit()),
            Jitter::Decorrelated => {
                let low = self.initial.as_secs_f64();
                let high = (self.previous.as_secs_f64() * 3.0).max(low);
                let secs = low + (high - low) * rng.next_unit();
                Duration::from_secs_f64(secs.min(self.max.as_secs_f64()))
            }
        };
        let delay = delay.min(self.max);
        self.previous = delay;
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(f64);
    impl JitterRng for Fixed {
        fn next_unit(&mut self) -> f64 {
            self.0
        }
    }

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            jitter,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn no_jitter_doubles_from_one_second() {
        let mut b = Backoff::new(&policy(Jitter::None));
        let delays: Vec<_> = (1..=3).map(|r| b.delay(r, &mut Fixed(0.5))).collect();
        assert_eq!(
            delays,
            [1, 2, 4].map(Duration::from_secs).to_vec(),
            "the db preset without jitter waits 1 s, 2 s, 4 s"
        );
    }

    #[test]
    fn cap_holds_for_large_retry_numbers() {
        let b = Backoff::new(&policy(Jitter::None));
        assert_eq!(b.base(6), Duration::from_secs(30));
        assert_eq!(b.base(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn equal_jitter_keeps_at_least_half() {
        let mut b = Backoff::new(&policy(Jitter::Equal));
        assert_eq!(b.delay(2, &mut Fixed(0.0)), Duration::from_secs(1));
    }

    #[test]
    fn splitmix_is_in_unit_interval_and_seeded() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            let x = a.next_unit();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, b.next_unit());
        }
    }
}

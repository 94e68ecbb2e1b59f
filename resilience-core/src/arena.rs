//! Every slot an engine has made, by number, for as long as the engine lives.
//!
//! The registry's maps find a slot by policy and key under a lock and hand out a counted
//! reference to it; a call that already knows its slot's number (the thread's last one,
//! [`Engine::slot`](crate::Engine)) borrows it from here instead, for as long as it
//! borrows the engine: no lock, no hashing, and no reference count written twice a call
//! on a cache line every worker thread shares.
//!
//! Slots are never removed, so the arena only grows: segment `k` holds `FIRST << k`
//! slots, allocated when the first of them is added, and a slot stays where it was put.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::slot::Slot;

/// Slots in the first segment; each next one holds twice as many.
const FIRST: usize = 64;
/// Enough segments for every `usize` number: the last starts at `FIRST << 57 - FIRST`.
const SEGMENTS: usize = usize::BITS as usize - FIRST.trailing_zeros() as usize;

type Segment = Box<[OnceLock<Arc<Slot>>]>;

/// An append-only list of slots, read without a lock. See the module docs.
pub(crate) struct SlotArena {
    segments: [OnceLock<Segment>; SEGMENTS],
    next: AtomicUsize,
}

impl SlotArena {
    pub(crate) fn new() -> Self {
        SlotArena {
            segments: std::array::from_fn(|_| OnceLock::new()),
            next: AtomicUsize::new(0),
        }
    }

    /// The number the next slot will have. Called by whoever adds slots one at a time (the
    /// registry, under its write lock), before [`put`](Self::put).
    pub(crate) fn next_number(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Puts `slot` at `number` (from [`next_number`](Self::next_number)).
    pub(crate) fn put(&self, number: usize, slot: Arc<Slot>) {
        let (segment, offset) = locate(number);
        let entries = self.segments[segment]
            .get_or_init(|| (0..FIRST << segment).map(|_| OnceLock::new()).collect());
        let fresh = entries[offset].set(slot).is_ok();
        debug_assert!(fresh, "slot number {number} given out twice");
    }

    /// The slot numbered `number`, once it has been put.
    #[inline]
    pub(crate) fn get(&self, number: usize) -> Option<&Arc<Slot>> {
        let (segment, offset) = locate(number);
        self.segments.get(segment)?.get()?.get(offset)?.get()
    }
}

/// The segment and the place in it of slot `number`: segment `k` holds the numbers from
/// `FIRST × (2^k − 1)` on, so `number + FIRST` lies in `[FIRST × 2^k, FIRST × 2^(k+1))`.
#[inline]
fn locate(number: usize) -> (usize, usize) {
    let n = number.saturating_add(FIRST);
    let segment = n.ilog2() as usize - FIRST.trailing_zeros() as usize;
    (segment, n - (FIRST << segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fill_each_segment_in_turn_and_every_usize_has_a_place() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(FIRST - 1), (0, FIRST - 1));
        assert_eq!(locate(FIRST), (1, 0));
        assert_eq!(locate(3 * FIRST - 1), (1, 2 * FIRST - 1));
        assert_eq!(locate(3 * FIRST), (2, 0));
        let (last, _) = locate(usize::MAX);
        assert_eq!(last, SEGMENTS - 1);
        // Consecutive numbers take consecutive places, segment after segment.
        let mut expected = (0, 0);
        for number in 0..FIRST * 15 {
            assert_eq!(locate(number), expected, "number {number}");
            expected.1 += 1;
            if expected.1 == FIRST << expected.0 {
                expected = (expected.0 + 1, 0);
            }
        }
    }
}

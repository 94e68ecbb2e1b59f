//! A counter split over cache lines, so that threads counting at once do not fight over
//! one line.
//!
//! A counter bumped on every call (calls per operation, the retry budget's deposits) is
//! one atomic add, cheap on one thread; with several worker threads calling at once the
//! cache line holding it moves from core to core on every add, and the add costs tens of
//! nanoseconds. Here each thread adds to its own line (threads are spread over the
//! shards in turn) and a reader sums the lines: reading is rarer (health snapshots, a
//! retry asking the budget) and a few loads more do not matter there.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Shards per counter: more than the worker threads of a typical connector process.
const SHARDS: usize = 8;

/// One atomic on a line of its own (128 bytes: adjacent-line prefetching pairs lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Line(AtomicU64);

/// A counter whose adds go to the calling thread's shard; its value is the shards' sum.
#[derive(Debug, Default)]
pub(crate) struct ShardedCounter {
    lines: [Line; SHARDS],
}

thread_local! {
    /// This thread's shard, assigned on first use.
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The calling thread's shard.
#[inline]
fn shard() -> usize {
    SHARD.with(|shard| {
        let mine = shard.get();
        if mine < SHARDS {
            return mine;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let mine = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
        shard.set(mine);
        mine
    })
}

impl ShardedCounter {
    /// Adds one.
    #[inline]
    pub(crate) fn bump(&self) {
        self.lines[shard()].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The sum over the shards.
    pub(crate) fn get(&self) -> u64 {
        self.lines
            .iter()
            .map(|line| line.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Sets the counter to 0 (an add racing the reset may survive it).
    pub(crate) fn reset(&self) {
        for line in &self.lines {
            line.0.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_from_many_threads_all_count() {
        let counter = std::sync::Arc::new(ShardedCounter::default());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| counter.bump()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(counter.get(), 12_000);
        counter.reset();
        assert_eq!(counter.get(), 0);
    }
}

//! Counters written on every call by every worker thread, kept in lines that each have one
//! writer.
//!
//! A counter bumped on every call (calls per operation, the retry budget's deposits) kept
//! in one shared atomic is cheap on one thread and costs tens of nanoseconds when several
//! workers count at once: the cache line holding it moves from core to core on every add.
//! Even uncontended, an atomic add (`lock`-prefixed) waits until every store before it has
//! reached the cache. Here a thread claims a line of its own the first time it counts (up
//! to [`OWNED`] threads at once; a thread's line is given back when the thread exits, and
//! the next thread to claim it sees every count made in it) and changes it with a plain
//! load and store: no other thread writes that line, so nothing can come between the two.
//! Threads beyond those share one more line, changed atomically. A reader sums the lines:
//! reading is rarer (health snapshots, a retry asking the budget), and a few loads more do
//! not matter there.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Lines a thread can own: more than the worker threads of a typical connector process.
const OWNED: usize = 16;

/// The owned lines, then the one shared by threads that own none.
const LINES: usize = OWNED + 1;

/// Words of a line (up to 16: one 128-byte line), each written by the line's owner.
#[derive(Debug)]
#[repr(align(128))]
struct Line<const W: usize>([AtomicU64; W]);

/// `W` counters per thread line: word `i` of the calling thread's line is changed by
/// [`update`](Self::update), and word `i` of every line is read by [`sum`](Self::sum).
#[derive(Debug)]
pub(crate) struct PerThread<const W: usize> {
    lines: [Line<W>; LINES],
}

impl<const W: usize> Default for PerThread<W> {
    fn default() -> Self {
        PerThread {
            lines: std::array::from_fn(|_| Line(std::array::from_fn(|_| AtomicU64::new(0)))),
        }
    }
}

/// Which lines are owned, one bit per line.
static CLAIMED: AtomicU64 = AtomicU64::new(0);

const UNCLAIMED: usize = usize::MAX;

thread_local! {
    /// The calling thread's line: owned (below [`OWNED`]), the shared one, or not yet
    /// claimed. Without a destructor, so it is read without a check of its state.
    static LINE: Cell<usize> = const { Cell::new(UNCLAIMED) };
    /// Gives the thread's line back when the thread exits; set when the line is claimed.
    static RELEASE: Release = const { Release };
}

/// The release of the calling thread's line, at the thread's exit.
struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        // Counts made after this (from another thread-local's destructor) go to the
        // shared line.
        let line = LINE.replace(OWNED);
        if line < OWNED {
            // Release: the next owner sees every store this thread made in the line.
            CLAIMED.fetch_and(!(1 << line), Ordering::Release);
        }
    }
}

/// Claims a line for the calling thread.
#[cold]
#[inline(never)]
fn claim() -> usize {
    let line = claim_line();
    // The release must be registered with the claim: a thread that cannot register it
    // (it is exiting) gives the line back at once and keeps the shared one.
    let line = if line < OWNED && RELEASE.try_with(|_| ()).is_err() {
        CLAIMED.fetch_and(!(1 << line), Ordering::Release);
        OWNED
    } else {
        line
    };
    LINE.set(line);
    line
}

/// A free line, or the shared one when every line is owned (the thread then keeps the
/// shared one).
#[cold]
#[inline(never)]
fn claim_line() -> usize {
    let mut claimed = CLAIMED.load(Ordering::Relaxed);
    loop {
        let free = (!claimed).trailing_zeros() as usize;
        if free >= OWNED {
            return OWNED;
        }
        // Acquire: this thread sees every store the line's last owner made in it.
        match CLAIMED.compare_exchange_weak(
            claimed,
            claimed | (1 << free),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return free,
            Err(now) => claimed = now,
        }
    }
}

impl<const W: usize> PerThread<W> {
    /// Replaces word `word` of the calling thread's line with `f` of it.
    #[inline]
    pub(crate) fn update(&self, word: usize, f: impl Fn(u64) -> u64) {
        let line = LINE.get();
        if line < OWNED {
            // This thread is the line's only writer.
            let cell = &self.lines[line].0[word];
            cell.store(f(cell.load(Ordering::Relaxed)), Ordering::Relaxed);
        } else {
            self.update_unowned(word, f);
        }
    }

    /// [`update`](Self::update) by a thread that owns no line yet: it claims one, or
    /// changes the shared line atomically.
    #[cold]
    #[inline(never)]
    fn update_unowned(&self, word: usize, f: impl Fn(u64) -> u64) {
        let line = match LINE.get() {
            UNCLAIMED => claim(),
            _ => OWNED,
        };
        let cell = &self.lines[line].0[word];
        if line < OWNED {
            cell.store(f(cell.load(Ordering::Relaxed)), Ordering::Relaxed);
        } else {
            let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(f(v)));
        }
    }

    /// The sum over the lines of `f` of their word `word`.
    pub(crate) fn sum(&self, word: usize, f: impl Fn(u64) -> u64) -> u64 {
        self.lines
            .iter()
            .map(|line| f(line.0[word].load(Ordering::Relaxed)))
            .fold(0, u64::wrapping_add)
    }
}

/// One counter kept in per-thread lines: its value is the lines' sum.
#[derive(Debug, Default)]
pub(crate) struct ShardedCounter(PerThread<1>);

impl ShardedCounter {
    /// Adds one.
    #[inline]
    pub(crate) fn bump(&self) {
        self.0.update(0, |count| count.wrapping_add(1));
    }

    /// The sum over the lines.
    pub(crate) fn get(&self) -> u64 {
        self.0.sum(0, |count| count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn adds_from_many_threads_all_count() {
        let counter = Arc::new(ShardedCounter::default());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| counter.bump()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(counter.get(), 12_000);
    }

    /// More threads at once than there are lines to own: the rest share a line, and a line
    /// given back by a thread that exited is claimed again with its counts kept. Also a
    /// check that owners never share a line: two writers on one line with plain loads and
    /// stores would lose counts.
    #[test]
    fn threads_beyond_the_owned_lines_and_reclaimed_lines_all_count() {
        let counter = Arc::new(ShardedCounter::default());
        for _round in 0..3 {
            let threads = 3 * OWNED;
            let start = Arc::new(Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (counter, start) = (counter.clone(), start.clone());
                    std::thread::spawn(move || {
                        // Every thread claims (or fails to claim) while all are alive.
                        counter.bump();
                        start.wait();
                        (0..20_000).for_each(|_| counter.bump());
                        LINE.get()
                    })
                })
                .collect();
            let lines: Vec<usize> = handles.into_iter().map(|t| t.join().unwrap()).collect();
            let mut owned: Vec<_> = lines.iter().filter(|&&l| l < OWNED).collect();
            owned.sort();
            owned.dedup();
            assert_eq!(owned.len(), lines.iter().filter(|&&l| l < OWNED).count());
            assert!(lines.contains(&OWNED), "some threads share the last line");
        }
        assert_eq!(counter.get(), 3 * 3 * OWNED as u64 * 20_001);
    }

    #[test]
    fn words_of_a_line_are_apart() {
        let lines = PerThread::<4>::default();
        lines.update(1, |v| v + 1);
        lines.update(3, |v| v + 5);
        lines.update(3, |v| v * 2);
        let words: Vec<u64> = (0..4).map(|w| lines.sum(w, |v| v)).collect();
        assert_eq!(words, [0, 1, 0, 10]);
    }
}

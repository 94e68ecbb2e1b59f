//! How many rows the next page asks for.
//!
//! Every page is one call under the connector's policy and takes one rate-limit token, so
//! the rows a page carries decide whether a read is bounded by the server or by its own
//! rate limit: with the `db` preset (300 calls a minute, 5 a second after a burst of 50),
//! pages of 5,000 rows cap a read at 25,000 rows a second, a fraction of what one
//! PostgreSQL backend sends. Instead of asking the user to size pages, an adaptive read
//! starts at the batch size and doubles the page while pages are full and quick (they take
//! less than [`Sizing::target`]), up to a memory budget per page, measured on the pages
//! themselves (Arrow bytes per row). A page that takes longer than a quarter of the attempt
//! timeout shrinks the next one, and a retried page asks for half the rows
//! ([`PageRequest::limit_for`](super::page::PageRequest::limit_for)), so a page always fits
//! well inside its deadline.
//!
//! The target is the time between two tokens at the policy's sustained rate, times the
//! number of readers sharing it: pages that take at least that long never make a read wait
//! for a token, while concurrent readers together still stay within the limit (which the
//! limiter enforces regardless). When pages reach the memory budget before the target, the
//! rate limit bounds the read; [`Sizing::limit_bound`] tells.

use std::time::Duration;

use super::page::Page;

/// Pages never ask for more rows than this, whatever the memory budget allows.
pub(crate) const MAX_PAGE_ROWS: usize = 1 << 21;

/// The shortest page target: below it the per-page round trip starts to show.
const MIN_TARGET: Duration = Duration::from_millis(100);

/// How long an adaptive page may take and still grow, for `readers` readers sharing a
/// limit of `per_minute` calls (`None`: no limit): the token interval times the readers,
/// at least 100 ms.
pub fn adaptive_page_target(readers: usize, per_minute: Option<u32>) -> Duration {
    Sizing::target_for(readers, per_minute)
}

/// How a read sizes its pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// Start at the batch size and grow up to the memory budget (see the module docs).
    Adaptive,
    /// Every page asks for this many rows.
    Fixed(usize),
}

/// The page sizing state of one keyset reader.
#[derive(Clone, Debug)]
pub(crate) struct Sizing {
    rows: usize,
    /// The size of every page when the size is fixed.
    fixed: Option<usize>,
    adaptive: bool,
    memory: usize,
    target: Duration,
    ceiling: Duration,
    /// Whether the last page was held back by the memory budget rather than its time.
    at_budget: bool,
}

impl Sizing {
    /// Sizing starting at `start` rows; `target` is how long a page may take before it
    /// stops growing, `ceiling` how long before it shrinks.
    pub(crate) fn new(
        size: PageSize,
        start: usize,
        memory: usize,
        target: Duration,
        ceiling: Duration,
    ) -> Self {
        let (rows, fixed) = match size {
            PageSize::Adaptive => (start.clamp(1, MAX_PAGE_ROWS), None),
            PageSize::Fixed(rows) => (rows.max(1), Some(rows.max(1))),
        };
        Sizing {
            rows,
            fixed,
            adaptive: fixed.is_none(),
            memory: memory.max(1),
            target: target.max(MIN_TARGET),
            ceiling: ceiling.max(target),
            at_budget: false,
        }
    }

    /// The page duration under which an adaptive page grows, for `readers` readers under
    /// a limit of `per_minute` calls (`None`: no limit).
    pub(crate) fn target_for(readers: usize, per_minute: Option<u32>) -> Duration {
        match per_minute {
            Some(rpm) if rpm > 0 => {
                let interval = Duration::from_secs(60) / rpm;
                (interval * u32::try_from(readers.max(1)).unwrap_or(u32::MAX)).max(MIN_TARGET)
            }
            _ => MIN_TARGET,
        }
    }

    /// The page duration below which adaptive pages grow.
    pub(crate) fn target(&self) -> Duration {
        self.target
    }

    /// Rows the next page asks for.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Whether pages adapt (and so a retried page asks for fewer rows).
    pub(crate) fn adapts(&self) -> bool {
        self.fixed.is_none()
    }

    /// Whether pages cannot grow any more (they reached the memory budget, or their size
    /// is fixed): from here on, if pages wait for tokens, the rate limit and not the
    /// server decides how fast the read goes.
    pub(crate) fn limit_bound(&self) -> bool {
        !self.adaptive || self.at_budget
    }

    /// Sizes the next page after `page`.
    pub(crate) fn observe(&mut self, page: &Page) {
        if let Some(fixed) = self.fixed {
            self.rows = fixed;
            return;
        }
        // A retried page came back smaller: continue from there.
        self.rows = page.limit;
        let rows = page.batch.num_rows();
        if rows == 0 {
            return;
        }
        let per_row = (page.batch.get_array_memory_size() / rows).max(1);
        let budget_rows = (self.memory / per_row).max(1);
        let mut next = page.limit;
        let quick = page.took < self.target;
        if page.more && quick {
            next = next.saturating_mul(2);
        }
        if page.took > self.ceiling {
            let scaled = (next as f64 * self.ceiling.as_secs_f64() / page.took.as_secs_f64())
                .max(1.0) as usize;
            next = scaled.max(next / 2);
        }
        self.at_budget = page.more && next >= budget_rows;
        self.rows = next.min(budget_rows).clamp(1, MAX_PAGE_ROWS);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};

    use super::*;

    fn page(rows: usize, limit: usize, more: bool, took_ms: u64) -> Page {
        let values = Int64Array::from_iter_values(0..rows as i64);
        Page {
            batch: RecordBatch::try_from_iter([("id", Arc::new(values) as _)]).unwrap(),
            more,
            limit,
            took: Duration::from_millis(took_ms),
        }
    }

    fn sizing(memory: usize) -> Sizing {
        Sizing::new(
            PageSize::Adaptive,
            1000,
            memory,
            Duration::from_millis(200),
            Duration::from_secs(7),
        )
    }

    #[test]
    fn quick_full_pages_double_up_to_the_memory_budget() {
        let mut s = sizing(64 * 1024);
        s.observe(&page(1000, 1000, true, 10));
        assert_eq!(s.rows(), 2000);
        assert!(!s.limit_bound());
        s.observe(&page(2000, 2000, true, 10));
        assert_eq!(s.rows(), 4000);
        // 8 bytes a row: the budget holds 8192 rows.
        s.observe(&page(4000, 4000, true, 10));
        s.observe(&page(8000, 8000, true, 10));
        assert_eq!(s.rows(), 8192);
        assert!(
            s.limit_bound(),
            "quick pages at the budget: the limit decides"
        );
    }

    #[test]
    fn slow_pages_stop_growing_and_very_slow_ones_shrink() {
        let mut s = sizing(1 << 30);
        s.observe(&page(1000, 1000, true, 300));
        assert_eq!(s.rows(), 1000, "slower than the target: no growth");
        s.observe(&page(1000, 1000, true, 14_000));
        assert_eq!(s.rows(), 500, "twice the ceiling: half the rows");
        s.observe(&page(10, 500, false, 10));
        assert_eq!(s.rows(), 500, "a short last page changes nothing");
    }

    #[test]
    fn a_retried_page_continues_from_its_smaller_limit_and_fixed_pages_stay() {
        let mut s = sizing(1 << 30);
        s.observe(&page(250, 250, true, 10));
        assert_eq!(s.rows(), 500);
        let mut fixed = Sizing::new(
            PageSize::Fixed(300),
            1000,
            1,
            Duration::ZERO,
            Duration::ZERO,
        );
        fixed.observe(&page(150, 150, true, 1));
        assert_eq!(fixed.rows(), 300, "a fixed size survives a retried page");
        assert!(fixed.limit_bound(), "fixed pages cannot grow");
    }

    #[test]
    fn the_target_is_the_token_interval_times_the_readers() {
        assert_eq!(Sizing::target_for(1, Some(300)), Duration::from_millis(200));
        assert_eq!(Sizing::target_for(4, Some(300)), Duration::from_millis(800));
        assert_eq!(Sizing::target_for(1, Some(60_000)), MIN_TARGET);
        assert_eq!(Sizing::target_for(3, None), MIN_TARGET);
    }
}

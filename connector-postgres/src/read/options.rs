//! What a caller can say about how a table is read.

use std::num::NonZeroUsize;

use super::page::PagePath;
use super::sizing::PageSize;

/// The memory budget of one page when none is given: 16 MiB of Arrow buffers.
pub const DEFAULT_PAGE_MEMORY: usize = 16 << 20;

/// How many key ranges a full read is split into, each read by its own connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partitions {
    /// This many (1: one stream, no snapshot export).
    Count(NonZeroUsize),
    /// The number of cores, bounded by the pool (one connection per partition and one
    /// holding the shared snapshot), by the rate limit (at most one reader per call it
    /// allows each second) and by the table's size (one partition per 250,000 rows
    /// estimated; a table never analyzed is one partition).
    Auto,
}

impl Default for Partitions {
    fn default() -> Self {
        Partitions::Count(NonZeroUsize::MIN)
    }
}

/// How a read fetches its pages. [`ReadOptions::new`] gives the defaults: adaptive pages
/// of at most [`DEFAULT_PAGE_MEMORY`], one partition, the page path chosen automatically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Rows per delivered batch, and the first page's size when pages adapt.
    pub batch_size: usize,
    /// How pages are sized (a page is one call under the policy: one rate-limit token).
    pub page_size: PageSize,
    /// The most Arrow memory one adaptive page may take, in bytes.
    pub page_memory: usize,
    /// Partitions of a full read.
    pub partitions: Partitions,
    /// The page path, or `None` to choose it per page: binary COPY for pages of 1,000 rows
    /// or more of a plain table read, a query otherwise.
    pub path: Option<PagePath>,
}

impl ReadOptions {
    /// The defaults, with batches of `batch_size` rows.
    pub fn new(batch_size: usize) -> Self {
        ReadOptions {
            batch_size,
            page_size: PageSize::Adaptive,
            page_memory: DEFAULT_PAGE_MEMORY,
            partitions: Partitions::default(),
            path: None,
        }
    }
}

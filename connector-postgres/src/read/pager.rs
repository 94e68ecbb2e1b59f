//! A keyset reader on a task of its own, one page ahead of its consumer.
//!
//! A read used to ask for page N+1 only when its caller came back for more, so the server
//! idled while the caller wrote page N, and the caller idled while the server produced
//! page N+1. Here a reader task fetches pages and hands them over a channel; before each
//! fetch it reserves a slot in the channel, so it fetches page N+1 while page N is being
//! consumed but never page N+2 before page N is taken. Memory stays bounded by two pages
//! per reader. The next page's position is the last key of the page just fetched, so the
//! reader does not depend on the consumer to continue, and a fault still costs one page.
//!
//! Each reader owns its session (connection and snapshot) and its page sizing
//! ([`Sizing`]). A partitioned read runs one reader per key range on one channel.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::page::{Page, PagePath};
use super::plan::KeysetPlan;
use super::session::Session;
use super::sizing::Sizing;
use super::snapshot::Keeper;
use crate::connector::PostgresConnector;
use crate::error::PgError;

/// Pages below this size are fetched by query even when COPY is allowed: COPY runs through
/// the simple protocol, where the server plans the statement anew each time, which only a
/// page of some size pays back.
pub(crate) const COPY_MIN_ROWS: usize = 1000;

/// A page on its way to the consumer, with the reader it came from.
#[derive(Debug)]
pub(crate) struct Delivered {
    /// The reader's partition (0 for an unpartitioned read).
    pub partition: usize,
    /// The page.
    pub page: Page,
}

/// The channel readers deliver on.
pub(crate) type Sender = mpsc::Sender<Result<Delivered, PgError>>;

/// The rate-limit context of a read, for the warning that the limit bounds it.
#[derive(Clone, Debug)]
pub(crate) struct LimitWatch {
    /// The table, for the message.
    pub table: String,
    /// The policy's name.
    pub policy: String,
    /// Calls a minute and burst, when the policy limits the rate.
    pub limit: Option<(u32, u32)>,
    /// Readers sharing the limit.
    pub readers: usize,
    /// Estimated rows this reader will read (from the catalog), if known.
    pub estimate: Option<u64>,
}

/// One keyset reader.
pub(crate) struct Reader {
    /// The connector (a handle: the reader runs on its own task).
    pub connector: PostgresConnector,
    /// The plan, limited to the reader's key range.
    pub plan: KeysetPlan,
    /// The reader's connection and transaction.
    pub session: Session,
    /// Page sizing.
    pub sizing: Sizing,
    /// A forced path; automatic when `None`.
    pub path: Option<PagePath>,
    /// The reader's partition.
    pub partition: usize,
    /// The shared snapshot of a partitioned read.
    pub keeper: Option<Keeper>,
    /// The rate-limit warning's context.
    pub watch: LimitWatch,
}

impl Reader {
    /// The path for a page of `rows`.
    fn path_for(&self, rows: usize, copy_refused: bool) -> PagePath {
        match self.path {
            Some(path) => path,
            None if !copy_refused && self.plan.supports_copy() && rows >= COPY_MIN_ROWS => {
                PagePath::Copy
            }
            None => PagePath::Query,
        }
    }

    /// Fetches pages until the reader's range is exhausted, an error ends it, or the
    /// consumer is gone.
    pub(crate) async fn run(mut self, tx: Sender) {
        let mut after: Option<Vec<String>> = None;
        let mut copy_refused = false;
        let mut delivered = 0u64;
        let mut warned = false;
        let mut renewals = 0;
        loop {
            let Ok(permit) = tx.reserve().await else {
                self.session.finish().await;
                return;
            };
            let rows = self.sizing.rows();
            let path = self.path_for(rows, copy_refused);
            let request = self.plan.page(after.clone(), rows, path);
            let called = Instant::now();
            let page = match self.connector.fetch_page(&request, &self.session).await {
                Ok(page) => page,
                Err(e) if path == PagePath::Copy && e.sqlstate().as_deref() == Some("0A000") => {
                    tracing::warn!(table = %self.watch.table, error = %e,
                        "the server refused a binary COPY page; reading by query instead");
                    copy_refused = true;
                    continue;
                }
                Err(PgError::SnapshotGone) if self.keeper.is_some() && renewals < 3 => {
                    renewals += 1;
                    let keeper = self.keeper.as_ref().expect("checked above");
                    if let Err(e) = keeper.renew(&self.connector).await {
                        permit.send(Err(e));
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    permit.send(Err(e));
                    return;
                }
            };
            renewals = 0;
            let waited = called.elapsed().saturating_sub(page.took);
            self.sizing.observe(&page);
            delivered += page.batch.num_rows() as u64;
            if !warned && self.sizing.limit_bound() {
                warned = self
                    .watch
                    .warn_if_bound(&page, self.sizing.rows(), delivered, waited);
            }
            let more = page.more;
            if more {
                match self.plan.last_key(&page.batch) {
                    Ok(key) => after = Some(key.into_iter().map(|v| v.value).collect()),
                    Err(e) => {
                        permit.send(Err(e));
                        return;
                    }
                }
            } else {
                self.session.finish().await;
            }
            if page.batch.num_rows() > 0 {
                permit.send(Ok(Delivered {
                    partition: self.partition,
                    page,
                }));
            }
            if !more {
                return;
            }
        }
    }
}

impl LimitWatch {
    /// Warns, once, when the rate limit rather than the server will bound the rest of the
    /// read: pages cannot grow (memory budget or fixed size), and either the rows left need
    /// more tokens than the server needs time, or a page already waited for its token.
    /// Returns whether it warned.
    fn warn_if_bound(&self, page: &Page, rows: usize, delivered: u64, waited: Duration) -> bool {
        let Some((per_minute, burst)) = self.limit else {
            return false;
        };
        let per_second = f64::from(per_minute) / 60.0 / self.readers.max(1) as f64;
        let server_rate = page.batch.num_rows() as f64 / page.took.as_secs_f64().max(1e-3);
        let left = self.estimate.map(|e| e.saturating_sub(delivered));
        let (limited_secs, server_secs) = match left {
            Some(left) => {
                let pages = left as f64 / rows.max(1) as f64;
                let free = f64::from(burst) / self.readers.max(1) as f64;
                (
                    ((pages - free).max(0.0) / per_second).max(0.0),
                    left as f64 / server_rate,
                )
            }
            None => (0.0, 0.0),
        };
        let bound = limited_secs > server_secs + 1.0 || waited > Duration::from_millis(50);
        if !bound {
            return false;
        }
        let readers = match self.readers {
            1 => String::new(),
            n => format!(", shared by {n} readers"),
        };
        let outlook = match left {
            Some(left) => format!(
                "; about {left} rows are left: about {limited_secs:.0} s at the limit's pace, \
                 {server_secs:.0} s at the server's"
            ),
            None => String::new(),
        };
        tracing::warn!(
            table = %self.table,
            policy = %self.policy,
            page_rows = rows,
            "reading {}: the rate limit, not the server, bounds this read: pages cannot grow \
             beyond {rows} rows (memory budget or page_size) and the server sends one in {} ms, \
             but policy `{}` \
             allows {per_minute} calls a minute{readers}, one page each{outlook}; raise \
             rate_limit.requests_per_minute for this policy in a profile, or the page size \
             (page_memory_mb, or page_size in a sync pipeline)",
            self.table,
            page.took.as_millis(),
            self.policy,
        );
        true
    }
}

//! How a keyset read is laid out: how many readers, over which key ranges, with which
//! page sizing.
//!
//! A partitioned read splits the first key column into ranges of about equal row counts.
//! The split points come from the column's statistics when they are fresh (the
//! `pg_stats` histogram is equi-depth: each bucket holds the same share of rows, however
//! skewed the keys), and otherwise from keys sampled now (`TABLESAMPLE SYSTEM`, a few
//! hundred pages, their keys' quantiles). Minimum and maximum would give equal *widths*,
//! which for skewed keys means one partition with nearly every row. The ranges are
//! `lower <= key < upper`, open at both ends of the table, so together they hold every
//! row exactly once whatever the statistics say; bad statistics only make the ranges
//! uneven.

use std::num::NonZeroUsize;

use resilience_core::{Policy, Resilient, resilient_operation};
use serde::Serialize;
use sqlx::AssertSqlSafe;

use super::options::{Partitions, ReadOptions};
use super::pager::{COPY_MIN_ROWS, LimitWatch};
use super::plan::{KeyRange, KeysetPlan};
use super::session::PRINT_SETTINGS;
use super::sizing::{PageSize, Sizing};
use crate::connector::PostgresConnector;
use crate::connector::remaining_millis;
use crate::error::PgError;

/// With `partitions = "auto"`, each partition should have at least this many rows.
const AUTO_MIN_ROWS: u64 = 250_000;

/// At most this many partitions, whatever is asked.
pub(crate) const MAX_PARTITIONS: usize = 64;

/// Pages sampled for split points when the statistics are missing or stale.
const SAMPLE_PAGES: f64 = 300.0;

/// Statistics older than this share of modified rows are not trusted for split points.
const STALE_SHARE: f64 = 0.2;

/// The layout of a keyset read.
pub(crate) struct Layout {
    /// One key range per reader.
    pub ranges: Vec<KeyRange>,
    /// The page sizing each reader starts with.
    pub sizing: Sizing,
    /// Estimated rows of the table.
    pub estimate: Option<u64>,
    /// The rate-limit context.
    pub watch: LimitWatch,
    /// Where the split points came from.
    pub split_from: Option<&'static str>,
}

/// What the catalog says about a table's size and its first key column.
#[derive(Debug, Default)]
struct TableStats {
    rows: Option<u64>,
    pages: u64,
    modified: Option<u64>,
    histogram: Option<Vec<String>>,
}

/// How a read of one table will go, for `resilient debug` and the docs' arithmetic.
#[derive(Clone, Debug, Serialize)]
pub struct ReadPlanReport {
    /// The table.
    pub table: String,
    /// Estimated rows (from the catalog), if known.
    pub estimated_rows: Option<u64>,
    /// How pages are fetched.
    pub page_path: String,
    /// Readers (partitions).
    pub partitions: usize,
    /// Where the split points come from, when partitioned.
    pub split_from: Option<String>,
    /// The first key of each partition after the first.
    pub split_points: Vec<String>,
    /// `adaptive` or the fixed page size.
    pub page_size: String,
    /// The memory budget of one page, in bytes.
    pub page_memory: usize,
    /// The page duration below which adaptive pages grow, in milliseconds.
    pub page_target_ms: u128,
    /// The policy.
    pub policy: String,
    /// Calls a minute and burst of the policy's rate limit, if enabled.
    pub rate_limit: Option<(u32, u32)>,
}

impl PostgresConnector {
    /// The policy the connector's operations run under.
    pub(crate) fn policy(&self) -> Policy {
        let resilience = self.resilience();
        resilience
            .engine()
            .policies()
            .get(resilience.policy())
            .map_or_else(Policy::default, |p| (**p).clone())
    }

    /// Page sizing for one reader starting at `batch_size` rows under the connector's
    /// policy, adaptive (up to `page_memory` bytes a page) or fixed at `batch_size`: the
    /// sizing of an incremental run.
    pub(crate) fn single_reader_sizing(
        &self,
        batch_size: usize,
        adaptive: bool,
        page_memory: usize,
    ) -> Sizing {
        let policy = self.policy();
        let rate = &policy.rate_limit;
        let per_minute = rate.enabled.then(|| rate.requests_per_minute.get());
        Sizing::new(
            if adaptive {
                PageSize::Adaptive
            } else {
                PageSize::Fixed(batch_size)
            },
            batch_size,
            page_memory,
            Sizing::target_for(1, per_minute),
            policy.timeout.attempt / 4,
        )
    }

    /// Lays out a read of `table` by `plan` (see the module docs).
    pub(crate) async fn layout(
        &self,
        table: &str,
        plan: &KeysetPlan,
        options: &ReadOptions,
    ) -> Result<Layout, PgError> {
        let pool = self.params().map_or(1, |p| p.pool_size as usize);
        let policy = self.policy();
        let limit = policy.rate_limit.enabled.then(|| {
            (
                policy.rate_limit.requests_per_minute.get(),
                policy.rate_limit.burst.get(),
            )
        });
        let wanted = match options.partitions {
            Partitions::Count(n) => {
                let n = n.get();
                if n > MAX_PARTITIONS {
                    return Err(PgError::invalid_input(format!(
                        "partitions = {n} is more than {MAX_PARTITIONS}; use at most \
                         {MAX_PARTITIONS}, or \"auto\""
                    )));
                }
                if n > 1 && n + 1 > pool {
                    return Err(PgError::invalid_input(format!(
                        "partitions = {n} needs {} connections (one per partition and one \
                         holding the snapshot they share), but the pool has {pool}: raise \
                         pool_size to at least {0}, or lower partitions",
                        n + 1
                    )));
                }
                n
            }
            // One reader per core, per spare pool connection, and per call the limit
            // allows each second (more readers would only wait for tokens).
            Partitions::Auto => std::thread::available_parallelism()
                .map_or(1, NonZeroUsize::get)
                .min(pool.saturating_sub(1))
                .min(limit.map_or(usize::MAX, |(rpm, _)| (rpm / 60) as usize))
                .clamp(1, MAX_PARTITIONS),
        };
        let stats = self.table_stats(plan).await?;
        let readers = match options.partitions {
            Partitions::Auto => match stats.rows {
                Some(rows) => wanted.min((rows / AUTO_MIN_ROWS).max(1) as usize),
                None => 1,
            },
            Partitions::Count(_) => wanted,
        };
        let (ranges, split_from) = if readers > 1 {
            let (points, from) = match stats.histogram.as_ref().filter(|_| stats.fresh()) {
                Some(bounds) => (pick(bounds, readers), "statistics"),
                None => (
                    self.sample_splits(plan, &stats, readers).await?,
                    "sampled keys",
                ),
            };
            (ranges(points), Some(from))
        } else {
            (vec![KeyRange::default()], None)
        };
        let sizing = Sizing::new(
            options.page_size,
            options.batch_size,
            options.page_memory,
            Sizing::target_for(ranges.len(), limit.map(|l| l.0)),
            policy.timeout.attempt / 4,
        );
        Ok(Layout {
            watch: LimitWatch {
                table: table.to_owned(),
                policy: self.resilience().policy().to_owned(),
                limit,
                readers: ranges.len(),
                estimate: stats.rows,
            },
            ranges,
            sizing,
            estimate: stats.rows,
            split_from,
        })
    }

    /// How a read of `table` with `options` would go: its path, partitions, split points
    /// and page sizing. Reads the catalog (and samples keys when partitioned without fresh
    /// statistics); reads no rows.
    pub async fn explain_read(
        &self,
        table: &str,
        options: &ReadOptions,
    ) -> Result<ReadPlanReport, PgError> {
        let plan = match self.plan_read(table, None, options.batch_size).await? {
            Ok(plan) => plan,
            Err((schema, _)) => {
                return Ok(ReadPlanReport {
                    table: schema.name.to_string(),
                    estimated_rows: None,
                    page_path: "one query, not resumable (no usable primary key)".to_owned(),
                    partitions: 1,
                    split_from: None,
                    split_points: Vec::new(),
                    page_size: "one stream".to_owned(),
                    page_memory: 0,
                    page_target_ms: 0,
                    policy: self.resilience().policy().to_owned(),
                    rate_limit: None,
                });
            }
        };
        let layout = self.layout(table, &plan, options).await?;
        let page_path = match options.path {
            Some(path) => format!("{} (forced)", path.as_str()),
            None if plan.supports_copy() => {
                format!("binary COPY for pages of {COPY_MIN_ROWS} rows or more, query below")
            }
            None => "query".to_owned(),
        };
        Ok(ReadPlanReport {
            table: table.to_owned(),
            estimated_rows: layout.estimate,
            page_path,
            partitions: layout.ranges.len(),
            split_from: layout.split_from.map(str::to_owned),
            split_points: layout
                .ranges
                .iter()
                .filter_map(|r| r.lower.clone())
                .collect(),
            page_size: match options.page_size {
                PageSize::Adaptive => format!("adaptive, from {} rows", options.batch_size),
                PageSize::Fixed(rows) => format!("{rows} rows"),
            },
            page_memory: options.page_memory,
            page_target_ms: layout.sizing.target().as_millis(),
            policy: layout.watch.policy,
            rate_limit: layout.watch.limit,
        })
    }

    /// Size, staleness and first-key histogram of the plan's table, read under the print
    /// settings so that histogram values parse back as the same keys.
    #[resilient_operation(key = self.host_key(), name = "table_stats")]
    async fn table_stats(&self, plan: &KeysetPlan) -> Result<TableStats, PgError> {
        let (table, column) = (plan.table_oid_expr(), plan.first_key_name());
        let sql = format!(
            "SELECT c.reltuples::float8, \
               (pg_relation_size(c.oid) / current_setting('block_size')::int8)::int8, \
               (SELECT n_mod_since_analyze FROM pg_stat_all_tables t WHERE t.relid = c.oid), \
               (SELECT s.histogram_bounds::text::text[] FROM pg_stats s \
                 WHERE s.schemaname = n.nspname AND s.tablename = c.relname \
                   AND s.attname = $1 AND NOT s.inherited) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = {table}::regclass"
        );
        let mut lease = self.lease().await?;
        sqlx::raw_sql(AssertSqlSafe(catalog_transaction()))
            .execute(&mut *lease)
            .await?;
        let (rows, pages, modified, histogram): (f64, i64, Option<i64>, Option<Vec<String>>) =
            sqlx::query_as(AssertSqlSafe(sql))
                .bind(column)
                .fetch_one(&mut *lease)
                .await?;
        lease.end().await;
        Ok(TableStats {
            // -1 (never analyzed) or 0 (maybe never analyzed): unknown.
            rows: (rows > 0.0).then_some(rows as u64),
            pages: u64::try_from(pages).unwrap_or(0),
            modified: modified.and_then(|m| u64::try_from(m).ok()),
            histogram,
        })
    }

    /// `readers - 1` split points from the quantiles of keys sampled now.
    async fn sample_splits(
        &self,
        plan: &KeysetPlan,
        stats: &TableStats,
        readers: usize,
    ) -> Result<Vec<String>, PgError> {
        let percent = (100.0 * SAMPLE_PAGES / stats.pages.max(1) as f64).clamp(0.0001, 100.0);
        let fractions = (1..readers)
            .map(|i| format!("{}", i as f64 / readers as f64))
            .collect::<Vec<_>>()
            .join(",");
        let (table, column) = (plan.table_name(), plan.first_key_quoted());
        let sql = format!(
            "SELECT (percentile_disc(ARRAY[{fractions}]::float8[]) WITHIN GROUP (ORDER BY {column}))::text[] \
             FROM {table} TABLESAMPLE SYSTEM ({percent})"
        );
        let points = self.sample_keys(sql).await?;
        Ok(points.into_iter().flatten().collect())
    }

    #[resilient_operation(key = self.host_key(), name = "sample_keys")]
    async fn sample_keys(&self, sql: String) -> Result<Vec<Option<String>>, PgError> {
        let mut lease = self.lease().await?;
        sqlx::raw_sql(AssertSqlSafe(catalog_transaction()))
            .execute(&mut *lease)
            .await?;
        let points: Option<Vec<Option<String>>> = sqlx::query_scalar(AssertSqlSafe(sql.as_str()))
            .fetch_one(&mut *lease)
            .await?;
        lease.end().await;
        Ok(points.unwrap_or_default())
    }
}

/// The transaction of a statistics or sampling query: read-only, the print settings (so
/// keys print as they parse back), and the attempt's remaining time as
/// `statement_timeout`, so a query the client gave up on stops on the server.
fn catalog_transaction() -> String {
    let mut sql = format!("BEGIN READ ONLY; {PRINT_SETTINGS}");
    if let Some(millis) = remaining_millis() {
        sql.push_str(&format!("; SET LOCAL statement_timeout = {millis}"));
    }
    sql
}

impl TableStats {
    /// Whether the histogram describes the table as it is now.
    fn fresh(&self) -> bool {
        match (self.rows, self.modified) {
            (Some(rows), Some(modified)) => (modified as f64) <= STALE_SHARE * rows as f64,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// `readers - 1` evenly spaced entries of the equi-depth `bounds`.
fn pick(bounds: &[String], readers: usize) -> Vec<String> {
    if bounds.len() < 2 {
        return Vec::new();
    }
    let buckets = bounds.len() - 1;
    (1..readers)
        .map(|i| bounds[i * buckets / readers].clone())
        .collect()
}

/// Consecutive ranges split at `points` (duplicates dropped), open at both ends.
fn ranges(mut points: Vec<String>) -> Vec<KeyRange> {
    points.dedup();
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut lower = None;
    for point in points {
        out.push(KeyRange {
            lower: lower.take(),
            upper: Some(point.clone()),
        });
        lower = Some(point);
    }
    out.push(KeyRange { lower, upper: None });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_are_evenly_spaced_histogram_bounds() {
        let bounds: Vec<String> = (0..=100).map(|i| i.to_string()).collect();
        assert_eq!(pick(&bounds, 4), ["25", "50", "75"]);
        assert_eq!(pick(&bounds, 1), Vec::<String>::new());
        assert!(pick(&bounds[..1], 3).is_empty());
    }

    #[test]
    fn ranges_cover_everything_once() {
        let r = ranges(vec!["10".into(), "10".into(), "20".into()]);
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0],
            KeyRange {
                lower: None,
                upper: Some("10".into())
            }
        );
        assert_eq!(
            r[1],
            KeyRange {
                lower: Some("10".into()),
                upper: Some("20".into())
            }
        );
        assert_eq!(
            r[2],
            KeyRange {
                lower: Some("20".into()),
                upper: None
            }
        );
        assert_eq!(ranges(Vec::new()), [KeyRange::default()]);
    }
}

//! The lag window during a run: the filter that skips delivered rows, and the record of
//! what this run read, rebuilt after every page for the checkpoint.
//!
//! Every page of a lag run selects two hidden `bigint` columns (dropped before a batch is
//! handed out, like key columns added for paging): the row version's inserting transaction
//! as a full 64-bit id ([`xid_expr`]), and the page's snapshot `xmin`. The filter asks, for
//! each row of the window, whether the snapshot that last read its position could see it
//! (see [`super::seen`]): one `CASE` branch per recorded segment, in position order, each a
//! binary search in an `int8multirange`. Its cost on the server is a few hundred
//! nanoseconds per row of the window, and nothing about the window's rows travels or is
//! stored.

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};

use super::seen::{self, Band, LagWindow, Low, RunRecord, Segment, Upto};
use super::xids::XidSet;
use crate::PgError;
use crate::arrow::text;
use crate::catalog::TableSchema;
use crate::ident::quote;
use crate::read::page::Bind;
use crate::read::plan::Filters;

/// Name of the hidden column holding a row's inserting transaction (full 64-bit id).
pub(crate) const XID_COLUMN: &str = "__resilient_row_xid";
/// Name of the hidden column holding the page's snapshot `xmin`.
pub(crate) const SNAPSHOT_COLUMN: &str = "__resilient_snapshot_xmin";

/// A record larger than this many id ranges makes a run stop early (see [`Tracker::fits`]);
/// at a few bytes a range it keeps a checkpoint well under a megabyte.
pub(crate) const MAX_RANGES: usize = 50_000;

/// The snapshot's `xmin` as a full transaction id (evaluated once per query).
const SNAPSHOT_XMIN: &str = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8)";

/// The full 64-bit id of the transaction that wrote the row version, from the 32-bit
/// system column `xmin` (qualified by `table` when given).
///
/// `age(xmin)` is the 32-bit distance back from the transaction counter as this
/// transaction first read it (`now`), wrap-around included. With `M` the snapshot's `xmax`
/// (a full id) and `D = now - M` (computed from `age('3')`, also once per query), the
/// row's id is `M + D - age`. A visible row was written before the snapshot, so its id is
/// below `M`, i.e. `age > D`; anything else is a frozen row whose 32-bit id no longer
/// means anything (the counter has gone round since), and so is `FrozenTransactionId`
/// (age reports it as `2^31 - 1`): both are old, and come out as `0` or far below any
/// snapshot's `xmin`.
pub(crate) fn xid_expr(table: Option<&str>) -> String {
    let xmin = table.map_or_else(|| "xmin".to_owned(), |t| format!("{t}.xmin"));
    widen(
        &format!("age({xmin})"),
        "age('3'::xid)",
        "pg_snapshot_xmax(pg_current_snapshot())::text::int8",
    )
}

/// [`xid_expr`] from its parts: the row's age, the age of transaction 3 (which gives the
/// counter's low 32 bits), and the snapshot's `xmax` as a full id.
fn widen(row_age: &str, age_of_3: &str, xmax: &str) -> String {
    let m = format!("(SELECT {xmax})");
    let d = format!("(SELECT (({age_of_3})::int8 + 3 - {xmax}) & 4294967295)");
    format!("CASE WHEN {row_age} > {d} THEN {m} + {d} - {row_age} ELSE 0 END")
}

/// Adds the hidden columns and, when the record has segments, the condition that skips
/// the rows they saw. Types come from the catalog; recorded values are only ever bound.
pub(crate) fn add_filter(
    filters: &mut Filters,
    window: &LagWindow,
    schema: &TableSchema,
    cursor: &str,
) -> Result<(), PgError> {
    filters
        .computed
        .push((XID_COLUMN.to_owned(), xid_expr(None)));
    filters
        .computed
        .push((SNAPSHOT_COLUMN.to_owned(), SNAPSHOT_XMIN.to_owned()));
    let sets = window.visible_sets();
    if sets.is_empty() {
        return Ok(());
    }
    let cursor_col = quote(cursor)?;
    let cursor_ty = &schema.column(cursor)?.pg_type;
    let mut key_cols = Vec::new();
    let mut key_tys = Vec::new();
    for key in &schema.primary_key {
        key_cols.push(quote(key)?);
        key_tys.push(schema.column(key)?.pg_type.clone());
    }
    let mut branches = Vec::with_capacity(sets.len());
    for (upto, visible) in sets {
        let param = |filters: &mut Filters, value: String| {
            filters.binds.push(Bind::Text(value));
            filters.binds.len()
        };
        let bound = match &upto.key {
            None => format!(
                "{cursor_col} <= ${}::{cursor_ty}",
                param(filters, upto.cursor.clone())
            ),
            Some(key) => {
                let mut values = vec![format!(
                    "${}::{cursor_ty}",
                    param(filters, upto.cursor.clone())
                )];
                for (value, ty) in key.iter().zip(&key_tys) {
                    values.push(format!("${}::{ty}", param(filters, value.clone())));
                }
                format!(
                    "({cursor_col}, {}) <= ({})",
                    key_cols.join(", "),
                    values.join(", ")
                )
            }
        };
        let set = param(filters, visible.to_multirange());
        branches.push(format!(
            "WHEN {bound} THEN ${set}::int8multirange @> ({})",
            xid_expr(None)
        ));
    }
    filters
        .sql
        .push(format!("NOT (CASE {} ELSE false END)", branches.join(" ")));
    Ok(())
}

/// What this run has read so far, and how to record it.
#[derive(Debug)]
pub(crate) struct Tracker {
    /// The record the run started from (only what it did not re-read survives).
    base: LagWindow,
    /// Every band id the starting record counted as visible.
    inherited: Vec<Band>,
    /// This run's lower edge and its cursor ordinal (bands below it are forgotten).
    low: Option<Low>,
    floor: Option<i64>,
    upper: String,
    segments: Vec<Segment>,
    generation: Option<u64>,
}

/// Where the hidden and key columns sit in a fetched batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Columns<'a> {
    pub xid: usize,
    pub snapshot: usize,
    pub cursor: usize,
    pub keys: &'a [usize],
}

impl Tracker {
    /// A tracker for a run reading from `base` with lower edge `low`, up to `upper`.
    pub(crate) fn new(base: LagWindow, low: Option<Low>, upper: String) -> Self {
        let floor = match &low {
            Some(Low::From(value)) => text::parse_ordinal(value),
            Some(Low::After(position)) => position.first().and_then(|c| text::parse_ordinal(c)),
            None => None,
        };
        Self {
            inherited: base.all_bands(),
            base,
            low,
            floor,
            upper,
            segments: Vec::new(),
            generation: None,
        }
    }

    /// How many leading rows of `batch` can be recorded while the record stays within
    /// [`MAX_RANGES`]: all of them, unless transactions kept running for long while many
    /// others committed rows inside the window (then at least one, so a run always moves).
    pub(crate) fn fits(&self, batch: &RecordBatch, columns: Columns<'_>) -> usize {
        let stored: usize = self
            .segments
            .iter()
            .map(|s| ranges(&s.bands))
            .sum::<usize>()
            + ranges(&self.inherited);
        let (xids, xmin) = match hidden(batch, columns) {
            Ok(v) => v,
            Err(_) => return batch.num_rows(),
        };
        let mut page = XidSet::default();
        for row in 0..batch.num_rows() {
            let id = xids.value(row) as u64;
            if id >= xmin {
                page.insert_range(id, id + 1);
                if stored + page.ranges() > MAX_RANGES {
                    return row.max(1);
                }
            }
        }
        batch.num_rows()
    }

    /// Records `batch`, read in the session's transaction `generation`; `last` when the
    /// run read to its upper bound with it. Returns the record for the checkpoint.
    pub(crate) fn page(
        &mut self,
        batch: &RecordBatch,
        columns: Columns<'_>,
        generation: u64,
        last: bool,
    ) -> Result<LagWindow, PgError> {
        let Some(row) = batch.num_rows().checked_sub(1) else {
            return Ok(self.record());
        };
        let (xids, xmin) = hidden(batch, columns)?;
        if self.generation != Some(generation) {
            self.generation = Some(generation);
            self.segments.push(Segment {
                upto: Upto {
                    cursor: String::new(),
                    key: None,
                },
                xmin,
                bands: Vec::new(),
            });
        }
        let cursor = batch.column(columns.cursor);
        let upto = if last {
            Upto {
                cursor: self.upper.clone(),
                key: None,
            }
        } else {
            let printed = |c: usize| {
                text::value_text(batch.column(c), row)
                    .ok_or_else(|| PgError::data("a key value of the window cannot be printed"))
            };
            Upto {
                cursor: printed(columns.cursor)?,
                key: Some(
                    columns
                        .keys
                        .iter()
                        .map(|c| printed(*c))
                        .collect::<Result<_, _>>()?,
                ),
            }
        };
        let band = XidSet::from_ids(
            (0..batch.num_rows())
                .map(|r| xids.value(r) as u64)
                .filter(|id| *id >= xmin),
        );
        let segment = self.segments.last_mut().expect("pushed above");
        segment.upto = upto;
        if !band.is_empty() {
            let max_cursor = text::value_ordinal(cursor, row).unwrap_or(i64::MAX);
            segment.bands.push(Band {
                max_cursor,
                xids: band,
            });
            seen::prune(&mut segment.bands, segment.xmin, self.floor);
        }
        Ok(self.record())
    }

    /// The record after what was read so far: this run's segments, then what the starting
    /// record says about the positions this run has not reached.
    pub(crate) fn record(&self) -> LagWindow {
        let Some(progress) = self.segments.last().map(|s| &s.upto) else {
            return LagWindow {
                low: self.low.clone(),
                runs: self.base.runs.clone(),
            };
        };
        let xmin = self.segments.iter().map(|s| s.xmin).min().unwrap_or(0);
        let mut inherited = self.inherited.clone();
        seen::prune(&mut inherited, xmin, self.floor);
        let mut runs = vec![RunRecord {
            inherited,
            segments: self.segments.clone(),
        }];
        for old in &self.base.runs {
            let segments: Vec<Segment> = old
                .segments
                .iter()
                .filter(|s| beyond(&s.upto, progress))
                .cloned()
                .collect();
            if segments.is_empty() {
                continue;
            }
            let xmin = segments.iter().map(|s| s.xmin).min().unwrap_or(0);
            let mut inherited = old.inherited.clone();
            seen::prune(&mut inherited, xmin, self.floor);
            runs.push(RunRecord {
                inherited,
                segments,
            });
        }
        LagWindow {
            low: self.low.clone(),
            runs,
        }
    }
}

/// The hidden columns of a page: row transaction ids, and the snapshot `xmin`.
fn hidden<'a>(
    batch: &'a RecordBatch,
    columns: Columns<'_>,
) -> Result<(&'a arrow_array::Int64Array, u64), PgError> {
    let xids = batch
        .column(columns.xid)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| PgError::data("the row transaction column is not a bigint"))?;
    let snapshot = batch
        .column(columns.snapshot)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| PgError::data("the snapshot column is not a bigint"))?;
    if snapshot.is_empty() || snapshot.is_null(0) {
        return Err(PgError::data("a page arrived without its snapshot"));
    }
    Ok((xids, snapshot.value(0) as u64))
}

fn ranges(bands: &[Band]) -> usize {
    bands.iter().map(|b| b.xids.ranges()).sum()
}

/// Whether a segment ending at `end` still covers positions after `progress`. Positions
/// are compared by cursor ordinal only (keys need the server's collation), so a segment
/// ending at the same cursor is kept unless it ends exactly there: keeping too much only
/// costs space, as positions up to `progress` match this run's segments first.
fn beyond(end: &Upto, progress: &Upto) -> bool {
    let (Some(a), Some(b)) = (
        text::parse_ordinal(&end.cursor),
        text::parse_ordinal(&progress.cursor),
    ) else {
        return true;
    };
    match (a.cmp(&b), &progress.key) {
        (std::cmp::Ordering::Greater, _) => true,
        (std::cmp::Ordering::Less, _) => false,
        (std::cmp::Ordering::Equal, None) => false,
        (std::cmp::Ordering::Equal, Some(key)) => end.key.as_ref() != Some(key),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    /// A page: cursor, id, row xid, snapshot xmin.
    fn page(rows: &[(i64, i64, i64)], xmin: i64) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("c", DataType::Int64, false),
            Field::new("id", DataType::Int64, false),
            Field::new(XID_COLUMN, DataType::Int64, false),
            Field::new(SNAPSHOT_COLUMN, DataType::Int64, false),
        ]);
        let col = |f: fn(&(i64, i64, i64)) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let columns = vec![
            col(|r| r.0),
            col(|r| r.1),
            col(|r| r.2),
            Arc::new(Int64Array::from(vec![xmin; rows.len()])) as ArrayRef,
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    const COLS: Columns<'static> = Columns {
        xid: 2,
        snapshot: 3,
        cursor: 0,
        keys: &[1],
    };

    fn ids(set: &XidSet, probe: &[u64]) -> Vec<u64> {
        probe.iter().copied().filter(|i| set.contains(*i)).collect()
    }

    #[test]
    fn a_fault_starts_a_segment_and_the_last_page_covers_to_the_upper_bound() {
        let mut tracker = Tracker::new(LagWindow::default(), None, "40".into());
        tracker
            .page(&page(&[(10, 1, 50), (11, 2, 103)], 100), COLS, 1, false)
            .unwrap();
        let record = tracker
            .page(&page(&[(20, 3, 104), (30, 4, 120)], 110), COLS, 2, true)
            .unwrap();
        let sets = record.visible_sets();
        assert_eq!(sets.len(), 2);
        assert_eq!(
            sets[0].0,
            &Upto {
                cursor: "11".into(),
                key: Some(vec!["2".into()])
            }
        );
        assert_eq!(ids(&sets[0].1, &[50, 99, 100, 103, 104]), [50, 99, 103]);
        assert_eq!(
            sets[1].0,
            &Upto {
                cursor: "40".into(),
                key: None
            }
        );
        assert_eq!(ids(&sets[1].1, &[104, 109, 110, 120, 121]), [104, 109, 120]);
    }

    #[test]
    fn positions_not_reached_keep_what_the_older_record_says() {
        let mut first = Tracker::new(LagWindow::default(), None, "40".into());
        first
            .page(&page(&[(10, 1, 105), (20, 2, 106)], 100), COLS, 1, false)
            .unwrap();
        let old = first
            .page(&page(&[(30, 3, 107), (40, 4, 108)], 100), COLS, 1, true)
            .unwrap();
        // A later run (snapshot xmin 200) stops after position (15, 9): a crash.
        let mut second = Tracker::new(old, Some(Low::From("5".into())), "40".into());
        let record = second
            .page(&page(&[(15, 9, 201)], 200), COLS, 7, false)
            .unwrap();
        let sets = record.visible_sets();
        assert_eq!(sets.len(), 2, "{record:?}");
        assert_eq!(sets[0].0.cursor, "15");
        // This run's segment sees what the older one saw, and its own band.
        assert_eq!(ids(&sets[0].1, &[105, 150, 201, 202]), [105, 150, 201]);
        // Beyond (15, 9) the older segment answers, with its own snapshot.
        assert_eq!(sets[1].0.cursor, "40");
        assert_eq!(ids(&sets[1].1, &[99, 105, 109, 150, 201]), [99, 105]);
        // A run that reads to the end replaces everything.
        let record = second
            .page(&page(&[(40, 10, 202)], 200), COLS, 7, true)
            .unwrap();
        assert_eq!(record.visible_sets().len(), 1);
    }

    #[test]
    fn bands_of_rows_below_the_window_are_forgotten() {
        let mut first = Tracker::new(LagWindow::default(), None, "100".into());
        first
            .page(&page(&[(10, 1, 105)], 100), COLS, 1, false)
            .unwrap();
        let old = first
            .page(&page(&[(90, 2, 106)], 100), COLS, 1, true)
            .unwrap();
        assert_eq!(old.transaction_ranges(), 2);
        // The next run's window starts at 50: the band of the row at 10 goes, that of 90 stays.
        let mut next = Tracker::new(old, Some(Low::From("50".into())), "100".into());
        let record = next
            .page(&page(&[(95, 3, 107)], 100), COLS, 1, true)
            .unwrap();
        let (_, visible) = &record.visible_sets()[0];
        assert_eq!(ids(visible, &[105, 106, 107]), [106, 107]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn row_ids_widen_across_the_32_bit_wrap_and_frozen_ones_read_as_old() {
        let server = crate::cluster::pick_server().await.unwrap();
        let mut conn = server.connect("postgres").await.unwrap();
        const EPOCH: i64 = 1 << 32;
        // (snapshot xmax, the counter's low 32 bits, the row's 32-bit id) -> full id.
        let cases = [
            // Same epoch, counter a little ahead of the snapshot.
            (1_000, 1_005, 900, 900),
            // The snapshot is in epoch 1, the row was written late in epoch 0.
            (EPOCH + 100, 105, EPOCH - 50, EPOCH - 50),
            // The snapshot is at the end of epoch 0, the counter already wrapped.
            (EPOCH - 10, 3, EPOCH - 20, EPOCH - 20),
            // Epoch 3, a row from epoch 3.
            (3 * EPOCH + 7_000, 7_001, 6_000, 3 * EPOCH + 6_000),
            // A frozen row whose old id reads as newer than the snapshot: old.
            (EPOCH + 100, 105, 103, 0),
            // The age PostgreSQL reports for FrozenTransactionId (2): far in the past.
            (EPOCH + 100, 105, -1, EPOCH + 105 - i64::from(i32::MAX)),
        ];
        for (xmax, now_low, raw, expected) in cases {
            // age() is the 32-bit signed distance from the counter (a literal here).
            let age = |xid: i64| -> i64 {
                if raw < 0 && xid == raw {
                    return i64::from(i32::MAX);
                }
                i64::from(((now_low - xid) as u32) as i32)
            };
            let sql = format!(
                "SELECT {}",
                widen(
                    &format!("{}::int4", age(raw)),
                    &format!("{}::int4", age(3)),
                    &format!("{xmax}::int8")
                )
            );
            let got: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(got, expected, "xmax {xmax}, counter {now_low}, row {raw}");
        }
    }

    #[test]
    fn a_page_that_would_overflow_the_record_is_cut() {
        let tracker = Tracker::new(LagWindow::default(), None, "1".into());
        // Every other id: each is a range of its own.
        let rows: Vec<(i64, i64, i64)> = (0..(MAX_RANGES as i64 + 10))
            .map(|i| (1, i, 1000 + 2 * i))
            .collect();
        let batch = page(&rows, 1000);
        assert_eq!(tracker.fits(&batch, COLS), MAX_RANGES);
        let below: Vec<(i64, i64, i64)> = rows.iter().map(|r| (r.0, r.1, 5)).collect();
        assert_eq!(tracker.fits(&page(&below, 1000), COLS), below.len());
    }
}
